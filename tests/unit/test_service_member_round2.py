"""Second review of the gRPC servers (ensemble service and member endpoint) and the member side."""
from __future__ import annotations

import pytest

from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service.server import GrpcServer


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
