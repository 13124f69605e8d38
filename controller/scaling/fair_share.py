"""Fair share of a node budget between the members of one ensemble (pure, no I/O).

When a grow would push the ensemble past its budget, a member only gets what its share
allows, so one busy member cannot starve the others. Shares follow each member's waiting
demand (nodes its queued jobs ask for); with no demand known, members share equally.

The budget is shared by deciders in several processes (the ensemble service, the operator's
``scale`` algorithm), so each one records its grant in a ledger on the Ensemble
(``status.budgetGrants``) before patching the MiniCluster, and counts the others' grants that
may still land (see ``pending_sizes``). The ledger functions here are pure too.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone

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


GRANT_TTL_SECONDS = 30.0
"""How long a recorded grant counts while its MiniCluster stays at the version it was decided from.

A decider writes its grant, then patches the MiniCluster: normally well within a second, so
any grant still pending after this long belongs to a decider that died (or stalled) in between.
It must outlast that step plus the clock skew between the nodes the deciders run on (expiry is
wall time, the only clock two processes share), yet stay short: until it expires, a dead
decider's grant holds budget nodes that no member uses.
"""


@dataclass(frozen=True)
class LedgerGrant:
    """One ``status.budgetGrants`` entry: ``minicluster`` may grow to ``size`` if its patch, decided
    from the MiniCluster at ``resource_version``, lands before ``expires`` (epoch seconds)."""

    minicluster: str
    size: int
    resource_version: str
    expires: float

    def to_status(self) -> dict:
        stamp = datetime.fromtimestamp(math.ceil(self.expires), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"minicluster": self.minicluster, "size": self.size,
                "resourceVersion": self.resource_version, "expiresAt": stamp}


def read_ledger(status: object) -> list[LedgerGrant]:
    """The grants of an Ensemble's ``status``; malformed entries (a hand edit) are skipped."""
    grants = []
    entries = status.get("budgetGrants") if isinstance(status, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        try:
            expires = datetime.fromisoformat(entry["expiresAt"]).timestamp()
            size, name, version = entry["size"], entry["minicluster"], entry["resourceVersion"]
        except (TypeError, KeyError, ValueError):
            log.warning("ignoring malformed status.budgetGrants entry %r", entry)
            continue
        if isinstance(size, int) and not isinstance(size, bool) and name and version:
            grants.append(LedgerGrant(str(name), size, str(version), expires))
    return grants


def is_pending(grant: LedgerGrant, versions: dict[str, str], now: float) -> bool:
    """Whether ``grant`` may still land: unexpired, and its MiniCluster (``versions``: current
    resourceVersion by name) unchanged since the grant was decided. A changed MiniCluster means
    the grant's patch (guarded by that resourceVersion) either landed, so ``spec.size`` shows
    it, or will get a 409 and be decided again."""
    return now < grant.expires and versions.get(grant.minicluster) == grant.resource_version


def pending_sizes(grants: list[LedgerGrant], versions: dict[str, str], now: float) -> dict[str, int]:
    """The largest pending grant per MiniCluster, to count in place of a smaller ``spec.size``."""
    sizes: dict[str, int] = {}
    for grant in grants:
        if is_pending(grant, versions, now):
            sizes[grant.minicluster] = max(grant.size, sizes.get(grant.minicluster, 0))
    return sizes


def record_grant(grants: list[LedgerGrant], grant: LedgerGrant, versions: dict[str, str],
                 now: float) -> list[dict]:
    """The ledger to write: pending grants kept (expired, landed or void ones pruned), ``grant``
    (decided from its MiniCluster's current version in ``versions``) added. One entry per MiniCluster: a pending one decided from the same version cannot land
    if ``grant`` does (same resourceVersion guard), so the larger of the two stands for both."""
    kept = {g.minicluster: g for g in grants if is_pending(g, versions, now) and g.minicluster != grant.minicluster}
    same = [g for g in grants if g.minicluster == grant.minicluster and is_pending(g, versions, now)
            and g.resource_version == grant.resource_version]
    merged = grant
    for other in same:
        merged = LedgerGrant(grant.minicluster, max(merged.size, other.size), grant.resource_version,
                             max(merged.expires, other.expires))
    kept[grant.minicluster] = merged
    return [kept[name].to_status() for name in sorted(kept)]
