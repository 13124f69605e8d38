"""spec.budget kept across deciders by the ledger in status.budgetGrants (FakeKube, FakeClock)."""
from __future__ import annotations

import random
import threading

import pytest

from tests.fakes import FakeClock
from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, Resource
from controller.reconcilers.status import status_changed
from controller.scaling.requests import ScaleRequest
from controller.scaling.fair_share import (GRANT_TTL_SECONDS, LedgerGrant, pending_sizes, read_ledger,
                                           record_grant)
from controller.scaling.scaler import EnsembleScaler, Outcome, RetryPolicy
from controller.runtime.reconcile import Request
from tests.helpers import run_together
from tests.unit.fakes.reconciler import make_ensemble, stored_ensemble
from tests.unit.fakes.kube import FakeKube, ensemble_obj, forbid_ensemble_patches, minicluster_obj

NO_WAIT = RetryPolicy(attempts=50, base_delay=0.0, max_delay=0.0)


class Ledgered:
    """Ensemble ``ens`` with members ens-0 and ens-1 (size 1 each) and deciders on one FakeClock."""

    def __init__(self, budget: int | None = 4) -> None:
        self.kube = FakeKube()
        self.clock = FakeClock()
        self.ensemble = self.kube.put(ENSEMBLES, ensemble_obj("ens", budget=budget, members=2))
        for name in ("ens-0", "ens-1"):
            self.kube.put(MINICLUSTERS, minicluster_obj(name, self.ensemble, size=1))

    def decider(self, api: object = None) -> EnsembleScaler:
        return EnsembleScaler(api or self.kube, "ens", "ns", clock=self.clock, rng=random.Random(1),
                              retry=NO_WAIT)

    def grow(self, name: str, amount: int, decider: EnsembleScaler | None = None) -> tuple[Outcome, dict]:
        decision = (decider or self.decider()).scale(ScaleRequest("grow", name, amount))
        return decision.outcome, decision.payload

    def size(self, name: str) -> int:
        return self.kube.get(MINICLUSTERS, name, "ns")["spec"]["size"]

    def ledger(self) -> list[dict]:
        return (self.kube.get(ENSEMBLES, "ens", "ns").get("status") or {}).get("budgetGrants", [])

    def record(self, name: str, size: int, *, expires_in: float = GRANT_TTL_SECONDS,
               version: str | None = None) -> None:
        """A grant as a decider that died before patching the MiniCluster left it."""
        version = version or self.kube.get(MINICLUSTERS, name, "ns")["metadata"]["resourceVersion"]
        grant = LedgerGrant(name, size, version, self.clock.wall() + expires_in)
        self.kube.patch(ENSEMBLES, "ens", {"status": {"budgetGrants": [grant.to_status()]}},
                        namespace="ns", subresource="status")


def test_a_grant_not_yet_applied_counts_until_it_expires() -> None:
    setup = Ledgered(budget=5)
    setup.record("ens-1", 3)                                    # ens-1 may become 3: 1 node left
    outcome, body = setup.grow("ens-0", 2)
    assert (outcome, body["to"]) == (Outcome.SUCCESS, 2), body
    assert "budget 5 nodes, 4 in use" in body["budget"]
    assert setup.grow("ens-0", 1)[0] is Outcome.DENIED
    setup.clock.step(GRANT_TTL_SECONDS + 1)                     # its decider never patched: it expires
    outcome, body = setup.grow("ens-0", 1)
    assert (outcome, body["to"]) == (Outcome.SUCCESS, 3), body
    assert [g["minicluster"] for g in setup.ledger()] == ["ens-0"]   # the expired grant was pruned


def test_a_grant_stops_counting_once_its_minicluster_changed() -> None:
    """Applied (spec.size shows it) or void (its resourceVersion-guarded patch can only 409)."""
    setup = Ledgered(budget=4)
    assert setup.grow("ens-0", 2)[1]["to"] == 3                 # ledger: ens-0 -> 3, applied
    setup.kube.patch(MINICLUSTERS, "ens-0", {"spec": {"size": 1}}, namespace="ns")   # shrunk since
    outcome, body = setup.grow("ens-1", 2)                      # no waiting for the grant to expire
    assert (outcome, body["to"]) == (Outcome.SUCCESS, 3), body


