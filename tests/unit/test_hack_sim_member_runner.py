"""EnsembleRun: a member's ensemble.yaml followed on the simulated queue, on a FakeClock.

Grow/shrink requests travel over real gRPC (127.0.0.1) to a tiny ensemble service in the test.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from api.v1alpha1.ensemble_yaml import METRIC_MODELS
from tests.fakes import FakeClock, SteppingClock
from sim.member.action_client import ActionClient
from sim.member.metrics import KEPT_MODELS
from controller.proto.server import GrpcServer
from tests.helpers import wait_for
from tests.unit.fakes.sim_member import FakeEnsembleService, ensemble_run, upstream_member_yaml


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(start=0.0)


@pytest.fixture
def service(clock: SteppingClock) -> Iterator[tuple[FakeEnsembleService, ActionClient]]:
    servicer = FakeEnsembleService(clock)
    server = GrpcServer(servicer, "127.0.0.1", 0, 2)
    server.start()
    client = ActionClient(server.address, "ensemble-0", timeout=5)
    yield servicer, client
    client.close()
    server.stop(grace=1)


def test_upstream_hello_world_runs_to_terminate(clock: SteppingClock) -> None:
    # sleep 10 at start; its success submits 5 echo; the job-finish rule named echo fires on
    # every job's finish, the sleep's first (right after the metric rule of the same event),
    # submitting 2 echo-again each time (5 repetitions, so 10); terminate at 10 successful
    # echo-again. ensemble-python in a real Flux instance did the same: sleep, echo, 5 x
    # echo-again, terminate, 16 jobs. One node, jobs in FIFO order.
    run, flux = ensemble_run(upstream_member_yaml("hello-world.yaml"), clock)
    assert run.run(until=1_000) is True
    assert run.terminated and clock.now() == 25.0          # 10 s sleep + 5 x 1 s echo + 10 x 1 s echo-again
    assert [(f.at, f.rule, f.action) for f in run.fired] == [
        (0.0, "rules[0]", "submit"), (10.0, "rules[1]", "submit"),
        (10.0, "rules[2]", "submit"), (11.0, "rules[2]", "submit"), (12.0, "rules[2]", "submit"),
        (13.0, "rules[2]", "submit"), (14.0, "rules[2]", "submit"), (25.0, "rules[3]", "terminate")]
    assert run.fired[1].detail == "echo jobs [2, 3, 4, 5, 6]"
    assert flux.status()["queue"]["inactive"] == 16 and flux.status()["queue"]["sched"] == 0
    assert run.metrics.value("count.echo-again.success") == 10.0
    assert run.metrics.value("mean.echo-again-pending") == 7.5    # waited 5, 6, ..., 10 s (sum 75 / 10)
    assert run.metrics.value("mean.sleep-duration") == 10.0


def test_upstream_grow_shrink_grows_within_its_limits_and_terminates(
        clock: SteppingClock, service: tuple[FakeEnsembleService, ActionClient]) -> None:
    servicer, client = service
    run, flux = ensemble_run(upstream_member_yaml("grow-shrink.yaml"), clock, client)
    # the service's grow takes effect at once: the member gets a node more
    servicer.on_action = lambda action, payload: flux.resize(flux.status()["nodes"]["node_up_count"]
                                                             + payload["grow"])
    assert run.heartbeat == 3.0
    assert run.run(until=2_000) is True
    grows = [r for r in servicer.received if r.action == "grow"]
    assert len(grows) == 5                                             # repetitions: 5
    assert {(r.member, r.name) for r in grows} == {("miniclusters", "ensemble-0")}
    assert all(r.payload == {"version": "v1alpha2", "group": "flux-framework.org", "grow": 1} for r in grows)
    assert grows[0].at > 15.0            # only once sleep-long jobs have waited > 5 s on average
    assert run.metrics.value("count.sleep-long.success") == 10.0
    assert flux.status()["nodes"]["node_up_count"] == 6
    # 10 x 100 s of sleep-long on 1 node would end after 1015 s; the grows let it end far sooner
    assert run.fired[-1].action == "terminate" and clock.now() < 300.0


PENDING_GROW = """
logging: {heartbeat: 2}
jobs:
  - {name: long, command: sleep 100, count: 3, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: long}
  - trigger: metric
    name: mean.long-pending
    when: "> 5"
    action: {name: grow, value: 2, repetitions: 2, backoff: 1}
