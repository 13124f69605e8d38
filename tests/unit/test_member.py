"""The lead-broker status endpoint: job groups, the gRPC server, backend selection."""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controller.algorithms.status import parse_status
from tests.fakes import FakeClock
from controller.member import main as member_main
from controller.member.backend import BackendError, PartialSubmit
from controller.member.flux_backend import FluxBackend
from controller.member.jobgroups import DEFAULT_DURATION, load_job_groups, sleep_duration
from controller.member.servicer import MemberServicer
from sim.member.simulator import SimulatedFlux
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.proto.server import GrpcServer

ENSEMBLE_YAML = """
logging: {debug: false}
jobs:
  - name: lammps
    command: sleep 30
    count: 4
    nodes: 2
  - name: hello
    command: echo hello
rules:
  - trigger: start
    action: {name: submit, label: lammps}
"""


def test_job_groups_from_ensemble_yaml() -> None:
    groups = load_job_groups(ENSEMBLE_YAML)
    assert (groups["lammps"].count, groups["lammps"].nodes, groups["lammps"].duration) == (4, 2, 30.0)
    assert (groups["hello"].count, groups["hello"].nodes, groups["hello"].duration) == (1, 1, DEFAULT_DURATION)


@pytest.mark.parametrize("command, seconds", [
    ("sleep 5", 5.0), ("/bin/sleep 2.5", 2.5), ("sleep 5 && echo", DEFAULT_DURATION),
    ("sleep forever", DEFAULT_DURATION), ("python run.py", DEFAULT_DURATION), ("sleep 'unclosed", DEFAULT_DURATION),
])
def test_duration_comes_from_sleep_commands(command: str, seconds: float) -> None:
    assert sleep_duration(command) == seconds


@pytest.mark.parametrize("text, message", [
    ("jobs: [", ": is not valid YAML"),
    ("- a", ": must be a YAML mapping"),
    ("jobs: {a: 1}\nrules: []", r"\.jobs: must be a list"),
    ("jobs: [{command: sleep 1}]\nrules: []", r"\.jobs\[0\]\.name: required field is missing"),
    ("jobs: [{name: a}]\nrules: []", r"\.jobs\[0\]\.command: required field is missing"),
    ("jobs: [{name: a, command: x, nodes: '2'}]\nrules: []", r"\.jobs\[0\]\.nodes: must be a number"),
])
def test_bad_ensemble_yaml_names_the_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"my.yaml{message}"):
        load_job_groups(text, "my.yaml")


def test_sets_ensemble_python_loads_but_flux_would_refuse_are_not_submittable() -> None:
    groups = load_job_groups("""
jobs:
  - {name: zero, command: x, nodes: 0}
  - {name: half, command: x, count: 1.5}
  - {name: late, command: x, duration: -1}
  - {name: twice, command: sleep 1}
  - {name: twice, command: sleep 2, count: 3}
rules: []
""")
    assert list(groups) == ["twice"]
    assert (groups["twice"].command, groups["twice"].count) == ("sleep 1", 1)   # the group's first set


@pytest.fixture
def member() -> Iterator[tuple[pb2_grpc.EnsembleOperatorStub, SimulatedFlux, FakeClock]]:
    clock = FakeClock(start=0.0)
    flux = SimulatedFlux(load_job_groups(ENSEMBLE_YAML), 4, clock)
    server = GrpcServer(MemberServicer(flux, "ens-0", max_submit=50), "127.0.0.1", 0, 2)
    server.start()
    with grpc.insecure_channel(server.address) as channel:
        yield pb2_grpc.EnsembleOperatorStub(channel), flux, clock
    server.stop(grace=1)


def action(stub: pb2_grpc.EnsembleOperatorStub, name: str, payload: str, member: str = "ens-0") -> tuple[int, dict]:
    response = stub.RequestAction(pb2.ActionRequest(member="miniclusters", name=member, action=name,
                                                    payload=payload), timeout=5)
    return response.status, json.loads(response.payload)