def test_the_grant_is_recorded_before_the_minicluster_is_patched() -> None:
    setup = Ledgered(budget=4)
    setup.grow("ens-0", 1)
    assert [name for name, _ in setup.kube.patches] == ["ens", "ens-0"]
    ledger_patch = setup.kube.patches[0][1]
    assert ledger_patch["metadata"]["resourceVersion"] == setup.ensemble["metadata"]["resourceVersion"]
    [grant] = ledger_patch["status"]["budgetGrants"]
    assert (grant["minicluster"], grant["size"]) == ("ens-0", 2)


def test_a_ledger_write_that_conflicts_is_decided_again_with_the_other_grant() -> None:
    setup = Ledgered(budget=4)
    original_patch = setup.kube.patch
    other = setup.decider()
    interleaved = []

    def other_decider_records_first(res: Resource, name: str, patch: object, **kwargs) -> dict:
        if res is ENSEMBLES and not interleaved:
            interleaved.append(name)    # the other decider grows ens-1 between our read and our write
            assert other.scale(ScaleRequest("grow", "ens-1", 2)).outcome is Outcome.SUCCESS
        return original_patch(res, name, patch, **kwargs)

    setup.kube.patch = other_decider_records_first
    outcome, body = setup.grow("ens-0", 2)                      # decided on 2 free nodes, then 409
    assert outcome is Outcome.DENIED and "no nodes granted" in body["error"], body
    assert (setup.size("ens-0"), setup.size("ens-1")) == (1, 3)
    assert setup.kube.conflicts == 1


class WriteTogether:
    """Every decider's first write waits for the other's, so both read before either wrote."""

    def __init__(self, kube: FakeKube, barrier: threading.Barrier) -> None:
        self._kube, self._barrier, self._first = kube, barrier, True

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        return self._kube.get(res, name, namespace)

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None:
        return self._kube.get_or_none(res, name, namespace)

    def patch(self, res: Resource, name: str, patch: object, **kwargs) -> dict:
        if self._first:
            self._first = False
            self._barrier.wait(timeout=10)
        return self._kube.patch(res, name, patch, **kwargs)


def test_two_deciders_deciding_at_once_stay_within_the_budget() -> None:
    setup = Ledgered(budget=6)
    barrier = threading.Barrier(2)
    deciders = iter([("ens-0", setup.decider(WriteTogether(setup.kube, barrier))),
                     ("ens-1", setup.decider(WriteTogether(setup.kube, barrier)))])
    lock = threading.Lock()

    def grow_until_denied() -> list[Outcome]:
        with lock:
            name, decider = next(deciders)
        outcomes = [setup.grow(name, 4, decider)[0]]
        while outcomes[-1] is Outcome.SUCCESS and len(outcomes) < 20:
            outcomes.append(setup.grow(name, 1, decider)[0])
        return outcomes

    results = run_together(grow_until_denied, 2, timeout=30)
    assert len(results) == 2 and all(Outcome.ERROR not in r for r in results), results
    assert setup.size("ens-0") + setup.size("ens-1") == 6


def test_grows_without_a_budget_and_shrinks_write_no_ledger() -> None:
    setup = Ledgered(budget=None)
    setup.grow("ens-0", 3)
    setup.decider().scale(ScaleRequest("shrink", "ens-0", -1))
    assert [name for name, _ in setup.kube.patches] == ["ens-0", "ens-0"]
    budgeted = Ledgered(budget=8)
    budgeted.decider().scale(ScaleRequest("shrink", "ens-0", -1))   # at minSize: no write at all
    budgeted.kube.patch(MINICLUSTERS, "ens-0", {"spec": {"size": 3}}, namespace="ns")
    budgeted.decider().scale(ScaleRequest("shrink", "ens-0", -1))
    assert [name for name, _ in budgeted.kube.patches] == ["ens-0", "ens-0"]


def test_a_ledger_write_the_role_refuses_is_an_error_naming_the_field() -> None:
    setup = Ledgered(budget=4)
    forbid_ensemble_patches(setup.kube)
    outcome, body = setup.grow("ens-0", 1)
    assert outcome is Outcome.ERROR and "status.budgetGrants" in body["error"]
    assert setup.size("ens-0") == 1                             # no grant recorded, no grow


