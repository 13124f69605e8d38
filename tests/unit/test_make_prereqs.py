"""Every make target checks its prerequisites first (hack/prereqs.sh): with one missing it
stops before doing anything, with one line naming what is missing and how to install it,
and a non-zero exit status. Each case runs the real `make <target>` on a PATH holding
everything on this machine's PATH but the tool (symlinks), plus fakes where a tool must be
present but broken (an old Go, Docker not running)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs GNU make")

VENV_TARGETS = ("run", "test", "unit", "integration", "e2e", "lint", "bench", "cluster-up", "manifests", "protos")
CONTROL_PLANE_TARGETS = ("run", "test", "integration", "bench", "cluster-up", "cluster-build")
GO_INSTALL = "install it from https://go.dev/dl/"


def path_without(bin_dir: Path, *absent: str, fakes: dict[str, str] | None = None) -> str:
    """A PATH of one directory: a symlink to every command on the current PATH except
    ``absent``, and ``fakes`` (name -> shell script body) in place of the real ones."""
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = bin_dir / entry.name
            if entry.name in absent or link.exists() or link.is_symlink():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    for name, body in (fakes or {}).items():
        fake = bin_dir / name
        if fake.is_symlink():
            fake.unlink()
        fake.write_text(f"#!/bin/sh\n{body}\n")
        fake.chmod(0o755)
    return str(bin_dir)


def make(tmp_path: Path, target: str, *, absent: tuple[str, ...] = (), fakes: dict[str, str] | None = None,
         variables: tuple[str, ...] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`make <target>` with an empty binary cache (nothing built yet) and no kubeconfig."""
    full_env = {"PATH": path_without(tmp_path / "bin", *absent, fakes=fakes), "HOME": str(tmp_path),
                "ENSEMBLE_CACHE": str(tmp_path / "cache"), **(env or {})}
    return subprocess.run(["make", "-s", "-C", str(ROOT), target, *variables], env=full_env,
                          capture_output=True, text=True, timeout=60)


