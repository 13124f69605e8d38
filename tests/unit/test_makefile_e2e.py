"""make e2e: the local control plane (built with Go) only for E2E_CLUSTER=local."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs GNU make")


def make_e2e(tmp_path: Path, *variables: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`make e2e` with pytest replaced by a recorder and a `go` that only records its use;
    the binaries cache is empty, so a control-plane build would need Go."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    go = bin_dir / "go"
    go.write_text(f"#!/bin/sh\necho go \"$@\" >> {tmp_path / 'go.log'}\nexit 1\n")
    pytest_stub = bin_dir / "fake-pytest"
    pytest_stub.write_text(f"#!/bin/sh\necho \"E2E_CLUSTER=$E2E_CLUSTER $*\" >> {tmp_path / 'pytest.log'}\n")
    for path in (go, pytest_stub):
        path.chmod(0o755)
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: no pip install
    full_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "ENSEMBLE_CACHE": str(tmp_path / "cache"),
                **(env or {})}
    return subprocess.run(["make", "-s", "-C", str(ROOT), "e2e", f"STAMP={stamp}", f"PYTEST={pytest_stub}",
                           f"PY={ROOT / '.venv' / 'bin' / 'python'}", *variables],
                          env=full_env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["make-variable", "environment"])
@pytest.mark.parametrize("cluster", ["kind", "k3s", "existing"])
def test_clusters_with_their_own_control_plane_need_no_go(tmp_path: Path, cluster: str, how: str) -> None:
    if how == "make-variable":
        proc = make_e2e(tmp_path, f"E2E_CLUSTER={cluster}")
    else:
        proc = make_e2e(tmp_path, env={"E2E_CLUSTER": cluster})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "go.log").exists(), "no control-plane build"
    assert (tmp_path / "pytest.log").read_text().split("\n")[0] == \
        f"E2E_CLUSTER={cluster} tests/e2e -p no:cacheprovider -v"


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs the venv")
def test_local_builds_the_control_plane_first_and_stops_when_it_cannot(tmp_path: Path) -> None:
    # No E2E_CLUSTER and no docker on PATH: the providers' default is local.
    proc = make_e2e(tmp_path, env=None)
    assert proc.returncode != 0
    assert (tmp_path / "go.log").exists(), proc.stdout + proc.stderr
    assert not (tmp_path / "pytest.log").exists()
