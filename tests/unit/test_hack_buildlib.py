"""hack/buildlib.sh: the measured build times the builds print as estimates are the README's."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each estimate and the README table row (its script, or its first words) that states it.
ROWS = {"ESTIMATE_VENV": "| `.venv`: ", "ESTIMATE_K8S": "`hack/build-k8s.sh`", "ESTIMATE_KWOK": "`hack/build-kwok.sh`",
        "ESTIMATE_FLUX_OPERATOR": "`hack/build-flux-operator.sh`", "ESTIMATE_FLUX": "`hack/build-flux.sh`"}


def buildlib(script: str) -> str:
    return subprocess.run(["bash", "-c", f"source {ROOT / 'hack' / 'buildlib.sh'}; {script}"], capture_output=True,
                          text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}).stdout


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_readme_states_the_estimate_each_build_prints(name: str) -> None:
    seconds = int(buildlib(f'echo "${name}"'))
    assert seconds > 0, f"{name} was never measured"
    said = buildlib(f"human_seconds {seconds}")
    (row,) = [line for line in (ROOT / "README.md").read_text().splitlines()
              if line.startswith("| ") and ROWS[name] in line]
    assert row.split(" | ")[1].startswith(said), row


def test_estimates_read_as_minutes_and_seconds() -> None:
    assert [buildlib(f"human_seconds {s}") for s in (32, 119, 120, 948)] == ["32 s", "119 s", "2 min 0 s", "15 min 48 s"]


def test_a_step_says_its_estimate_then_how_long_it_took() -> None:
    said = subprocess.run(["bash", "-c", f"source {ROOT / 'hack' / 'buildlib.sh'}; BUILD_NAME=kwok; "
                           "step_start 'kwok v0.8.0' 150; step_done 'kwok v0.8.0'"],
                          capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/x"}).stderr
    start, done = said.splitlines()
    assert re.fullmatch(r"\[kwok \d\d:\d\d:\d\d\] kwok v0\.8\.0: building \(measured on 2 cores with an empty cache: "
                        r"2 min 30 s, downloads included\)", start), start
    assert re.fullmatch(r"\[kwok \d\d:\d\d:\d\d\] kwok v0\.8\.0: done in \d s", done), done