"""


def test_grow_is_requested_once_mean_pending_exceeds_the_threshold(
        clock: SteppingClock, service: tuple[FakeEnsembleService, ActionClient]) -> None:
    servicer, client = service
    run, _ = ensemble_run(PENDING_GROW, clock, client)
    assert run.run(until=200) is False                       # no terminate rule: runs to the deadline
    # job 1 starts at once (pending 0); jobs 2 and 3 wait. Each 2 s heartbeat adds their waits:
    # mean at t=8 is (0+2+2+4+4+6+6+8+8)/9 = 4.4, at t=10 it is 60/11 = 5.45 > 5: first grow.
    # backoff 1 skips the heartbeat at t=12; t=14 grows again; repetitions (2) are then used up.
    assert [(r.at, r.payload["grow"]) for r in servicer.received] == [(10.0, 2), (14.0, 2)]
    assert [f.at for f in run.fired if f.action == "grow"] == [10.0, 14.0]
    assert "service replied SUCCESS" in run.fired[-1].detail


def test_terminate_lets_the_rest_of_its_event_act_then_ends_the_run(clock: SteppingClock) -> None:
    """ensemble-python's terminate stops Flux's reactor, which returns only once the journal record
    being handled has run all its rules: in a real Flux instance a submit listed after a
    terminate on the same metric still went in (2 jobs ran, not 1)."""
    text = """
jobs:
  - {name: a, command: sleep 5, count: 2}
rules:
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: job-finish, name: a, action: {name: terminate}}
  - {trigger: job-finish, name: a, action: {name: submit, label: a}}
"""
    run, flux = ensemble_run(text, clock)
    assert run.run() is True
    assert clock.now() == 5.0
    assert [f.action for f in run.fired] == ["submit", "terminate", "submit"]
    queue = flux.status()["queue"]
    assert (queue["run"], queue["inactive"], queue["sched"]) == (1, 1, 2)  # no event after the terminate


def test_job_event_rules_fire_for_every_job_whatever_their_name(clock: SteppingClock) -> None:
    """ensemble-python does not filter job-<event> rules by name: in a real Flux instance a
    job-finish rule named a fired on the finish of a, of b and of the jobs it submitted."""
    text = """
jobs:
  - {name: a, command: sleep 1}
  - {name: b, command: sleep 2}
  - {name: c, command: sleep 1}
rules:
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: start, action: {name: submit, label: b}}
  - {trigger: start, action: {name: submit, label: c}}
  - {trigger: job-depend, name: b, action: {name: submit, label: c, repetitions: 10}}
"""
    run, flux = ensemble_run(text, clock, nodes=3)
    run.run(until=10)
    # The depend of a, b, c and of each c it submits fires it, until its 10 repetitions are used.
    assert [(f.at, f.detail) for f in run.fired] == [
        (0.0, "a jobs [1]"), (0.0, "b jobs [2]"), (0.0, "c jobs [3]"),
        *[(0.0, f"c jobs [{job}]") for job in range(4, 14)]]
    assert flux.status()["queue"]["inactive"] == 13


def test_metrics_follow_only_the_jobs_the_run_submitted(clock: SteppingClock) -> None:
    """A job of the group submitted by someone else (the operator's refill, through the member
    endpoint) counts nowhere, as with ensemble-python in a real Flux instance: there a job
    submitted with user.group=a left count.a.success at 1 and the run never terminated."""
    text = """
jobs:
  - {name: a, command: sleep 1}
rules:
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: metric, name: count.a.success, when: 2, action: {name: terminate}}
"""
    run, flux = ensemble_run(text, clock)
    flux.submit("a", 1)                                       # not the run's
    assert run.run(until=20) is False
    assert flux.status()["queue"]["inactive"] == 2
    assert run.metrics.value("count.a.success") == 1.0
    assert run.metrics.value("mean.a-pending") == 1.0         # only the run's job, which waited for the other


def test_custom_action_is_skipped_with_a_clear_log(clock: SteppingClock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    text = """
jobs:
  - {name: a, command: sleep 1}
rules:
  - {trigger: start, action: {name: custom, label: tune}}
  - {trigger: start, action: {name: terminate}}
custom: |
  def tune(**kwargs):
      raise SystemExit("custom code must not run in the simulator")
