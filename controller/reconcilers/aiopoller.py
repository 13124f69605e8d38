"""The status poller on grpc's asyncio API: every call on one event-loop thread.

A status call costs about 0.7 ms of CPU, nearly all of it Python in grpc's synchronous
stack under the GIL, so a thread pool cannot poll 10,000 members within a 5 s round however
many threads it has: it only queues them on the GIL and stretches every call's latency.
On one event loop the calls interleave without thread switches or per-call locks. The schedule,
results, retries, reply validation and metrics are ``StatusPoller``'s own; only where calls run
differs: an ``asyncio.Semaphore`` bounds the calls in flight, each call has its deadline (a hung
member holds one slot until then, never the loop), and one ``grpc.aio`` channel per address lives
on the loop. ``channels`` (synchronous) stays for the member actions that share this object.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

import grpc
from grpc import aio

from controller.backoff import exponential
from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.proto.limits import message_size_options
from controller.proto.wire import MINICLUSTER_MEMBER
from controller.reconcilers.poller import (
    PollKey, PollResult, PollTarget, StatusPoller, _is_unavailable, _rpc_failure, _Schedule,
    _status_of,
)

log = logging.getLogger(__name__)


def aio_insecure_channel(address: str) -> aio.Channel:
    """``grpc.aio.insecure_channel`` with the operator's message size limits."""
    return aio.insecure_channel(address, options=message_size_options())


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

    async def release(self, address: str, slot: _AioSlot, now: float, *, broken: bool) -> None:
        """Give a slot back; a broken one (UNAVAILABLE) is dropped so the next call dials afresh."""
        slot.leases -= 1
        slot.last_used = now
        if broken and self._slots.get(address) is slot:
            del self._slots[address]
        if self._slots.get(address) is not slot and slot.leases == 0:
            await slot.channel.close()

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


class AsyncStatusPoller(StatusPoller):
    """``StatusPoller`` whose calls run as coroutines on one event-loop thread.

    ``max_workers`` bounds the calls in flight (a semaphore, not threads); ``aio_channel_factory``
    makes the loop's channels. Everything else, including the public interface, is StatusPoller's.
    """

    def __init__(self, *, max_workers: int = 256,
                 aio_channel_factory: Callable[[str], aio.Channel] = aio_insecure_channel,
                 channel_idle_seconds: float = 300.0, **options: Any) -> None:
        super().__init__(max_workers=max_workers, channel_idle_seconds=channel_idle_seconds, **options)
        self.aio_channels = AioChannels(channel_idle_seconds, aio_channel_factory)
        self._limit = max_workers
        self._loop = asyncio.new_event_loop()
        self._semaphore: asyncio.Semaphore | None = None
        self._calls: set[Future] = set()
        self._calls_lock = threading.Lock()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="status-poll-loop", daemon=True)
        self._loop_thread.start()

    # -- running coroutines on the loop -------------------------------------------

    def _on_loop(self, coroutine: Coroutine[Any, Any, Any]) -> Future:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        with self._calls_lock:
            self._calls.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future) -> None:
        with self._calls_lock:
            self._calls.discard(future)

    # -- on demand and scheduled ----------------------------------------------------

    def poll(self, targets: list[PollTarget]) -> dict[PollKey, PollResult]:
        futures = {target.key: self._on_loop(self._poll_counted_async(target)) for target in targets}
        return {key: future.result() for key, future in futures.items()}

    async def _poll_counted_async(self, target: PollTarget) -> PollResult:
        with self._cond:
            failures = self._failures.get(target.key, 0)
        result = await self._poll_once_async(target, failures)
        with self._cond:
            self._failures[target.key] = result.consecutive_failures
        return result

    def _submit_scheduled(self, schedule: _Schedule, target: PollTarget, failures: int) -> None:
        self._on_loop(self._poll_scheduled_async(schedule, target, failures))

    async def _poll_scheduled_async(self, schedule: _Schedule, target: PollTarget, failures: int) -> None:
        result = await self._poll_once_async(target, failures)
        # Booking takes the scheduler's lock and runs the callback: off the loop, so a slow
        # callback (the reconciler's store and enqueue) never holds up other members' calls.
        await self._loop.run_in_executor(None, self._complete, schedule, target, result)

    # -- one poll -----------------------------------------------------------------

    async def _poll_once_async(self, target: PollTarget, failures_before: int) -> PollResult:
        """One poll, retries included, holding one of ``max_workers`` slots as a pool's worker would:
        its latency counts from taking the slot, not from waiting for one."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._limit)
        async with self._semaphore:
            return await self._poll_in_slot(target, failures_before)

    async def _poll_in_slot(self, target: PollTarget, failures_before: int) -> PollResult:
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
                wait = exponential(self._retry_backoff, attempt, self._retry_backoff * 4)
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
            await self.aio_channels.release(address, slot, self._clock.now(), broken=broken)

    # -- lifecycle ------------------------------------------------------------------

    def _sweep_channels(self) -> None:
        super()._sweep_channels()
        self._on_loop(self.aio_channels.sweep(self._clock.now()))

    def sweep_aio_channels(self) -> int:
        """Close the loop's channels idle for ``channel_idle_seconds`` now; returns how many."""
        return self._on_loop(self.aio_channels.sweep(self._clock.now())).result()

    def stop(self) -> None:
        """Stop scheduling, let calls in flight end (each bounded by its deadline), close channels, end the loop."""
        super().stop()
        while True:
            with self._calls_lock:
                pending = list(self._calls)
            if not pending:
                break
            for future in pending:
                try:
                    future.result()
                except Exception:  # already logged or delivered as a result
                    pass
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aio_channels.close(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join()
        self._loop.close()
