"""Poll the status endpoint of every ensemble member's lead broker.

Reconcilers must not block on the network, so polling runs on its own bounded
thread pool: once per heartbeat per member, each call under a deadline, results
handed to a callback that stores them and enqueues the ensemble. An unreachable
member backs off exponentially instead of occupying workers every heartbeat.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from controller.algorithms.status import StatusError, parse_status
from controller.backoff import exponential
from controller.clock import Clock
from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.proto.results import result_name
from controller.proto.limits import insecure_channel
from controller.proto.wire import MINICLUSTER_MEMBER
from controller.workqueue.deadlines import Deadlines

log = logging.getLogger(__name__)

# Each channel keeps its own subchannels. grpc's default pool shares one subchannel among every
# channel in the process with the same address and options, so a channel dialled afresh after a
# member was unreachable would inherit the old subchannel's reconnect backoff and fail at once.
FRESH_DIAL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


def poll_channel(address: str) -> grpc.Channel:
    """A channel to a member: the message size limits, and a dial of its own (``FRESH_DIAL_OPTIONS``)."""
    return insecure_channel(address, options=FRESH_DIAL_OPTIONS)


PollKey = tuple[str, str, str]
"""(namespace, ensemble, member name)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class PollTarget:
    key: PollKey
    address: str
    heartbeat: float = 10.0

    def __post_init__(self) -> None:
        if self.heartbeat <= 0:
            raise ValueError(f"poll target {self.key}: heartbeat must be > 0, got {self.heartbeat}")
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"poll target {self.key}: address must be host:port, got {self.address!r}")


@dataclass(frozen=True)
class PollResult:
    """One poll's outcome; ``time`` is wall-clock seconds, ``latency`` covers retries."""

    ok: bool
    time: float
    address: str
    latency: float
    consecutive_failures: int
    status: dict | None = None
    error: str | None = None


class _PollFailure(Exception):
    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass
class _Slot:
    channel: grpc.Channel
    stub: pb_grpc.EnsembleOperatorStub
    last_used: float
    leases: int = 0
    retired: bool = False


class ChannelCache:
    """One gRPC channel per address, closed once idle or once known broken.

    A channel in use is never closed under a call: closing waits for the last lease.
    """

    def __init__(
        self,
        clock: Clock,
        idle_seconds: float,
        factory: Callable[[str], grpc.Channel] = poll_channel,
    ) -> None:
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._factory = factory
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)

    @contextmanager
    def lease(self, address: str) -> Iterator[pb_grpc.EnsembleOperatorStub]:
        with self._lock:
            slot = self._slots.get(address)
            if slot is None:
                channel = self._factory(address)
                # After close() (member actions of a draining reconcile): used once, then closed.
                slot = _Slot(channel, pb_grpc.EnsembleOperatorStub(channel), self._clock.now(),
                             retired=self._closed)
                if not self._closed:
                    self._slots[address] = slot
            slot.leases += 1
        try:
            yield slot.stub
        finally:
            with self._lock:
                slot.leases -= 1
                slot.last_used = self._clock.now()
                close = slot.retired and slot.leases == 0
            if close:
                slot.channel.close()

    def invalidate(self, address: str) -> None:
        """Drop the channel to ``address`` so the next call dials afresh.

        A channel that failed to connect stays in gRPC's reconnect backoff and would fail
        the next calls fast; a new channel connects as soon as the peer is back.
        """
        with self._lock:
            slot = self._slots.pop(address, None)
            if slot is None:
                return
            slot.retired = True
            close = slot.leases == 0
        if close:
            slot.channel.close()

    def sweep(self) -> int:
        """Close channels unused for ``idle_seconds``; returns how many were closed."""
        now = self._clock.now()
        with self._lock:
            idle = [
                address
                for address, slot in self._slots.items()
                if slot.leases == 0 and now - slot.last_used >= self._idle_seconds
            ]
            closing = [self._slots.pop(address) for address in idle]
        for slot in closing:
            slot.channel.close()
        return len(closing)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = []
            for slot in self._slots.values():
                slot.retired = True  # under the lock, as lease() reads it: closed exactly once
                if slot.leases == 0:
                    idle.append(slot)
            self._slots.clear()
        for slot in idle:
            slot.channel.close()


