"""The pod process runner tells a simulated member how many of its pods run. A member started a
moment ago may not listen yet when its other pods come up: the runner asks again later instead of
raising (a reconcile error printed a traceback for every size-4 simulated member)."""
from __future__ import annotations

from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from tests.fakes import FakeClock
from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.runtime import Request
from localcluster import free_port
from sim.podrunner import RETRY_SECONDS, PodProcessRunner
from tests.unit.fakes.podrunner import FakeManager


def member_pod(index: int) -> dict[str, Any]:
    return {"metadata": {"name": f"hello-0-{index}", "namespace": "ns",
                         "labels": {"job-name": "hello-0", "batch.kubernetes.io/job-completion-index": str(index)}},
            "spec": {"restartPolicy": "Never"}, "status": {"phase": "Running", "podIP": "127.0.0.1"}}


class Member(pb_grpc.EnsembleOperatorServicer):
    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []

    def RequestAction(self, request: pb.ActionRequest, context: grpc.ServicerContext) -> pb.Response:
        self.actions.append((request.action, request.payload))
        return pb.Response(status=pb.Response.SUCCESS, payload=request.payload)


def test_a_member_not_listening_yet_gets_its_resize_later(tmp_path: Path, clock: FakeClock) -> None:
    port = free_port()
    manager = FakeManager([member_pod(0), member_pod(1)])
    runner = PodProcessRunner(manager, server="s", ca_file="c", workdir=tmp_path,  # type: ignore[arg-type]
                              clock=clock)
    running = runner.processes.start("ns/hello-0-0", "member", "127.0.0.1", ["sh", "-c", "sleep 60", "--port", str(port)],
                                     minicluster="hello-0", nodes=1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    try:
        assert running is not None
        # nothing listens on the member's port yet: no exception, a retry, the count not taken
        assert runner.reconcile(Request("ns", "hello-0-0")).requeue_after == RETRY_SECONDS
        assert running.nodes == 1
        member = Member()
        pb_grpc.add_EnsembleOperatorServicer_to_server(member, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        assert not runner.reconcile(Request("ns", "hello-0-0")).requeue_after
        assert member.actions == [("resize", '{"nodes": 2}')] and running.nodes == 2
    finally:
        server.stop(0)
        runner.stop()
