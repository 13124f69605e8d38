"""DelayingQueue: add_after on the injected clock, one heap, one timer thread."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.fakes import FakeClock
from controller.workqueue import DelayingQueue, Queue
from tests.helpers import wait_for, wait_for_value, wait_for_waiters


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[DelayingQueue]:
    queue: DelayingQueue = DelayingQueue("delaying", clock=clock)
    queue.start()
    wait_for_waiters(clock, 1)  # the timer thread is parked
    yield queue
    queue.shutdown()


def step(clock: FakeClock, seconds: float) -> None:
    """Step the clock, then wait until the timer thread has handled it (it parks on the clock again)."""
    begun = clock.waits_begun
    clock.step(seconds)
    wait_for(lambda: clock.waits_begun > begun, 2, "the timer to handle the step")


def assert_nothing_waits(queue: DelayingQueue, clock: FakeClock) -> None:
    """No delayed item is left: time far past every deadline adds nothing to the (drained) queue."""
    assert drain(queue) == []
    step(clock, 1_000_000)
    assert len(queue) == 0


def drain(queue: DelayingQueue) -> list[object]:
    items = []
    while (got := queue.get(timeout=0))[0] is not None:
        items.append(got[0])
        queue.done(got[0])
    return items


def test_item_is_added_only_once_its_delay_has_passed(queue: DelayingQueue, clock: FakeClock) -> None:
    queue.add_after("a", 5)
    queue.add_after("marker", 4.9)
    clock.step(4.9)
    # Deadlines fire in order: had "a" been due, it would be queued before "marker".
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert drain(queue) == ["marker"]
    assert len(queue) == 0  # "a" still waits
    clock.step(0.1)
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert queue.get() == ("a", False)
    queue.done("a")
    assert_nothing_waits(queue, clock)


def test_items_become_ready_in_deadline_order(queue: DelayingQueue, clock: FakeClock) -> None:
    queue.add_after("late", 3)
    queue.add_after("early", 1)
    queue.add_after("middle", 2)
    queue.add_after("middle-too", 2)
    clock.step(3)
    wait_for_value(lambda: len(queue), 4, 2, "the queue length")
    assert drain(queue) == ["early", "middle", "middle-too", "late"]


def test_timer_fires_each_deadline_as_time_advances(queue: DelayingQueue, clock: FakeClock) -> None:
    queue.add_after("b", 2)
    queue.add_after("a", 1)
    clock.step(1)
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert drain(queue) == ["a"]
    clock.step(1)
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert drain(queue) == ["b"]


def test_earlier_deadline_wins_for_a_waiting_item(queue: DelayingQueue, clock: FakeClock) -> None:
    queue.add_after("a", 10)
    queue.add_after("a", 2)
    queue.add_after("marker", 10)
    clock.step(2)
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert drain(queue) == ["a"]
    clock.step(8)
    # The superseded 10 s entry for "a" sits before "marker" in the heap: had it fired,
    # "a" would be queued ahead of "marker".
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert drain(queue) == ["marker"]
    assert_nothing_waits(queue, clock)  # "a" waited once, not twice


def test_later_deadline_does_not_postpone_a_waiting_item(queue: DelayingQueue, clock: FakeClock) -> None:
    queue.add_after("a", 2)
    queue.add_after("a", 10)
    clock.step(2)
    wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    assert drain(queue) == ["a"]
    assert_nothing_waits(queue, clock)


@pytest.mark.parametrize("seconds", [0, -1])
def test_non_positive_delay_adds_immediately(queue: DelayingQueue, clock: FakeClock, seconds: float) -> None:
    queue.add_after("a", seconds)
    assert len(queue) == 1
    assert drain(queue) == ["a"]
    assert_nothing_waits(queue, clock)


def test_delayed_item_already_queued_is_not_duplicated(queue: DelayingQueue, clock: FakeClock) -> None:
    queue.add("a")
    queue.add_after("a", 1)
    step(clock, 1)
    assert drain(queue) == ["a"]
    assert_nothing_waits(queue, clock)


def test_many_delayed_items_share_one_timer_thread(queue: DelayingQueue, clock: FakeClock) -> None:
    def timer_threads() -> list[str]:
        # By name, not by count: threads of other tests may still be finishing.
        return [t.name for t in threading.enumerate() if t.name.startswith("workqueue-timer-delaying")]

    assert timer_threads() == ["workqueue-timer-delaying"]
    for index in range(200):
        queue.add_after(index, 1 + index % 7)
    assert timer_threads() == ["workqueue-timer-delaying"]
    clock.step(7)
    wait_for_value(lambda: len(queue), 200, 2, "the queue length")
    assert sorted(drain(queue)) == list(range(200))


def test_shutdown_stops_the_timer_and_drops_waiting_items(clock: FakeClock) -> None:
    queue: DelayingQueue = DelayingQueue("stopping", clock=clock)
    queue.start()
    queue.add_after("a", 1)
    queue.shutdown()
    assert not any(thread.name == "workqueue-timer-stopping" for thread in threading.enumerate())
    queue.add_after("b", 0)
    clock.step(1)
    assert queue.get() == (None, True)


def test_shutdown_with_drain_stops_the_timer(clock: FakeClock) -> None:
    queue: DelayingQueue = DelayingQueue("draining", clock=clock)
    queue.start()
    queue.shutdown_with_drain()
    assert not any(thread.name == "workqueue-timer-draining" for thread in threading.enumerate())


def test_unhashable_delayed_item_is_rejected_with_a_clear_error(queue: DelayingQueue) -> None:
    with pytest.raises(TypeError, match="workqueue 'delaying': items must be hashable.*got list"):
        queue.add_after(["a"], 5)


def test_due_items_go_to_the_injected_queue(clock: FakeClock) -> None:
    inner: Queue = Queue("inner", clock=clock)
    queue: DelayingQueue = DelayingQueue("outer", queue=inner, clock=clock)
    queue.start()
    try:
        wait_for_waiters(clock, 1)
        queue.add_after("a", 1)
        clock.step(1)
        wait_for_value(lambda: len(inner), 1, 2, "the injected queue's length")
        assert inner.get() == ("a", False)
    finally:
        queue.shutdown()
    assert inner.shutting_down()


def test_the_timer_starts_with_start_and_serves_what_was_delayed_before(clock: FakeClock) -> None:
    queue: DelayingQueue = DelayingQueue("later", clock=clock)
    queue.add_after("a", 1)
    clock.step(1)
    assert not any(thread.name == "workqueue-timer-later" for thread in threading.enumerate())
    assert len(queue) == 0
    queue.start()
    try:
        wait_for_value(lambda: len(queue), 1, 2, "the queue length")
        assert queue.get() == ("a", False)
    finally:
        queue.shutdown()
