"""Retry timing shared by informers, the workqueue, the poller and the scaler."""
from __future__ import annotations

from controller.backoff import Backoff, exponential, full_jitter, proportional_jitter


def test_exponential_doubles_from_the_base_up_to_the_cap() -> None:
    assert [exponential(0.5, attempt, 3.0) for attempt in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_exponential_returns_the_cap_where_the_power_overflows_a_float() -> None:
    assert exponential(0.005, 1023, 1000.0) == 1000.0
    assert exponential(0.005, 5000, 1000.0) == 1000.0
    assert exponential(0.0, 5000, 7.0) == 7.0


def test_full_jitter_spreads_over_the_whole_window() -> None:
    assert full_jitter(2.0, lambda: 0.0) == 0.0
    assert full_jitter(2.0, lambda: 0.75) == 1.5


def test_proportional_jitter_only_ever_lengthens_the_delay() -> None:
    assert proportional_jitter(2.0, 1.2, lambda: 0.0) == 2.0
    assert proportional_jitter(2.0, 1.2, lambda: 0.5) == 2.0 * 1.6


def test_backoff_steps_grow_to_the_maximum_and_restart_after_reset() -> None:
    backoff = Backoff(lambda: 0.0, initial=1.0, maximum=5.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_backoff_jitter_stretches_each_step() -> None:
    backoff = Backoff(lambda: 0.5, initial=1.0, maximum=30.0, jitter=1.0)
    assert [backoff.next_delay() for _ in range(3)] == [1.5, 3.0, 6.0]
