"""Real members on the local system: Flux brokers in every MiniCluster pod, PyPI's ensemble-python
as the lead's initial program, our status sidecar against that instance.

The whole path runs: the Ensemble controller creates the MiniCluster, the Flux Operator (the
real one where it is built, as ENSEMBLE_FLUX_OPERATOR picks, else its simulator) its Job,
kube-controller-manager the pods, kwok gives them pod IPs, the pod process runner
(members="real") starts the ensemble service and the brokers. Its own control plane with kwok
(the session's has none: kwok nodes would take other tests' hand-made pods).
"""
from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from controller.kube.client import KubeClient
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, PODS
from controller.member.backend import QUEUE_STATES
from controller.runtime import Manager
from localcluster import LocalCluster
import fluxoperator as flux_operator
from sim import fluxmembers, podrunner
from sim import fluxoperator as flux_operator_simulator
from tests.compat import UPSTREAM_EXAMPLES
from tests.conftest import ENSEMBLE_CRD, MINICLUSTER_CRD, ROOT, install_crd
from tests.helpers import wait_for
from tests.integration.objects import ensemble_status, get_or_none
from tests.integration.running import RunningController, RunningManager
from tests.namespaces import scratch_namespace

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 240.0  # a member's pods, brokers and ensemble run on a loaded 2-core machine


@dataclass
class RealSystem:
    cluster: LocalCluster
    kube: KubeClient
    runner: podrunner.PodProcessRunner
    build: fluxmembers.FluxBuild

    def flux(self, namespace: str, minicluster: str, *args: str) -> str:
        """A flux command against the member's running instance, through its lead broker's socket."""
        done = self.try_flux(namespace, minicluster, *args)
        assert done.returncode == 0, f"flux {' '.join(args)}: {done.stderr}"
        return done.stdout

    def try_flux(self, namespace: str, minicluster: str, *args: str) -> subprocess.CompletedProcess:
        uri = self.runner.real.lead_uri(namespace, minicluster) if self.runner.real else None
        if not uri:
            return subprocess.CompletedProcess(args, 1, "", f"no running lead broker for {namespace}/{minicluster}")
        return subprocess.run([str(self.build.flux), *args], capture_output=True, text=True, timeout=60,
                              env={"FLUX_URI": uri, "PATH": f"{self.build.prefix / 'bin'}:{fluxmembers.STANDARD_PATH}",
                                   "HOME": str(Path.home())})


def ensure_flux_build() -> fluxmembers.FluxBuild:
    """hack/build-flux.sh once (a no-op when built), as the session fixture builds the control plane."""
    build = fluxmembers.flux_build()
    if not build.exists():
        subprocess.run(["bash", str(ROOT / "hack" / "build-flux.sh")], check=True)
    problem = fluxmembers.real_runtime_problem(build)
    assert problem is None, problem
    return build


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSystem]:
    build = ensure_flux_build()
    operator_runtime, why = flux_operator.choose_runtime(os.environ.get(flux_operator.SWITCH))
    print(f"\n[real members] Flux Operator: {operator_runtime} ({why})")
    with LocalCluster.start(controller_manager=True, kwok=True) as cluster:
        install_crd(cluster, MINICLUSTER_CRD, "miniclusters.flux-framework.org")
        install_crd(cluster, ENSEMBLE_CRD, "ensembles.ensemble.flux-framework.org")
        kube = cluster.admin_client()
        real_operator = None
        if operator_runtime == flux_operator.REAL:
            real_operator = flux_operator.FluxOperatorProcess.start(
                cluster, tmp_path_factory.mktemp("flux-operator") / "manager.log")
        manager = Manager(kube, metrics_port=None, health_port=None)
        if real_operator is None:
            flux_operator_simulator.setup(manager)
        runner = podrunner.setup(manager, server=cluster.server, ca_file=cluster.ca_file,
                                 workdir=tmp_path_factory.mktemp("pods"), members="real")
        simulators = RunningManager(manager)
        controller = RunningController(kube)
        try:
            yield RealSystem(cluster, kube, runner, build)
        finally:
            controller.stop()
            simulators.stop()
            runner.stop()
            if real_operator is not None:
                real_operator.stop()


@pytest.fixture
def namespace(system: RealSystem) -> Iterator[str]:
    with scratch_namespace(system.cluster, "real", suffix_chars=8) as name:
        yield name


