"""check_ensemble_yaml: the ensemble-python format, with exact field paths."""
from __future__ import annotations

import textwrap

import pytest

from api.v1alpha1.ensemble_yaml import check_ensemble_yaml, ensemble_yaml_warnings, load_ensemble_yaml
from tests.fakes import SteppingClock
from tests.unit.fakes.sim_member import ensemble_run

BASE = "spec.members[0].ensemble"


def errors_of(text: str) -> dict[str, str]:
    return {error.path: error.message for error in check_ensemble_yaml(textwrap.dedent(text), BASE)}


VALID = """
logging:
  debug: true
  heartbeat: 3
jobs:
  - name: sim
    command: sleep 1
    count: 2
    nodes: 1
    tasks: 4
    duration: 30
    workdir: /tmp
rules:
  - trigger: start
    action: {name: submit, label: sim}
  - trigger: metric
    name: mean.sim-pending
    when: "> 5.5"
    action: {name: grow, value: 2, repetitions: 3, backoff: 0}
  - trigger: metric
    name: count.sim.success
    when: 2
    action: {name: custom, label: refill}
  - trigger: job-finish
    name: sim
    action: {name: shrink}
  - trigger: job-depend
    name: sim
    when: "> 0"
    action: {name: terminate}
custom: |
  def refill(*args, **kwargs):
      return None
"""


def test_a_complete_valid_file_has_no_errors() -> None:
    assert errors_of(VALID) == {}


@pytest.mark.parametrize("when", [3, 2.5, -1, "> 5", "<= 2", ">=0.5", " < 10 "])
def test_when_accepts_numbers_and_comparisons(when: object) -> None:
    text = f"jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n    when: {when!r}\n" \
           "    action: {name: terminate}\n"
    assert errors_of(text) == {}


@pytest.mark.parametrize("when", ["> five", "<>", "", "true", "[1]", "== 4", "!= 1", "7"])
def test_when_rejects_other_strings(when: str) -> None:
    text = f"jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n    when: {when!r}\n" \
           "    action: {name: terminate}\n"
    assert list(errors_of(text)) == [f"{BASE}.rules[0].when"]


def test_invalid_yaml_reports_line_and_column() -> None:
    errors = errors_of("jobs: [\nrules: x: y\n")
    assert list(errors) == [BASE]
    assert errors[BASE].startswith("is not valid YAML (line 2")


def test_document_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == {BASE: "must be a YAML mapping with jobs and rules, got array"}


def warnings_of(text: str) -> dict[str, str]:
    return {w.path: w.message for w in ensemble_yaml_warnings(textwrap.dedent(text), BASE)}


def test_jobs_and_rules_are_required_and_unknown_top_level_keys_only_warned_about() -> None:
    """ensemble-python's schema ignores unknown top-level keys (its additionalProperties: False
    sits among the properties, so only a key of that name is refused)."""
    text = "logging: {debug: false}\nrule: []\n"
    assert set(errors_of(text)) == {f"{BASE}.jobs", f"{BASE}.rules"}
    assert list(warnings_of(text)) == [f"{BASE}.rule"]
    assert list(errors_of("additionalProperties: 1\njobs: []\nrules: []\n")) == [f"{BASE}.additionalProperties"]


def test_logging_fields() -> None:
    errors = errors_of("logging: {debug: 'no', heartbeat: '2', colour: red}\njobs: []\nrules: []\n")
    assert set(errors) == {f"{BASE}.logging.debug", f"{BASE}.logging.heartbeat", f"{BASE}.logging.colour"}
    assert list(warnings_of("logging: {heartbeat: -2}\njobs: []\nrules: []\n")) == [f"{BASE}.logging.heartbeat"]


def test_job_fields_refused_where_the_schema_refuses_them() -> None:
    errors = errors_of("""
        jobs:
          - name: a
            command: run
            count: '2'
            tasks: true
            workdir: 3
          - command: run
          - name: 5
            command: run
        rules: []
        """)
    assert errors == {
        f"{BASE}.jobs[0].count": "must be a number, got '2'",
        f"{BASE}.jobs[0].tasks": "must be a number, got True",
        f"{BASE}.jobs[0].workdir": "must be a string, got 3",
        f"{BASE}.jobs[1].name": "required field is missing",
        f"{BASE}.jobs[2].name": "must be a string, got 5",
    }


def test_job_values_ensemble_python_loads_but_cannot_submit_are_warnings() -> None:
    text = """
        jobs:
          - {name: a, command: run, count: 0, nodes: 1.5, duration: -1, gpus: 1}
          - {name: a, command: run again}
        rules: []
        """
    assert errors_of(text) == {}
    assert set(warnings_of(text)) == {f"{BASE}.jobs[0].count", f"{BASE}.jobs[0].nodes",
                                      f"{BASE}.jobs[0].duration", f"{BASE}.jobs[0].gpus"}


