"""Compatibility review: the CRD and the ensemble.yaml checks agree with what they describe."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from api.v1alpha1.crd import crd
from api.v1alpha1.ensemble_yaml import check_ensemble_yaml
from api.v1alpha1.markers import api_fields, field_info, json_name
from api.v1alpha1.reference import reference_markdown
from api.v1alpha1.types import StatusSummary


def test_printer_column_descriptions_say_what_the_summary_fields_count() -> None:
    """A column on a status.summary field describes it as the field's own description does."""
    fields = {json_name(field): field_info(field).description for field, _, _ in api_fields(StatusSummary)}
    for column in crd()["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"]
        if path.startswith(".status.summary."):
            assert column["description"] == fields[path.rsplit(".", 1)[1]], column["name"]


# ensemble-python 0.0.16 itself decides which triggers a MiniCluster member can run; it needs
# flux only at import, so a stub lets its own loader judge each trigger in a child process.
LOAD_WITH_ENSEMBLE_PYTHON = """
import sys, types
for name in ("flux", "flux.job", "flux.constants", "flux.message"):
    sys.modules[name] = types.ModuleType(name)
import ensemble.config.config as cfg
from ensemble.members.flux.minicluster import FluxMiniClusterQueue
for path in sys.argv[1:]:
    try:
        cfg.load_config(path).check_supported(FluxMiniClusterQueue.rules_supported)
        print("ok")
    except Exception:
        print("refused")
"""

TRIGGERS_TRIED = ("start", "metric", "job-finish", "job-depend", "job-success", "job-fail", "job-sched",
                  "job-run", "job-cancel", "job-cleanup", "job-start", "job-submit", "job-clean",
                  "job-jobspec-update", "job-exception")


def _ensemble_yaml(trigger: str) -> str:
    name = "    name: count.a.success\n" if trigger == "metric" else ""
    return (f"jobs:\n  - {{name: a, command: sleep 1}}\nrules:\n  - trigger: {trigger}\n{name}"
            "    action: {name: terminate}\n")


def test_a_trigger_is_accepted_exactly_when_ensemble_python_can_run_it(tmp_path: Path) -> None:
    """A trigger we accept but ensemble-python refuses fails only at `ensemble run` on the lead broker."""
    paths = []
    for index, trigger in enumerate(TRIGGERS_TRIED):
        path = tmp_path / f"{index}.yaml"
        path.write_text(_ensemble_yaml(trigger))
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", LOAD_WITH_ENSEMBLE_PYTHON, *paths], check=True,
                          capture_output=True, text=True, timeout=60)
    theirs = dict(zip(TRIGGERS_TRIED, done.stdout.split()))
    ours = {trigger: "refused" if check_ensemble_yaml(_ensemble_yaml(trigger), "e") else "ok"
            for trigger in TRIGGERS_TRIED}
    assert ours == theirs
    assert [trigger for trigger, verdict in theirs.items() if verdict == "ok"] == \
        ["start", "metric", "job-finish", "job-depend"]


def test_reference_lists_exactly_the_when_operators_the_check_accepts() -> None:
    line = next(line for line in reference_markdown().splitlines() if line.startswith("- `rules[]`"))
    listed = set(re.findall(r"`([<>=!]=?)`", line.split("a string whose first", 1)[1].split("followed", 1)[0]))
    accepted = {op for op in ("<", "<=", ">", ">=", "==", "!=")
                if not check_ensemble_yaml(f'jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n'
                                           f'    when: "{op} 1"\n    action: {{name: terminate}}\n', "e")}
    assert listed == accepted == {"<", "<=", ">", ">="}
