"""The member -> service -> API server path with the real ensemble-python client.

tests/integration/test_service.py covers the service with our own stubs; here the PyPI
EnsembleClient (the code a lead broker runs) asks our service, as deployed, to change
MiniClusters stored in kube-apiserver. Its stubs clash with ours in protobuf's default
pool, so the client runs in a child process.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from controller.kube.client import KubeClient
from controller.kube.resources import MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from tests.integration.objects import JOBS_ONLY, make_ensemble, make_minicluster
from tests.integration.running import ensemble_service

pytestmark = pytest.mark.integration

# N threads each send one request through their own EnsembleClient, started together.
CLIENT = """
import json, sys, threading
from ensemble.members.client import EnsembleClient
address, name, action, payload, count = sys.argv[1:6]
barrier = threading.Barrier(int(count))
replies = []
def one():
    client = EnsembleClient(address)
    barrier.wait()
    response = client.action_request("miniclusters", name, action, json.loads(payload))
    replies.append({"status": int(response.status), "payload": response.payload})
threads = [threading.Thread(target=one) for _ in range(int(count))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(replies))
"""
API = {"version": "v1alpha2", "group": "flux-framework.org"}
SUBMIT_A = JOBS_ONLY + "rules:\n- trigger: start\n  action:\n    name: submit\n    label: a\n"


def member_requests(address: str, name: str, action: str, payload: dict, count: int = 1) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", CLIENT, address, name, action, json.dumps(payload), str(count)],
                          check=True, capture_output=True, text=True, timeout=120)
    replies = json.loads(done.stdout.strip().splitlines()[-1])
    return [{"status": r["status"], **json.loads(r["payload"] or "{}")} for r in replies]


@pytest.fixture
def service_address(kube: KubeClient, namespace: str, minicluster_crd: str, ensemble_crd: str) -> Iterator[str]:
    """Our ensemble service for Ensemble ``ens`` on a free loopback port; ens-0 is its member."""
    for name in ("ens", "other"):
        make_minicluster(kube, namespace, f"{name}-0", make_ensemble(kube, namespace, name, SUBMIT_A), minSize=1)
    with ensemble_service(kube, "ens", namespace) as address:
        yield address


def size(kube: KubeClient, namespace: str, name: str) -> int:
    return kube.get(MINICLUSTERS, name, namespace)["spec"]["size"]


def test_real_client_grows_and_shrinks_a_member(kube: KubeClient, namespace: str, service_address: str) -> None:
    (grown,) = member_requests(service_address, "ens-0", "grow", {**API, "grow": 3})
    assert (grown["status"], grown["from"], grown["to"]) == (pb2.Response.SUCCESS, 1, 4)
    assert size(kube, namespace, "ens-0") == 4
    (shrunk,) = member_requests(service_address, "ens-0", "shrink", {**API, "shrink": 2})
    assert (shrunk["status"], shrunk["to"]) == (pb2.Response.SUCCESS, 2)
    assert size(kube, namespace, "ens-0") == 2
    (floor,) = member_requests(service_address, "ens-0", "shrink", {**API, "shrink": 5})
    assert (floor["status"], floor["to"], floor.get("clamped")) == (pb2.Response.SUCCESS, 1, True)
    assert size(kube, namespace, "ens-0") == 1


def test_ten_concurrent_real_clients_grow_from_one_to_eleven(kube: KubeClient, namespace: str,
                                                             service_address: str) -> None:
    replies = member_requests(service_address, "ens-0", "grow", {**API, "grow": 1}, count=10)
    assert [r["status"] for r in replies] == [pb2.Response.SUCCESS] * 10
    assert sorted(r["to"] for r in replies) == list(range(2, 12))
    assert size(kube, namespace, "ens-0") == 11


def test_real_client_cannot_touch_another_ensembles_minicluster(kube: KubeClient, namespace: str,
                                                                service_address: str) -> None:
    (denied,) = member_requests(service_address, "other-0", "grow", {**API, "grow": 1})
    assert denied["status"] == pb2.Response.DENIED
    assert "not a member of Ensemble 'ens'" in denied["error"]
    assert size(kube, namespace, "other-0") == 1


# One request through the real client; a gRPC error is printed by its code instead of raised.
CLIENT_ONCE = """
import json, sys
import grpc
from ensemble.members.client import EnsembleClient
address, name, action, payload = sys.argv[1:5]
try:
    response = EnsembleClient(address).action_request("miniclusters", name, action, json.loads(payload))
except grpc.RpcError as err:
    print(json.dumps({"code": err.code().name}))
else:
    print(json.dumps({"status": int(response.status), **json.loads(response.payload or "{}")}))
"""


def member_request_once(address: str, name: str, action: str, payload: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CLIENT_ONCE, address, name, action, json.dumps(payload)],
                          check=True, capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_largest_request_ensemble_python_sends_fits_the_message_limit_and_larger_ones_are_refused(
        kube: KubeClient, namespace: str, service_address: str) -> None:
    # The largest ActionRequest ensemble-python 0.0.16 builds: a member name at the 63-character
    # limit, its fixed {"version", "group"} and a grow of 2**63 - 1; the service answers it.
    largest = member_request_once(service_address, "e" * 58 + "-9999", "grow", {**API, "grow": 2**63 - 1})
    assert largest["status"] == pb2.Response.ERROR and "not found" in largest["error"]  # answered: no such member
    # Over 64 KiB the client's call fails by gRPC before any decision, and the service goes on.
    assert member_request_once(service_address, "ens-0", "grow", {**API, "grow": 1, "pad": "x" * 70_000}) == \
        {"code": "RESOURCE_EXHAUSTED"}
    (grown,) = member_requests(service_address, "ens-0", "grow", {**API, "grow": 1})
    assert (grown["status"], grown["to"]) == (pb2.Response.SUCCESS, 2)