def test_record_grant_keeps_pending_grants_prunes_the_rest_and_merges_one_version() -> None:
    now = 1000.0
    grants = [LedgerGrant("a", 3, "7", now + 5), LedgerGrant("b", 4, "8", now - 1),   # b expired
              LedgerGrant("c", 2, "1", now + 5), LedgerGrant("d", 5, "9", now + 5)]   # c landed, d same version
    versions = {"a": "7", "b": "8", "c": "2", "d": "9"}
    assert pending_sizes(grants, versions, now) == {"a": 3, "d": 5}
    written = record_grant(grants, LedgerGrant("d", 4, "9", now + 30), versions, now)
    assert [(g["minicluster"], g["size"], g["resourceVersion"]) for g in written] == [("a", 3, "7"), ("d", 5, "9")]
    assert read_ledger({"budgetGrants": written}) == [LedgerGrant("a", 3, "7", now + 5),
                                                       LedgerGrant("d", 5, "9", now + 30)]


@pytest.mark.parametrize("entry", [{"minicluster": "a"}, {"minicluster": "a", "size": "3", "resourceVersion": "1",
                                                          "expiresAt": "2030-01-01T00:00:00Z"},
                                   {"minicluster": "a", "size": 3, "resourceVersion": "1", "expiresAt": "soon"},
                                   "junk"])
def test_malformed_ledger_entries_are_ignored(entry: object) -> None:
    assert read_ledger({"budgetGrants": [entry]}) == []


def test_the_ledger_is_no_reason_for_the_reconciler_to_write_status() -> None:
    status = {"observedGeneration": 1, "phase": "Running", "members": [{"name": "ens-0"}]}
    with_ledger = {**status, "budgetGrants": [LedgerGrant("ens-0", 2, "5", 2e9).to_status()]}
    assert not status_changed(status, with_ledger)


def test_a_reconcile_after_a_ledger_write_sends_no_writes(env) -> None:  # noqa: F811
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    stored_ensemble(api)["status"]["budgetGrants"] = [LedgerGrant("e1-0", 3, "5", 2e9).to_status()]
    before = len(api.writes)
    reconciler.reconcile(Request("ns", "e1"))
    assert api.writes[before:] == []


def test_a_members_own_unlanded_grant_does_not_hold_back_its_next_grow() -> None:
    """A grant whose MiniCluster patch failed (a 500, a timeout) stays pending at that version;
    a grow of the same member from the same version replaces it (only one of the two patches can
    land), so it must not count it as nodes already in use: that denied the member's retry."""
    setup = Ledgered(budget=4)
    original_patch = setup.kube.patch
    failures = [ApiError(500, "InternalError", "etcd timeout")]

    def minicluster_patch_fails_once(res: Resource, name: str, patch: object, **kwargs) -> dict:
        if res is MINICLUSTERS and failures:
            raise failures.pop()
        return original_patch(res, name, patch, **kwargs)

    setup.kube.patch = minicluster_patch_fails_once
    assert setup.grow("ens-0", 2)[0] is Outcome.ERROR         # granted ens-0 -> 3, the patch failed
    assert [(g["minicluster"], g["size"]) for g in setup.ledger()] == [("ens-0", 3)]
    outcome, body = setup.grow("ens-0", 2)                      # the member's rule asks again
    assert (outcome, body["to"]) == (Outcome.SUCCESS, 3), body
    assert setup.grow("ens-1", 1)[0] is Outcome.DENIED          # ens-0's 3 and ens-1's 1 fill the budget


def test_a_budgeted_grow_of_a_member_just_removed_from_the_spec_is_denied_naming_why() -> None:
    # Between the spec edit and the reconcile that deletes it, ens-1 still exists and is owned;
    # it used to be retried as a conflict 50 times and answered "still conflicting".
    setup = Ledgered(budget=4)
    member = setup.ensemble["spec"]["members"][0]
    setup.kube.patch(ENSEMBLES, "ens", {"spec": {"members": [member]}}, namespace="ns")
    outcome, body = setup.grow("ens-1", 1)
    assert outcome is Outcome.DENIED, body
    assert "no longer in spec.members of Ensemble 'ens'" in body["error"]
    assert setup.size("ens-1") == 1 and setup.ledger() == []
