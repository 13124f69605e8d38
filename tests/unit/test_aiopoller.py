"""The asyncio poller passes every StatusPoller test: the same module, run with the class swapped.

Only the channel tests differ: its polls use the event loop's ``aio_channels``, not ``channels``
(the synchronous cache the member actions share).
"""
from __future__ import annotations

import pytest
from grpc import aio

import tests.unit.test_poller as thread_pool_tests
from controller.reconcilers.aiopoller import AsyncStatusPoller
from controller.reconcilers.poller import PollTarget
from tests.unit.test_poller import KEY, Member

# Every test and fixture of the thread-pool poller's module, collected again here.
globals().update({name: value for name, value in vars(thread_pool_tests).items()
                  if name.startswith("test_") or name in ("serve", "schedule", "make_poller")})


@pytest.fixture(autouse=True)
def asyncio_poller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thread_pool_tests, "StatusPoller", AsyncStatusPoller)


class RecordingAioChannels:
    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, address: str) -> aio.Channel:
        self.opened.append(address)
        return aio.insecure_channel(address)


def test_idle_channel_is_closed(make_poller, serve, clock) -> None:
    factory = RecordingAioChannels()
    poller = make_poller(channel_idle_seconds=60, aio_channel_factory=factory)
    address = serve(Member())
    poller.poll([PollTarget(KEY, address)])
    assert len(poller.aio_channels) == 1
    clock.step(59)
    assert poller.sweep_aio_channels() == 0
    clock.step(1)
    assert poller.sweep_aio_channels() == 1 and len(poller.aio_channels) == 0
    assert poller.poll([PollTarget(KEY, address)])[KEY].ok  # dials afresh
    assert factory.opened == [address, address]


def test_channels_are_shared_per_address(make_poller, serve) -> None:
    factory = RecordingAioChannels()
    poller = make_poller(aio_channel_factory=factory)
    address = serve(Member())
    targets = [PollTarget(("ns", "ens", f"ens-{i}"), address) for i in range(5)]
    assert all(result.ok for result in poller.poll(targets).values())
    assert factory.opened == [address] and len(poller.aio_channels) == 1


def test_an_unavailable_member_is_dialled_afresh(make_poller, serve) -> None:
    port = thread_pool_tests.free_port()
    factory = RecordingAioChannels()
    poller = make_poller(attempts=1, aio_channel_factory=factory)
    target = PollTarget(KEY, f"127.0.0.1:{port}")
    assert not poller.poll([target])[KEY].ok
    assert len(poller.aio_channels) == 0
    serve(Member(), port)
    assert poller.poll([target])[KEY].ok
    assert len(factory.opened) == 2


def test_a_poll_that_raises_is_a_failed_result(registry, schedule) -> None:
    def broken_factory(address: str) -> aio.Channel:
        raise RuntimeError("no channel for you")

    results = thread_pool_tests.Results()
    poller = AsyncStatusPoller(clock=thread_pool_tests.FakeClock(), registry=registry, on_result=results,
                               aio_channel_factory=broken_factory, schedule=schedule)
    try:
        poller.register(PollTarget(KEY, "127.0.0.1:1", heartbeat=10))
        poller.start()
        _, result = results.next()
        assert not result.ok and "RuntimeError: no channel for you" in (result.error or "")
        assert schedule.at(KEY) is not None
    finally:
        poller.stop()