def test_status_over_grpc_has_the_agreed_shape(member) -> None:
    stub, flux, _ = member
    flux.submit("lammps", 3)
    response = stub.RequestStatus(pb2.StatusRequest(member="miniclusters", name="ens-0"), timeout=5)
    assert response.status == pb2.Response.SUCCESS
    status = parse_status(response.payload)          # the operator's poller validation accepts it
    assert status["queue"]["run"] == 2 and status["queue"]["sched"] == 1
    assert status["waiting"] == {"2": 1} and status["nextJobs"] == [3]
    assert status["nodes"]["node_free_count"] == 0


def test_submit_and_resize_over_grpc(member) -> None:
    stub, flux, clock = member
    assert action(stub, "submit", '{"group": "hello", "count": 2}') == (pb2.Response.SUCCESS, {"submitted": [1, 2]})
    assert action(stub, "resize", '{"nodes": 1}') == (pb2.Response.SUCCESS, {"nodes": 1})
    clock.step(DEFAULT_DURATION)
    assert flux.status()["queue"]["inactive"] == 2
    assert flux.status()["nodes"]["node_up_count"] == 1


@pytest.mark.parametrize("name, payload, message", [
    ("submit", '{"group": "ghost", "count": 1}', "group: unknown job group 'ghost'"),
    ("submit", '{"group": "hello"}', "payload.count: expected int"),
    ("submit", '{"group": 3, "count": 1}', "payload.group: expected str"),
    ("submit", "{nope", "payload: malformed JSON"),
    ("resize", '{"nodes": "4"}', "payload.nodes: expected int"),
    ("terminate", "{}", "action: unknown action 'terminate'"),
])
def test_bad_actions_are_errors_with_the_reason(member, name: str, payload: str, message: str) -> None:
    stub, _, _ = member
    status, body = action(stub, name, payload)
    assert status == pb2.Response.ERROR and message in body["error"]


def test_a_partly_done_submit_answers_the_jobs_that_went_in_and_why_not_the_rest(member) -> None:
    stub, flux, _ = member
    submit = flux.submit

    def two_then_refused(group: str, count: int) -> list[int]:
        raise PartialSubmit(submit(group, 2), f"submit {group}: job 3 of {count} refused: queue closed")

    flux.submit = two_then_refused  # type: ignore[method-assign]
    status, body = action(stub, "submit", '{"group": "hello", "count": 4}')
    assert status == pb2.Response.SUCCESS
    assert body == {"submitted": [1, 2], "error": "submit hello: job 3 of 4 refused: queue closed"}