def _is_unavailable(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAVAILABLE


def _rpc_failure(address: str, error: grpc.RpcError) -> _PollFailure:
    """A failed call as a poll outcome: timeout, unreachable, invalid (over the size limit) or error."""
    code = error.code()
    outcome = {
        grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
        grpc.StatusCode.UNAVAILABLE: "unreachable",
        grpc.StatusCode.RESOURCE_EXHAUSTED: "invalid",  # a reply over the message size limit
    }.get(code, "error")
    return _PollFailure(outcome, f"{address}: {code.name}: {error.details()}")


def _status_of(address: str, response: pb.Response) -> dict:
    """The member's validated status, or the _PollFailure saying why its reply is refused."""
    if response.status != pb.Response.SUCCESS:
        reason = response.payload if len(response.payload) <= 200 else f"{response.payload[:200]}..."
        raise _PollFailure("error", f"{address}: member answered {result_name(response.status)}: "
                                    f"{reason!r}")  # cut: kept per member, shown in conditions
    try:
        return parse_status(response.payload)
    except StatusError as error:
        raise _PollFailure("invalid", f"{address}: {error}") from error


@dataclass
class _Schedule:
    target: PollTarget
    last_start: float = 0.0
    in_flight: bool = False


class StatusPoller:
    """RequestStatus to many lead brokers, on demand (``poll``) or every heartbeat.

    Background mode: ``register`` targets (idempotent; a new address re-targets at
    once), ``start``, and receive every result through ``on_result(key, result)``.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        on_result: Callable[[PollKey, PollResult], None] | None = None,
        registry: CollectorRegistry | None = None,
        max_workers: int = 64,
        call_timeout: float = 2.0,
        attempts: int = 2,
        retry_backoff: float = 0.05,
        max_backoff: float = 300.0,
        channel_idle_seconds: float = 300.0,
        channel_factory: Callable[[str], grpc.Channel] = poll_channel,
        schedule: Deadlines[PollKey] | None = None,
    ) -> None:
        """``schedule``: each registered member's next poll, none while one is in flight (a new
        ``Deadlines`` when None; given, whoever holds it can read when a member is polled next)."""
        if max_workers < 1 or attempts < 1 or call_timeout <= 0:
            raise ValueError("StatusPoller: max_workers and attempts must be >= 1, call_timeout > 0")
        self._clock = clock
        self._on_result = on_result
        self._call_timeout = call_timeout
        self._attempts = attempts
        self._retry_backoff = retry_backoff
        self._max_backoff = max_backoff
        self._sweep_interval = channel_idle_seconds / 2
        self.channels = ChannelCache(clock, channel_idle_seconds, channel_factory)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="status-poll")
        registry = registry if registry is not None else CollectorRegistry()
        self._polls = Counter(
            "ensemble_member_polls_total", "Status polls of member lead brokers, by result.",
            ["result"], registry=registry,
        )
        self._latency = Histogram(
            "ensemble_member_poll_latency_seconds", "Duration of one status poll, retries included.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self._cond = threading.Condition()
        self._schedules: dict[PollKey, _Schedule] = {}
        self._due: Deadlines[PollKey] = schedule if schedule is not None else Deadlines()
        self._failures: dict[PollKey, int] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- on demand ---------------------------------------------------------------

    def poll(self, targets: list[PollTarget]) -> dict[PollKey, PollResult]:
        """Poll all ``targets`` concurrently (bounded by the pool) and wait for every result."""
        futures = {target.key: self._pool.submit(self._poll_counted, target) for target in targets}
        return {key: future.result() for key, future in futures.items()}

    def _poll_counted(self, target: PollTarget) -> PollResult:
        with self._cond:
            failures = self._failures.get(target.key, 0)
        result = self._poll_once(target, failures)
        with self._cond:
            self._failures[target.key] = result.consecutive_failures
        return result

    # -- one poll ----------------------------------------------------------------

    def _poll_once(self, target: PollTarget, failures_before: int) -> PollResult:
        started = self._clock.now()
        try:
            status = self._request_status(target)
        except Exception as error:
            return self._failed(target, started, failures_before, error)
        return self._finish(target, started, 0, outcome="ok", status=status)

    def _failed(self, target: PollTarget, started: float, failures_before: int, error: Exception) -> PollResult:
        """The result of a poll that raised (called in its ``except``): an expected failure keeps
        its outcome; an unforeseen one is still a result, or the target stays in flight forever."""
        if isinstance(error, _PollFailure):
            return self._finish(target, started, failures_before + 1, outcome=error.outcome, error=str(error))
        log.exception("polling %s at %s failed", "/".join(target.key), target.address)
        return self._finish(target, started, failures_before + 1, outcome="error",
                            error=f"{target.address}: {type(error).__name__}: {error}")

    def _finish(self, target: PollTarget, started: float, failures: int, *,
                outcome: str, status: dict | None = None, error: str | None = None) -> PollResult:
        latency = max(0.0, self._clock.now() - started)
        self._polls.labels(result=outcome).inc()
        self._latency.observe(latency)
        return PollResult(
            ok=status is not None, time=self._clock.wall(), address=target.address, latency=latency,
            consecutive_failures=failures, status=status, error=error,
        )

    def _retry_wait(self, attempt: int) -> float:
        """After failed attempt ``attempt`` (from 0) of a poll: 1x, 2x, at most 4x ``retry_backoff``."""
        return exponential(self._retry_backoff, attempt, self._retry_backoff * 4)

    def _request_status(self, target: PollTarget) -> dict:
        """Up to ``attempts`` calls, retrying only UNAVAILABLE (a plain loop: tenacity's per-call
        setup was ~4% of the poller's CPU at 10,000 members)."""
        request = pb.StatusRequest(member=MINICLUSTER_MEMBER, name=target.key[2])
        for attempt in range(self._attempts):
            try:
                response = self._call(target.address, request)
            except grpc.RpcError as error:
                if attempt + 1 == self._attempts or not _is_unavailable(error):
                    raise _rpc_failure(target.address, error) from error
                self._clock.sleep(self._retry_wait(attempt))
                continue
            return _status_of(target.address, response)
        raise AssertionError("unreachable: attempts >= 1")

    def _call(self, address: str, request: pb.StatusRequest) -> pb.Response:
        try:
            with self.channels.lease(address) as stub:
                return stub.RequestStatus(request, timeout=self._call_timeout)
        except grpc.RpcError as error:
            if _is_unavailable(error):
                self.channels.invalidate(address)
            raise

    # -- background mode ---------------------------------------------------------

    def register(self, target: PollTarget) -> None:
        """Poll ``target`` every heartbeat; re-registering the same target changes nothing."""
        with self._cond:
            schedule = self._schedules.get(target.key)
            now = self._clock.now()
            if schedule is None:
                self._schedules[target.key] = _Schedule(target)
                self._push(target.key, now)
            elif schedule.target.address != target.address:
                schedule.target = target
                self._failures.pop(target.key, None)
                if not schedule.in_flight:
                    self._push(target.key, now)
            else:
                shorter = target.heartbeat < schedule.target.heartbeat
                schedule.target = target
                # A shortened heartbeat counts from the last poll, not after the old one
                # (spec.heartbeat 300 -> 10 would show no effect for 300 s); a longer one,
                # or a failure backoff, applies from the next poll on.
                if shorter and not schedule.in_flight and not self._failures.get(target.key):
                    self._due.set_earlier(target.key, max(now, schedule.last_start + target.heartbeat))
            self._cond.notify_all()

    def unregister(self, key: PollKey) -> None:
        with self._cond:
            self._schedules.pop(key, None)
            self._due.cancel(key)
            self._failures.pop(key, None)
            self._cond.notify_all()

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="status-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling, wait for calls in flight (each bounded by its deadline), close channels."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.channels.close()

    def _push(self, key: PollKey, due: float) -> None:
        self._due.set(key, due)

    def _run(self) -> None:
        next_sweep = self._clock.now() + self._sweep_interval
        with self._cond:
            while not self._stopping:
                now = self._clock.now()
                self._dispatch_due(now)
                if now >= next_sweep:
                    self._sweep_channels()
                    next_sweep = now + self._sweep_interval
                next_due = self._due.next_at()
                wake_at = next_sweep if next_due is None else min(next_due, next_sweep)
                self._clock.wait(self._cond, max(0.0, wake_at - now))

    def _sweep_channels(self) -> None:
        self.channels.sweep()

    def _dispatch_due(self, now: float) -> None:
        due = []
        for key in self._due.pop_due(now):
            schedule = self._schedules[key]  # unregistering cancels the deadline
            schedule.in_flight = True
            schedule.last_start = now
            due.append((schedule, schedule.target, self._failures.get(key, 0)))
        if due:
            self._submit_scheduled(due)

    def _submit_scheduled(self, due: list[tuple[_Schedule, PollTarget, int]]) -> None:
        """Start the polls of ``due`` (schedule, target, failures so far), all handed over at once."""
        for schedule, target, failures in due:
            self._pool.submit(self._poll_scheduled, schedule, target, failures)

    def _poll_scheduled(self, schedule: _Schedule, target: PollTarget, failures: int) -> None:
        self._complete(schedule, target, self._poll_once(target, failures))

    def _complete(self, schedule: _Schedule, target: PollTarget, result: PollResult) -> None:
        """Book a scheduled poll's result: its next due time, then the callback."""
        with self._cond:
            if self._schedules.get(target.key) is not schedule:
                # Unregistered, perhaps registered again since: the result, its failure count
                # and its in_flight belong to a registration that is gone.
                return
            schedule.in_flight = False
            now = self._clock.now()
            if schedule.target.address != target.address:
                self._push(target.key, now)  # re-targeted while in flight: this result is stale
                self._cond.notify_all()
                return
            self._failures[target.key] = result.consecutive_failures
            self._push(target.key, self._next_due(schedule, result.consecutive_failures, now))
            self._cond.notify_all()
        self._deliver(target.key, result)

    def _next_due(self, schedule: _Schedule, failures: int, now: float) -> float:
        """Next heartbeat after the last start; after failures, 2x, 4x, ... the heartbeat, capped."""
        heartbeat = schedule.target.heartbeat
        if failures == 0:
            return max(now, schedule.last_start + heartbeat)
        return now + exponential(heartbeat, failures, max(self._max_backoff, heartbeat))

    def _deliver(self, key: PollKey, result: PollResult) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(key, result)
        except Exception:  # a faulty callback must not kill a poll worker
            log.exception("on_result callback failed for %s", "/".join(key))
