"""make run: with everything built it goes straight to the demo, passes EXAMPLE on, keeps the
demo's exit status and ends with one line of its total time."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from api.v1alpha1.types import DEFAULT_ENSEMBLE_PYTHON

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs GNU make")


def executable(path: Path, body: str = "exit 0") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def built_cache(cache: Path) -> None:
    """What the builds leave behind, so that each is a no-op."""
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok"):
        executable(cache / "k8s" / "v1.37.2" / "bin" / name)
    executable(cache / "flux-operator" / "0d75cef8" / "bin" / "manager")
    flux = cache / "flux" / "0.88.0"
    executable(flux / "bin" / "flux")
    for name in ("ensemble", "python"):
        executable(flux / f"ensemble-python-{DEFAULT_ENSEMBLE_PYTHON}" / "bin" / name)


def make_run(tmp_path: Path, *variables: str, demo_status: int = 0) -> subprocess.CompletedProcess:
    built_cache(tmp_path / "cache")
    demo = tmp_path / "demo-python"
    executable(demo, f'echo "demo $*"; exit {demo_status}')
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: no pip install
    return subprocess.run(["make", "-s", "-C", str(ROOT), "run", f"STAMP={stamp}", f"PY={demo}", *variables],
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ENSEMBLE_CACHE": str(tmp_path / "cache")},
                          capture_output=True, text=True, timeout=60)


def test_run_ends_with_its_total_time(tmp_path: Path) -> None:
    proc = make_run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "demo hack/demo.py" and proc.stderr == ""
    assert re.fullmatch(r"make run: \d+ s in all \(setup and builds \d+ s, demo \d+ s\)", lines[-1]), lines[-1]


def test_run_passes_another_example_on_and_keeps_the_demos_failure(tmp_path: Path) -> None:
    proc = make_run(tmp_path, "EXAMPLE=examples/grow-shrink/ensemble.yaml", demo_status=1)
    assert proc.returncode != 0
    assert proc.stdout.splitlines()[0] == "demo hack/demo.py --example examples/grow-shrink/ensemble.yaml"
    assert proc.stdout.splitlines()[-1].startswith("make run: ")
