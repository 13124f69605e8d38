"""Fair share of a node budget between members (pure)."""
from __future__ import annotations

import pytest

from controller.scaling.fair_share import apportion, grant_growth, waiting_demand


@pytest.mark.parametrize("total, weights, shares", [
    (10, {"a": 1, "b": 1}, {"a": 5, "b": 5}),
    (10, {"a": 3, "b": 1}, {"a": 8, "b": 2}),          # 7.5 / 2.5: tie on remainder goes to "a"
    (10, {"a": 1, "b": 1, "c": 1}, {"a": 4, "b": 3, "c": 3}),
    (12, {"a": 0, "b": 0}, {"a": 6, "b": 6}),          # no demand known: equal shares
    (7, {"a": 6, "b": 0}, {"a": 7, "b": 0}),
])
def test_apportion_sums_to_total_in_proportion(total: int, weights: dict, shares: dict) -> None:
    result = apportion(total, weights)
    assert result == shares
    assert sum(result.values()) == total


def test_waiting_demand_counts_nodes_times_jobs_and_skips_garbage() -> None:
    assert waiting_demand({"1": 3, "4": 2, "x": 5}) == 11
    assert waiting_demand(None) == 0


def test_grow_within_budget_is_granted_in_full() -> None:
    grant = grant_growth("a", 3, 10, {"a": 2, "b": 2}, {})
    assert (grant.granted, grant.limited) == (3, False)


def test_grow_past_budget_follows_waiting_demand() -> None:
    # budget 12: a waits for 9 nodes, b for 3 -> shares 9 and 3; a holds 2, b holds 6
    grant = grant_growth("a", 8, 12, {"a": 2, "b": 6}, {"a": 9, "b": 3})
    assert grant.limited
    assert grant.granted == 4                      # only 4 nodes free
    grant_b = grant_growth("b", 5, 12, {"a": 2, "b": 6}, {"a": 9, "b": 3})
    assert grant_b.granted == 0                    # b is already above its share of 3
    assert "fair share of b is 3 (by waiting demand)" in grant_b.reason


def test_grow_past_budget_without_demand_uses_equal_shares() -> None:
    grant = grant_growth("a", 6, 10, {"a": 2, "b": 3}, {})
    assert grant.granted == 3                      # share 5, holds 2
    assert "equal shares" in grant.reason and "granted 3 of 6" in grant.reason
