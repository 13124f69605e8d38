"""GrpcServer lifecycle: serving, and a graceful stop on SIGTERM in a real process."""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service import main as service_main
from tests.helpers import wait_for

CHILD = """
import sys, time
from controller.proto import ensemble_service_pb2 as pb2, ensemble_service_pb2_grpc as pb2_grpc
from controller.service.server import GrpcServer

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
