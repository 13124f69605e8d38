"""Second review of the gRPC servers (ensemble service and member endpoint) and the member side."""
from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import grpc
import pytest
import yaml

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service import main as service_main
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


def service_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    service_main.add_arguments(parser)
    return parser.parse_args(["--ensemble", "ens", "--namespace", "ns", "--host", "127.0.0.1", "--port", "0",
                              *argv])


def test_service_without_api_access_exits_1_naming_the_cause(caplog: pytest.LogCaptureFixture,
                                                            tmp_path: Path) -> None:
    # the KubeError escaped run() as a bare traceback, the only non-JSON output of the service
    missing = tmp_path / "absent.kubeconfig"
    assert service_main.run(service_args("--kubeconfig", str(missing), "--metrics-port", "0")) == 1
    assert f"cannot configure API access: cannot load kubeconfig {missing}" in caplog.text


def test_service_with_its_metrics_port_taken_exits_1_naming_it(caplog: pytest.LogCaptureFixture,
                                                               tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert service_main.run(service_args("--kubeconfig", str(kubeconfig), "--metrics-port", str(port))) == 1
    assert f"--metrics-port: cannot serve metrics on 127.0.0.1:{port}" in caplog.text


def test_an_unexpected_failure_of_a_status_request_is_an_error_reply_too() -> None:
    with serving(UnexpectedFailure(), workers=2) as server, grpc.insecure_channel(server.address) as channel:
        response = pb2_grpc.EnsembleOperatorStub(channel).RequestStatus(pb2.StatusRequest(member="ens-0"), timeout=10)
    assert response.status == pb2.Response.ERROR
    assert json.loads(response.payload) == {"error": "status of Ensemble ns/ens failed: RuntimeError: "
                                                      "token file /var/run/secrets/token: unreadable"}