def assert_stopped_with(proc: subprocess.CompletedProcess, target: str, *expected: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert proc.stdout == "", "nothing ran before the check"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, output
    assert f"make {target}" in lines[0] and "Traceback" not in output
    for text in expected:
        assert text in lines[0], output


@pytest.mark.parametrize("target", CONTROL_PLANE_TARGETS)
def test_without_go_the_control_plane_targets_say_where_to_get_it(tmp_path: Path, target: str) -> None:
    proc = make(tmp_path, target, absent=("go",))
    assert_stopped_with(proc, target, "Go >= 1.26 is not installed", "builds the local control plane", GO_INSTALL)


@pytest.mark.parametrize("target", ("test", "integration", "tools-build"))
def test_without_go_the_tests_name_helm_and_actionlint_too(tmp_path: Path, target: str) -> None:
    proc = make(tmp_path, target, absent=("go",))
    assert_stopped_with(proc, target, "Go >= 1.26 is not installed", "helm and actionlint", GO_INSTALL)


@pytest.mark.parametrize("target", ("run", "cluster-build"))
def test_an_old_go_is_named_with_its_version(tmp_path: Path, target: str) -> None:
    proc = make(tmp_path, target, fakes={"go": 'echo go1.22.5'})
    assert_stopped_with(proc, target, "Go is 1.22.5, >= 1.26 is needed", "https://go.dev/dl/")


def test_go_is_not_asked_for_once_the_control_plane_is_built(tmp_path: Path) -> None:
    bin_dir = tmp_path / "cache" / "k8s" / "v1.37.2" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    proc = make(tmp_path, "cluster-build", absent=("go",))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", ("run", "test", "integration", "bench", "cluster-up"))
def test_without_openssl_the_cluster_targets_stop(tmp_path: Path, target: str) -> None:
    proc = make(tmp_path, target, absent=("openssl",))
    assert_stopped_with(proc, target, "openssl is not installed", "apt-get install -y openssl")


@pytest.mark.parametrize("target, variables", [("run", ()), ("test", ()), ("integration", ()), ("bench", ()),
                                               ("e2e", ("E2E_CLUSTER=local",))])
def test_without_gcc_the_local_system_targets_stop(tmp_path: Path, target: str, variables: tuple[str, ...]) -> None:
    proc = make(tmp_path, target, absent=("gcc",), variables=variables)
    assert_stopped_with(proc, target, "gcc is not installed", "hack/build-podaddress.sh", "apt-get install -y gcc")


@pytest.mark.parametrize("target, variables", [("test", ()), ("unit", ()), ("integration", ()),
                                               ("e2e", ("E2E_CLUSTER=local",))])
def test_without_setpriv_the_test_targets_stop(tmp_path: Path, target: str, variables: tuple[str, ...]) -> None:
    proc = make(tmp_path, target, absent=("setpriv",), variables=variables)
    assert_stopped_with(proc, target, "setpriv is not installed", "apt-get install -y util-linux")


@pytest.mark.parametrize("target", VENV_TARGETS)
def test_without_python3_nothing_can_make_the_venv(tmp_path: Path, target: str) -> None:
    proc = make(tmp_path, target, absent=("python3",), variables=(f"VENV={tmp_path / 'venv'}", "E2E_CLUSTER=local"))
    assert_stopped_with(proc, target, "python3 is not installed (>= 3.11", "apt-get install -y python3 python3-venv")


def test_an_old_python3_is_named_with_its_version(tmp_path: Path) -> None:
    old = 'case "$*" in *"%d.%d"*) echo 3.10;; esac; exit 1'
    proc = make(tmp_path, "unit", fakes={"python3": old}, variables=(f"VENV={tmp_path / 'venv'}",))
    assert_stopped_with(proc, "unit", "python3 is 3.10, >= 3.11 is needed", "python.org")


def test_a_python3_without_venv_names_the_package(tmp_path: Path) -> None:
    real = shutil.which("python3")
    no_venv = f'case "$*" in *ensurepip*) exit 1;; esac; exec {real} "$@"'
    proc = make(tmp_path, "lint", fakes={"python3": no_venv}, variables=(f"VENV={tmp_path / 'venv'}",))
    assert_stopped_with(proc, "lint", "python3 has no venv module", "apt-get install -y python3-venv")


def test_an_existing_venv_needs_no_system_python(tmp_path: Path) -> None:
    # The virtualenv running this test stands for a .venv that make created earlier.
    proc = subprocess.run(["bash", str(ROOT / "hack" / "prereqs.sh"), "lint"], capture_output=True, text=True,
                          env={"PATH": path_without(tmp_path / "bin", "python3"), "VENV": sys.prefix,
                               "HOME": str(tmp_path)})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_cluster_down_needs_the_system_python3(tmp_path: Path) -> None:
    proc = make(tmp_path, "cluster-down", absent=("python3",))
    assert_stopped_with(proc, "cluster-down", "python3 is not installed", "stops the local cluster")


# ---- make e2e: each cluster kind's tools --------------------------------------------------------
DOCKER_DOWN = 'case "$1" in info) echo "Cannot connect to the Docker daemon" >&2; exit 1;; esac'
DOCKER_UP = 'exit 0'
KIND = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
DOCKER_INSTALL = "https://docs.docker.com/engine/install/"
KUBECTL_INSTALL = "https://kubernetes.io/docs/tasks/tools/"


@pytest.mark.parametrize("cluster, absent, fakes, expected", [
    ("kind", ("kind",), {"docker": DOCKER_UP, "kubectl": ""}, ("kind is not installed", KIND)),
    ("kind", ("docker",), {"kind": "", "kubectl": ""}, ("Docker is not installed", DOCKER_INSTALL)),
    ("kind", (), {"docker": DOCKER_DOWN, "kind": "", "kubectl": ""}, ("Docker is installed but not running",
                                                                      "systemctl start docker")),
    ("kind", ("kubectl",), {"docker": DOCKER_UP, "kind": ""}, ("kubectl is not installed", KUBECTL_INSTALL)),
    ("k3s", ("docker",), {"kubectl": ""}, ("Docker is not installed", DOCKER_INSTALL)),
    ("k3s", (), {"docker": DOCKER_DOWN, "kubectl": ""}, ("Docker is installed but not running",)),
    ("k3s", ("kubectl",), {"docker": DOCKER_UP}, ("kubectl is not installed", KUBECTL_INSTALL)),
    ("existing", ("kubectl",), {}, ("kubectl is not installed", KUBECTL_INSTALL)),
    ("existing", (), {"kubectl": ""}, ("no kubeconfig at", "set KUBECONFIG")),
    ("local", ("go",), {}, ("Go >= 1.26 is not installed", GO_INSTALL)),
    ("bogus", (), {}, ("E2E_CLUSTER=bogus is not a cluster kind", "local, kind, k3s or existing")),
])
def test_e2e_names_what_its_cluster_kind_lacks_before_pytest_starts(
        tmp_path: Path, cluster: str, absent: tuple[str, ...], fakes: dict[str, str], expected: tuple[str, ...]) -> None:
    proc = make(tmp_path, "e2e", absent=absent, fakes=fakes, env={"E2E_CLUSTER": cluster})
    assert_stopped_with(proc, f"e2e (E2E_CLUSTER={cluster})", *expected)


def test_e2e_without_a_cluster_kind_names_the_default_one(tmp_path: Path) -> None:
    # No kind here, so the default is local, whose Go is missing.
    proc = make(tmp_path, "e2e", absent=("kind", "go"))
    assert_stopped_with(proc, "e2e (E2E_CLUSTER=local)", "Go >= 1.26 is not installed")


# ---- make flux-build ----------------------------------------------------------------------------
NOT_ROOT = 'case "$1" in -u) echo 1000;; *) exec /usr/bin/id "$@";; esac'
NOTHING_INSTALLED = "exit 1"  # dpkg-query: no package is installed


def test_flux_build_without_go_says_it_builds_the_flux_operator(tmp_path: Path) -> None:
    proc = make(tmp_path, "flux-build", absent=("go",), variables=("FLUX_CORE_SRC=/src.tgz", "FLUX_OPERATOR_SRC=/s"))
    assert_stopped_with(proc, "flux-build", "Go >= 1.24 is not installed", "builds the Flux Operator", GO_INSTALL)


def test_flux_build_without_curl_or_sources_needs_curl(tmp_path: Path) -> None:
    proc = make(tmp_path, "flux-build", absent=("curl",), variables=("FLUX_CORE_SRC=", "FLUX_OPERATOR_SRC="))
    assert_stopped_with(proc, "flux-build", "curl is not installed", "apt-get install -y curl")


def test_flux_build_not_as_root_names_the_missing_build_packages_and_sudo(tmp_path: Path) -> None:
    proc = make(tmp_path, "flux-build", fakes={"id": NOT_ROOT, "dpkg-query": NOTHING_INSTALLED},
                variables=("FLUX_CORE_SRC=/src.tgz", "FLUX_OPERATOR_SRC=/s"))
    assert_stopped_with(proc, "flux-build", "flux-core's build packages autoconf automake",
                        "run: sudo apt-get install -y autoconf automake", "libsqlite3-dev curl")


def test_flux_build_as_root_installs_its_packages_itself(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(ROOT / "hack" / "prereqs.sh"), "flux-build"], capture_output=True, text=True,
                          env={"PATH": path_without(tmp_path / "bin", fakes={
                              "id": 'case "$1" in -u) echo 0;; esac', "dpkg-query": NOTHING_INSTALLED}),
                              "ENSEMBLE_CACHE": str(tmp_path / "cache"), "FLUX_CORE_SRC": "/src.tgz",
                              "FLUX_OPERATOR_SRC": "/s", "HOME": str(tmp_path)})
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr


