"""GrpcServer lifecycle: serving, and a graceful stop on SIGTERM in a real process."""
from __future__ import annotations

import argparse
import signal
import socket
import threading
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service import main as service_main
from controller.proto.server import GrpcServer
from tests.helpers import wait_for

CHILD = """
import sys, time
from controller.proto import ensemble_service_pb2 as pb2, ensemble_service_pb2_grpc as pb2_grpc
from controller.proto.server import GrpcServer

class Slow(pb2_grpc.EnsembleOperatorServicer):
    def RequestStatus(self, request, context):
        print("received", flush=True)
        time.sleep(float(request.name))
        return pb2.Response(payload="done", status=pb2.Response.SUCCESS)

server = GrpcServer(Slow(), "127.0.0.1", 0, 2)
print(server.address, flush=True)
server.serve_until_signal(grace=5)
print("stopped", flush=True)
"""


def serving(channel: grpc.Channel) -> bool:
    try:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status \
            == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def test_sigterm_lets_the_in_flight_request_finish() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        address = child.stdout.readline().strip()
        with grpc.insecure_channel(address) as channel:
            wait_for(lambda: serving(channel), 10, f"the child's gRPC health at {address} to be SERVING")
            call = pb2_grpc.EnsembleOperatorStub(channel).RequestStatus.future(
                pb2.StatusRequest(name="0.5"), timeout=10)
            assert child.stdout.readline().strip() == "received"
            child.send_signal(signal.SIGTERM)
            assert call.result().payload == "done"
        assert child.wait(timeout=10) == 0
        assert child.stdout.read().strip() == "stopped"
    finally:
        if child.poll() is None:
            child.kill()


def test_service_command_requires_ensemble_and_namespace(caplog) -> None:
    parser = argparse.ArgumentParser()
    service_main.add_arguments(parser)
    assert service_main.run(parser.parse_args(["--namespace", "ns", "--ensemble", ""])) == 2
    assert "--ensemble: required" in caplog.text
    assert service_main.run(parser.parse_args(["--namespace", "", "--ensemble", "ens"])) == 2
    assert "--namespace: required" in caplog.text


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
    # Its pod and Job informers stop too: left running they retried the dead server and logged
    # into whatever stream came next (a later test's captured stderr, in CI).
    informer_threads = [t for t in threading.enumerate() if t.name in ("reflector-pods", "reflector-jobs.batch")]
    for thread in informer_threads:
        thread.join(5)
    assert not [t.name for t in informer_threads if t.is_alive()]
