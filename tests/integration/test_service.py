"""The ensemble service against a real API server: concurrency, ownership, and who may call it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from controller.kube.client import KubeClient
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from tests.helpers import run_together
from localcluster import free_port
from sim.podnetwork import PodNetwork, pod_network
from tests.integration.objects import JOBS_ONLY, make_ensemble, make_minicluster, start_member_pod
from tests.integration.running import ensemble_service
from tests.namespaces import scratch_namespace

pytestmark = pytest.mark.integration

PAYLOAD = json.dumps({"version": "v1alpha2", "group": "flux-framework.org", "grow": 1})


@pytest.fixture
def service(kube: KubeClient, namespace: str, minicluster_crd: str,
            ensemble_crd: str) -> Iterator[pb2_grpc.EnsembleOperatorStub]:
    with ensemble_service(kube, "ens", namespace) as address, grpc.insecure_channel(address) as channel:
        yield pb2_grpc.EnsembleOperatorStub(channel)


def grow(stub: pb2_grpc.EnsembleOperatorStub, name: str) -> pb2.Response:
    return stub.RequestAction(pb2.ActionRequest(member="miniclusters", name=name, action="grow",
                                                payload=PAYLOAD), timeout=30)


def test_ten_concurrent_grows_from_one_end_at_eleven(kube: KubeClient, namespace: str,
                                                     service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_minicluster(kube, namespace, "ens-0", make_ensemble(kube, namespace, "ens"))
    statuses = run_together(lambda: grow(service, "ens-0").status, 10, timeout=60)
    assert statuses == [pb2.Response.SUCCESS] * 10
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 11


def test_minicluster_of_another_ensemble_is_denied(kube: KubeClient, namespace: str,
                                                   service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_ensemble(kube, namespace, "ens")
    make_minicluster(kube, namespace, "other-0", make_ensemble(kube, namespace, "other"))
    response = grow(service, "other-0")
    assert response.status == pb2.Response.DENIED
    assert "not a member of Ensemble 'ens'" in json.loads(response.payload)["error"]
    assert kube.get(MINICLUSTERS, "other-0", namespace)["spec"]["size"] == 1


def test_missing_minicluster_is_an_error(kube: KubeClient, namespace: str,
                                         service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_ensemble(kube, namespace, "ens")
    response = grow(service, "ghost")
    assert response.status == pb2.Response.ERROR
    assert f"MiniCluster {namespace}/ghost" in json.loads(response.payload)["error"]


SERVICE_PROCESS = """
import argparse, logging, sys
from controller.service import main
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
parser = argparse.ArgumentParser()
main.add_arguments(parser)
sys.exit(main.run(parser.parse_args(sys.argv[1:])))
"""


@contextmanager
def service_process(kube_cluster, namespace: str, *flags: str) -> Iterator[tuple[str, int, subprocess.Popen]]:
    """``ensemble-operator service`` for Ensemble ``ens`` as a process, as deployed (its own pod
    informer, admission); yields its gRPC address, metrics port and the process."""
    metrics_port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", SERVICE_PROCESS, "--host", "127.0.0.1", "--port", "0", "--workers", "2",
         "--ensemble", "ens", "--namespace", namespace, "--kubeconfig", str(kube_cluster.kubeconfig),
         "--metrics-port", str(metrics_port), *flags], stderr=subprocess.PIPE, text=True)
    try:
        address = ""
        while not address:  # it listens once its pod cache has synced
            line = child.stderr.readline()
            assert line, "service exited before listening"
            if line.startswith("gRPC server listening on "):
                address = line.rsplit(" ", 1)[-1].strip()
        yield address, metrics_port, child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def scrape(metrics_port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()


# A pod process: real gRPC (our stubs) from the pod's IP, through the local pod network.
CALLER = """
import json, sys, grpc
from controller.proto import ensemble_service_pb2 as pb2, ensemble_service_pb2_grpc as pb2_grpc
address, kind, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
payload = json.dumps({"version": "v1alpha2", "group": "flux-framework.org", "grow": 1})
replies = []
with grpc.insecure_channel(address) as channel:
    stub = pb2_grpc.EnsembleOperatorStub(channel)
    for _ in range(count):
        if kind == "status":
            reply = stub.RequestStatus(pb2.StatusRequest(), timeout=30)
        else:
            reply = stub.RequestAction(pb2.ActionRequest(member="miniclusters", name=name, action="grow",
                                                         payload=payload), timeout=30)
        replies.append({"status": pb2.Response.ResultType.Name(reply.status), **json.loads(reply.payload or "{}")})
