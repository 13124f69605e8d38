"""The status poll path on the local control plane: real controller, pods, simulated members.

No kubelet runs here, so the tests create the member pods the Flux Operator would, set
their status themselves (Running, a loopback podIP), and run a simulated lead broker
(controller.member servicer + SimulatedFlux) on that address and the member-status port.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from controller.clock import RealClock
from controller.kube.client import KubeClient
from controller.kube.resources import ENSEMBLES, EVENTS, MINICLUSTERS, PODS
from controller.member.jobgroups import JobGroup
from controller.member.servicer import MemberServicer
from sim.member.simulator import SimulatedFlux
from controller.proto.server import GrpcServer
from tests.helpers import wait_for
from tests.integration.objects import ensemble_condition, ensemble_status, get_or_none, start_member_pod
from tests.integration.running import RunningController

pytestmark = pytest.mark.integration

LEAD_IP, OTHER_IP = "127.0.0.1", "127.0.0.2"
ENSEMBLE_YAML = ("jobs:\n- name: a\n  command: sleep 1000\n"
                 "rules:\n- trigger: start\n  action:\n    name: submit\n    label: a\n")


def free_port() -> int:
    """A port free on both loopback addresses the lead broker uses."""
    for _ in range(20):
        with socket.socket() as first, socket.socket() as second:
            first.bind((LEAD_IP, 0))
            port = first.getsockname()[1]
            try:
                second.bind((OTHER_IP, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free on both loopback addresses")


class Member:
    """A simulated lead broker: SimulatedFlux behind the member-status gRPC endpoint."""

    def __init__(self, port: int, *, nodes: int = 1, jobs: int = 0) -> None:
        self.port = port
        self.flux = SimulatedFlux({"a": JobGroup("a", "sleep 1000", jobs, 1, 1000.0)}, nodes, RealClock())
        if jobs:
            self.flux.submit("a", jobs)
        self.server: GrpcServer | None = None

    def serve(self, ip: str = LEAD_IP) -> None:
        self.server = GrpcServer(MemberServicer(self.flux, "ens-0"), ip, self.port, 4)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=0)
            self.server = None


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def controller(kube_cluster, ensemble_crd: str, minicluster_crd: str, port: int) -> Iterator[RunningController]:
    running = RunningController(kube_cluster.admin_client(), member_status_port=port)
    yield running
    running.stop()


@pytest.fixture
def member(port: int) -> Iterator[Member]:
    started = Member(port, nodes=1, jobs=3)
    yield started
    started.stop()


def create_ensemble(kube: KubeClient, namespace: str, *, algorithm: dict | None = None,
                    max_size: int = 4) -> dict:
    spec: dict = {"heartbeat": 1, "members": [{
        "minicluster": {"spec": {"size": 1, "maxSize": max_size, "containers": [{"image": "busybox"}]}},
        "ensemble": ENSEMBLE_YAML}]}
    if algorithm is not None:
        spec["algorithm"] = algorithm
    return kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                   "metadata": {"name": "ens", "namespace": namespace}, "spec": spec}, namespace)


def member_status(kube: KubeClient, namespace: str) -> dict:
    return (ensemble_status(kube, "ens", namespace).get("members") or [{}])[0]


def condition(kube: KubeClient, namespace: str, type_: str) -> dict | None:
    return ensemble_condition(kube, "ens", namespace, type_)


def test_lead_broker_and_poll_reach_the_status_outages_and_a_moved_pod(
        kube: KubeClient, namespace: str, controller: RunningController, member: Member) -> None:
    member.serve(LEAD_IP)
    ensemble = create_ensemble(kube, namespace)
    wait_for(lambda: get_or_none(kube, MINICLUSTERS, "ens-0", namespace), 30, "MiniCluster ens-0")
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-aaaaa", LEAD_IP)

    polled = wait_for(lambda: (s := member_status(kube, namespace)).get("lastPoll") and s, 30, "lastPoll")
    assert polled["leadBroker"] == {"pod": "ens-0-0-aaaaa", "ip": LEAD_IP}
    assert polled["phase"] == "Running"
    assert polled["lastPoll"]["queue"]["run"] == 1 and polled["lastPoll"]["queue"]["sched"] == 2
    assert polled["lastPoll"]["nodes"]["node_up_count"] == 1

    member.stop()
    lost = wait_for(lambda: (c := condition(kube, namespace, "MembersReachable")) and c["status"] == "False"
                    and c, 30, "MembersReachable=False")
    assert f"ens-0 at {LEAD_IP}:{member.port}" in lost["message"]
    member.serve(LEAD_IP)
    wait_for(lambda: condition(kube, namespace, "MembersReachable")["status"] == "True", 45, "recovery")

    # The lead pod is replaced: new name, new IP; polling follows it there.
    member.stop()
    kube.delete(PODS, "ens-0-0-aaaaa", namespace)
    member.flux.submit("a", 1)
    member.serve(OTHER_IP)
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-bbbbb", OTHER_IP)
    moved = wait_for(lambda: (s := member_status(kube, namespace)).get("leadBroker", {}).get("ip") == OTHER_IP
                     and s.get("lastPoll", {}).get("queue", {}).get("sched") == 3 and s, 45,
                     "polls at the new address")
    assert moved["leadBroker"]["pod"] == "ens-0-0-bbbbb"


def scaled_up_events(kube: KubeClient, namespace: str) -> list[dict]:
    return [e for e in kube.list(EVENTS, namespace)["items"]
            if e.get("reason") == "ScaledUp" and e["regarding"]["name"] == "ens"]


def test_scale_algorithm_grows_the_minicluster_while_jobs_wait(
        kube: KubeClient, namespace: str, controller: RunningController, member: Member) -> None:
    member.serve(LEAD_IP)
    ensemble = create_ensemble(kube, namespace, max_size=3, algorithm={
        "name": "scale", "options": {"waitSeconds": "0", "cooldownSeconds": "1"}})
    wait_for(lambda: get_or_none(kube, MINICLUSTERS, "ens-0", namespace), 30, "MiniCluster ens-0")
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-aaaaa", LEAD_IP)

    wait_for(lambda: kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 3, 45, "growth to maxSize")
    # The member was told each new size, so its waiting jobs now run.
    wait_for(lambda: member.flux.status()["nodes"]["node_up_count"] == 3, 30, "member resized")
    events = wait_for(lambda: scaled_up_events(kube, namespace), 30, "ScaledUp Event")
    assert "Member ens-0: MiniCluster ens-0 size 1 -> 2" in " ".join(e.get("note", "") for e in events)
    # The second grow's record reaches the status after the resize the test saw above.
    actions = wait_for(lambda: (a := kube.get(ENSEMBLES, "ens", namespace)["status"].get("memberActions"))
                       and a[0]["actionCounts"].get("grow") == 2 and a, 30, "status.memberActions to count 2 grows")
    assert actions[0]["name"] == "ens-0"
    assert actions[0]["lastAction"]["kind"] == "grow"
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 3


def test_invalid_algorithm_option_is_reported_on_the_ensemble(
        kube: KubeClient, namespace: str, controller: RunningController) -> None:
    create_ensemble(kube, namespace, algorithm={"name": "scale", "options": {"idlePolls": "0"}})
    invalid = wait_for(lambda: (c := condition(kube, namespace, "InvalidSpec")) and c["status"] == "True" and c, 30,
                       "InvalidSpec")
    assert invalid["message"].startswith("spec.algorithm.options.idlePolls: ")
    assert get_or_none(kube, MINICLUSTERS, "ens-0", namespace) is None


def test_a_pod_with_the_lead_brokers_labels_but_not_owned_by_its_job_is_never_polled(
        kube: KubeClient, namespace: str, controller: RunningController, port: int) -> None:
    forger, real = Member(port, jobs=7), Member(port, jobs=3)
    forger.serve(LEAD_IP)
    real.serve(OTHER_IP)
    try:
        ensemble = create_ensemble(kube, namespace)
        wait_for(lambda: get_or_none(kube, MINICLUSTERS, "ens-0", namespace), 30, "MiniCluster ens-0")
        start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-forged", LEAD_IP, owner_job=None)
        # names the member's Job as its controller, with a UID that is not the Job's
        start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-samename", LEAD_IP,
                         owner_uid="00000000-0000-0000-0000-00000000dead")
        start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-aaaaa", OTHER_IP)
        polled = wait_for(lambda: (s := member_status(kube, namespace)).get("lastPoll") and s, 30, "lastPoll")
        assert polled["leadBroker"] == {"pod": "ens-0-0-aaaaa", "ip": OTHER_IP}
        assert polled["lastPoll"]["queue"]["sched"] == 2       # the real member's 3 jobs, not the forger's 7
        kube.delete(PODS, "ens-0-0-aaaaa", namespace)          # only the forged pod is left: no lead broker
        wait_for(lambda: "leadBroker" not in member_status(kube, namespace), 30, "lead broker gone")
    finally:
        forger.stop()
        real.stop()
