"""Stopper: the stop flag informer threads wait on, with time from the injected clock."""
from __future__ import annotations

import threading

from controller.clock import FakeClock
from controller.informers.backoff import Stopper


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
    while clock.waiter_count == 0:
        threading.Event().wait(0.001)
    clock.step(5)
    waiter.join(0.2)
    assert waiter.is_alive()  # 5 of 10 s: still waiting
    stopper.stop()
    waiter.join(5)
    assert results == [True]


def test_wait_until_none_waits_for_a_wake() -> None:
    clock = FakeClock()
    stopper = Stopper(clock)
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(stopper.wait_until(None)))
    waiter.start()
    while clock.waiter_count == 0:
        threading.Event().wait(0.001)
    clock.step(1_000)
    waiter.join(0.2)
    assert waiter.is_alive()
    stopper.wake()
    waiter.join(5)
    assert results == [False]
