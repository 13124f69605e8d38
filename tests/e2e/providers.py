"""Clusters the e2e suite runs against, chosen by ``E2E_CLUSTER``.

- ``local`` (default without docker+kind): the control plane from ``hack/`` with
  kube-controller-manager, kube-scheduler and kwok nodes; the operator as processes
  holding the manifests' ServiceAccount token; the real Flux Operator and real members
  (Flux brokers running ensemble-python) where they are built, else their simulators
  (``ENSEMBLE_FLUX_OPERATOR``, ``ENSEMBLE_MEMBERS``; see ``hack/localenv.py``).
- ``kind`` (default where docker and kind are found): a kind cluster from
  ``hack/kind-config.yaml``, the Flux Operator's release manifest, our image built from
  the Dockerfile and loaded into kind, ``manifests/`` applied; real MiniClusters.
- ``existing``: whatever ``KUBECONFIG`` points at, with the operator already installed.
- ``k3s``: a k3s container through testcontainers, where a Docker engine runs.

Every provider offers the same small interface, so each scenario runs on all of them.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Protocol

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

OPERATOR_NAMESPACE = "ensemble-operator-system"
LEASE = "ensemble-operator"
FLUX_OPERATOR_MANIFEST = os.environ.get(
    "FLUX_OPERATOR_MANIFEST",
    "https://raw.githubusercontent.com/flux-framework/flux-operator/main/examples/dist/flux-operator.yaml")
IMAGE = os.environ.get("E2E_IMAGE", "ghcr.io/converged-computing/ensemble-operator-python:e2e")


class E2ECluster(Protocol):
    name: str
    kubeconfig: str
    flux_operator_runtime: str
    """``real`` (the Flux Operator's controller) or ``simulated`` (hack/sim/fluxoperator.py)."""
    member_runtime: str
    """``real`` (Flux brokers running ensemble-python) or ``simulated`` (hack/sim/member)."""
    member_speed: float
    """How many member seconds pass per wall second: the simulated runtime runs a scaled
    clock (``E2E_SPEED``); real Flux runs at 1 (see ``scenarios.member_seconds``)."""

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str: ...
    def client(self): ...
    def restart_operator(self) -> None: ...
    def run_operator_replicas(self, replicas: int) -> None: ...
    def kill_leader(self) -> str: ...
    def leader(self) -> str | None: ...
    def diagnostics(self) -> str: ...
    def flux(self, namespace: str, minicluster: str, *args: str) -> str: ...
    def close(self) -> None: ...


REAL = "real"


class FluxUnavailable(AssertionError):
    """The member's Flux instance cannot be reached: no running lead broker, or it refused."""


LEAD_BROKER_SELECTOR = "job-name={minicluster},batch.kubernetes.io/job-completion-index=0"


def default_provider() -> str:
    if shutil.which("docker") and shutil.which("kind") and _docker_running():
        return "kind"
    return "local"


def _docker_running() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


# What CI runs on each cluster kind (.ci/run runs `make test`, whose e2e part is local) and
# what is only documented: `make e2e` prints it first, the README's table says the same.
CI_COVERAGE = {
    "local": "run by CI (.ci/run: make test, E2E_CLUSTER=local): every scenario, with the real "
             "Flux Operator and real members built from the vendored sources",
    "kind": "NOT run by CI, only documented: CI runs E2E_CLUSTER=local only; the kind provider's "
            "commands and cleanup are unit-tested with fakes (tests/unit/test_e2e_providers.py)",
    "k3s": "NOT run by CI, only documented: CI runs E2E_CLUSTER=local only; the k3s provider's "
           "commands and cleanup are unit-tested with fakes (tests/unit/test_e2e_providers.py)",
    "existing": "NOT run by CI, only documented: CI runs E2E_CLUSTER=local only; the install steps it "
                "assumes are those of the kind and k3s providers (tests/unit/test_e2e_install.py)",
}


def ci_coverage(name: str) -> str:
    """The line `make e2e` starts with: what CI runs on this cluster kind."""
    if name not in CI_COVERAGE:
        raise SystemExit(f"E2E_CLUSTER={name!r}: choose one of {', '.join(CI_COVERAGE)}")
    return f"e2e on {name}: {CI_COVERAGE[name]}"


class ClusterUnavailable(Exception):
    """A cluster kind whose tools are missing here (one line naming them and where to get them)."""


INSTALL = {
    "docker": "Docker (https://docs.docker.com/engine/install/)",
    "kind": "kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)",
    "kubectl": "kubectl (https://kubernetes.io/docs/tasks/tools/, or make cluster-build)",
}
NEEDS = {"kind": ("docker", "kind", "kubectl"), "k3s": ("docker", "kubectl"), "existing": ("kubectl",)}


def require_tools(name: str, which: Callable[[str], str | None] | None = None,
                  docker_running: Callable[[], bool] = _docker_running) -> None:
    """Raise ClusterUnavailable naming every tool ``name``'s provider needs and cannot find,
    before it starts anything (a missing `kind` would otherwise fail each scenario)."""
    which = which or shutil.which
    problems = []
    for tool in NEEDS.get(name, ()):
        if tool == "kubectl":
            try:
                kubectl_binary()
            except SystemExit:
                problems.append(f"install {INSTALL[tool]}")
        elif which(tool) is None:
            problems.append(f"install {INSTALL[tool]}")
        elif tool == "docker" and not docker_running():
            problems.append("start Docker (docker info fails)")
    if problems:
        raise ClusterUnavailable(f"E2E_CLUSTER={name} cannot run here: {'; '.join(problems)}")


def lease_holder(kubectl) -> str | None:
    out = kubectl("get", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "-o", "json", check=False)
    try:
        return json.loads(out)["spec"].get("holderIdentity") or None
    except (ValueError, KeyError):
        return None


def kubectl_binary() -> str:
    """kubectl on PATH, else the one hack/build-k8s.sh built for the local cluster."""
    from localcluster import DEFAULT_BIN_DIR
    found = shutil.which("kubectl") or (str(DEFAULT_BIN_DIR / "kubectl")
                                        if (DEFAULT_BIN_DIR / "kubectl").is_file() else None)
    if not found:
        raise SystemExit(f"kubectl is not on PATH (nor in {DEFAULT_BIN_DIR}): E2E_CLUSTER=kind, k3s and "
                         "existing drive the cluster with it; install kubectl")
    return found


class LocalProvider:
    name = "local"

    def __init__(self) -> None:
        from localenv import LocalEnvironment
        self.env = LocalEnvironment.start(speed=float(os.environ.get("E2E_SPEED", "10")))
        self.cluster = self.env.cluster
        self.flux_operator_runtime = str(self.env.flux_operator_runtime)
        self.member_runtime = str(self.env.member_runtime)
        self.member_speed = 1.0 if self.member_runtime == REAL else self.env.speed
        self.kubeconfig = self.cluster.kubeconfig

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.cluster.kubectl(*args, input=input, check=check)

    def client(self):
        return self.cluster.admin_client()

    def _live(self):
        return [op for op in self.env.operators if op.alive()]

    def restart_operator(self) -> None:
        for operator in self._live():
            operator.kill()
        self.env.start_operator()

    def run_operator_replicas(self, replicas: int) -> None:
        while len(self._live()) < replicas:
            self.env.start_operator()

    def kill_leader(self) -> str:
        holder = self.leader()
        for operator in self._live():
            if holder and holder in operator.logs(400):
                operator.kill()
                return holder
        raise AssertionError(f"no live operator process holds the lease ({holder!r})")

    def leader(self) -> str | None:
        return lease_holder(self.kubectl)

    def diagnostics(self) -> str:
        parts = [self.kubectl("get", "ensembles,miniclusters,jobs,pods,deploy,svc", "-A", "-o", "wide",
                              check=False)]
        for operator in self.env.operators:
            parts.append(f"--- operator {operator.identity} (alive={operator.alive()})\n{operator.logs(30)}")
        flux_operator_log = self.env.workdir / "flux-operator.log"
        if flux_operator_log.exists():
            parts.append("--- Flux Operator\n" + "\n".join(
                flux_operator_log.read_text(errors="replace").splitlines()[-15:]))
        for path in sorted((self.env.workdir / "pods").glob("*.log")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors='replace').splitlines()[-15:]))
        return "\n".join(parts)

    def flux(self, namespace: str, minicluster: str, *args: str) -> str:
        """``flux <args>`` in the member's instance, through its lead broker's socket."""
        from sim.fluxmembers import STANDARD_PATH, flux_build
        uri = self.env.member_flux_uri(namespace, minicluster)
        if uri is None:
            raise FluxUnavailable(f"no running real lead broker for {namespace}/{minicluster} "
                                  f"(members: {self.member_runtime})")
        build = flux_build()
        done = subprocess.run([str(build.flux), *args], capture_output=True, text=True, timeout=60,
                              env={"FLUX_URI": uri, "PATH": f"{build.prefix / 'bin'}:{STANDARD_PATH}",
                                   "HOME": str(Path.home())})
        if done.returncode != 0:
            raise FluxUnavailable(f"flux {' '.join(args)} in {namespace}/{minicluster} failed "
                                  f"({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def close(self) -> None:
        self.env.stop()


class KubectlCluster:
    """Shared by kind, k3s and existing: the operator runs in-cluster as the manifests' Deployment."""

    name = "existing"
    flux_operator_runtime = REAL   # the Flux Operator's release, installed in the cluster
    member_runtime = REAL          # its pods run Flux and ensemble-python
    member_speed = 1.0

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_bin: str | None = None

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        self.kubectl_bin = self.kubectl_bin or kubectl_binary()
        proc = subprocess.run([self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args], input=input,
                              capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def client(self):
        from controller.kube.client import KubeClient
        return KubeClient.from_kubeconfig(self.kubeconfig)

    def restart_operator(self) -> None:
        self.kubectl("delete", "pod", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=ensemble-operator",
                     "--grace-period=0", "--force")
        self.kubectl("rollout", "status", "deployment/ensemble-operator", "-n", OPERATOR_NAMESPACE,
                     "--timeout=180s")

    def run_operator_replicas(self, replicas: int) -> None:
        self.kubectl("scale", "deployment/ensemble-operator", "-n", OPERATOR_NAMESPACE, f"--replicas={replicas}")
        self.kubectl("rollout", "status", "deployment/ensemble-operator", "-n", OPERATOR_NAMESPACE,
                     "--timeout=180s")

    def kill_leader(self) -> str:
        holder = self.leader()
        if not holder:
            raise AssertionError("no operator holds the lease")
        pod = holder.split("_", 1)[0]
        self.kubectl("delete", "pod", pod, "-n", OPERATOR_NAMESPACE, "--grace-period=0", "--force")
        return holder

    def leader(self) -> str | None:
        return lease_holder(self.kubectl)

    def diagnostics(self) -> str:
        return "\n".join([
            self.kubectl("get", "ensembles,miniclusters,jobs,pods,deploy,svc", "-A", "-o", "wide", check=False),
            self.kubectl("logs", "-n", OPERATOR_NAMESPACE, "deployment/ensemble-operator", "--tail=60",
                         check=False)])

    def flux(self, namespace: str, minicluster: str, *args: str) -> str:
        """``flux <args>`` in the member's instance, run in its lead broker's pod as the Flux
        Operator's own interactive shells do (its flux-view.sh, then the broker's socket)."""
        pods = json.loads(self.kubectl("get", "pods", "-n", namespace, "-o", "json", "-l",
                                       LEAD_BROKER_SELECTOR.format(minicluster=minicluster)))["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"
                   and not p["metadata"].get("deletionTimestamp")]
        if not running:
            raise FluxUnavailable(f"no running lead broker pod for {namespace}/{minicluster}")
        pod = running[0]
        script = '. /mnt/flux/flux-view.sh && FLUX_URI="$fluxsocket" exec flux "$@"'
        try:
            return self.kubectl("exec", "-n", namespace, pod["metadata"]["name"], "-c",
                                pod["spec"]["containers"][0]["name"], "--", "bash", "-c", script, "flux", *args)
        except RuntimeError as err:
            raise FluxUnavailable(str(err)) from err

    def install_flux_operator(self) -> None:
        """The Flux Operator, ready: one that never starts (an image it cannot pull, e.g. its
        amd64-only :latest on an arm64 node) fails the setup here, not each scenario later."""
        self.kubectl("apply", "--server-side", "-f", FLUX_OPERATOR_MANIFEST)
        self.kubectl("wait", "--for=condition=Established", "crd/miniclusters.flux-framework.org", "--timeout=60s")
        self.kubectl("rollout", "status", "deployment/operator-controller-manager", "-n", "operator-system",
                     "--timeout=300s")

    def install_operator(self, image: str) -> None:
        # The image goes in before the Deployment is created: the API server defaults
        # imagePullPolicy once, at creation (Always for the manifests' :latest), and a later
        # `kubectl set image` keeps it, so the kubelet would try to pull the loaded image.
        rendered = self.kubectl("kustomize", str(ROOT / "manifests"))
        documents = with_operator_image([d for d in yaml.safe_load_all(rendered) if d], image)
        self.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(documents))
        self.kubectl("rollout", "status", "deployment/ensemble-operator", "-n", OPERATOR_NAMESPACE,
                     "--timeout=300s")

    def close(self) -> None:
        pass


def with_operator_image(documents: list[dict], image: str) -> list[dict]:
    """manifests/ with the operator Deployment running ``image``, pulled only when absent
    (it was loaded into the nodes), and creating the ensemble services and member sidecars
    from it too (``ENSEMBLE_OPERATOR_IMAGE``)."""
    documents = copy.deepcopy(documents)
    for document in documents:
        if document.get("kind") == "Deployment" and document["metadata"]["name"] == "ensemble-operator":
            (container,) = [c for c in document["spec"]["template"]["spec"]["containers"] if c["name"] == "manager"]
            container["image"] = image
            container["imagePullPolicy"] = "IfNotPresent"
            env = container.setdefault("env", [])
            env[:] = [e for e in env if e["name"] != "ENSEMBLE_OPERATOR_IMAGE"]
            env.append({"name": "ENSEMBLE_OPERATOR_IMAGE", "value": image})
            return documents
    raise ValueError("manifests/ has no Deployment ensemble-operator with a container manager")


def loadable_image(image: str) -> str:
    """An image loaded into the nodes must not be tagged :latest (or untagged): the ensemble
    service Deployments name it without a pull policy, which then defaults to Always."""
    name = image.rsplit("/", 1)[-1]
    if "@" not in name and name.partition(":")[2] in ("", "latest"):
        raise SystemExit(f"E2E_IMAGE={image!r}: give it a tag other than latest; a :latest image "
                         "loaded into the cluster is pulled from its registry (imagePullPolicy Always)")
    return image


class KindProvider(KubectlCluster):
    name = "kind"

    def __init__(self) -> None:
        loadable_image(IMAGE)
        self.cluster_name = os.environ.get("KIND_CLUSTER", "ensemble-e2e")
        self.keep = os.environ.get("E2E_KEEP_CLUSTER") == "1"
        self.tmp = Path(tempfile.mkdtemp(prefix="ensemble-kind-"))
        kubeconfig = str(self.tmp / "kubeconfig")
        super().__init__(kubeconfig)
        try:
            # A failed create removes its own nodes; a cluster of that name that already
            # existed (and made it fail) is not ours to delete.
            _run(["kind", "create", "cluster", "--name", self.cluster_name, "--config",
                  str(ROOT / "hack" / "kind-config.yaml"), "--kubeconfig", kubeconfig, "--wait", "120s"])
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        # The session fixture only closes a provider it got: a failed setup cleans up here.
        with _close_on_error(self):
            self.install_flux_operator()
            _run(["docker", "build", "-t", IMAGE, str(ROOT)])
            _run(["kind", "load", "docker-image", IMAGE, "--name", self.cluster_name])
            self.install_operator(IMAGE)

    def close(self) -> None:
        try:
            if not self.keep:
                _run(["kind", "delete", "cluster", "--name", self.cluster_name])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class K3sProvider(KubectlCluster):
    """A k3s container via testcontainers (needs a Docker engine)."""

    name = "k3s"

    def __init__(self) -> None:
        from testcontainers.community.k3s import K3SContainer
        loadable_image(IMAGE)
        self.tmp = Path(tempfile.mkdtemp(prefix="ensemble-k3s-"))
        kubeconfig = self.tmp / "kubeconfig"
        super().__init__(str(kubeconfig))
        # Kept before start(): a start that times out has already created the container.
        self.container = K3SContainer()
        with _close_on_error(self):
            self.container.start()
            kubeconfig.write_text(self.container.config_yaml())
            self.install_flux_operator()
            _run(["docker", "build", "-t", IMAGE, str(ROOT)])
            archive = self.tmp / "image.tar"
            _run(["docker", "save", "-o", str(archive), IMAGE])
            self.container.copy_into_container(archive, "/tmp/image.tar")
            # The kubelet (CRI) only sees containerd's k8s.io namespace, not ctr's default one.
            code, output = self.container.exec(["ctr", "-n=k8s.io", "images", "import", "/tmp/image.tar"])
            if code != 0:
                raise RuntimeError(f"importing {IMAGE} into k3s failed ({code}): {output.decode(errors='replace')}")
            self.install_operator(IMAGE)

    def close(self) -> None:
        try:
            self.container.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class ExistingProvider(KubectlCluster):
    name = "existing"

    def __init__(self) -> None:
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        super().__init__(kubeconfig)


PROVIDERS: dict[str, Callable[[], E2ECluster]] = {
    "local": LocalProvider, "kind": KindProvider, "k3s": K3sProvider, "existing": ExistingProvider}


def provider_name() -> str:
    return os.environ.get("E2E_CLUSTER") or default_provider()


def expected_member_runtime(name: str) -> str:
    """The member runtime ``name``'s provider will run, known before it starts (scenarios that
    only real Flux can show are selected with it): kind, k3s and existing run real pods."""
    if name != "local":
        return REAL
    from sim.fluxmembers import default_member_runtime
    return default_member_runtime()


def make_provider(name: str | None = None) -> E2ECluster:
    name = name or provider_name()
    require_tools(name)
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise SystemExit(f"E2E_CLUSTER={name!r}: choose one of {', '.join(PROVIDERS)}") from None


@contextlib.contextmanager
def _close_on_error(provider: "KindProvider | K3sProvider") -> Iterator[None]:
    """Close a provider whose setup failed part way (an exception or a KeyboardInterrupt)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            provider.close()
        raise


def _run(argv: list[str]) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True)


def wait_for(predicate, timeout: float, what: str, cluster: E2ECluster | None = None, interval: float = 0.5):
    """Poll ``predicate`` until it returns a truthy value; on timeout fail with what we saw."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    seen = cluster.diagnostics() if cluster is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})\n{seen}")