# ---- make verify-bootstrap (hack/verify-bootstrap.sh) -------------------------------------------
AS_ROOT = 'case "$1" in -u) echo 0;; *) exec /usr/bin/id "$@";; esac'


def test_verify_bootstrap_without_debootstrap_names_the_package(tmp_path: Path) -> None:
    proc = make(tmp_path, "verify-bootstrap", absent=("debootstrap",), fakes={"id": AS_ROOT})
    assert_stopped_with(proc, "verify-bootstrap", "debootstrap is not installed", "apt-get install -y debootstrap")
    assert proc.returncode == 2


def test_verify_bootstrap_not_as_root_says_it_needs_root(tmp_path: Path) -> None:
    proc = make(tmp_path, "verify-bootstrap", fakes={"id": NOT_ROOT, "debootstrap": ""})
    assert_stopped_with(proc, "verify-bootstrap", "root is needed (debootstrap, chroot and mounts)")


def test_the_verify_bootstrap_script_run_directly_stops_with_the_same_line_and_status_2(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(ROOT / "hack" / "verify-bootstrap.sh")], capture_output=True, text=True,
                          env={"PATH": path_without(tmp_path / "bin", "debootstrap", fakes={"id": AS_ROOT}),
                               "HOME": str(tmp_path), "ENSEMBLE_CACHE": str(tmp_path / "cache")}, timeout=60)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("make verify-bootstrap: debootstrap is not installed")
    assert not (tmp_path / "cache").exists()
