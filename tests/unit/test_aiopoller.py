"""What only the asyncio poller does: StatusPoller's own tests run for both classes in
test_poller.py (its ``poller_class`` fixture)."""
from __future__ import annotations

import threading

import pytest

from controller.reconcilers.aiopoller import AsyncStatusPoller
from controller.reconcilers.poller import PollKey, PollResult, PollTarget
from tests.helpers import wait_for
from tests.unit.test_poller import WAIT, Member, make_poller, schedule, serve

__all__ = ["make_poller", "schedule", "serve"]  # test_poller's fixtures, used here


@pytest.fixture
def poller_class() -> type[AsyncStatusPoller]:
    """``make_poller`` makes asyncio pollers only, here."""
    return AsyncStatusPoller


def test_a_hung_member_does_not_hold_up_the_others(make_poller, serve, clock) -> None:
    """One call in the window (max_workers=1): once the hung member's call outlasted
    slow_call_seconds, the next member is polled without waiting for the hung one's deadline."""
    hung, healthy = Member(), Member()
    hung.gate = threading.Event()
    poller = make_poller(max_workers=1, slow_call_seconds=1.0, call_timeout=30.0)
    hung_key, healthy_key = ("ns", "ens", "hung"), ("ns", "ens", "healthy")
    targets = [PollTarget(hung_key, serve(hung)), PollTarget(healthy_key, serve(healthy))]
    outcome: dict[PollKey, PollResult] = {}
    runner = threading.Thread(target=lambda: outcome.update(poller.poll(targets)))
    runner.start()
    try:
        wait_for(lambda: hung.active == 1, WAIT, "the hung member's call in flight")
        assert healthy.names == [], "one call in the window: the next waits"
        clock.step(1.0)
        wait_for(lambda: healthy.names == ["healthy"], WAIT, "the next member polled beside the hung one")
        assert hung.active == 1
    finally:
        hung.gate.set()
        runner.join(WAIT)
    assert outcome[hung_key].ok and outcome[healthy_key].ok


def test_slow_call_seconds_must_be_positive(clock) -> None:
    with pytest.raises(ValueError, match="slow_call_seconds"):
        AsyncStatusPoller(clock=clock, slow_call_seconds=0)


def test_stop_drops_scheduled_polls_not_started_and_books_those_in_flight(make_poller, serve) -> None:
    """As the thread pool cancels queued work: stop() waits for the call in flight (its result is
    still delivered) and starts none of the polls queued behind it."""
    member = Member()
    member.gate = threading.Event()
    delivered: list[PollKey] = []
    poller = make_poller(max_workers=1, on_result=lambda key, result: delivered.append(key))
    address = serve(member)
    for i in range(3):
        poller.register(PollTarget(("ns", "ens", f"ens-{i}"), address, heartbeat=10))
    poller.start()
    wait_for(lambda: member.active == 1, WAIT, "the first poll in flight")
    stopper = threading.Thread(target=poller.stop)
    stopper.start()
    wait_for(lambda: poller._stopping, WAIT, "stop() to have begun")  # before the call in flight ends
    member.gate.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert len(member.names) == 1 and len(delivered) == 1
