"""The status poller, both flavours: every test that makes a poller runs with the thread-pool
``StatusPoller`` and with the asyncio ``AsyncStatusPoller`` (the ``poller_class`` fixture)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc import aio
from prometheus_client import CollectorRegistry

from localcluster import free_port
from tests.fakes import FakeClock
from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.reconcilers.aiopoller import AsyncStatusPoller, aio_insecure_channel
from controller.reconcilers.poller import (
    ChannelCache, PollKey, PollResult, PollTarget, StatusPoller, poll_channel,
)
from controller.workqueue.deadlines import Deadlines
from tests.helpers import wait_for

STATUS = {
    "nodes": {"node_cores_free": 4, "node_cores_up": 8, "node_up_count": 2, "node_free_count": 1},
    "queue": {"new": 0, "depend": 0, "priority": 0, "sched": 3, "run": 1, "cleanup": 0, "inactive": 5},
    "waiting": {"2": 3},
    "nextJobs": [],
}
WAIT = 5.0  # real-time bound on waiting for a background result


class Member(pb_grpc.EnsembleOperatorServicer):
    """A lead broker stand-in that counts calls and can hold them or fail them."""

    def __init__(self, payload: str = json.dumps(STATUS), status: int = pb.Response.SUCCESS) -> None:
        self.payload = payload
        self.status = status
        self.names: list[str] = []
        self.gate: threading.Event | None = None
        self.unavailable_first = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def RequestStatus(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.Response:
        with self._lock:
            self.names.append(request.name)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            fail = self.unavailable_first > 0
            self.unavailable_first -= 1
        try:
            if fail:
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            if self.gate is not None:
                self.gate.wait(WAIT)
            return pb.Response(payload=self.payload, status=self.status)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    servers: list[grpc.Server] = []

    def start(member: Member, port: int = 0) -> str:
        server = grpc.server(ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_EnsembleOperatorServicer_to_server(member, server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{bound}"

    yield start
    for server in servers:
        server.stop(None)


class Results:
    """Collects on_result callbacks so a test can wait for the next one."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[PollKey, PollResult]] = queue.Queue()

    def __call__(self, key: PollKey, result: PollResult) -> None:
        self._queue.put((key, result))

    def next(self) -> tuple[PollKey, PollResult]:
        return self._queue.get(timeout=WAIT)


@pytest.fixture
def schedule() -> Deadlines[PollKey]:
    """The poller's schedule (``make_poller`` passes it): ``schedule.at(key)`` is the clock time of
    key's next poll, None while one is in flight or once unregistered."""
    return Deadlines()


@pytest.fixture(params=[StatusPoller, AsyncStatusPoller], ids=["threads", "asyncio"])
def poller_class(request: pytest.FixtureRequest) -> type[StatusPoller]:
    return request.param


@pytest.fixture
def make_poller(clock: FakeClock, registry: CollectorRegistry, schedule: Deadlines[PollKey],
                poller_class: type[StatusPoller]) -> Iterator[Callable[..., StatusPoller]]:
    pollers: list[StatusPoller] = []

    def make(**kwargs: object) -> StatusPoller:
        options: dict = {"clock": clock, "registry": registry, "retry_backoff": 0.0, "call_timeout": 2.0,
                         "schedule": schedule}
        options.update(kwargs)
        poller = poller_class(**options)
        pollers.append(poller)
        return poller

    yield make
    for poller in pollers:
        poller.stop()


KEY: PollKey = ("ns", "ens", "ens-0")


