"""Expectations: what a controller did that its caches have not shown yet, per key."""
from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from controller.runtime.expectations import Expectations

KEY = ("ns", "e1")
OTHER = ("ns", "e2")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_key_with_no_record_is_satisfied(clock: FakeClock) -> None:
    expectations = Expectations(clock, ttl=60)
    assert expectations.satisfied(KEY)
    assert not expectations.deleting(KEY, "uid-1") and not expectations.creating(KEY, "a")


def test_a_deletion_is_expected_until_the_cache_no_longer_shows_it(clock: FakeClock) -> None:
    expectations = Expectations(clock, ttl=60)
    expectations.expect_deletions(KEY, ["uid-1", "uid-2"])
    assert expectations.deleting(KEY, "uid-1") and expectations.deleting(KEY, "uid-2")
    assert not expectations.satisfied(KEY)
    expectations.deletions_observed(KEY, cached_uids=["uid-2", "uid-9"])
    assert not expectations.deleting(KEY, "uid-1") and expectations.deleting(KEY, "uid-2")
    expectations.deletions_observed(KEY, cached_uids=[])
    assert expectations.satisfied(KEY)


def test_a_creation_is_expected_until_observed(clock: FakeClock) -> None:
    expectations = Expectations(clock, ttl=60)
    expectations.expect_creations(KEY, ["e1-0"])
    assert expectations.creating(KEY, "e1-0") and not expectations.satisfied(KEY)
    expectations.creation_observed(KEY, "e1-0")
    assert not expectations.creating(KEY, "e1-0") and expectations.satisfied(KEY)


def test_an_expectation_never_seen_expires_after_the_ttl(clock: FakeClock) -> None:
    expectations = Expectations(clock, ttl=60)
    expectations.expect_deletions(KEY, ["uid-1"])
    expectations.expect_creations(KEY, ["e1-0"])
    clock.step(59.9)
    assert expectations.deleting(KEY, "uid-1") and expectations.creating(KEY, "e1-0")
    clock.step(0.1)
    assert not expectations.deleting(KEY, "uid-1") and not expectations.creating(KEY, "e1-0")
    assert expectations.satisfied(KEY)


def test_each_expectation_expires_on_its_own_deadline(clock: FakeClock) -> None:
    expectations = Expectations(clock, ttl=60)
    expectations.expect_deletions(KEY, ["uid-1"])
    clock.step(30)
    expectations.expect_deletions(KEY, ["uid-2"])
    clock.step(30)
    assert not expectations.deleting(KEY, "uid-1") and expectations.deleting(KEY, "uid-2")


def test_keys_are_independent_and_forget_drops_one(clock: FakeClock) -> None:
    expectations = Expectations(clock, ttl=60)
    expectations.expect_deletions(KEY, ["uid-1"])
    expectations.expect_deletions(OTHER, ["uid-1"])
    expectations.deletions_observed(OTHER, cached_uids=[])
    assert expectations.deleting(KEY, "uid-1") and not expectations.deleting(OTHER, "uid-1")
    expectations.forget(KEY)
    assert expectations.satisfied(KEY)


def test_a_ttl_that_is_not_positive_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="ttl: must be > 0"):
        Expectations(clock, ttl=0)
