"""The status poller on grpc's asyncio API: every call on one event-loop thread (the operator's).

A blocking gRPC call holds a thread for its whole round trip and takes the GIL back to finish it:
at 10,000 members a thread pool of 64 needed 0.25-0.42 ms of CPU per poll and its p99 was
38-67 ms (every call waits in line for the GIL); on one event loop a poll costs 0.11-0.18 ms and
p99 stays under 7 ms (bench/bench_poller.py on idle cores; the README has the runs). The
schedule, results, retries, reply validation and metrics are ``StatusPoller``'s own; only where
calls run differs:

- the scheduler hands each batch of due polls to the loop in one wake-up, not one per poll;
- worker coroutines take polls from the loop's queue, at most ``max_workers`` counted in the
  window at once: a poll waits for the loop to serve every other call in flight, so a small window
  keeps latency low, and a few calls already saturate the loop on a fast network;
- a call unanswered after ``slow_call_seconds`` (a hung member waits for its deadline) leaves the
  window and another worker starts, so hung members do not hold up the others;
- results are booked (next due time, ``on_result``) by one booking thread: the callback and the
  scheduler's lock never hold up the loop;
- one ``grpc.aio`` channel per address lives on the loop. ``channels`` (synchronous) stays for the
  member actions that share this object.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.proto.limits import message_size_options
from controller.proto.wire import MINICLUSTER_MEMBER
from controller.reconcilers.poller import (
    FRESH_DIAL_OPTIONS, PollKey, PollResult, PollTarget, StatusPoller, _is_unavailable, _rpc_failure, _Schedule,
    _status_of,
)

log = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]
Booking = tuple[_Schedule, PollTarget, PollResult]


# Per-channel machinery a status poll does not use, off: channelz (the operator serves no channelz),
# BDP probing (pings sized for bulk transfers; a reply is a few KiB under a 64 KiB cap) and grpc's
# retry filter (the poller retries UNAVAILABLE itself). In 7 paired runs at 3,000 and 10,000 members
# (grpc-go stubs, load 5-11) every round used less CPU per poll with them off: cold rounds ~7% less
# (median), warm ~15% less (0.17-0.27 ms per poll against 0.20-0.32).
POLL_CHANNEL_OPTIONS = [("grpc.enable_channelz", 0), ("grpc.http2.bdp_probe", 0), ("grpc.enable_retries", 0)]
AIO_CHANNEL_OPTIONS = message_size_options() + POLL_CHANNEL_OPTIONS + FRESH_DIAL_OPTIONS


def aio_insecure_channel(address: str) -> aio.Channel:
    """``grpc.aio.insecure_channel`` with the operator's message size limits,
    ``POLL_CHANNEL_OPTIONS`` and a dial of its own (``FRESH_DIAL_OPTIONS``)."""
    return aio.insecure_channel(address, options=AIO_CHANNEL_OPTIONS)


@dataclass
class _AioSlot:
    channel: aio.Channel
    stub: pb_grpc.EnsembleOperatorStub
    last_used: float
    leases: int = 0


class AioChannels:
    """One ``grpc.aio`` channel per address; touched only on the event loop, so no lock."""

    def __init__(self, idle_seconds: float, factory: Callable[[str], aio.Channel]) -> None:
        self._idle_seconds = idle_seconds
        self._factory = factory
        self._slots: dict[str, _AioSlot] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def acquire(self, address: str, now: float) -> _AioSlot:
        slot = self._slots.get(address)
        if slot is None:
            channel = self._factory(address)
            slot = self._slots[address] = _AioSlot(channel, pb_grpc.EnsembleOperatorStub(channel), now)
        slot.leases += 1
        return slot

    def release(self, address: str, slot: _AioSlot, now: float, *, broken: bool) -> aio.Channel | None:
        """Give a slot back; a broken one (UNAVAILABLE) is dropped so the next call dials afresh.
        Returns the channel the caller must close (dropped and no longer leased), if any."""
        slot.leases -= 1
        slot.last_used = now
        if broken and self._slots.get(address) is slot:
            del self._slots[address]
        if slot.leases == 0 and self._slots.get(address) is not slot:
            return slot.channel
        return None

    async def sweep(self, now: float) -> int:
        idle = [address for address, slot in self._slots.items()
                if slot.leases == 0 and now - slot.last_used >= self._idle_seconds]
        for address in idle:
            await self._slots.pop(address).channel.close()
        return len(idle)

    async def close(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            await slot.channel.close(grace=None)


@dataclass(eq=False)
class _Worker:
    since: float | None = None  # when its current poll started (the poller's clock)
    slow: bool = False  # its poll outlasted ``slow_call_seconds``: no longer counted in the window


class AsyncStatusPoller(StatusPoller):
    """``StatusPoller`` whose calls run as coroutines on one event-loop thread.

    ``max_workers`` bounds the calls in flight that are making progress (worker coroutines, not
    threads): a call still unanswered after ``slow_call_seconds`` (a hung member, waiting for its
    deadline) leaves that window and another worker starts, so hung members do not hold up the
    others; at most ``SLOW_CALLS_MAX`` such calls wait at once. Latency grows with the window (each
    call waits for the loop to serve the others in flight), so a small one keeps p99 low.
    ``aio_channel_factory`` makes the loop's channels. Everything else, including the public
    interface, is StatusPoller's.
    """

    SLOW_CALLS_MAX = 1024

    def __init__(self, *, max_workers: int = 16, slow_call_seconds: float = 0.1,
                 aio_channel_factory: Callable[[str], aio.Channel] = aio_insecure_channel,
                 channel_idle_seconds: float = 300.0, **options: Any) -> None:
        super().__init__(max_workers=max_workers, channel_idle_seconds=channel_idle_seconds, **options)
        if slow_call_seconds <= 0:
            raise ValueError("AsyncStatusPoller: slow_call_seconds must be > 0")
        self.aio_channels = AioChannels(channel_idle_seconds, aio_channel_factory)
        self._limit = max_workers
        self._slow_after = slow_call_seconds
        # Loop-side state, touched only on the loop: polls waiting for a worker, workers running
        # (those counted in the window: ``_counted``), the slow-call watch's timer.
        self._jobs: deque[Job] = deque()
        self._running: set[_Worker] = set()
        self._counted = 0
        self._watch: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None  # set while no worker runs (made on the loop)
        self._bookings: queue.SimpleQueue[Booking | None] = queue.SimpleQueue()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="status-poll-loop",
                                             daemon=True)
        self._loop_thread.start()
        self._booker = threading.Thread(target=self._book_results, name="status-poll-results", daemon=True)
        self._booker.start()

    # -- handing polls to the loop ------------------------------------------------

    def _enqueue(self, jobs: list[Job]) -> None:
        """On the loop: queue ``jobs`` and start workers for them."""
        self._jobs.extend(jobs)
        if self._idle is None:
            self._idle = asyncio.Event()
        self._start_workers()

    def _start_workers(self) -> None:
        """Workers for the queued polls, up to ``max_workers`` counted (and the slow calls' cap)."""
        room = min(self._limit - self._counted, self._limit + self.SLOW_CALLS_MAX - len(self._running))
        for _ in range(min(room, len(self._jobs))):
            worker = _Worker()
            self._running.add(worker)
            self._counted += 1
            self._loop.create_task(self._work(worker))
        if self._running:
            assert self._idle is not None
            self._idle.clear()
            if self._watch is None:
                self._watch = self._loop.call_later(min(0.05, self._slow_after / 2), self._watch_slow_calls)

    async def _work(self, worker: _Worker) -> None:
        """One worker: runs queued polls one after the other, and ends when none is left or once
        its poll was slow (its replacement took its place in the window)."""
        try:
            while self._jobs and not worker.slow:
                job = self._jobs.popleft()
                worker.since = self._clock.now()
                try:
                    await job()
                except Exception:  # a poll's own failures are results: this is a bug, not a member
                    log.exception("status poll job failed")
                worker.since = None
        finally:
            self._running.discard(worker)
            if not worker.slow:
                self._counted -= 1
            if not self._running and self._idle is not None:
                self._idle.set()

    def _watch_slow_calls(self) -> None:
        """Every ~50 ms while polls run: take calls slower than ``slow_call_seconds`` out of the
        window and start workers in their place."""
        self._watch = None
        now = self._clock.now()
        for worker in self._running:
            if not worker.slow and worker.since is not None and now - worker.since >= self._slow_after:
                worker.slow = True
                self._counted -= 1
        self._start_workers()

    # -- on demand and scheduled ----------------------------------------------------

    def poll(self, targets: list[PollTarget]) -> dict[PollKey, PollResult]:
        with self._cond:
            failures = [self._failures.get(target.key, 0) for target in targets]
        results: dict[PollKey, PollResult] = {}
        done: Future[None] = Future()
        remaining = len(targets)

        def job(target: PollTarget, failures_before: int) -> Job:
            async def run() -> None:
                nonlocal remaining
                try:
                    results[target.key] = await self._poll_once_async(target, failures_before)
                finally:  # counted even if it raised (a bug): the caller must not wait forever
                    remaining -= 1
                    if remaining == 0:
                        done.set_result(None)
            return run

        if targets:
            self._loop.call_soon_threadsafe(self._enqueue, [job(t, f) for t, f in zip(targets, failures)])
            done.result()
        with self._cond:
            for key, result in results.items():
                self._failures[key] = result.consecutive_failures
        return {target.key: results[target.key] for target in targets}

    def _submit_scheduled(self, due: list[tuple[_Schedule, PollTarget, int]]) -> None:
        def job(schedule: _Schedule, target: PollTarget, failures: int) -> Job:
            async def run() -> None:
                if self._stopping:  # stopped before its turn: dropped, as a pool drops queued work
                    return
                self._bookings.put((schedule, target, await self._poll_once_async(target, failures)))
            return run

        self._loop.call_soon_threadsafe(self._enqueue, [job(*entry) for entry in due])

    def _book_results(self) -> None:
        """Booking thread: each scheduled result's next due time, then ``on_result``; off the loop,
        so a slow callback (the reconciler's store and enqueue) never holds up other members' calls."""
        while True:
            booking = self._bookings.get()
            if booking is None:
                return
            self._complete(*booking)

    # -- one poll -----------------------------------------------------------------

    async def _poll_once_async(self, target: PollTarget, failures_before: int) -> PollResult:
        """One poll, retries included, on a worker: its latency counts from the worker taking it,
        not from waiting in the queue."""
        started = self._clock.now()
        try:
            status = await self._request_status_async(target)
        except Exception as error:
            return self._failed(target, started, failures_before, error)
        return self._finish(target, started, 0, outcome="ok", status=status)

    async def _request_status_async(self, target: PollTarget) -> dict:
        """Up to ``attempts`` calls, retrying UNAVAILABLE after 1x, 2x, at most 4x ``retry_backoff``."""
        request = pb.StatusRequest(member=MINICLUSTER_MEMBER, name=target.key[2])
        for attempt in range(self._attempts):
            try:
                response = await self._call_async(target.address, request)
            except grpc.RpcError as error:
                if attempt + 1 == self._attempts or not _is_unavailable(error):
                    raise _rpc_failure(target.address, error) from error
                wait = self._retry_wait(attempt)
                if wait > 0:  # the injected clock's sleep, off the loop
                    await self._loop.run_in_executor(None, self._clock.sleep, wait)
                continue
            return _status_of(target.address, response)
        raise AssertionError("unreachable: attempts >= 1")

    async def _call_async(self, address: str, request: pb.StatusRequest) -> pb.Response:
        slot = self.aio_channels.acquire(address, self._clock.now())
        broken = False
        try:
            return await slot.stub.RequestStatus(request, timeout=self._call_timeout)
        except grpc.RpcError as error:
            broken = _is_unavailable(error)
            raise
        finally:
            dropped = self.aio_channels.release(address, slot, self._clock.now(), broken=broken)
            if dropped is not None:
                await dropped.close()

    # -- lifecycle ------------------------------------------------------------------

    def _on_loop(self, coroutine: Coroutine[Any, Any, Any]) -> Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _sweep_channels(self) -> None:
        super()._sweep_channels()
        self._on_loop(self.aio_channels.sweep(self._clock.now()))

    def sweep_aio_channels(self) -> int:
        """Close the loop's channels idle for ``channel_idle_seconds`` now; returns how many."""
        return self._on_loop(self.aio_channels.sweep(self._clock.now())).result()

    async def _drain(self) -> None:
        """Wait for the calls in flight (scheduled polls not started yet are dropped)."""
        if self._idle is not None and self._running:
            await self._idle.wait()
        if self._watch is not None:
            self._watch.cancel()
        await self.aio_channels.close()

    def stop(self) -> None:
        """Stop scheduling, let calls in flight end (each bounded by its deadline), book their
        results, close channels, end the loop."""
        super().stop()
        if self._loop.is_running():
            self._on_loop(self._drain()).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join()
        self._bookings.put(None)
        self._booker.join()
        self._loop.close()