def polls(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("ensemble_member_polls_total", {"result": result}) or 0.0


def test_success_returns_status_and_counts(make_poller, serve, registry, clock) -> None:
    member = Member()
    address = serve(member)
    results = make_poller().poll([PollTarget(KEY, address)])
    result = results[KEY]
    assert result.ok and result.status == STATUS and result.error is None
    assert result.consecutive_failures == 0 and result.address == address
    assert result.time == clock.wall()
    assert member.names == ["ens-0"]
    assert polls(registry, "ok") == 1
    assert registry.get_sample_value("ensemble_member_poll_latency_seconds_count") == 1


@pytest.mark.parametrize(
    ("member", "outcome", "message"),
    [
        (Member(status=pb.Response.ERROR, payload="no flux"), "error", "member answered ERROR"),
        (Member(payload="{not json"), "invalid", "not valid JSON"),
        (Member(payload=json.dumps({"queue": {"sched": -1}})), "invalid", "status.queue.sched"),
        # the member's server sends without limit; our channel refuses more than 64 KiB
        (Member(payload=json.dumps({**STATUS, "pad": "x" * 70_000})), "invalid", "RESOURCE_EXHAUSTED"),
    ],
)
def test_bad_answers_are_failures(make_poller, serve, registry, member, outcome, message) -> None:
    result = make_poller().poll([PollTarget(KEY, serve(member))])[KEY]
    assert not result.ok and result.status is None
    assert message in (result.error or "")
    assert result.consecutive_failures == 1
    assert polls(registry, outcome) == 1


def test_deadline_exceeded_frees_the_worker(make_poller, serve, registry) -> None:
    slow, fast = Member(), Member()
    slow.gate = threading.Event()
    poller = make_poller(max_workers=1, call_timeout=0.2)
    try:
        slow_result = poller.poll([PollTarget(KEY, serve(slow))])[KEY]
    finally:
        slow.gate.set()
    assert not slow_result.ok and "DEADLINE_EXCEEDED" in (slow_result.error or "")
    assert polls(registry, "timeout") == 1
    other = ("ns", "ens", "ens-1")
    assert poller.poll([PollTarget(other, serve(fast))])[other].ok


def test_unavailable_is_retried_within_one_poll(make_poller, serve) -> None:
    member = Member()
    member.unavailable_first = 1
    result = make_poller(attempts=2).poll([PollTarget(KEY, serve(member))])[KEY]
    assert result.ok
    assert member.names == ["ens-0", "ens-0"]


def test_consecutive_failures_accumulate_and_reset(make_poller, serve) -> None:
    port = free_port()
    poller = make_poller(attempts=1)
    target = PollTarget(KEY, f"127.0.0.1:{port}")
    assert [poller.poll([target])[KEY].consecutive_failures for _ in range(3)] == [1, 2, 3]
    serve(Member(), port)
    recovered = poller.poll([target])[KEY]
    assert recovered.ok and recovered.consecutive_failures == 0


def test_background_polls_once_per_heartbeat(make_poller, serve, clock, schedule) -> None:
    member = Member()
    results = Results()
    poller = make_poller(on_result=results)
    poller.register(PollTarget(KEY, serve(member), heartbeat=10))
    start = clock.now()
    poller.start()
    key, first = results.next()
    assert key == KEY and first.ok
    assert schedule.at(KEY) == start + 10
    poller.register(PollTarget(KEY, first.address, heartbeat=10))  # idempotent: no extra poll
    assert schedule.at(KEY) == start + 10
    clock.step(10)
    assert results.next()[1].ok
    assert member.names == ["ens-0", "ens-0"]
    poller.unregister(KEY)
    assert schedule.at(KEY) is None


def test_unreachable_backs_off_then_recovers(make_poller, serve, clock, registry, schedule) -> None:
    port = free_port()
    results = Results()
    poller = make_poller(on_result=results, attempts=1)
    poller.register(PollTarget(KEY, f"127.0.0.1:{port}", heartbeat=10))
    poller.start()
    _, first = results.next()
    assert not first.ok and "UNAVAILABLE" in (first.error or "") and first.consecutive_failures == 1
    assert schedule.at(KEY) == clock.now() + 20
    clock.step(20)
    _, second = results.next()
    assert not second.ok and second.consecutive_failures == 2
    assert polls(registry, "unreachable") == 2
    assert schedule.at(KEY) == clock.now() + 40
    serve(Member(), port)
    clock.step(40)
    _, recovered = results.next()
    assert recovered.ok and recovered.consecutive_failures == 0
    assert schedule.at(KEY) == clock.now() + 10


def test_backoff_is_capped(make_poller, clock, schedule) -> None:
    results = Results()
    poller = make_poller(on_result=results, attempts=1, max_backoff=30)
    poller.register(PollTarget(KEY, f"127.0.0.1:{free_port()}", heartbeat=10))
    poller.start()
    results.next()
    clock.step(20)
    results.next()
    assert schedule.at(KEY) == clock.now() + 30


def test_ip_change_retargets_at_once(make_poller, serve, clock) -> None:
    old, new = Member(), Member()
    results = Results()
    poller = make_poller(on_result=results)
    old_address, new_address = serve(old), serve(new)
    poller.register(PollTarget(KEY, old_address, heartbeat=10))
    poller.start()
    assert results.next()[1].address == old_address
    poller.register(PollTarget(KEY, new_address, heartbeat=10))
    _, moved = results.next()
    assert moved.ok and moved.address == new_address
    assert (old.names, new.names) == (["ens-0"], ["ens-0"])


def test_result_from_the_old_address_is_dropped(make_poller, serve) -> None:
    old, new = Member(), Member()
    old.gate = threading.Event()
    results = Results()
    poller = make_poller(on_result=results)
    old_address, new_address = serve(old), serve(new)
    poller.register(PollTarget(KEY, old_address, heartbeat=10))
    poller.start()
    wait_for(lambda: old.active, WAIT, "the call to the old address to be in flight")
    poller.register(PollTarget(KEY, new_address, heartbeat=10))  # while the old call is in flight
    old.gate.set()
    _, first = results.next()
    assert first.address == new_address
    assert new.names == ["ens-0"]


def test_callback_errors_do_not_stop_polling(make_poller, serve, clock) -> None:
    results = Results()
    calls = 0

    def flaky(key: PollKey, result: PollResult) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store unavailable")
        results(key, result)

    poller = make_poller(on_result=flaky)
    poller.register(PollTarget(KEY, serve(Member()), heartbeat=5))
    poller.start()
    # Step only once the first poll was delivered (and the next one scheduled 5 s after it):
    # stepped earlier, the first poll itself would start at +5 s and the next be due at +10 s.
    wait_for(lambda: calls == 1, WAIT, "the first result to reach the failing callback")
    clock.step(5)
    assert results.next()[1].ok
    assert calls == 2


class RecordingChannels:
    """A channel factory that records the addresses it dialled and the channels closed."""

    def __init__(self, dial: Callable[[str], Any] = grpc.insecure_channel) -> None:
        self.dial = dial
        self.opened: list[str] = []
        self.closed: list[str] = []

    def __call__(self, address: str) -> Any:
        self.opened.append(address)
        channel = self.dial(address)
        original_close = channel.close

        def close(*args: Any, **kwargs: Any) -> Any:
            self.closed.append(address)
            return original_close(*args, **kwargs)  # a grpc.aio channel's: a coroutine, awaited by the caller

        channel.close = close
        return channel


class PollChannels:
    """Where a poller's polls keep their channels: the thread pool's in ``channels`` (which member
    actions share), the asyncio poller's on its event loop in ``aio_channels``."""

    def __init__(self, poller_class: type[StatusPoller]) -> None:
        self.on_loop = issubclass(poller_class, AsyncStatusPoller)

    def recording(self) -> RecordingChannels:
        return RecordingChannels(aio_insecure_channel if self.on_loop else grpc.insecure_channel)

    def option(self, factory: Callable[[str], Any]) -> dict[str, Any]:
        """The constructor argument that makes the polls' channels."""
        return {"aio_channel_factory" if self.on_loop else "channel_factory": factory}

    @contextlib.contextmanager
    def met_down(self, address: str) -> Iterator[None]:
        """Holds open, for the block, a channel made as the poller makes its own that failed to
        reach ``address`` (its subchannel in reconnect backoff)."""
        request = pb.StatusRequest(name="ens")
        if not self.on_loop:
            with poll_channel(address) as channel:
                with pytest.raises(grpc.RpcError):
                    pb_grpc.EnsembleOperatorStub(channel).RequestStatus(request, timeout=WAIT)
                yield
            return
        async def dial() -> tuple[aio.Channel, grpc.RpcError | None]:
            channel = aio_insecure_channel(address)
            try:
                await pb_grpc.EnsembleOperatorStub(channel).RequestStatus(request, timeout=WAIT)
            except grpc.RpcError as failure:
                return channel, failure
            return channel, None

        loop = asyncio.new_event_loop()
        channel, failure = loop.run_until_complete(dial())
        try:
            assert failure is not None
            yield
        finally:
            loop.run_until_complete(channel.close())
            loop.close()

    def count(self, poller: StatusPoller) -> int:
        return len(poller.aio_channels) if isinstance(poller, AsyncStatusPoller) else len(poller.channels)

    def sweep(self, poller: StatusPoller) -> int:
        if isinstance(poller, AsyncStatusPoller):
            return poller.sweep_aio_channels()
        return poller.channels.sweep()


@pytest.fixture
def poll_channels(poller_class: type[StatusPoller]) -> PollChannels:
    return PollChannels(poller_class)


def test_idle_channel_is_closed(make_poller, serve, clock, poll_channels) -> None:
    factory = poll_channels.recording()
    poller = make_poller(channel_idle_seconds=60, **poll_channels.option(factory))
    address = serve(Member())
    poller.poll([PollTarget(KEY, address)])
    assert poll_channels.count(poller) == 1
    clock.step(59)
    assert poll_channels.sweep(poller) == 0 and factory.closed == []
    clock.step(1)
    assert poll_channels.sweep(poller) == 1 and factory.closed == [address]
    assert poll_channels.count(poller) == 0
    assert poller.poll([PollTarget(KEY, address)])[KEY].ok  # dials afresh
    assert factory.opened == [address, address]


def test_channel_in_use_is_not_closed_under_a_call(clock) -> None:
    factory = RecordingChannels()
    cache = ChannelCache(clock, idle_seconds=10, factory=factory)
    with cache.lease("127.0.0.1:1"):
        clock.step(100)
        assert cache.sweep() == 0
        cache.invalidate("127.0.0.1:1")
        assert factory.closed == []
    assert factory.closed == ["127.0.0.1:1"]
    assert len(cache) == 0


def test_channels_are_shared_per_address(make_poller, serve, poll_channels) -> None:
    factory = poll_channels.recording()
    poller = make_poller(**poll_channels.option(factory))
    address = serve(Member())
    targets = [PollTarget(("ns", "ens", f"ens-{i}"), address) for i in range(5)]
    assert all(result.ok for result in poller.poll(targets).values())
    assert factory.opened == [address] and poll_channels.count(poller) == 1


def test_an_unavailable_member_is_dialled_afresh(make_poller, serve, poll_channels) -> None:
    port = free_port()
    factory = poll_channels.recording()
    poller = make_poller(attempts=1, **poll_channels.option(factory))
    target = PollTarget(KEY, f"127.0.0.1:{port}")
    assert not poller.poll([target])[KEY].ok
    assert poll_channels.count(poller) == 0 and factory.closed == [target.address]
    serve(Member(), port)
    assert poller.poll([target])[KEY].ok
    assert len(factory.opened) == 2


def test_a_member_come_up_is_polled_despite_another_channels_backoff(make_poller, serve, poll_channels) -> None:
    """grpc shares a subchannel among channels with the same address and options by default: a poll
    must not inherit the reconnect backoff of another channel that met the member down."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    with poll_channels.met_down(address):
        serve(Member(), port)
        assert make_poller(attempts=1).poll([PollTarget(KEY, address)])[KEY].ok


def test_concurrency_is_bounded_by_the_pool(make_poller, serve) -> None:
    member = Member()
    member.gate = threading.Event()
    address = serve(member)
    poller = make_poller(max_workers=3)
    targets = [PollTarget(("ns", "ens", f"ens-{i}"), address) for i in range(8)]
    outcome: dict[PollKey, PollResult] = {}
    runner = threading.Thread(target=lambda: outcome.update(poller.poll(targets)))
    runner.start()
    wait_for(lambda: member.active >= 3, WAIT, "three calls in flight")
    member.gate.set()
    runner.join(WAIT)
    assert len(outcome) == 8 and all(result.ok for result in outcome.values())
    assert member.max_active == 3


@pytest.mark.parametrize(
    ("address", "heartbeat", "message"),
    [
        ("10.0.0.1", 10, "address must be host:port"),
        ("10.0.0.1:http", 10, "address must be host:port"),
        ("10.0.0.1:50051", 0, "heartbeat must be > 0"),
    ],
)
def test_target_validation(address: str, heartbeat: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PollTarget(KEY, address, heartbeat)


def test_a_shorter_heartbeat_moves_the_next_poll_forward(make_poller, serve, clock, schedule) -> None:
    # spec.heartbeat lowered from 300 to 10: the next poll stayed 300 s after the last one,
    # so the edit showed no effect for up to the old heartbeat.
    results = Results()
    poller = make_poller(on_result=results)
    address = serve(Member())
    poller.register(PollTarget(KEY, address, heartbeat=300))
    start = clock.now()
    poller.start()
    assert results.next()[1].ok
    assert schedule.at(KEY) == start + 300
    poller.register(PollTarget(KEY, address, heartbeat=10))
    assert schedule.at(KEY) == start + 10
    clock.step(10)
    assert results.next()[1].ok
    assert schedule.at(KEY) == start + 20
    poller.register(PollTarget(KEY, address, heartbeat=60))  # a longer one applies from the next poll on
    assert schedule.at(KEY) == start + 20


# Races between poll threads, the scheduler and (un)registration, ordered with gates, never sleeps.

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


def test_poll_in_flight_from_a_previous_registration_is_dropped(serve, registry, schedule,
                                                                 poller_class) -> None:
    """Unregister + register (the lead broker went unready and came back) while a poll is in
    flight: that poll's answer belongs to the old registration. Delivered, it reported a stale
    failure and cleared ``in_flight`` under the new registration's poll, whose schedule it
    then overwrote."""
    clock = FakeClock()
    member = GatedMember(2)
    results = Results()
    poller = poller_class(clock=clock, registry=registry, on_result=results, retry_backoff=0.0,
                          schedule=schedule)
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
        assert schedule.at(KEY) == clock.now() + 10
    finally:
        for gate in member.gates:
            gate.set()
        poller.stop()


def test_an_unforeseen_answer_does_not_strand_the_target_in_flight(serve, registry, schedule,
                                                                     poller_class) -> None:
    """A poll that raised anything but a poll failure (here a result code this build does not
    know) ended its pool thread's task silently, leaving ``in_flight`` set: the member was
    never polled again and no result said why."""
    clock = FakeClock()
    results = Results()
    poller = poller_class(clock=clock, registry=registry, on_result=results, retry_backoff=0.0,
                          schedule=schedule)
    try:
        poller.register(PollTarget(KEY, serve(Member(status=99)), heartbeat=10))
        poller.start()
        _, result = results.next()
        assert not result.ok and result.consecutive_failures == 1
        assert "99" in (result.error or "")
        assert schedule.at(KEY) is not None, "the target is scheduled again"
    finally:
        poller.stop()


def test_a_poll_that_raises_is_a_failed_result(registry, schedule, poller_class, poll_channels) -> None:
    """Any exception out of one poll (here the channel factory's) is a failed result with its
    cause, and the target keeps its schedule."""
    def broken_factory(address: str) -> Any:
        raise RuntimeError("no channel for you")

    clock = FakeClock()
    results = Results()
    poller = poller_class(clock=clock, registry=registry, on_result=results, schedule=schedule,
                          **poll_channels.option(broken_factory))
    try:
        poller.register(PollTarget(KEY, "127.0.0.1:1", heartbeat=10))
        poller.start()
        _, result = results.next()
        assert not result.ok and "RuntimeError: no channel for you" in (result.error or "")
        assert schedule.at(KEY) is not None
    finally:
        poller.stop()


def test_a_channel_leased_after_the_cache_closed_is_closed_after_its_call() -> None:
    """Reconcile workers share the poller's channels (member actions) and still run while the
    manager drains, after the poller stopped and closed its channels: a lease then dialled a
    channel that was stored in the closed cache and never closed."""
    factory = RecordingChannels()
    cache = ChannelCache(FakeClock(), 60.0, factory)
    cache.close()
    with cache.lease("127.0.0.1:1"):
        assert factory.closed == []  # not under a call
    assert factory.closed == ["127.0.0.1:1"]
    assert len(cache) == 0