"""
    run, _ = ensemble_run(text, clock)
    with caplog.at_level(logging.INFO, logger="sim.member.runner"):
        assert run.run() is True
    assert [f.action for f in run.fired] == ["custom", "terminate"]
    skipped = [r for r in caplog.records if "custom" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelno == logging.WARNING
    assert ("custom action 'tune' is user Python, which the simulated run does not execute"
            in skipped[0].getMessage())
    assert any("-> terminate" in r.getMessage() for r in caplog.records)


def test_every_fired_action_is_one_log_line(clock: SteppingClock, caplog: pytest.LogCaptureFixture) -> None:
    run, _ = ensemble_run(upstream_member_yaml("hello-world.yaml"), clock)
    with caplog.at_level(logging.INFO, logger="sim.member.runner"):
        run.run(until=100)
    lines = [r.getMessage() for r in caplog.records if r.name == "sim.member.runner"]
    assert len(lines) == len(run.fired) == 8
    assert lines[1] == ("t=10.0 rules[1] metric count.sleep.success == 1 fired on job 1 (sleep) finish: "
                        "count.sleep.success = 1 -> submit: echo jobs [2, 3, 4, 5, 6]")


def test_an_unreachable_service_is_logged_and_the_run_goes_on(clock: SteppingClock) -> None:
    client = ActionClient("127.0.0.1:1", "ensemble-0", timeout=2)
    text = """
jobs:
  - {name: a, command: sleep 3}
rules:
  - {trigger: start, action: {name: shrink, value: 1}}
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: metric, name: count.a.success, when: 1, action: {name: terminate}}
"""
    try:
        run, _ = ensemble_run(text, clock, client)
        assert run.run(until=100) is True
    finally:
        client.close()
    assert run.fired[0].action == "shrink"
    assert "shrink 1 not delivered: ensemble service 127.0.0.1:1: shrink ensemble-0 failed: UNAVAILABLE" \
        in run.fired[0].detail
    assert clock.now() == 3.0


def test_stop_makes_run_return_from_another_thread() -> None:
    clock = FakeClock(start=0.0)                              # nobody steps it: the run waits
    run, _ = ensemble_run("jobs: [{name: a, command: sleep 1}]\nrules: []\n", clock)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(run.run()))
    thread.start()
    wait_for(lambda: clock.waiter_count, 5, "the run to wait on the clock")
    assert clock.waiter_count == 1
    run.stop()
    thread.join(timeout=5)
    assert result == [False]


@pytest.mark.parametrize("text, message", [
    ("jobs: []\nrules: [{trigger: start, action: {name: grow}}]\n",
     r"ensemble.yaml.rules\[0\].action.name: grow needs the ensemble service address "
     r"\(--service HOST:PORT\)"),
    ("jobs: []\nrules: [{trigger: job-success, action: {name: terminate}}]\n",
     r"ensemble.yaml.rules\[0\].trigger: job-success is not supported"),
    ("jobs: []\nrules: [{trigger: metric, name: count.a.success, when: about 3, "
     "action: {name: terminate}}]\n",
     r"ensemble.yaml.rules\[0\].when: must be a number \(equality\) or a string"),
])
def test_a_bad_ensemble_yaml_is_refused_naming_the_field(clock: SteppingClock, text: str,
                                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ensemble_run(text, clock)


def test_the_run_keeps_every_metric_model_ensemble_python_does() -> None:
    assert sorted(KEPT_MODELS) == sorted(METRIC_MODELS)


def test_an_iqr_rule_fires_as_in_ensemble_python(clock: SteppingClock) -> None:
    """Three jobs in turn on one node wait 0, 5 and 10 s: river's IQR of those is 10 - 0."""
    text = """
jobs:
  - {name: a, command: sleep 5, count: 3}
rules:
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: metric, name: iqr.a-pending, when: ">= 10", action: {name: terminate}}
"""
    run, _ = ensemble_run(text, clock)
    assert run.run(until=100) is True
    assert [(f.at, f.action) for f in run.fired] == [(0.0, "submit"), (10.0, "terminate")]


@pytest.mark.parametrize("target, name, message", [
    ("localhost", "ensemble-0", "service address: expected HOST:PORT, got 'localhost'"),
    (":50051", "ensemble-0", "service address: expected HOST:PORT"),
    ("127.0.0.1:50051", "", "name: the MiniCluster name is required"),
])
def test_action_client_refuses_a_bad_address_or_name(target: str, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ActionClient(target, name)


def test_a_submit_naming_no_job_group_ends_the_run_when_it_fires(clock: SteppingClock) -> None:
    """ensemble-python loads such a rule (the validator warns) and fails when it fires."""
    run, _ = ensemble_run("jobs: []\nrules: [{trigger: start, action: {name: submit, label: ghost}}]\n", clock)
    with pytest.raises(ValueError, match='job with name "ghost" is not known'):
        run.run(until=1)