print(json.dumps(replies))
"""


# The same from ensemble-python's own client (the code a real lead broker runs); a separate
# process, as its stubs clash with ours.
ENSEMBLE_PYTHON_CALLER = """
import json, sys
from ensemble.members.client import EnsembleClient
address, _, name, count = sys.argv[1:5]
client = EnsembleClient(address)
replies = []
for _ in range(int(count)):
    reply = client.action_request("miniclusters", name, "grow", {"version": "v1alpha2", "group": "flux-framework.org",
                                                                 "grow": 1})
    replies.append({"status": type(reply).ResultType.Name(reply.status), **json.loads(reply.payload or "{}")})
print(json.dumps(replies))
"""


@pytest.fixture(scope="module")
def network() -> PodNetwork:
    return pod_network()


def call_from(network: PodNetwork, ip: str, address: str, kind: str, name: str = "", count: int = 1) -> list[dict]:
    """``count`` requests (``grow`` of MiniCluster ``name``, or ``status``; ``ensemble-python``: a grow
    through its client) from a process at pod IP ``ip``."""
    script = ENSEMBLE_PYTHON_CALLER if kind == "ensemble-python" else CALLER
    done = subprocess.run([sys.executable, "-c", script, address, kind, name, str(count)],
                          env={**os.environ, **network.environment(ip)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# Pod IPs of this file's pods: loopback, outside the 127.64-127.127 blocks local kwok clusters hand out.
LEAD_0, LEAD_1, FORGED, ELSEWHERE = "127.13.0.10", "127.13.0.11", "127.13.0.12", "127.13.0.13"


def two_member_ensemble(kube: KubeClient, namespace: str) -> dict:
    member = {"minicluster": {"spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}]}},
              "ensemble": JOBS_ONLY}
    ensemble = kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                       "metadata": {"name": "ens", "namespace": namespace},
                                       "spec": {"members": [member, member]}}, namespace)
    for index in (0, 1):
        make_minicluster(kube, namespace, f"ens-{index}", ensemble)
    return ensemble


def test_service_command_serves_its_lead_broker_counts_and_stops_on_sigterm(
        kube: KubeClient, kube_cluster, namespace: str, minicluster_crd: str, ensemble_crd: str,
        network: PodNetwork) -> None:
    ensemble = make_ensemble(kube, namespace, "ens")
    make_minicluster(kube, namespace, "ens-0", ensemble)
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-lead", LEAD_0)
    with service_process(kube_cluster, namespace) as (address, metrics_port, child):
        assert [r["status"] for r in call_from(network, LEAD_0, address, "grow", "ens-0")] == ["SUCCESS"]
        assert 'ensemble_service_actions_total{action="grow",result="SUCCESS"} 1.0' in scrape(metrics_port)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 2


def test_a_grow_the_service_command_served_shows_in_the_ensembles_status_under_its_own_manager(
        kube: KubeClient, kube_cluster, namespace: str, minicluster_crd: str, ensemble_crd: str,
        network: PodNetwork) -> None:
    ensemble = make_ensemble(kube, namespace, "ens")
    make_minicluster(kube, namespace, "ens-0", ensemble)
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-lead", LEAD_0)
    kube.apply(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",   # as the operator would
                           "metadata": {"name": "ens", "namespace": namespace}, "status": {"phase": "Running"}},
               field_manager="ensemble-operator", subresource="status")
    # A 600 s interval: unless the first write took both grows, only the flush on SIGTERM writes the second.
    with service_process(kube_cluster, namespace, "--record-interval", "600") as (address, metrics_port, child):
        assert [r["status"] for r in call_from(network, LEAD_0, address, "grow", "ens-0", count=2)] == ["SUCCESS"] * 2
        metrics = scrape(metrics_port)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    status = kube.get(ENSEMBLES, "ens", namespace)
    [entry] = status["status"]["serviceActions"]
    assert {key: entry[key] for key in ("name", "kind", "from", "to", "grows", "shrinks")} == {
        "name": "ens-0", "kind": "grow", "from": 2, "to": 3, "grows": 2, "shrinks": 0}
    assert status["status"]["phase"] == "Running"                 # the operator's field is untouched
    managers = {(field["manager"], field["operation"]): field["fieldsV1"].get("f:status", {})
                for field in status["metadata"]["managedFields"] if field.get("subresource") == "status"}
    assert set(managers[("ensemble-service", "Apply")]) == {"f:serviceActions"}
    assert "f:serviceActions" not in managers[("ensemble-operator", "Apply")]
    assert "ensemble_service_action_records_failed_total 0.0" in metrics
    kube.apply(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",   # the operator's next apply
                           "metadata": {"name": "ens", "namespace": namespace}, "status": {"phase": "Completed"}},
               field_manager="ensemble-operator", subresource="status")
    assert kube.get(ENSEMBLES, "ens", namespace)["status"]["serviceActions"] == [entry]


def test_hostile_tenants_cannot_resize_a_member_and_its_lead_broker_is_rate_limited(
        kube: KubeClient, kube_cluster, namespace: str, minicluster_crd: str, ensemble_crd: str,
        network: PodNetwork) -> None:
    """Only the member's own lead broker, found by the service's pod informer and owner-checked,
    may resize it; even it is refused past the Ensemble's rate limit; each refusal is counted."""
    ensemble = two_member_ensemble(kube, namespace)
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-lead", LEAD_0)
    start_member_pod(kube, namespace, ensemble, 1, "ens-1-0-lead", LEAD_1)
    # labelled as member 0's lead broker, but its controller is a Job of the tenant's own
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-forged", FORGED, owner_job="tenant-job")
    with scratch_namespace(kube_cluster, "t", suffix_chars=10) as elsewhere:
        # a genuine lead broker of a same-named Ensemble's member, in another namespace
        twin = make_ensemble(kube, elsewhere, "ens")
        make_minicluster(kube, elsewhere, "ens-0", twin)
        start_member_pod(kube, elsewhere, twin, 0, "ens-0-0-lead", ELSEWHERE)
        with service_process(kube_cluster, namespace, "--rate-limit-burst", "4", "--rate-limit-qps", "0.001") as (
                address, metrics_port, _):
            refused = {ip: call_from(network, ip, address, "grow", "ens-0")[0] for ip in (ELSEWHERE, LEAD_1, FORGED)}
            for ip, reply in refused.items():
                assert (reply["status"], reply["reason"]) == ("DENIED", "not_lead_broker"), (ip, reply)
                assert f"caller {ip} " in reply["error"] and f"lead broker: {namespace}/ens-0-0-lead" in reply["error"]
            assert f"(pod {namespace}/ens-1-0-lead)" in refused[LEAD_1]["error"]
            for ip in (ELSEWHERE, FORGED):  # the forgery's Job is no member's: not the Ensemble's pod
                assert "(no pod of this Ensemble)" in refused[ip]["error"]
            assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 1

            outsider = call_from(network, ELSEWHERE, address, "status")[0]
            assert (outsider["status"], outsider["reason"]) == ("DENIED", "not_ensemble_pod")
            member = call_from(network, LEAD_1, address, "status")[0]       # token 1 of 4
            assert member["status"] == "SUCCESS" and [m["name"] for m in member["members"]] == ["ens-0", "ens-1"]

            replies = call_from(network, LEAD_0, address, "grow", "ens-0", count=5)   # tokens 2-4, then none
            assert [r["status"] for r in replies] == ["SUCCESS"] * 3 + ["DENIED"] * 2
            assert all(r["error"].startswith("rate limited: ") and r["reason"] == "rate_limited" for r in replies[3:])
            metrics = scrape(metrics_port)
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 4
    assert kube.get(MINICLUSTERS, "ens-1", namespace)["spec"]["size"] == 1
    for reason, count in (("not_lead_broker", 3), ("not_ensemble_pod", 1), ("rate_limited", 2),
                          ("pods_not_synced", 0), ("unknown_peer", 0)):
        assert f'ensemble_service_refusals_total{{reason="{reason}"}} {count:.1f}' in metrics, reason
    assert 'ensemble_service_actions_total{action="grow",result="DENIED"} 5.0' in metrics


def test_ensemble_pythons_client_grows_from_its_lead_broker_and_reads_a_refusal_elsewhere(
        kube: KubeClient, kube_cluster, namespace: str, minicluster_crd: str, ensemble_crd: str,
        network: PodNetwork) -> None:
    """The client a real lead broker runs: served from the lead broker's IP; from another member's
    lead broker a DENIED reply it returns (a rule's action fails, the run goes on), not an error."""
    ensemble = two_member_ensemble(kube, namespace)
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-lead", LEAD_0)
    start_member_pod(kube, namespace, ensemble, 1, "ens-1-0-lead", LEAD_1)
    with service_process(kube_cluster, namespace) as (address, _, _):
        (denied,) = call_from(network, LEAD_1, address, "ensemble-python", "ens-0")
        (grown,) = call_from(network, LEAD_0, address, "ensemble-python", "ens-0")
    assert (denied["status"], denied["reason"]) == ("DENIED", "not_lead_broker")
    assert (grown["status"], grown["to"]) == ("SUCCESS", 2)
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 2