def create_ensemble(kube: KubeClient, namespace: str, name: str, ensemble_yaml: str, **spec: object) -> dict:
    minicluster = {"size": 1, "containers": [{"image": "busybox"}], **spec}
    return kube.create(ENSEMBLES, {
        "apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"heartbeat": 1, "members": [{"minicluster": {"spec": minicluster},
                                               "ensemble": ensemble_yaml}]}}, namespace)


def member_status(kube: KubeClient, namespace: str, name: str) -> dict:
    return (ensemble_status(kube, name, namespace).get("members") or [{}])[0]


def pods_of(kube: KubeClient, namespace: str, minicluster: str) -> list[dict]:
    return kube.list(PODS, namespace, label_selector=f"job-name={minicluster}")["items"]


def lead_log(system: RealSystem, namespace: str, minicluster: str) -> str:
    lead = next(p for p in pods_of(system.kube, namespace, minicluster) if p["metadata"]["name"].startswith(
        f"{minicluster}-0-"))
    return (system.runner.workdir / f"{namespace}_{lead['metadata']['name']}.log").read_text(errors="replace")


HELLO = """
jobs:
- name: hello
  command: echo hello world
  count: 2
- name: pause
  command: sleep 1
  count: 2
rules:
- trigger: start
  action: {name: submit, label: hello}
- trigger: metric
  name: count.hello.success
  when: 2
  action: {name: submit, label: pause}
- trigger: metric
  name: count.pause.success
  when: 2
  action: {name: terminate}
"""


def test_hello_world_runs_to_completed_on_real_flux(system: RealSystem, namespace: str) -> None:
    create_ensemble(system.kube, namespace, "hello", HELLO)
    wait_for(lambda: ensemble_status(system.kube, "hello", namespace).get("phase") == "Completed", RUN_TIMEOUT,
             "the Ensemble to complete")
    (pod,) = pods_of(system.kube, namespace, "hello-0")
    assert pod["metadata"]["annotations"][podrunner.EXIT_CODE_ANNOTATION] == "0"
    log = lead_log(system, namespace, "hello-0")
    # Flux ran ensemble-python as the instance's initial program, and it ended with terminate.
    assert "rc2.0: ensemble run --kubernetes --executor minicluster" in log
    assert "terminate ensemble session" in log
    # The status sidecar saw its broker go and exited 0 by itself, as a pod needs to complete.
    sidecar = system.runner.processes.get(f"{namespace}/{pod['metadata']['name']}:ensemble-member-status")
    assert sidecar is not None
    assert sidecar.proc.wait(60) == 0


HOLD = """
jobs:
- name: hold
  command: sleep 600
  count: 3
rules:
- trigger: start
  action: {name: submit, label: hold}
"""


def flux_queue(system: RealSystem, namespace: str, minicluster: str) -> dict[str, int]:
    """``flux jobs`` of every user and state, counted as the status sidecar names the states."""
    states = system.flux(namespace, minicluster, "jobs", "-A", "-a", "--no-header", "--format={state}").split()
    counted = Counter(state.lower() for state in states)
    return {state: counted.get(state, 0) for state in QUEUE_STATES}


