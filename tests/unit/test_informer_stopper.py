"""Stopper: the stop flag informer threads wait on, with time from the injected clock."""
from __future__ import annotations

import threading

from tests.fakes import FakeClock
from controller.informers.stopper import Stopper
from tests.helpers import wait_for, wait_for_waiters


def waits_again(clock: FakeClock, waits: int) -> None:
    wait_for(lambda: clock.waits_begun == waits + 1 and clock.waiter_count == 1, 5, "the waiter to wait again")


def test_wait_until_a_reading_taken_before_time_passed_returns_at_that_reading_plus_the_period() -> None:
    """The resync loop reads the clock, then waits: a step landing in between used to be added
    to the wait (a relative wait from a new reading), delaying the resync by a whole step."""
    clock = FakeClock()
    stopper = Stopper(clock)
    deadline = clock.now() + 10
    clock.step(10)  # time passes between the loop's reading and its wait
    assert stopper.wait_until(deadline) is False  # due already: returns at once, not stopped


def test_wait_until_blocks_to_the_deadline_and_a_stop_ends_it_early() -> None:
    clock = FakeClock()
    stopper = Stopper(clock)
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(stopper.wait_until(clock.now() + 10)))
    waiter.start()
    wait_for_waiters(clock, 1)
    clock.step(5)
    waits_again(clock, 1)  # 5 of 10 s: still waiting
    assert results == []
    stopper.stop()
    waiter.join(5)
    assert results == [True]


def test_wait_until_none_waits_for_a_wake() -> None:
    clock = FakeClock()
    stopper = Stopper(clock)
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(stopper.wait_until(None)))
    waiter.start()
    wait_for_waiters(clock, 1)
    clock.step(1_000)
    waits_again(clock, 1)  # time passing ends no wait without a deadline
    assert results == []
    stopper.wake()
    waiter.join(5)
    assert results == [False]
