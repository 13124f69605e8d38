"""Leader election state machine on a fake lease store and a FakeClock."""
from __future__ import annotations

import threading

import pytest

from tests.fakes import FakeClock
from controller.kube.errors import ApiError
from controller.kube.resources import LEASES
from controller.runtime.leader import (KubeLeaseStore, LeaderElectionRecord, LeaderElector,
                                       micro_time)
from tests.helpers import wait_for, wait_for_waiters

WAIT = 5.0  # real-time bound on waiting for the elector thread


class FakeLeaseStore:
    """In-memory lease with resourceVersion checks like the API server's."""

    def __init__(self) -> None:
        self.record: LeaderElectionRecord | None = None
        self.version = 0
        self.fail_with: Exception | None = None
        self.lock = threading.Lock()
        self.reads = 0

    def get(self):
        with self.lock:
            self.reads += 1
            if self.fail_with:
                raise self.fail_with
            return None if self.record is None else (self.record, str(self.version))

    def create(self, record: LeaderElectionRecord) -> None:
        with self.lock:
            if self.record is not None:
                raise ApiError(409, "AlreadyExists", "lease exists")
            self.record, self.version = record, self.version + 1

    def update(self, record: LeaderElectionRecord, resource_version: str) -> None:
        with self.lock:
            if resource_version != str(self.version):
                raise ApiError(409, "Conflict", "the object has been modified")
            self.record, self.version = record, self.version + 1


@pytest.fixture
def store() -> FakeLeaseStore:
    return FakeLeaseStore()


def elector(store, clock, identity: str) -> LeaderElector:
    return LeaderElector(store, identity, clock, rand=lambda: 0.0)


def test_first_candidate_creates_the_lease_and_leads(store, clock):
    a = elector(store, clock, "a")
    assert a.try_acquire_or_renew() and a.is_leader
    assert store.record.holder_identity == "a"
    assert store.record.lease_duration_seconds == 15
    assert store.record.leader_transitions == 0
    assert store.record.acquire_time == micro_time(clock.wall())


def test_other_candidate_waits_a_full_lease_duration_after_last_seeing_a_change(store, clock):
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()   # b first sees the record now
    clock.step(14.9)
    assert not b.try_acquire_or_renew() and not b.is_leader
    clock.step(0.2)
    assert b.try_acquire_or_renew() and b.is_leader
    assert store.record.holder_identity == "b"
    assert store.record.leader_transitions == 1


def test_renewals_keep_the_lease_and_reset_the_others_expiry(store, clock):
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    acquired_at = store.record.acquire_time
    b.try_acquire_or_renew()
    clock.step(10)
    assert a.try_acquire_or_renew()
    clock.step(10)   # 20 s since b first saw the lease, 10 s since it changed
    assert not b.try_acquire_or_renew()
    assert store.record.holder_identity == "a"
    assert store.record.acquire_time == acquired_at
    assert store.record.renew_time == micro_time(clock.wall() - 10)


def test_a_released_lease_is_taken_at_once(store, clock):
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    assert a.release()
    assert store.record.holder_identity == "" and not a.is_leader
    assert b.try_acquire_or_renew()
    assert store.record.leader_transitions == 1


def test_release_does_nothing_when_someone_else_holds_the_lease(store, clock):
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    assert not b.release()
    assert store.record.holder_identity == "a"


def test_a_stale_resource_version_loses_the_race(store, clock):
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    a.release()
    real_get = store.get

    def get_then_b_wins():
        seen = real_get()
        b.try_acquire_or_renew()   # b updates between a's read and a's write
        return seen

    store.get = get_then_b_wins
    assert not a.try_acquire_or_renew()
    assert store.record.holder_identity == "b"


def test_store_errors_are_a_failed_attempt_not_a_crash(store, clock):
    a = elector(store, clock, "a")
    store.fail_with = ApiError(503, "ServiceUnavailable", "etcd down")
    assert not a.try_acquire_or_renew()
    assert not a.release()


