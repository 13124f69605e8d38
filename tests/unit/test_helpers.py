"""tests/helpers.py: polling returns what it waited for, and a timeout names the state and last value."""
from __future__ import annotations

import itertools
import threading

import pytest

from tests.fakes import FakeClock
from tests.helpers import LAST_VALUE_CHARS, run_together, wait_for, wait_for_value, wait_for_waiters


def test_wait_for_returns_the_first_truthy_value() -> None:
    checks = itertools.count(1)
    assert wait_for(lambda: next(checks) >= 3 and "ready", 2, "the third check") == "ready"


def test_wait_for_timeout_names_what_and_the_last_value_seen() -> None:
    with pytest.raises(AssertionError, match=r"^timed out after 0s waiting for the cache to fill; "
                                             r"last value seen: \[\]$"):
        wait_for(lambda: [], 0, "the cache to fill")


def test_wait_for_value_reports_expected_and_a_shortened_last_value() -> None:
    with pytest.raises(AssertionError) as failure:
        wait_for_value(lambda: "x" * 2000, "y", 0, "the text")
    waited, seen = str(failure.value).split("; last value seen: ")
    assert waited == "timed out after 0s waiting for the text to be 'y'"
    assert seen == "'" + "x" * (LAST_VALUE_CHARS - 1) + "..."


def test_wait_for_waiters_returns_once_a_thread_waits_on_the_clock() -> None:
    clock, condition, woke = FakeClock(), threading.Condition(), []

    def park() -> None:
        with condition:
            woke.append(clock.wait(condition, 1.0))

    waiter = threading.Thread(target=park)
    waiter.start()
    wait_for_waiters(clock, 1)
    clock.step(1.0)
    waiter.join(2)
    assert woke == [False]   # woken by the step, its fake deadline passed
    with pytest.raises(AssertionError,
                       match="the threads waiting on the fake clock to be 2; last value seen: 0"):
        wait_for_waiters(clock, 2, timeout=0)


def test_run_together_runs_every_call_at_once_and_returns_each_result() -> None:
    all_inside = threading.Barrier(3, timeout=2)   # breaks unless the three calls overlap
    assert sorted(run_together(all_inside.wait, 3, timeout=5)) == [0, 1, 2]
