"""ActionRunner: algorithm decisions carried out off the reconcile workers, outcomes handed back."""
from __future__ import annotations

import threading

import pytest

from controller.kube.errors import ApiError
from controller.kube.resources import MINICLUSTERS, Resource
from controller.reconcilers.action_records import Intent
from controller.reconcilers.action_runner import ActionJob, ActionRunner
from controller.runtime.reconcile import Request
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import Decision, Outcome
from tests.fakes import FakeClock
from tests.helpers import wait_for
from tests.unit.fakes.reconciler import FakeRecorder

REQUEST = Request("ns", "e1")
ENSEMBLE: dict = {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": "e1", "namespace": "ns", "uid": "uid-e1"}}
ADDRESS = "10.0.0.5:7000"


class FakeScaler:
    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.requests: list[ScaleRequest] = []

    def scale(self, request: ScaleRequest) -> Decision:
        self.requests.append(request)
        before = self.sizes[request.name]
        self.sizes[request.name] = before + request.delta
        return Decision(Outcome.SUCCESS, {"from": before, "to": self.sizes[request.name]})


class Scalers:
    """The scaler factory: counts the scalers made, one per (namespace, ensemble) expected."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []
        self.sizes = {"e1-0": 2, "e1-1": 1}

    def __call__(self, name: str, namespace: str) -> FakeScaler:
        self.made.append((namespace, name))
        return FakeScaler(self.sizes)


class FakeMembers:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, dict]] = []

    def request(self, address: str, member: str, action: str, payload: dict) -> dict:
        self.requests.append((address, member, action, payload))
        return {"submitted": list(range(payload.get("count", 0)))} if action == "submit" else payload


class FakeDeleter:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str, dict | None]] = []
        self.error: Exception | None = None

    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = "Background", preconditions: dict | None = None) -> dict | None:
        if self.error is not None:
            raise self.error
        self.deleted.append((res.kind, name, preconditions))
        return {"kind": "Status", "status": "Success"}


class Env:
    def __init__(self) -> None:
        self.scalers, self.members, self.client, self.events = Scalers(), FakeMembers(), FakeDeleter(), FakeRecorder()
        self.enqueued: list[Request] = []
        self.runner = ActionRunner(client=self.client, scalers=self.scalers, members=self.members,
                                   events=self.events, on_outcome=self.enqueued.append)

    def drain(self) -> int:
        """Run the queued jobs in this thread, as a worker would; how many ran."""
        ran = 0
        while self.runner.process_next(block=False):
            ran += 1
        return ran


def job(member: str, *intents: Intent, request: Request = REQUEST, address: str | None = ADDRESS) -> ActionJob:
    ensemble = {**ENSEMBLE, "metadata": {**ENSEMBLE["metadata"], "name": request.name}}
    return ActionJob(request, ensemble, member, intents, address)


GROW = Intent("grow", 1_700_000_000.0, 1, "3 jobs pending")
SUBMIT = Intent("submit", 1_700_000_000.0, 2, group="a")
DELETE = Intent("delete", 1_700_000_000.0, uid="uid-mc")
TERMINATE = Intent("terminate", 1_700_000_000.0)


def test_a_job_runs_off_the_reconcile_and_its_outcome_comes_back_once_through_the_queue() -> None:
    env = Env()
    env.runner.submit(job("e1-0", GROW))
    assert env.runner.holds(REQUEST, "e1-0") and not env.runner.holds(REQUEST, "e1-1")
    assert env.members.requests == [] and env.enqueued == []  # nothing ran on the submitting thread
    assert env.drain() == 1
    assert env.enqueued == [REQUEST]
    assert env.members.requests == [(ADDRESS, "e1-0", "resize", {"nodes": 3})]
    assert env.runner.holds(REQUEST, "e1-0")  # until the reconcile took the outcome
    (outcome,) = env.runner.take_outcomes(REQUEST)
    ((intent, taken),) = outcome.taken
    assert taken is not None
    assert (outcome.member, intent, taken.amount, outcome.error) == ("e1-0", GROW, 1, None)
    assert [reason for _, reason, _ in env.events.events] == ["ScaledUp"]
    assert env.runner.take_outcomes(REQUEST) == [] and not env.runner.holds(REQUEST, "e1-0")


def test_one_scaler_serves_every_action_of_an_ensemble_until_it_is_forgotten() -> None:
    env = Env()
    for member in ("e1-0", "e1-1", "e1-0"):
        env.runner.submit(job(member, GROW))
    env.runner.submit(job("e2-0", GROW, request=Request("ns", "e2")))
    env.scalers.sizes["e2-0"] = 1
    assert env.drain() == 4
    assert env.scalers.made == [("ns", "e1"), ("ns", "e2")]
    assert env.scalers.sizes == {"e1-0": 4, "e1-1": 2, "e2-0": 2}
    env.runner.forget(REQUEST)
    env.runner.submit(job("e1-0", GROW))
    env.drain()
    assert env.scalers.made == [("ns", "e1"), ("ns", "e2"), ("ns", "e1")]


def test_a_jobs_intents_run_in_order_and_an_error_stops_it_leaving_the_rest_untried() -> None:
    env = Env()
    env.client.error = ApiError(500, "InternalError", "etcd timeout")
    env.runner.submit(job("e1-0", DELETE, TERMINATE, address=None))
    env.drain()
    (outcome,) = env.runner.take_outcomes(REQUEST)
    assert outcome.taken == () and isinstance(outcome.error, ApiError)
    assert env.events.events == []  # terminate was never tried
    env.client.error = None
    env.runner.submit(job("e1-0", DELETE, TERMINATE, address=None))
    env.drain()
    (outcome,) = env.runner.take_outcomes(REQUEST)
    assert [intent for intent, _ in outcome.taken] == [DELETE, TERMINATE] and outcome.error is None
    assert env.client.deleted == [(MINICLUSTERS.kind, "e1-0", {"uid": "uid-mc"})]
    assert [reason for _, reason, _ in env.events.events] == ["MiniClusterDeleted", "Terminated"]


def test_an_action_that_changed_nothing_comes_back_as_none() -> None:
    env = Env()
    env.runner.submit(job("e1-0", SUBMIT, address=None))  # no lead broker: a failure, not a raise
    env.drain()
    (outcome,) = env.runner.take_outcomes(REQUEST)
    assert outcome.taken == ((SUBMIT, None),) and outcome.error is None
    ((kind, reason, message),) = env.events.events
    assert (kind, reason) == ("Warning", "AlgorithmActionFailed") and "no serving lead broker" in message


def test_forgetting_an_ensemble_drops_its_queued_jobs_and_outcomes() -> None:
    env = Env()
    env.runner.submit(job("e1-0", GROW))
    env.runner.submit(job("e2-0", SUBMIT, request=Request("ns", "e2")))
    env.runner.forget(REQUEST)
    assert not env.runner.holds(REQUEST, "e1-0")
    assert env.drain() == 1
    assert env.enqueued == [Request("ns", "e2")] and env.scalers.made == []


def test_worker_threads_carry_out_jobs_and_stop_drops_the_queued_ones() -> None:
    env = Env()
    done = threading.Event()
    env.runner.on_outcome = lambda request: done.set()
    env.runner.start()
    try:
        env.runner.submit(job("e1-0", SUBMIT))
        assert done.wait(10), "no outcome from the worker threads"
        assert env.members.requests == [(ADDRESS, "e1-0", "submit", {"group": "a", "count": 2})]
        assert len(env.runner.take_outcomes(REQUEST)) == 1
    finally:
        env.runner.stop()
    assert env.runner.stopped
    env.runner.submit(job("e1-0", GROW))
    assert not env.runner.holds(REQUEST, "e1-0") and not env.runner.process_next(block=False)
    assert env.scalers.made == []


class GatedMembers(FakeMembers):
    """A member endpoint that answers only once the test opens the gate (a slow resize)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def request(self, address: str, member: str, action: str, payload: dict) -> dict:
        self.entered.release()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().request(address, member, action, payload)


def gated_runner(clock: FakeClock, grace: float) -> tuple[ActionRunner, GatedMembers, list[Request]]:
    members, enqueued = GatedMembers(), list[Request]()
    runner = ActionRunner(client=FakeDeleter(), scalers=Scalers(), members=members, events=FakeRecorder(),
                          on_outcome=enqueued.append, workers=1, clock=clock, stop_grace=grace)
    return runner, members, enqueued


def draining(runner: ActionRunner) -> threading.Thread:
    thread = threading.Thread(target=runner.drain, daemon=True)
    thread.start()
    return thread


def test_a_graceful_stop_finishes_the_running_job_and_the_queued_ones_and_accepts_no_new_one() -> None:
    clock = FakeClock()
    runner, members, enqueued = gated_runner(clock, grace=20.0)
    runner.start()
    runner.submit(job("e1-0", SUBMIT))
    assert members.entered.acquire(timeout=10)  # the first job is in progress
    runner.submit(job("e1-1", SUBMIT))
    drain = draining(runner)
    wait_for(lambda: runner.stopped, 10, "the drain to close the runner")
    runner.submit(job("e1-0", GROW))  # decided while draining: dropped, its records left pending
    members.gate.set()
    drain.join(10)
    assert not drain.is_alive()
    runner.stop()
    assert [member for _, member, _, _ in members.requests] == ["e1-0", "e1-1"]
    assert enqueued == [REQUEST, REQUEST]
    assert [outcome.member for outcome in runner.take_outcomes(REQUEST)] == ["e1-0", "e1-1"]


def test_a_graceful_stop_waits_at_most_its_grace_period_then_leaves_the_queued_jobs() -> None:
    clock = FakeClock()
    runner, members, enqueued = gated_runner(clock, grace=20.0)
    runner.start()
    runner.submit(job("e1-0", SUBMIT))
    assert members.entered.acquire(timeout=10)
    runner.submit(job("e1-1", SUBMIT))
    drain = draining(runner)
    wait_for(lambda: clock.waiter_count == 1, 10, "the drain to wait on the clock")
    clock.step(19.0)
    wait_for(lambda: clock.waiter_count == 1 and clock.waits_begun >= 2, 10, "the drain to wait again")
    assert drain.is_alive()  # within its grace period
    clock.step(1.0)
    drain.join(10)
    assert not drain.is_alive()  # the grace period is over, the first job still running
    members.gate.set()
    runner.stop()  # the running job finishes; the queued one is dropped
    assert [member for _, member, _, _ in members.requests] == ["e1-0"]
    assert [outcome.member for outcome in runner.take_outcomes(REQUEST)] == ["e1-0"]


def test_draining_a_runner_that_never_started_returns_at_once() -> None:
    clock = FakeClock()
    runner, members, _ = gated_runner(clock, grace=20.0)
    runner.submit(job("e1-0", SUBMIT))
    runner.drain()  # no worker would run it: nothing to wait for
    assert runner.stopped and members.requests == []


def test_a_runner_without_workers_is_refused() -> None:
    env = Env()
    with pytest.raises(ValueError, match="workers: must be >= 1"):
        ActionRunner(client=env.client, scalers=env.scalers, members=env.members, events=env.events, workers=0)
