"""tests/e2e/providers.py without Docker: what the kind and k3s providers run, and that a
setup failing part way leaves no cluster or container behind."""
from __future__ import annotations

import subprocess
import sys
import types

import pytest

from tests.e2e import providers


class Commands:
    """Records _run and kubectl; fails the command whose argv starts with ``fail``."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.fail = fail
        self.ran: list[list[str]] = []

    def run(self, argv: list[str]) -> None:
        self.ran.append(argv)
        if self.fail and tuple(argv[:len(self.fail)]) == self.fail:
            raise subprocess.CalledProcessError(1, argv)


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Commands:
    recorded = Commands()
    monkeypatch.setattr(providers, "_run", lambda argv: recorded.run(argv))
    monkeypatch.setattr(providers.KubectlCluster, "kubectl",
                        lambda self, *args, input=None, check=True: recorded.run(["kubectl", *args]) or "")
    monkeypatch.delenv("E2E_KEEP_CLUSTER", raising=False)
    return recorded


def test_kind_setup_failing_after_create_deletes_the_cluster(commands: Commands) -> None:
    commands.fail = ("docker", "build")
    with pytest.raises(subprocess.CalledProcessError):
        providers.KindProvider()
    assert ["kind", "delete", "cluster", "--name", "ensemble-e2e"] in commands.ran


def test_kind_create_failing_deletes_no_cluster(commands: Commands) -> None:
    # e.g. "node(s) already exist for a cluster with the name": that cluster is not ours.
    commands.fail = ("kind", "create")
    with pytest.raises(subprocess.CalledProcessError):
        providers.KindProvider()
    assert not any(argv[:2] == ["kind", "delete"] for argv in commands.ran)


class FakeK3s:
    instances: list["FakeK3s"] = []

    def __init__(self, import_code: int = 0) -> None:
        self.import_code = import_code
        self.started = self.stopped = False
        self.execs: list[list[str]] = []
        FakeK3s.instances.append(self)

    def start(self) -> "FakeK3s":
        self.started = True
        return self

    def stop(self) -> None:
        self.stopped = True

    def config_yaml(self) -> str:
        return "apiVersion: v1\nkind: Config\n"

    def copy_into_container(self, source, target) -> None:
        pass

    def exec(self, argv: list[str]):
        self.execs.append(argv)
        return (self.import_code, b"ctr: image might be filtered out")


@pytest.fixture
def fake_k3s(monkeypatch: pytest.MonkeyPatch):
    FakeK3s.instances = []
    module = types.ModuleType("testcontainers.community.k3s")
    module.K3SContainer = FakeK3s  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "testcontainers.community.k3s", module)
    return module


def test_k3s_imports_the_image_where_the_kubelet_looks_and_checks_it(commands: Commands, fake_k3s,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers.KubectlCluster, "install_operator", lambda self, image: None)
    provider = providers.K3sProvider()
    (argv,) = FakeK3s.instances[0].execs
    assert argv[:2] == ["ctr", "-n=k8s.io"] and argv[2:4] == ["images", "import"]
    provider.close()

    fake_k3s.K3SContainer = lambda: FakeK3s(import_code=1)
    with pytest.raises(RuntimeError, match="importing .* into k3s failed"):
        providers.K3sProvider()
    assert FakeK3s.instances[-1].stopped, "a failed setup stops the container"


def test_k3s_setup_failing_stops_the_container(commands: Commands, fake_k3s) -> None:
    commands.fail = ("docker", "build")
    with pytest.raises(subprocess.CalledProcessError):
        providers.K3sProvider()
    assert FakeK3s.instances[0].started and FakeK3s.instances[0].stopped


def test_a_cluster_kind_without_its_tools_is_refused_in_one_line_naming_them(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import localcluster  # hack/, on sys.path through providers
    monkeypatch.setattr(localcluster, "DEFAULT_BIN_DIR", tmp_path)  # no kubectl built either
    monkeypatch.setattr(providers.shutil, "which", lambda name: None)
    with pytest.raises(providers.ClusterUnavailable) as refused:
        providers.make_provider("kind")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("E2E_CLUSTER=kind cannot run here: ")
    for tool in ("Docker", "kind", "kubectl"):
        assert f"install {tool} (http" in message


def test_docker_that_does_not_run_is_named_as_such() -> None:
    with pytest.raises(providers.ClusterUnavailable, match=r"E2E_CLUSTER=k3s cannot run here: start Docker"):
        providers.require_tools("k3s", which=lambda name: f"/usr/bin/{name}", docker_running=lambda: False)
    providers.require_tools("k3s", which=lambda name: f"/usr/bin/{name}", docker_running=lambda: True)


def test_the_e2e_session_stops_with_one_line_instead_of_an_error_per_scenario(tmp_path) -> None:
    # pytest run directly (not through make) for kind, on a PATH without kind or docker.
    import os
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/e2e", "-q", "-p", "no:cacheprovider"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": "/usr/bin:/bin", "E2E_CLUSTER": "kind", "HOME": str(tmp_path)})
    output = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "Traceback" not in output and "FileNotFoundError" not in output and " error" not in output
    (line,) = [line for line in output.splitlines() if "E2E_CLUSTER=kind cannot run here" in line]
    assert "install kind" in line


@pytest.mark.parametrize("name", sorted(providers.CI_COVERAGE))
def test_the_readme_says_what_ci_runs_on_each_cluster_kind_as_make_e2e_does(name: str) -> None:
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{name}` | ")]
    assert row.split(" | ")[1] == providers.CI_COVERAGE[name]
    assert providers.ci_coverage(name) == f"e2e on {name}: {providers.CI_COVERAGE[name]}"
