"""ensemble-python's own verdict on ensemble.yaml files, from a cached virtualenv.

The virtualenv (``$ENSEMBLE_CACHE/ensemble-python-loader/<version>/``, default cache
``~/.cache/ensemble-operator``) holds ``ensemble-python==<version>`` from PyPI with the
dependencies pip resolves for it, and no Flux: its loader never calls Flux (see
``ensemble_python_loader.py``). It is created once, under a lock, and reused.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LOADER = Path(__file__).with_name("ensemble_python_loader.py")
COMPLETE = ".complete"


def cache_root() -> Path:
    return Path(os.environ.get("ENSEMBLE_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ensemble-operator")


@dataclass(frozen=True)
class Verdict:
    path: str
    accepted: bool
    error: str


def loader_python(version: str, root: Path | None = None) -> Path:
    """The python of a virtualenv with ensemble-python ``version``, created on first use."""
    venv = (root or cache_root()) / "ensemble-python-loader" / version
    python = venv / "bin" / "python"
    if (venv / COMPLETE).exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / COMPLETE).exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            f"ensemble-python=={version}"], check=True)
            (venv / COMPLETE).write_text(version)
    return python


def ensemble_python_verdicts(paths: list[Path], version: str, timeout: float = 600) -> dict[str, Verdict]:
    """ensemble-python's verdict on each file (its loader run on it in a subprocess)."""
    python = loader_python(version)
    done = subprocess.run([str(python), str(LOADER), *map(str, paths)], capture_output=True, text=True,
                          timeout=timeout, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    header, replies = lines[0], lines[1:]
    if header.get("version") != version:
        raise RuntimeError(f"the loader virtualenv runs ensemble-python {header.get('version')}, not {version}")
    return {reply["path"]: Verdict(reply["path"], reply["accepted"], reply["error"]) for reply in replies}
