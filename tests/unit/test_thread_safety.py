"""Shared state between informer, reconcile, poll and gRPC threads: deterministic races.

Threads are ordered with Events (gates), never with sleeps.
"""
from __future__ import annotations

import json
import threading

import grpc

from tests.fakes import FakeClock
from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.reconcilers.poller import PollKey, PollTarget, StatusPoller
from tests.helpers import wait_for
from tests.unit.test_poller import STATUS, Results, serve  # noqa: F401  (serve: fixture)

WAIT = 5.0
KEY: PollKey = ("ns", "ens", "ens-0")


class GatedMember(pb_grpc.EnsembleOperatorServicer):
    """Call n waits for ``gates[n]``; call 0 answers ERROR, later calls SUCCESS."""

    def __init__(self, calls: int) -> None:
        self.gates = [threading.Event() for _ in range(calls)]
        self.started = [threading.Event() for _ in range(calls)]
        self.finished = [threading.Event() for _ in range(calls)]
        self._count = 0
        self._lock = threading.Lock()

    def RequestStatus(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.Response:
        with self._lock:
            n = self._count
            self._count += 1
        self.started[n].set()
        try:
            self.gates[n].wait(WAIT)
            if n == 0:
                return pb.Response(payload="broker restarting", status=pb.Response.ERROR)
            return pb.Response(payload=json.dumps(STATUS), status=pb.Response.SUCCESS)
        finally:
            self.finished[n].set()


def test_poll_in_flight_from_a_previous_registration_is_dropped(serve, registry) -> None:
    """Unregister + register (the lead broker went unready and came back) while a poll is in
    flight: that poll's answer belongs to the old registration. Delivered, it reported a stale
    failure and cleared ``in_flight`` under the new registration's poll, whose schedule it
    then overwrote."""
    clock = FakeClock()
    member = GatedMember(2)
    results = Results()
    poller = StatusPoller(clock=clock, registry=registry, on_result=results, retry_backoff=0.0)
    try:
        address = serve(member)
        poller.register(PollTarget(KEY, address, heartbeat=10))
        poller.start()
        assert member.started[0].wait(WAIT)
        poller.unregister(KEY)
        poller.register(PollTarget(KEY, address, heartbeat=10))
        assert member.started[1].wait(WAIT), "the new registration polls at once"
        member.gates[0].set()  # the old poll answers first (a failure)
        assert member.finished[0].wait(WAIT)
        wait_for(lambda: registry.get_sample_value("ensemble_member_polls_total", {"result": "error"}),
                 WAIT, "the old poll to be counted")
        member.gates[1].set()
        _, first = results.next()
        assert first.ok, f"a stale result from the previous registration was delivered: {first}"
        assert first.consecutive_failures == 0
        assert poller.next_poll_at(KEY) == clock.now() + 10
    finally:
        for gate in member.gates:
            gate.set()
        poller.stop()


def test_an_unforeseen_answer_does_not_strand_the_target_in_flight(serve, registry) -> None:
    """A poll that raised anything but a poll failure (here a result code this build does not
    know) ended its pool thread's task silently, leaving ``in_flight`` set: the member was
    never polled again and no result said why."""
    from tests.unit.test_poller import Member

    clock = FakeClock()
    results = Results()
    poller = StatusPoller(clock=clock, registry=registry, on_result=results, retry_backoff=0.0)
    try:
        poller.register(PollTarget(KEY, serve(Member(status=99)), heartbeat=10))
        poller.start()
        _, result = results.next()
        assert not result.ok and result.consecutive_failures == 1
        assert "99" in (result.error or "")
        assert poller.next_poll_at(KEY) is not None, "the target is scheduled again"
    finally:
        poller.stop()


def test_a_poll_that_raises_is_a_failed_result(registry) -> None:
    """Any exception out of one poll (here the channel factory's) is a failed result with its
    cause, and the target keeps its schedule."""
    def broken_factory(address: str) -> grpc.Channel:
        raise RuntimeError("no channel for you")

    clock = FakeClock()
    results = Results()
    poller = StatusPoller(clock=clock, registry=registry, on_result=results, channel_factory=broken_factory)
    try:
        poller.register(PollTarget(KEY, "127.0.0.1:1", heartbeat=10))
        poller.start()
        _, result = results.next()
        assert not result.ok and "RuntimeError: no channel for you" in (result.error or "")
        assert poller.next_poll_at(KEY) is not None
    finally:
        poller.stop()


def test_a_leader_runnable_is_not_stopped_while_it_is_still_starting() -> None:
    """Leader runnables start on the leader-election thread. A shutdown meanwhile called
    ``stop()`` on one whose ``start()`` had not returned (the status poller's stop then
    joined a thread not started yet, raised, and left its pool and channels open), and the
    start then went on after the stop."""
    from tests.unit.test_reconciler_algorithms_runnables import GatedElector, new_manager, run_in_thread

    log: list[str] = []

    class SlowStart:
        def __init__(self) -> None:
            self.entered = threading.Event()
            self.stop_called = threading.Event()

        def start(self) -> None:
            self.entered.set()
            # Bounded, in real time: a stop arriving within it is the defect shown.
            self.stop_called.wait(0.3)
            log.append("started")

        def stop(self) -> None:
            log.append("stopped")
            self.stop_called.set()

    manager, elector, runnable = new_manager(), GatedElector(), SlowStart()
    manager.elector = elector  # type: ignore[assignment]
    manager.add_runnable(runnable)
    thread = run_in_thread(manager)
    elector.gate.set()
    assert runnable.entered.wait(WAIT)
    manager.stop()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert log == ["started", "stopped"]


def test_a_channel_leased_after_the_cache_closed_is_closed_after_its_call() -> None:
    """Reconcile workers share the poller's channels (member actions) and still run while the
    manager drains, after the poller stopped and closed its channels: a lease then dialled a
    channel that was stored in the closed cache and never closed."""
    from controller.reconcilers.poller import ChannelCache
    from tests.unit.test_poller import RecordingChannels

    factory = RecordingChannels()
    cache = ChannelCache(FakeClock(), 60.0, factory)
    cache.close()
    with cache.lease("127.0.0.1:1"):
        assert factory.closed == []  # not under a call
    assert factory.closed == ["127.0.0.1:1"]
    assert len(cache) == 0
