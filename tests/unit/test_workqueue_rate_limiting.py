"""Rate limiters' arithmetic and the rate-limiting queue built on them."""
from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from controller.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
    new_rate_limiting_queue,
)
from tests.helpers import wait_for_value, wait_for_waiters


class FixedRateLimiter:
    """Always asks for the same delay and counts calls, to test MaxOf's delegation."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.failures: dict[object, int] = {}

    def when(self, item: object) -> float:
        self.failures[item] = self.failures.get(item, 0) + 1
        return self.delay

    def forget(self, item: object) -> None:
        self.failures.pop(item, None)

    def num_requeues(self, item: object) -> int:
        return self.failures.get(item, 0)


def test_exponential_limiter_doubles_per_failure_from_the_base() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    assert [limiter.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert limiter.num_requeues("a") == 4


def test_exponential_limiter_tracks_items_separately() -> None:
    limiter = ItemExponentialFailureRateLimiter(base_delay=1, max_delay=100)
    limiter.when("a")
    limiter.when("a")
    assert limiter.when("b") == 1
    assert limiter.when("a") == 4


def test_exponential_limiter_is_capped_at_max_delay() -> None:
    limiter = ItemExponentialFailureRateLimiter(base_delay=1, max_delay=10)
    assert [limiter.when("a") for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_exponential_limiter_stays_at_the_cap_after_thousands_of_failures() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(3000)]
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0


def test_forget_restarts_the_exponential_backoff() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    limiter.when("a")
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005


@pytest.mark.parametrize(("base", "cap", "field"), [(-1, 10, "base_delay"), (5, 1, "max_delay")])
def test_exponential_limiter_rejects_bad_settings(base: float, cap: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ItemExponentialFailureRateLimiter(base, cap)


def test_bucket_allows_the_burst_then_spaces_retries_at_qps() -> None:
    limiter = BucketRateLimiter(qps=10, burst=100, clock=FakeClock())
    assert [limiter.when(index) for index in range(100)] == [0.0] * 100
    assert [limiter.when(index) for index in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_bucket_refills_at_qps_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=100, clock=clock)
    for index in range(102):
        limiter.when(index)
    clock.step(0.5)  # five tokens back: pays the two borrowed ones, three left
    assert [limiter.when("x") for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])
    clock.step(1000)
    assert [limiter.when("y") for _ in range(100)] == [0.0] * 100
    assert limiter.when("y") == pytest.approx(0.1)


def test_bucket_has_no_per_item_state() -> None:
    limiter = BucketRateLimiter(qps=1, burst=1, clock=FakeClock())
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(1.0)


def test_bucket_try_take_refuses_over_the_limit_without_borrowing() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=2, burst=3, clock=clock)
    assert [limiter.try_take() for _ in range(5)] == [True, True, True, False, False]
    clock.step(0.4)  # 0.8 of a token: still none whole, and the refusals above took nothing
    assert not limiter.try_take()
    clock.step(0.1)
    assert [limiter.try_take(), limiter.try_take()] == [True, False]
    clock.step(1000)
    assert [limiter.try_take() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(("qps", "burst", "field"), [(0, 1, "qps"), (1, 0, "burst")])
def test_bucket_rejects_bad_settings(qps: float, burst: int, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BucketRateLimiter(qps, burst, clock=FakeClock())


def test_max_of_takes_the_longest_delay_and_consults_every_limiter() -> None:
    short, long = FixedRateLimiter(1), FixedRateLimiter(7)
    limiter = MaxOfRateLimiter(short, long)
    assert limiter.when("a") == 7
    assert short.num_requeues("a") == long.num_requeues("a") == 1
    long.when("a")
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert short.num_requeues("a") == long.num_requeues("a") == 0


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MaxOfRateLimiter()


def test_default_controller_limiter_is_max_of_backoff_and_bucket() -> None:
    limiter = default_controller_rate_limiter(FakeClock())
    assert limiter.when("a") == 0.005
    assert limiter.when("a") == 0.01
    for index in range(98):
        limiter.when(index)
    assert limiter.when("b") == pytest.approx(0.1)  # bucket exhausted: it dominates
    assert limiter.num_requeues("a") == 2


def test_rate_limited_add_waits_the_backoff_and_forget_resets_it() -> None:
    clock = FakeClock()
    queue = new_rate_limiting_queue(
        "limited", ItemExponentialFailureRateLimiter(base_delay=1, max_delay=60), clock=clock)
    queue.start()
    try:
        wait_for_waiters(clock, 1)
        queue.add_rate_limited("a")
        queue.add_rate_limited("a")  # second failure asks for 2 s; the 1 s entry wins
        assert queue.num_requeues("a") == 2
        clock.step(1)
        wait_for_value(lambda: len(queue), 1, 2, "the queue length")
        assert queue.get() == ("a", False)
        queue.done("a")
        queue.add_rate_limited("a")  # third failure: 4 s
        # The timer handles deadlines in order, so once the 3.9 s marker is queued,
        # "a" would be queued too had its delay been shorter than 4 s.
        queue.add_after("marker", 3.9)
        clock.step(3.9)
        wait_for_value(lambda: len(queue), 1, 2, "the queue length")
        assert queue.get() == ("marker", False)
        clock.step(0.1)
        wait_for_value(lambda: len(queue), 1, 2, "the queue length")
        assert queue.get() == ("a", False)
        queue.done("a")
        queue.forget("a")
        assert queue.num_requeues("a") == 0
        queue.add_rate_limited("a")  # back to 1 s
        clock.step(1)
        wait_for_value(lambda: len(queue), 1, 2, "the queue length")
        assert queue.num_requeues("a") == 1
    finally:
        queue.shutdown()


def test_new_rate_limiting_queue_defaults_to_the_controller_limiter() -> None:
    clock = FakeClock()
    queue = new_rate_limiting_queue("defaults", clock=clock)
    queue.start()
    try:
        queue.add_rate_limited("a")
        assert queue.num_requeues("a") == 1
        clock.step(0.005)
        wait_for_value(lambda: len(queue), 1, 2, "the queue length")
    finally:
        queue.shutdown()
