"""Second review of the gRPC servers (ensemble service and member endpoint) and the member side."""
from __future__ import annotations

import pytest

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service.server import GrpcServer
from tests.unit.served_service import serving
from tests.unit.test_service_fake_kube import FakeKube
from tests.unit.test_service_wire import member_request


def test_a_port_in_use_is_refused_not_shared() -> None:
    """gRPC's default SO_REUSEPORT let a second server bind a port in use, and the kernel then
    split new connections between both processes: a stale member endpoint answered polls."""
    first = GrpcServer(pb2_grpc.EnsembleOperatorServicer(), "127.0.0.1", 0, 1)
    first.start()
    try:
        with pytest.raises(OSError, match=f"cannot bind gRPC server to 127.0.0.1:{first.port}"):
            GrpcServer(pb2_grpc.EnsembleOperatorServicer(), "127.0.0.1", first.port, 1)
    finally:
        first.stop(0)


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
