"""``python hack/sim/member``: a simulated member's status endpoint and ensemble run in one process.

The process runs as it would in a demo (own process, real time sped up with --speed); the
test talks to it over gRPC on 127.0.0.1 and plays the ensemble service for grow requests.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from controller.clock import RealClock
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.proto.server import GrpcServer
from sim.member import session as member_main
from tests.unit.fakes.sim_member import FakeEnsembleService, upstream_member_yaml

ROOT = Path(__file__).resolve().parents[2]
SIMULATED_MEMBER = ROOT / "hack" / "sim" / "member"   # the pod process runner starts this path
LISTENING = "gRPC server listening on "


class MemberProcess:
    """The simulated member's entry point in a child process; its JSON log lines are collected as they come."""

    def __init__(self, *argv: str) -> None:
        self.messages: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, str(SIMULATED_MEMBER), "--log-format", "json",
             "--host", "127.0.0.1", "--port", "0", "--name", "ensemble-0", *argv],
            cwd=ROOT, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                message = json.loads(line)["msg"]
            except (json.JSONDecodeError, KeyError):
                message = line.rstrip()
            with self._changed:
                self.messages.append(message)
                self._changed.notify_all()

    def wait_for_log(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((m for m in self.messages if predicate(m)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    break
                self._changed.wait(remaining)
        assert found is not None, f"no such log line within {timeout} s; got: {self.messages}"
        return found

    def address(self) -> str:
        return self.wait_for_log(lambda m: m.startswith(LISTENING))[len(LISTENING):]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def start_member() -> Iterator[Callable[..., MemberProcess]]:
    started: list[MemberProcess] = []

    def start(*argv: str) -> MemberProcess:
        started.append(MemberProcess(*argv))
        return started[-1]

    yield start
    for member in started:
        member.stop()


def write_member_yaml(tmp_path: Path, example: str) -> Path:
    path = tmp_path / "ensemble.yaml"
    path.write_text(upstream_member_yaml(example))
    return path


def status(address: str) -> dict:
    with grpc.insecure_channel(address) as channel:
        response = pb2_grpc.EnsembleOperatorStub(channel).RequestStatus(
            pb2.StatusRequest(member="miniclusters", name="ensemble-0"), timeout=5)
    assert response.status == pb2.Response.SUCCESS
    return json.loads(response.payload)


def test_hello_world_runs_to_terminate_and_the_drained_queue_stays_observable(
        tmp_path: Path, start_member: Callable[..., MemberProcess]) -> None:
    member = start_member("--ensemble-yaml",
                          str(write_member_yaml(tmp_path, "hello-world.yaml")),
                          "--speed", "100", "--linger", "2")
    address = member.address()
    member.wait_for_log(lambda m: m.startswith("ensemble terminated"))
    queue = status(address)["queue"]                  # answered during the linger, after terminate
    assert (queue["inactive"], queue["run"], queue["sched"]) == (16, 0, 0)
    assert member.process.wait(timeout=20) == 0
    fired = [m for m in member.messages if " fired on " in m]
    assert len(fired) == 8 and fired[-1].endswith("-> terminate: ensemble run ends")


def test_grow_requests_reach_the_service_and_a_resize_reaches_the_running_member(
        tmp_path: Path, start_member: Callable[..., MemberProcess]) -> None:
    member_address: list[str] = []

    def resize_member(action: str, payload: dict) -> None:
        # what the operator does after a grow: tell the member endpoint its new size
        nodes = status(member_address[0])["nodes"]["node_up_count"] + payload["grow"]
        with grpc.insecure_channel(member_address[0]) as channel:
            pb2_grpc.EnsembleOperatorStub(channel).RequestAction(
                pb2.ActionRequest(name="ensemble-0", action="resize", payload=json.dumps({"nodes": nodes})),
                timeout=5)

    servicer = FakeEnsembleService(RealClock(), on_action=resize_member)
    service = GrpcServer(servicer, "127.0.0.1", 0, 2)
    service.start()
    try:
        member = start_member("--ensemble-yaml",
                              str(write_member_yaml(tmp_path, "grow-shrink.yaml")),
                              "--service", service.address,
                              "--speed", "100", "--linger", "2")
        member_address.append(member.address())
        member.wait_for_log(lambda m: m.startswith("ensemble terminated"))
        assert status(member_address[0])["nodes"]["node_up_count"] == 6
        assert member.process.wait(timeout=20) == 0
    finally:
        service.stop(grace=1)
    assert [(r.member, r.name, r.action, r.payload["grow"]) for r in servicer.received] == \
        [("miniclusters", "ensemble-0", "grow", 1)] * 5


def test_sigterm_ends_a_running_ensemble_with_status_zero(
        tmp_path: Path, start_member: Callable[..., MemberProcess]) -> None:
    member = start_member("--ensemble-yaml",
                          str(write_member_yaml(tmp_path, "hello-world.yaml")))
    address = member.address()
    assert status(address)["queue"]["run"] == 1                  # the start rule's sleep 10 is running
    member.process.send_signal(signal.SIGTERM)
    assert member.process.wait(timeout=20) == 0
    assert not any(m.startswith("ensemble terminated") for m in member.messages)


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    member_main.add_arguments(parser)
    return parser.parse_args(argv)


GROWING_YAML = yaml.safe_dump({"jobs": [{"name": "a", "command": "sleep 1"}],
                               "rules": [{"trigger": "start", "action": {"name": "grow"}}]})


@pytest.mark.parametrize("argv, message", [
    ([], "--ensemble-yaml: required"),
    (["--speed", "0", "--ensemble-yaml", "{yaml}"],
     "--speed: must be > 0, got 0.0"),
    (["--ensemble-yaml", "{yaml}"],
     "rules[0].action.name: grow needs the ensemble service address (--service HOST:PORT)"),
    (["--ensemble-yaml", "{yaml}", "--service", "127.0.0.1:50051", "--name", ""],
     "--name: required: the member (MiniCluster) this endpoint answers for"),
    (["--ensemble-yaml", "{yaml}", "--service", "nowhere"],
     "service address: expected HOST:PORT, got 'nowhere'"),
    (["--ensemble-yaml", "{missing}"], "No such file or directory"),
])
def test_bad_run_arguments_fail_before_serving_naming_the_cause(
        argv: list[str], message: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ensemble.yaml"
    path.write_text(GROWING_YAML)
    argv = [arg.format(yaml=path, missing=tmp_path / "absent.yaml") for arg in argv]
    assert member_main.run(parse_args("--port", "0", "--name", "e-0", *argv)) == 1
    assert message in caplog.text