def test_timing_must_leave_room_for_renewal(store, clock):
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderElector(store, "a", clock, lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(store, "", clock)


def step_until(clock: FakeClock, store: FakeLeaseStore, done, seconds: float) -> bool:
    """Step fake time by ``seconds`` each time the elector parks, until ``done()``.

    After each step, wait for the elector's next lease read so every step is one retry.
    """
    for _ in range(100):
        wait_for(lambda: clock.waiter_count or done(), WAIT, "the elector to wait on the clock, or be done",
                 interval=0.001)
        if done():
            return True
        reads = store.reads
        clock.step(seconds)
        wait_for(lambda: store.reads > reads or done(), WAIT, "the elector's next lease read, or be done",
                 interval=0.001)
    return done()


def run_until_leading(candidate: LeaderElector) -> tuple[threading.Thread, list[bool]]:
    """Start ``candidate.run`` in a thread and return once it leads; ``run``'s result lands in the list."""
    started = threading.Event()
    outcome: list[bool] = []
    runner = threading.Thread(target=lambda: outcome.append(candidate.run(started.set)))
    runner.start()
    assert started.wait(5)
    return runner, outcome


def test_run_leads_then_reports_loss_when_renewals_fail_past_the_deadline(store, clock):
    runner, outcome = run_until_leading(elector(store, clock, "a"))
    renewed_before = store.version
    assert step_until(clock, store, lambda: store.version > renewed_before + 1, 2)   # renewing
    store.fail_with = ApiError(500, "InternalError", "etcd timeout")
    lost_at = clock.now()
    assert step_until(clock, store, lambda: bool(outcome), 2)
    runner.join(5)
    assert outcome == [True]
    assert 10 <= clock.now() - lost_at <= 12   # the renew deadline, not the lease duration


def test_a_renewal_hanging_past_the_renew_deadline_loses_the_lease(store, clock):
    # A read on a dead keep-alive connection answers only at the client's 60 s read timeout;
    # by then the lease has expired and a standby leads. client-go cancels the attempt at
    # the renew deadline, so the leader stops before anyone may take over.
    a = elector(store, clock, "a")
    runner, outcome = run_until_leading(a)
    answer = threading.Event()
    hung_reads = []
    real_get = store.get

    def hanging_get():
        hung_reads.append(clock.now())
        answer.wait(WAIT)
        return real_get()

    store.get = hanging_get
    try:
        leading_since = clock.now()
        wait_for_waiters(clock, 1)
        clock.step(2)   # the next renewal starts, and hangs
        wait_for(lambda: hung_reads, WAIT, "the renewal's lease read")
        wait_for_waiters(clock, 1)
        clock.step(8)   # the renew deadline passes while the read still hangs
        wait_for(lambda: outcome, WAIT, "run to report the lease lost")
        assert outcome == [True]
        assert clock.now() - leading_since == 10
    finally:
        answer.set()
        a.stop()
        runner.join(WAIT)


def test_run_stops_when_another_holder_takes_over(store, clock):
    a = elector(store, clock, "a")
    runner, outcome = run_until_leading(a)
    with store.lock:   # someone forced the lease away (e.g. an admin edit)
        store.record = LeaderElectionRecord("intruder", 15, "t", "t", 1)
        store.version += 1
    assert step_until(clock, store, lambda: bool(outcome), 2)
    runner.join(5)
    assert outcome == [True] and not a.is_leader


def test_stop_while_waiting_to_acquire_returns_without_leading(store, clock):
    elector(store, clock, "a").try_acquire_or_renew()
    b = elector(store, clock, "b")
    called = threading.Event()
    outcome: list[bool] = []
    runner = threading.Thread(target=lambda: outcome.append(b.run(called.set)))
    runner.start()
    assert wait_for(lambda: clock.waiter_count, WAIT, "b to wait on the clock for the lease")
    b.stop()
    runner.join(5)
    assert outcome == [False] and not called.is_set()


def test_waiting_candidate_takes_over_after_the_leader_stops_renewing(store, clock):
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    leading = threading.Event()
    runner = threading.Thread(target=lambda: b.run(leading.set))
    runner.start()
    assert step_until(clock, store, leading.is_set, 2)
    assert store.record.holder_identity == "b"
    b.stop()
    runner.join(5)
    assert not runner.is_alive()


class FakeClient:
    def __init__(self, lease: dict | None) -> None:
        self.lease = lease
        self.calls: list[tuple] = []

    def get_or_none(self, res, name, namespace=None):
        self.calls.append(("get", res, name, namespace))
        return self.lease

    def create(self, res, obj, namespace=None):
        self.calls.append(("create", res, obj, namespace))
        return obj

    def replace(self, res, obj, *, subresource=None):
        self.calls.append(("replace", res, obj))
        return obj


def test_kube_lease_store_reads_and_writes_coordination_v1_leases():
    client = FakeClient(None)
    store = KubeLeaseStore(client, "ops", "ensemble-operator")
    assert store.get() is None
    record = LeaderElectionRecord("a", 15, "2026-01-01T00:00:00.000000Z",
                                  "2026-01-01T00:00:02.000000Z", 3)
    store.create(record)
    _, res, body, namespace = client.calls[-1]
    assert (res, namespace) == (LEASES, "ops")
    assert body["apiVersion"] == "coordination.k8s.io/v1" and body["kind"] == "Lease"
    assert body["spec"] == {"holderIdentity": "a", "leaseDurationSeconds": 15,
                            "acquireTime": "2026-01-01T00:00:00.000000Z",
                            "renewTime": "2026-01-01T00:00:02.000000Z", "leaseTransitions": 3}
    store.update(record, "42")
    assert client.calls[-1][2]["metadata"] == {"name": "ensemble-operator", "namespace": "ops",
                                               "resourceVersion": "42"}
    client.lease = {"metadata": {"resourceVersion": "7"}, "spec": body["spec"]}
    assert store.get() == (record, "7")


def test_kube_lease_store_passes_other_errors_on():
    client = FakeClient(None)
    client.get_or_none = lambda *a, **k: (_ for _ in ()).throw(ApiError(403, "Forbidden", "no rbac"))
    with pytest.raises(ApiError, match="no rbac"):
        KubeLeaseStore(client, "ops", "x").get()


def test_micro_time_is_rfc3339_with_microseconds():
    assert micro_time(1_700_000_000.5) == "2023-11-14T22:13:20.500000Z"
