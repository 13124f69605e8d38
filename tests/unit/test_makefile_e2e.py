"""make e2e: the local control plane (built with Go) only for E2E_CLUSTER=local."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs GNU make")


def make_e2e(tmp_path: Path, *variables: str, env: dict[str, str] | None = None,
             cluster_tools: bool = False) -> subprocess.CompletedProcess:
    """`make e2e` with pytest replaced by a recorder and a Go 1.26 that only records its builds
    (and fails them); the binaries cache is empty, so a control-plane build would need Go.
    ``cluster_tools``: a running Docker, kind and kubectl (fakes) and a kubeconfig, which the
    kind, k3s and existing clusters need before anything starts (tests/unit/test_make_prereqs.py)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scripts = {
        "go": f'[ "$1 $2" = "env GOVERSION" ] && {{ echo go1.26.0; exit 0; }}\necho go "$@" >> {tmp_path / "go.log"}\nexit 1',
        "fake-pytest": f'echo "E2E_CLUSTER=$E2E_CLUSTER $*" >> {tmp_path / "pytest.log"}',
        **({"docker": "exit 0", "kind": "exit 0", "kubectl": "exit 0"} if cluster_tools else {})}
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    pytest_stub = bin_dir / "fake-pytest"
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: no pip install
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.touch()
    full_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "ENSEMBLE_CACHE": str(tmp_path / "cache"),
                "KUBECONFIG": str(kubeconfig), **(env or {})}
    return subprocess.run(["make", "-s", "-C", str(ROOT), "e2e", f"STAMP={stamp}", f"PYTEST={pytest_stub}",
                           f"PY={ROOT / '.venv' / 'bin' / 'python'}", *variables],
                          env=full_env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["make-variable", "environment"])
@pytest.mark.parametrize("cluster", ["kind", "k3s", "existing"])
def test_clusters_with_their_own_control_plane_need_no_go(tmp_path: Path, cluster: str, how: str) -> None:
    if how == "make-variable":
        proc = make_e2e(tmp_path, f"E2E_CLUSTER={cluster}", cluster_tools=True)
    else:
        proc = make_e2e(tmp_path, env={"E2E_CLUSTER": cluster}, cluster_tools=True)
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


@pytest.mark.parametrize("cluster", ["local", "kind", "k3s", "existing"])
def test_e2e_says_first_what_ci_runs_on_its_cluster_kind(tmp_path: Path, cluster: str) -> None:
    from tests.e2e.providers import ci_coverage
    proc = make_e2e(tmp_path, f"E2E_CLUSTER={cluster}", cluster_tools=True)
    first = proc.stdout.splitlines()[0]
    assert first == ci_coverage(cluster)
    says = first.split(": ", 1)[1]
    assert says.startswith("run by CI" if cluster == "local" else "NOT run by CI, only documented")
