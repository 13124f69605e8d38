"""hack/build-flux.sh: which member virtualenv it builds, and that it does nothing once built."""
from __future__ import annotations

import subprocess
from pathlib import Path

from api.v1alpha1.types import DEFAULT_ENSEMBLE_PYTHON

ROOT = Path(__file__).resolve().parents[2]


def test_once_built_for_the_pinned_ensemble_python_it_only_prints_the_prefix(tmp_path: Path) -> None:
    # A prefix as a finished build leaves it: flux, and the member virtualenv of the version
    # the operator installs by default. Any other version read would start a build (and fail here).
    prefix = tmp_path / "cache" / "flux" / "0.88.0"
    venv = prefix / f"ensemble-python-{DEFAULT_ENSEMBLE_PYTHON}"
    for path in (prefix / "bin" / "flux", venv / "bin" / "ensemble", venv / "bin" / "python"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    proc = subprocess.run(["bash", str(ROOT / "hack" / "build-flux.sh")], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ENSEMBLE_CACHE": str(tmp_path / "cache")})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"{prefix}\n", "")