def test_rule_triggers() -> None:
    errors = errors_of("""
        jobs: []
        rules:
          - action: {name: terminate}
          - trigger: Job-Finish
            action: {name: terminate}
          - trigger: job-success
            action: {name: terminate}
          - trigger: metric
            action: {name: terminate}
          - trigger: job-finish
            action: {name: terminate}
        """)
    # rules[3]: a metric rule without a name loads (and can never fire: a warning)
    assert set(errors) == {f"{BASE}.rules[0].trigger", f"{BASE}.rules[1].trigger", f"{BASE}.rules[2].trigger"}
    assert "not supported by ensemble-python 0.0.16's MiniCluster member" in errors[f"{BASE}.rules[2].trigger"]


def test_rules_that_can_never_fire_are_warnings() -> None:
    text = """
        jobs:
          - {name: sim, command: run}
        rules:
          - {trigger: metric, action: {name: terminate}}
          - {trigger: metric, name: total.sim, action: {name: terminate}}
          - {trigger: metric, name: count.other.success, when: 1, action: {name: terminate}}
          - {trigger: metric, name: mean.sim-waiting, action: {name: terminate}}
          - {trigger: metric, name: count.sim.success, when: 2, action: {name: terminate, repetitions: 0}}
          - {trigger: metric, name: mean.sim-pending, when: "> 2", action: {name: grow}}
        """
    assert errors_of(text) == {}
    warnings = warnings_of(text)
    assert set(warnings) == {f"{BASE}.rules[{i}].name" for i in range(4)} | {f"{BASE}.rules[4].action.repetitions"}
    assert all("can never fire" in message for message in warnings.values())
    assert "no job group 'other' (jobs: sim)" in warnings[f"{BASE}.rules[2].name"]


def test_when_thresholds_ensemble_python_reads_otherwise_are_warnings() -> None:
    text = """
        jobs:
          - {name: sim, command: run}
        rules:
          - {trigger: metric, name: mean.sim-pending, when: "> 0.5", action: {name: grow}}
          - {trigger: metric, name: mean.sim-pending, when: "=> 3", action: {name: shrink}}
          - {trigger: start, when: 3, action: {name: submit, label: sim}}
          - {trigger: metric, name: mean.sim-pending, when: 2.5, action: {name: terminate}}
        """
    assert errors_of(text) == {}
    assert warnings_of(text) == {
        f"{BASE}.rules[0].when": "ensemble-python 0.0.16 reads only the integer part: > 0.5 compares with 0",
        f"{BASE}.rules[1].when": "ensemble-python 0.0.16 reads only '> 3' of it",
        f"{BASE}.rules[2].when": "is ignored: ensemble-python checks when only for metric rules, not start",
    }


def test_actions() -> None:
    text = """
        jobs:
          - {name: a, command: run}
        rules:
          - trigger: start
          - trigger: start
            action: {name: explode}
          - trigger: start
            action: {name: submit}
          - trigger: start
            action: {name: submit, label: b}
          - trigger: start
            action: {name: grow, value: 0, repetitions: many, backoff: x, when: 1}
          - trigger: start
            action: submit
        """
    assert errors_of(text) == {
        f"{BASE}.rules[0].action": "required field is missing",
        f"{BASE}.rules[1].action.name":
            "must be one of submit, custom, terminate, grow, shrink, got 'explode'",
        f"{BASE}.rules[5].action": "must be a mapping with a name, got string",
    }
    assert set(warnings_of(text.replace("action: submit\n", "action: {name: terminate}\n")
                           .replace("action: {name: explode}", "action: {name: terminate}")
                           .replace("- trigger: start\n          - trigger: start",
                                    "- trigger: start\n            action: {name: terminate}\n"
                                    "          - trigger: start"))) == {
        f"{BASE}.rules[2].action.label", f"{BASE}.rules[3].action.label", f"{BASE}.rules[4].action.value",
        f"{BASE}.rules[4].action.repetitions", f"{BASE}.rules[4].action.backoff", f"{BASE}.rules[4].action.when"}