def test_flux_backend_says_the_flux_module_is_missing() -> None:
    # flux-core's bindings are not installable from PyPI and are absent here, as on any non-Flux host
    with pytest.raises(BackendError, match=r"cannot load Flux's Python bindings with Python 3\.\d+ .*"
                                           r"ModuleNotFoundError: No module named 'flux'"):
        FluxBackend({})


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    member_main.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("flags", [("--backend", "simulated"), ("--run",), ("--nodes", "8")])
def test_the_sidecar_command_has_no_simulated_member_flags(flags: tuple[str, ...],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The simulated member is hack/sim/member's own entry point, not a mode of the sidecar."""
    with pytest.raises(SystemExit) as exited:
        parse_args("--name", "ens-0", *flags)
    assert exited.value.code == 2
    assert f"unrecognized arguments: {' '.join(flags)}" in capsys.readouterr().err


def test_without_flux_bindings_the_sidecar_serves_the_reason_instead_of_exiting(
        caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Flux view whose Python is not the sidecar's made it exit 1 and restart for ever; now every
    request is answered with why, and it follows the broker through its local socket."""
    socket = tmp_path / "local"
    socket.touch()
    monkeypatch.setenv("FLUX_URI", f"local://{socket}")
    backend = member_main.build_backend(parse_args("--name", "ens-0"))
    assert "serving that reason to every request" in caplog.text
    server = GrpcServer(MemberServicer(backend, "ens-0"), "127.0.0.1", 0, 2)
    server.start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb2_grpc.EnsembleOperatorStub(channel)
            reply = stub.RequestStatus(pb2.StatusRequest(member="miniclusters", name="ens-0"), timeout=5)
            assert reply.status == pb2.Response.ERROR
            assert json.loads(reply.payload)["error"].startswith("cannot load Flux's Python bindings with Python 3.")
            status, body = action(stub, "submit", '{"group": "hello", "count": 1}')
            assert status == pb2.Response.ERROR and "No module named 'flux'" in body["error"]
    finally:
        server.stop(grace=1)
    assert backend.alive()
    socket.unlink()   # the broker exited
    assert not backend.alive()


def test_run_fails_cleanly_with_a_missing_file(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    assert member_main.run(parse_args("--ensemble-yaml", str(missing), "--name", "ens-0")) == 1
    assert f"--ensemble-yaml {missing}" in caplog.text


def test_requests_naming_another_member_are_denied_and_change_nothing(member) -> None:
    stub, flux, _ = member
    response = stub.RequestStatus(pb2.StatusRequest(member="miniclusters", name="ens-1"), timeout=5)
    assert response.status == pb2.Response.DENIED
    assert "answers for member 'ens-0', not 'ens-1'" in json.loads(response.payload)["error"]
    for name in ("ens-1", ""):
        status, body = action(stub, "submit", '{"group": "hello", "count": 1}', member=name)
        assert status == pb2.Response.DENIED and "answers for member 'ens-0'" in body["error"]
    assert flux.status()["queue"] == dict.fromkeys(flux.status()["queue"], 0)  # nothing submitted


@pytest.mark.parametrize("count", [51, 10**9, 0, -1])
def test_a_submit_outside_one_to_max_submit_jobs_is_refused_naming_count(member, count: int) -> None:
    stub, flux, _ = member
    status, body = action(stub, "submit", json.dumps({"group": "hello", "count": count}))
    assert status == pb2.Response.ERROR
    assert f"payload.count: must be 1 to 50 jobs per submit (--max-submit), got {count}" == body["error"]
    assert sum(flux.status()["queue"].values()) == 0
    assert action(stub, "submit", '{"group": "hello", "count": 50}')[0] == pb2.Response.SUCCESS


@pytest.mark.parametrize("payload, message", [
    ('{"group": "hello", "count": ' + "9" * 5000 + "}", "payload: unreadable JSON (ValueError"),
    ("[" * 20000 + "]" * 20000, "payload: unreadable JSON (RecursionError"),
    (json.dumps({"group": "x" * 10000, "count": "1"}), "payload.count: expected int, got '1'"),
])
def test_odd_payloads_are_errors_with_short_reasons_and_the_endpoint_goes_on(member, payload: str,
                                                                              message: str) -> None:
    stub, _, _ = member
    status, body = action(stub, "submit", payload)
    assert status == pb2.Response.ERROR and body["error"].startswith(message)
    assert len(body["error"]) < 300
    assert action(stub, "submit", '{"group": "hello", "count": 1}')[0] == pb2.Response.SUCCESS


def test_a_message_over_the_size_limit_is_refused_and_the_endpoint_goes_on(member) -> None:
    stub, _, _ = member
    with pytest.raises(grpc.RpcError) as refused:
        action(stub, "submit", json.dumps({"group": "hello", "count": 1, "pad": "x" * 70_000}))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert action(stub, "submit", json.dumps({"group": "hello", "count": 1, "pad": "x" * 60_000}))[0] == \
        pb2.Response.SUCCESS


def test_the_endpoint_needs_its_member_name(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    assert member_main.run(parse_args("--port", "0")) == 1
    assert "--name: required: the member (MiniCluster) this endpoint answers for" in caplog.text
    with pytest.raises(ValueError, match="--max-submit: must be >= 1, got 0"):
        MemberServicer(SimulatedFlux({}, 1, FakeClock()), "ens-0", max_submit=0)
