"""Queue: de-duplication, one worker per item, re-add during processing, shutdown."""
from __future__ import annotations

import threading

import pytest

from tests.fakes import FakeClock
from controller.workqueue import Queue
from tests.helpers import wait_for, wait_for_waiters


class Getter(threading.Thread):
    """Calls ``queue.get`` in the background and keeps what it returned."""

    def __init__(self, queue: Queue, timeout: float | None = None) -> None:
        super().__init__(daemon=True)
        self.queue = queue
        self.timeout = timeout
        self.result: tuple[object, bool] | None = None

    def run(self) -> None:
        self.result = self.queue.get(self.timeout)


@pytest.fixture
def queue(clock: FakeClock) -> Queue:
    return Queue("test", clock=clock)


def test_items_come_out_in_the_order_they_were_added(queue: Queue) -> None:
    for item in ["a", "b", "c"]:
        queue.add(item)
    assert [queue.get()[0] for _ in range(3)] == ["a", "b", "c"]


def test_item_added_several_times_before_a_worker_takes_it_is_processed_once(queue: Queue) -> None:
    for _ in range(3):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert queue.get() == ("a", False)
    assert queue.get() == ("b", False)
    assert queue.get(timeout=0) == (None, False)


def test_item_added_while_processing_waits_for_done(queue: Queue) -> None:
    queue.add("a")
    item, _ = queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0
    assert queue.get(timeout=0) == (None, False)
    queue.done(item)
    assert len(queue) == 1
    assert queue.get() == ("a", False)
    queue.done("a")
    assert queue.get(timeout=0) == (None, False)


def test_blocked_worker_gets_item_being_processed_only_after_done(queue: Queue, clock: FakeClock) -> None:
    queue.add("a")
    queue.get()
    getter = Getter(queue)
    getter.start()
    wait_for_waiters(clock, 1)
    queue.add("a")
    assert getter.is_alive() and len(queue) == 0
    queue.done("a")
    getter.join(2)
    assert getter.result == ("a", False)


def test_done_without_readd_does_not_requeue(queue: Queue) -> None:
    queue.add("a")
    queue.get()
    queue.done("a")
    assert len(queue) == 0


def test_shutdown_wakes_every_blocked_getter(queue: Queue, clock: FakeClock) -> None:
    getters = [Getter(queue) for _ in range(3)]
    for getter in getters:
        getter.start()
    wait_for_waiters(clock, 3)
    queue.shutdown()
    for getter in getters:
        getter.join(2)
    assert [getter.result for getter in getters] == [(None, True)] * 3
    assert queue.shutting_down()


def test_queued_items_are_still_handed_out_after_shutdown(queue: Queue) -> None:
    queue.add("a")
    queue.add("b")
    queue.shutdown()
    assert queue.get() == ("a", False)
    assert queue.get() == ("b", False)
    assert queue.get() == (None, True)


def test_adds_after_shutdown_are_ignored(queue: Queue) -> None:
    queue.shutdown()
    queue.add("a")
    assert len(queue) == 0
    assert queue.get() == (None, True)


def test_item_dirty_at_shutdown_is_still_handed_out_after_done(queue: Queue) -> None:
    queue.add("a")
    queue.get()
    queue.add("a")
    queue.shutdown()
    queue.done("a")
    assert queue.get() == ("a", False)


def test_get_times_out_on_the_injected_clock(queue: Queue, clock: FakeClock) -> None:
    getter = Getter(queue, timeout=5)
    getter.start()
    wait_for_waiters(clock, 1)
    clock.step(5)
    getter.join(2)
    assert getter.result == (None, False)


def test_get_with_timeout_returns_an_item_added_while_waiting(queue: Queue, clock: FakeClock) -> None:
    getter = Getter(queue, timeout=5)
    getter.start()
    wait_for_waiters(clock, 1)
    queue.add("a")
    getter.join(2)
    assert getter.result == ("a", False)


def test_shutdown_with_drain_waits_for_items_in_flight() -> None:
    clock = FakeClock()
    queue = Queue("test", clock=clock)
    queue.add("a")
    queue.add("b")
    queue.get()
    queue.get()
    drainer = threading.Thread(target=queue.shutdown_with_drain, daemon=True)
    drainer.start()
    wait_for_waiters(clock, 1)
    assert queue.shutting_down()
    queue.done("a")
    clock.step(0)  # wakes every waiter on the clock: the drainer must see "b" in flight and wait again
    wait_for(lambda: clock.waits_begun == 2 or not drainer.is_alive(), 2, "the drainer to wait again or return")
    assert drainer.is_alive(), "shutdown_with_drain returned with 'b' still in flight"
    queue.done("b")
    drainer.join(2)
    assert not drainer.is_alive()


def test_shutdown_with_drain_returns_at_once_when_nothing_is_in_flight(queue: Queue) -> None:
    queue.add("a")
    queue.shutdown_with_drain()
    assert queue.get() == ("a", False)


def test_shutdown_ends_a_drain_early(queue: Queue, clock: FakeClock) -> None:
    queue.add("a")
    queue.get()
    drainer = threading.Thread(target=queue.shutdown_with_drain, daemon=True)
    drainer.start()
    wait_for_waiters(clock, 1)
    queue.shutdown()
    drainer.join(2)
    assert not drainer.is_alive()


def test_unhashable_item_is_rejected_with_a_clear_error(queue: Queue) -> None:
    with pytest.raises(TypeError, match="workqueue 'test': items must be hashable.*got dict"):
        queue.add({"metadata": {"name": "a"}})