def test_last_poll_queue_matches_flux_jobs_of_the_instance(system: RealSystem, namespace: str) -> None:
    create_ensemble(system.kube, namespace, "hold", HOLD)

    def settled() -> dict | None:
        poll = member_status(system.kube, namespace, "hold").get("lastPoll") or {}
        queue = poll.get("queue") or {}
        return poll if queue.get("run", 0) + queue.get("sched", 0) == 3 else None

    poll = wait_for(settled, RUN_TIMEOUT, "lastPoll to count the 3 held jobs")
    # The jobs sleep for 10 minutes: the queue holds still while both are read.
    assert poll["queue"] == flux_queue(system, namespace, "hold-0")
    assert poll["queue"]["run"] >= 1
    up = system.flux(namespace, "hold-0", "resource", "list", "-s", "up", "-no", "{nnodes} {ncores}").split()
    assert (poll["nodes"]["node_up_count"], poll["nodes"]["node_cores_up"]) == (int(up[0]), int(up[1]))
    # The process the runner would stop is the sidecar itself (bash exec'd it), not a shell.
    (lead,) = pods_of(system.kube, namespace, "hold-0")
    sidecar = system.runner.processes.get(f"{namespace}/{lead['metadata']['name']}:ensemble-member-status")
    assert sidecar is not None
    argv = Path(f"/proc/{sidecar.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"member-status" in argv and not argv[0].endswith(b"sh")


WIDE = """
logging:
  heartbeat: 2
jobs:
- name: wide
  command: sleep 5
  nodes: 3
rules:
- trigger: start
  action: {name: grow, value: 2}
- trigger: start
  action: {name: submit, label: wide}
- trigger: metric
  name: count.wide.success
  when: 1
  action: {name: shrink, value: 1}
"""


def resource_ranks(system: RealSystem, namespace: str, minicluster: str, state: str) -> str:
    return system.flux(namespace, minicluster, "resource", "list", "-s", state, "-no", "{ranks}").strip()


def test_grow_adds_flux_ranks_and_shrink_removes_the_top_one(system: RealSystem, namespace: str) -> None:
    """ensemble-python asks our service to grow 1 -> 3; a 3-node job can only run once the two new
    pods' brokers joined; when it succeeded it asks to shrink by 1, and rank 2 leaves."""
    create_ensemble(system.kube, namespace, "wide", WIDE, maxSize=3)
    wait_for(lambda: ((get_or_none(system.kube, MINICLUSTERS, "wide-0", namespace) or {}).get("spec") or {})
             .get("size") == 2 and system.runner.real.lead_uri(namespace, "wide-0"), RUN_TIMEOUT,
             "the shrink to size 2 after the 3-node job")

    def wide_job_done() -> list[dict] | None:
        lines = system.flux(namespace, "wide-0", "jobs", "-A", "-a", "--json").strip()
        jobs = json.loads(lines)["jobs"] if lines else []
        return jobs if jobs and all(j.get("state") == "INACTIVE" for j in jobs) else None

    (job,) = wait_for(wide_job_done, 60, "the wide job to be inactive")
    assert job["nnodes"] == 3 and job["success"] is True
    assert wait_for(lambda: resource_ranks(system, namespace, "wide-0", "down") == "2", 60,
                    "rank 2 to be down after the shrink")
    assert resource_ranks(system, namespace, "wide-0", "up") == "0-1"



PAIR = """
jobs:
- name: hold
  command: sleep 600
rules:
- trigger: start
  action: {name: submit, label: hold}
"""


def test_a_lead_pod_given_another_ip_restarts_its_instance_there(system: RealSystem, namespace: str) -> None:
    """kwok can hand a running pod another address (it reuses freed ones, and puts back its own
    when the status says otherwise); a kubelet never would. The brokers bind and connect by
    address, so the instance starts over on the pod's current one."""
    create_ensemble(system.kube, namespace, "pair", PAIR, size=2)
    wait_for(lambda: (member_status(system.kube, namespace, "pair").get("lastPoll") or {})
             .get("nodes", {}).get("node_up_count") == 2, RUN_TIMEOUT, "both brokers up")
    lead = next(p for p in pods_of(system.kube, namespace, "pair-0") if p["metadata"]["name"].startswith("pair-0-0-"))
    key = f"{namespace}/{lead['metadata']['name']}"
    first = system.runner.processes.get(key)
    assert first is not None
    moved = ".".join(lead["status"]["podIP"].split(".")[:2] + ["250", "250"])
    system.kube.patch(PODS, lead["metadata"]["name"], {"status": {"podIP": moved, "podIPs": [{"ip": moved}]}},
                      namespace=namespace, subresource="status")

    def restarted_where_the_pod_is() -> bool:
        address = system.kube.get(PODS, lead["metadata"]["name"], namespace)["status"]["podIP"]
        broker = system.runner.processes.get(key)
        status = member_status(system.kube, namespace, "pair")
        poll = status.get("lastPoll") or {}
        if not (broker is not None and broker.proc.pid != first.proc.pid and broker.pod_ip == address
                and status.get("leadBroker", {}).get("ip") == address
                and (poll.get("nodes") or {}).get("node_up_count") == 2 and poll["queue"]["run"] == 1):
            return False
        up = system.try_flux(namespace, "pair-0", "resource", "list", "-s", "up", "-no", "{ranks}")
        return up.returncode == 0 and up.stdout.strip() == "0-1"

    wait_for(restarted_where_the_pod_is, RUN_TIMEOUT,
             "a new instance of both brokers, polled at the pod's address, both ranks up")
    assert first.proc.poll() is not None


def test_an_ensemble_without_the_status_sidecar_runs_to_completed(system: RealSystem, namespace: str) -> None:
    """spec.statusSidecar false: members as upstream runs them, nothing polled, and still complete."""
    system.kube.create(ENSEMBLES, {
        "apiVersion": ENSEMBLES.api_version, "kind": "Ensemble", "metadata": {"name": "bare", "namespace": namespace},
        "spec": {"statusSidecar": False, "members": [{"minicluster": {"spec": {"size": 1, "containers": [
            {"image": "busybox"}]}}, "ensemble": HELLO}]}}, namespace)
    wait_for(lambda: ensemble_status(system.kube, "bare", namespace).get("phase") == "Completed", RUN_TIMEOUT,
             "the Ensemble without a status sidecar to complete")
    status = ensemble_status(system.kube, "bare", namespace)
    assert status["memberPolling"] == "Disabled"
    assert "lastPoll" not in status["members"][0]
    (pod,) = pods_of(system.kube, namespace, "bare-0")
    assert "ensemble-member-status" not in {c["name"] for c in pod["spec"]["containers"]}
    assert system.runner.processes.get(f"{namespace}/{pod['metadata']['name']}:ensemble-member-status") is None
    assert "terminate ensemble session" in lead_log(system, namespace, "bare-0")


def test_the_upstream_grow_shrink_example_grows_through_upstreams_own_service(system: RealSystem,
                                                                              namespace: str) -> None:
    """Service mode upstream: the example, unchanged but for sidecar.mode, runs its sidecar image's
    `ensemble-server start` (ensemble-python's own service), and that server grows the member."""
    obj = yaml.safe_load((UPSTREAM_EXAMPLES / "grow-shrink.yaml").read_text())
    obj["spec"]["sidecar"]["mode"] = "upstream"
    obj["metadata"]["namespace"] = namespace
    system.kube.create(ENSEMBLES, obj, namespace)
    name = obj["metadata"]["name"]
    mc = f"{name}-0"
    wait_for(lambda: ensemble_status(system.kube, name, namespace).get("serviceMode") == "upstream", 60,
             "status.serviceMode")
    wait_for(lambda: (get_or_none(system.kube, MINICLUSTERS, mc, namespace) or {}).get("spec", {}).get("size", 0)
             >= 2, RUN_TIMEOUT * 2, "ensemble-server to grow the member")
    service = next(p for p in system.kube.list(PODS, namespace, label_selector=f"app={name}")["items"])
    process = system.runner.processes.get(f"{namespace}/{service['metadata']['name']}")
    assert process is not None
    script = (system.runner.workdir / f"{namespace}_{service['metadata']['name']}.service.sh").read_text()
    assert "ensemble-server start --kubernetes --host" in script and "--workers 10" in script
    # The size was patched by ensemble-server's kubernetes client, not by this operator's service.
    managers = {entry["manager"] for entry in get_or_none(system.kube, MINICLUSTERS, mc, namespace)["metadata"]
                ["managedFields"] if "f:size" in json.dumps(entry.get("fieldsV1", {}))}
    assert managers and not any(manager.startswith("ensemble-operator") for manager in managers), managers


@pytest.mark.parametrize("mode", ["operator", "upstream"])
def test_the_upstream_hello_world_example_runs_to_completed_in_both_service_modes(system: RealSystem, namespace: str,
                                                                                  mode: str) -> None:
    """Unchanged but for sidecar.mode (operator is what its image selects anyway)."""
    obj = yaml.safe_load((UPSTREAM_EXAMPLES / "hello-world.yaml").read_text())
    obj["spec"]["sidecar"]["mode"] = mode
    obj["metadata"]["namespace"] = namespace
    system.kube.create(ENSEMBLES, obj, namespace)
    name = obj["metadata"]["name"]
    wait_for(lambda: ensemble_status(system.kube, name, namespace).get("phase") == "Completed", RUN_TIMEOUT,
             f"the upstream hello-world example to complete in service mode {mode}")
    assert ensemble_status(system.kube, name, namespace)["serviceMode"] == mode
    assert "terminate ensemble session" in lead_log(system, namespace, f"{name}-0")
