"""Wire compatibility: the real ensemble-python client talks to our service over gRPC.

ensemble-python's stubs register the same proto file name as ours in protobuf's default
descriptor pool, so both cannot live in one process; the client runs in a child process,
which is also how it runs for real (inside a lead broker).
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.proto.server import SERVICE_NAME, GrpcServer
from tests.unit.served_service import serving
from tests.unit.fakes.kube import FakeKube, ensemble_obj, minicluster_obj

CLIENT = """
import json, sys
from ensemble.members.client import EnsembleClient
host, name, action, payload = sys.argv[1:5]
response = EnsembleClient(host).action_request("miniclusters", name, action, json.loads(payload))
print(json.dumps({"status": int(response.status), "payload": response.payload}))
"""


@pytest.fixture
def served() -> Iterator[tuple[GrpcServer, FakeKube]]:
    kube = FakeKube()
    ensemble = kube.put(ENSEMBLES, ensemble_obj("ens"))
    other = kube.put(ENSEMBLES, ensemble_obj("other"))
    kube.put(MINICLUSTERS, minicluster_obj("ens-0", ensemble, size=2, max_size=4))
    kube.put(MINICLUSTERS, minicluster_obj("other-0", other, size=2))
    with serving(kube, workers=4) as server:
        yield server, kube


def member_request(address: str, name: str, action: str, payload: dict) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-c", CLIENT, address, name, action, json.dumps(payload)],
                          check=True, capture_output=True, text=True, timeout=60)
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    return reply["status"], json.loads(reply["payload"])


def test_real_member_client_grow_shrink_denied_error(served: tuple[GrpcServer, FakeKube]) -> None:
    server, kube = served
    group = {"version": "v1alpha2", "group": "flux-framework.org"}
    status, body = member_request(server.address, "ens-0", "grow", {**group, "grow": 1})
    assert status == pb2.Response.SUCCESS and body["to"] == 3
    status, _ = member_request(server.address, "ens-0", "shrink", {**group, "shrink": 2})
    assert status == pb2.Response.SUCCESS
    assert kube.get(MINICLUSTERS, "ens-0", "ns")["spec"]["size"] == 1
    status, body = member_request(server.address, "other-0", "grow", group)
    assert status == pb2.Response.DENIED
    status, body = member_request(server.address, "nope", "grow", group)
    assert status == pb2.Response.ERROR and "ns/nope" in body["error"]


def test_health_and_status_over_a_real_channel(served: tuple[GrpcServer, FakeKube]) -> None:
    server, _ = served
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        response = pb2_grpc.EnsembleOperatorStub(channel).RequestStatus(pb2.StatusRequest(), timeout=5)
    assert [m["name"] for m in json.loads(response.payload)["members"]] == ["ens-0"]


def test_bad_worker_count_is_refused() -> None:
    with pytest.raises(ValueError, match="workers: must be >= 1"):
        GrpcServer(pb2_grpc.EnsembleOperatorServicer(), "127.0.0.1", 0, 0)


class UnexpectedFailure(FakeKube):
    """An API client failing outside KubeError (a credentials file unreadable on re-read, say)."""

    def get(self, res, name, namespace=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("token file /var/run/secrets/token: unreadable")


def test_an_unexpected_failure_is_an_error_reply_the_real_member_client_can_read() -> None:
    """It was a gRPC UNKNOWN, on which ensemble-python 0.0.16's EnsembleClient raises out of the
    member's grow rule, ending its `ensemble run`; upstream's service answers ERROR."""
    with serving(UnexpectedFailure(), workers=2) as server:
        status, body = member_request(server.address, "ens-0", "grow",
                                      {"version": "v1alpha2", "group": "flux-framework.org", "grow": 1})
    assert status == pb2.Response.ERROR
    assert body["error"] == ("grow MiniCluster ns/ens-0 failed: RuntimeError: "
                             "token file /var/run/secrets/token: unreadable")


def test_an_unexpected_failure_of_a_status_request_is_an_error_reply_too() -> None:
    with serving(UnexpectedFailure(), workers=2) as server, grpc.insecure_channel(server.address) as channel:
        response = pb2_grpc.EnsembleOperatorStub(channel).RequestStatus(pb2.StatusRequest(member="ens-0"), timeout=10)
    assert response.status == pb2.Response.ERROR
    assert json.loads(response.payload) == {"error": "status of Ensemble ns/ens failed: RuntimeError: "
                                                      "token file /var/run/secrets/token: unreadable"}
