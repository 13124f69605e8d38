"""Fair share of a node budget between the members of one ensemble (pure, no I/O).

When a grow would push the ensemble past its budget, a member only gets what its share
allows, so one busy member cannot starve the others. Shares follow each member's waiting
demand (nodes its queued jobs ask for); with no demand known, members share equally.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    """How many of the requested extra nodes a member gets, and why."""

    granted: int
    requested: int
    limited: bool
    reason: str


def waiting_demand(waiting: object) -> int:
    """Nodes asked for by waiting jobs, from a status ``waiting`` map ``{"<nodes>": count}``."""
    if not isinstance(waiting, dict):
        return 0
    demand = 0
    for nodes, count in waiting.items():
        try:
            demand += max(0, int(nodes)) * max(0, int(count))
        except (TypeError, ValueError):
            log.warning("ignoring malformed waiting entry %r: %r", nodes, count)
    return demand


def apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder; ties by name).

    All-zero weights mean equal shares.
    """
    if not weights:
        return {}
    if sum(weights.values()) <= 0:
        weights = dict.fromkeys(weights, 1)
    weight_sum = sum(weights.values())
    exact = {name: total * weight / weight_sum for name, weight in weights.items()}
    shares = {name: int(value) for name, value in exact.items()}
    leftover = total - sum(shares.values())
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - shares[name]), name))
    for name in by_remainder[:leftover]:
        shares[name] += 1
    return shares


def grant_growth(member: str, increase: int, budget: int, sizes: dict[str, int],
                 demand: dict[str, int]) -> Grant:
    """Limit ``member``'s growth by ``increase`` nodes to the budget and its fair share."""
    in_use = sum(sizes.values())
    free = budget - in_use
    if increase <= free:
        return Grant(increase, increase, False, f"within budget ({in_use + increase}/{budget} nodes)")
    weights = {name: demand.get(name, 0) for name in sizes}
    basis = "waiting demand" if sum(weights.values()) > 0 else "equal shares"
    share = apportion(budget, weights)[member]
    granted = max(0, min(increase, free, share - sizes[member]))
    reason = (f"budget {budget} nodes, {in_use} in use; fair share of {member} is {share} "
              f"(by {basis}); granted {granted} of {increase}")
    return Grant(granted, increase, True, reason)
