"""The background writer of status.serviceActions: when it writes (FakeKube, FakeClock, its thread)."""
from __future__ import annotations

import logging
import random
import threading
from typing import Iterator

import pytest

from tests.fakes import FakeClock
from tests.helpers import wait_for, wait_for_value
from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, Resource
from controller.scaling.service_action_writer import FLUSH_ATTEMPTS, ServiceActionWriter
from tests.unit.fakes.kube import FakeKube, ensemble_obj

WAIT = 5.0   # real seconds for the writer thread to get somewhere


class Writing:
    """Ensemble ns/ens, a writer of its serviceActions on a fake clock, and the writes that reached the API."""

    def __init__(self, interval: float = 1.0, failures: int = 0) -> None:
        self.kube = FakeKube()
        self.kube.put(ENSEMBLES, ensemble_obj("ens"))
        self.clock = FakeClock()
        self.failures = failures           # apply calls that fail before they succeed again
        self.attempts = 0
        self.failed = 0
        original_apply = self.kube.apply

        def apply(res: Resource, obj: dict, **kwargs) -> dict:
            self.attempts += 1
            if self.failures:
                self.failures -= 1
                raise ApiError(500, "InternalError", "etcdserver: request timed out")
            return original_apply(res, obj, **kwargs)

        self.kube.apply = apply  # type: ignore[method-assign]
        self.writer = ServiceActionWriter(self.kube, "ens", "ns", clock=self.clock, interval=interval,
                                          rng=random.Random(3), on_failed=self.count_failure)

    def count_failure(self) -> None:
        self.failed += 1

    def record(self, name: str, size: int, target: int) -> None:
        self.writer.book.record(self.kube.get(ENSEMBLES, "ens", "ns"), name, size, target, self.clock.wall())

    def stored(self) -> list[tuple[str, int]]:
        """(member, to) of each entry the API server has."""
        status = self.kube.get(ENSEMBLES, "ens", "ns").get("status") or {}
        return [(entry["name"], entry["to"]) for entry in status.get("serviceActions", [])]

    def writes(self) -> int:
        return len(self.kube.applies)

    def parked(self, waits_before: int) -> None:
        """Wait until the writer thread began another wait on the clock: it is done with what woke it."""
        wait_for(lambda: self.clock.waits_begun > waits_before and self.clock.waiter_count == 1, WAIT,
                 "the writer to wait on the clock again")

    def step(self, seconds: float) -> None:
        before = self.clock.waits_begun
        self.clock.step(seconds)
        self.parked(before)


@pytest.fixture
def writing() -> Iterator[Writing]:
    running = Writing()
    running.writer.start()
    yield running
    running.writer.stop()


def test_the_first_resize_after_a_quiet_spell_is_written_at_once(writing: Writing) -> None:
    writing.record("ens-0", 1, 2)
    wait_for_value(writing.stored, [("ens-0", 2)], WAIT, "the stored serviceActions")
    assert writing.writes() == 1


def test_a_burst_is_written_once_an_interval_after_the_last_write(writing: Writing) -> None:
    writing.record("ens-0", 1, 2)
    wait_for_value(writing.writes, 1, WAIT, "the first write")
    for name, target in (("ens-1", 2), ("ens-0", 3), ("ens-2", 5), ("ens-1", 1)):
        before = writing.clock.waits_begun
        writing.record(name, 1, target)
        writing.parked(before)
    writing.step(0.75)
    assert writing.writes() == 1
    writing.step(0.25)
    wait_for_value(writing.writes, 2, WAIT, "the burst's one write")
    assert writing.stored() == [("ens-0", 3), ("ens-1", 1), ("ens-2", 5)]


def test_nothing_is_written_while_nothing_changed(writing: Writing) -> None:
    before = writing.clock.waits_begun
    writing.record("ens-0", 1, 2)
    wait_for_value(writing.writes, 1, WAIT, "the first write")
    writing.parked(before)
    for _ in range(3):
        writing.step(10)
    assert writing.writes() == 1


def test_a_list_a_ledger_write_carried_is_not_written_again(writing: Writing) -> None:
    carried: list[list[dict]] = []
    before = writing.clock.waits_begun
    writing.writer.book.record_in(writing.kube.get(ENSEMBLES, "ens", "ns"), "ens-0", 1, 2, writing.clock.wall(),
                                  carried.append)
    writing.parked(before)
    writing.step(10)
    assert [entry["name"] for entry in carried[0]] == ["ens-0"] and writing.writes() == 0


def test_a_failed_write_is_counted_and_retried_after_a_growing_backoff() -> None:
    writing = Writing(failures=2)
    writing.writer.start()
    try:
        before = writing.clock.waits_begun
        writing.record("ens-0", 1, 2)
        wait_for_value(lambda: writing.attempts, 1, WAIT, "the first attempt")
        writing.parked(before)
        writing.step(0.45)                  # the first backoff is 0.5 s, stretched by up to half
        assert (writing.attempts, writing.failed) == (1, 1)
        writing.step(0.3)
        assert (writing.attempts, writing.failed) == (2, 2)
        writing.step(0.95)                  # the second is 1 s (and up to 1.5 s)
        assert writing.attempts == 2
        writing.step(0.55)
        assert (writing.attempts, writing.failed, writing.stored()) == (3, 2, [("ens-0", 2)])
    finally:
        writing.writer.stop()


def test_stop_writes_what_the_interval_held_back(writing: Writing) -> None:
    writing.record("ens-0", 1, 2)
    wait_for_value(writing.writes, 1, WAIT, "the first write")
    writing.record("ens-1", 1, 3)
    writing.writer.stop()
    assert writing.writes() == 2 and writing.stored() == [("ens-0", 2), ("ens-1", 3)]
    assert writing.writer.book.unstored() == []


def test_stop_with_nothing_new_writes_nothing(writing: Writing) -> None:
    writing.record("ens-0", 1, 2)
    wait_for_value(writing.writes, 1, WAIT, "the first write")
    writing.writer.stop()
    assert writing.writes() == 1


def test_stop_tries_a_failing_flush_a_few_times_then_logs_the_members_left_unrecorded(
        caplog: pytest.LogCaptureFixture) -> None:
    writing = Writing(failures=100)
    writing.writer.start()
    before = writing.clock.waits_begun
    writing.record("ens-0", 1, 2)
    wait_for_value(lambda: writing.attempts, 1, WAIT, "the first attempt")
    writing.parked(before)                                 # in its backoff
    stopping = threading.Thread(target=writing.writer.stop)
    with caplog.at_level(logging.ERROR, logger="controller.scaling.service_action_writer"):
        stopping.start()
        while stopping.is_alive():                         # the flush's own backoffs pass at once
            writing.clock.step(60)
            stopping.join(0.01)
    assert writing.attempts == 1 + FLUSH_ATTEMPTS and writing.failed == writing.attempts
    assert "ens-0" in caplog.text and "not recorded" in caplog.text
    assert writing.writer.book.unstored() == ["ens-0"]