def test_custom_actions_need_a_defined_function() -> None:
    rule = "jobs: []\nrules:\n  - trigger: start\n    action: {name: custom, label: go}\n"
    assert "the file has no custom: block" in errors_of(rule)[f"{BASE}.rules[0].action.label"]
    other = errors_of(rule + "custom: |\n  def stop():\n      pass\n")
    assert other == {f"{BASE}.rules[0].action.label": "names no function defined in custom: 'go'"}
    assert errors_of(rule + "custom: |\n  import go\n") == {}
    assert list(errors_of(rule + "custom: |\n  go = 0\n")) == [f"{BASE}.rules[0].action.label"]
    broken = errors_of(rule + "custom: |\n  def go(:\n")
    assert list(broken) == [f"{BASE}.custom"]
    assert broken[f"{BASE}.custom"].startswith("is not valid Python (line 1)")


def test_limits_are_errors_naming_the_limit() -> None:
    deep = "jobs:\n  - {name: a, command: run, extra: " + "[" * 40 + "]" * 40 + "}\nrules: []\n"
    assert errors_of(deep) == {BASE: "is nested deeper than 32 levels: this operator's limit"}


def test_remembered_checks_are_bounded_by_bytes_and_a_repeat_is_not_parsed_again(monkeypatch) -> None:
    from api.v1alpha1 import ensemble_yaml

    parsed: list[str] = []
    load = ensemble_yaml._Loader.load
    monkeypatch.setattr(ensemble_yaml._Loader, "load", lambda self, text: (parsed.append(text), load(self, text))[1])
    monkeypatch.setattr(ensemble_yaml._LOADED, "max_bytes", 300_000)   # the real bound is 8 MiB
    padding = "#" + "x" * 20_000 + "\n"
    rules = "rules: [{trigger: start, action: {name: submit, label: j}}]\n"
    texts = [f"{padding}jobs: [{{name: j, command: sleep {i}}}]\n{rules}" for i in range(40)]   # 800 KB in all
    for text in texts:
        assert check_ensemble_yaml(text, BASE) == []
        assert ensemble_yaml._LOADED.bytes <= 300_000
    parsed.clear()
    check_ensemble_yaml(texts[-1], BASE)
    assert parsed == []                                   # the newest is still remembered
    huge = padding * 3 + "jobs: [{name: j, command: sleep 1}]\n" + rules   # over 1/8 of the bound: never kept
    before = ensemble_yaml._LOADED.bytes
    assert check_ensemble_yaml(huge, BASE) == [] and ensemble_yaml._LOADED.bytes == before


NAMELESS_JOB_RULE = """
jobs:
  - {name: a, command: sleep 1, count: 2}
  - {name: b, command: sleep 1}
rules:
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: job-finish, action: {name: submit, label: b, repetitions: 5}}
"""


def test_job_event_rule_without_a_name_is_accepted() -> None:
    """ensemble-python 0.0.16 loads it (its schema requires only trigger and action) and fires it
    for every job; the checker refused it, so an upstream Ensemble carrying one was Invalid."""
    assert check_ensemble_yaml(textwrap.dedent(NAMELESS_JOB_RULE), BASE) == []


def test_job_event_rule_without_a_name_fires_for_every_job() -> None:
    clock = SteppingClock(start=0.0)
    run, flux = ensemble_run(NAMELESS_JOB_RULE, clock, nodes=1)
    run.run(until=10)
    # a1, a2 finish -> b3, b4; b3, b4 finish -> b5, b6; b5 finishes -> b7 (5 repetitions in all)
    assert [f.detail for f in run.fired] == ["a jobs [1, 2]"] + [f"b jobs [{n}]" for n in range(3, 8)]
    assert flux.status()["queue"]["inactive"] == 7


def test_comparison_with_a_negative_number_is_refused() -> None:
    """ensemble-python 0.0.16 parses the number with ``\\w+``, so "> -1" fails when the member
    loads its rules ('NoneType' object has no attribute 'groupdict'); the checker accepted it."""
    text = "jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n    when: '> -1'\n" \
           "    action: {name: terminate}\n"
    assert [error.path for error in check_ensemble_yaml(text, BASE)] == [f"{BASE}.rules[0].when"]


def test_the_model_holds_what_ensemble_python_reads() -> None:
    config = load_ensemble_yaml(textwrap.dedent("""
        jobs:
          - {name: a, command: sleep 1, count: 2}
          - {name: a, command: sleep 2}
        rules:
          - {trigger: metric, name: mean.a-pending, when: "> 0.5", action: {name: grow, repetitions: 3}}
        """)).config
    assert config is not None
    assert [job.command for job in config.groups()["a"]] == ["sleep 1", "sleep 2"]   # every set of a group
    rule = config.rules[0]
    assert (rule.when.op, rule.when.number, rule.when.matches(0.4)) == (">", 0.0, True)   # as 0.0.16 compares
    assert (rule.action.name, rule.action.repetitions, config.heartbeat) == ("grow", 3, 60.0)
