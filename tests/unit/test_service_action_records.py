"""The service records each resize it served in status.serviceActions (FakeKube, FakeClock).

What a resize records and when it is stored; how often the background writer writes is
``test_service_action_writer.py``'s. Here the writer is not started: ``flush`` stores."""
from __future__ import annotations

import itertools
import random

import pytest

from tests.fakes import FakeClock
from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, Resource
from controller.runtime.reconcile import Request
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import FIELD_MANAGER, EnsembleScaler, Outcome, RetryPolicy
from controller.scaling.service_action_writer import ServiceActionWriter
from tests.helpers import run_together
from tests.unit.fakes.kube import FakeKube, ensemble_obj, forbid_ensemble_patches, minicluster_obj
from tests.unit.fakes.reconciler import make_ensemble, stored_ensemble

NO_WAIT = RetryPolicy(attempts=50, base_delay=0.0, max_delay=0.0)
START = 1_796_000_000.0   # 2026-11-30T00:53:20Z


class Served:
    """Ensemble ``ens`` with members ens-0 and ens-1 (size 2 each) and the service's scaler."""

    def __init__(self, budget: int | None = None) -> None:
        self.kube = FakeKube()
        self.clock = FakeClock(wall_offset=START - 1_000.0)
        ensemble = self.kube.put(ENSEMBLES, ensemble_obj("ens", budget=budget, members=2))
        for name in ("ens-0", "ens-1"):
            self.kube.put(MINICLUSTERS, minicluster_obj(name, ensemble, size=2, min_size=1))
        self.scaler = self.new_scaler()

    def new_scaler(self, record_served: bool = True) -> EnsembleScaler:
        self.writer = ServiceActionWriter(self.kube, "ens", "ns", clock=self.clock)
        return EnsembleScaler(self.kube, "ens", "ns", clock=self.clock, rng=random.Random(1), retry=NO_WAIT,
                              actions=self.writer.book if record_served else None)

    def scale(self, action: str, name: str, delta: int) -> Outcome:
        return self.scaler.scale(ScaleRequest(action, name, delta)).outcome

    def actions(self) -> dict[str, dict]:
        """What the API server has once the writer stored what was recorded."""
        self.writer.flush()
        status = self.kube.get(ENSEMBLES, "ens", "ns").get("status") or {}
        return {entry["name"]: entry for entry in status.get("serviceActions", [])}


def test_a_served_grow_and_shrink_are_recorded_per_member_with_counts() -> None:
    served = Served()
    assert served.scale("grow", "ens-0", 2) is Outcome.SUCCESS
    served.clock.step(65)
    assert served.scale("shrink", "ens-0", -1) is Outcome.SUCCESS
    assert served.scale("grow", "ens-1", 1) is Outcome.SUCCESS
    assert served.actions() == {
        "ens-0": {"name": "ens-0", "kind": "shrink", "from": 4, "to": 3, "time": "2026-11-30T00:54:25Z",
                  "grows": 1, "shrinks": 1},
        "ens-1": {"name": "ens-1", "kind": "grow", "from": 2, "to": 3, "time": "2026-11-30T00:54:25Z",
                  "grows": 1, "shrinks": 0}}


def test_an_unbudgeted_resize_writes_nothing_on_the_request_path() -> None:
    served = Served()
    served.scale("grow", "ens-0", 1)
    served.scale("shrink", "ens-1", -1)
    assert served.kube.applies == [] and served.writer.book.unstored() == ["ens-0", "ens-1"]


def test_resizes_recorded_meanwhile_are_stored_by_one_status_apply_of_that_field_only() -> None:
    served = Served()
    served.scale("grow", "ens-0", 1)
    served.scale("shrink", "ens-1", -1)
    served.scale("grow", "ens-1", 1)
    assert served.writer.flush() and not served.writer.flush()     # the second has nothing new to write
    [(name, body)] = served.kube.applies
    assert name == "ens" and set(body["status"]) == {"serviceActions"}
    assert [(entry["name"], entry["kind"]) for entry in body["status"]["serviceActions"]] == [
        ("ens-0", "grow"), ("ens-1", "grow")]


def test_the_operators_action_runner_scaler_records_nothing_here() -> None:
    served = Served(budget=8)      # its actions are in status.memberActions already
    served.scaler = served.new_scaler(record_served=False)
    served.scale("grow", "ens-0", 1)
    served.scale("shrink", "ens-1", -1)
    assert served.kube.applies == [] and served.actions() == {}
    assert all(set(patch["status"]) == {"budgetGrants"} for name, patch in served.kube.patches if name == "ens")


def test_refused_and_no_op_requests_write_nothing() -> None:
    served = Served()
    served.kube.patch(MINICLUSTERS, "ens-1", {"spec": {"size": 1}}, namespace="ns")
    served.kube.put(MINICLUSTERS, minicluster_obj("stranger", None, size=2))
    patches = len(served.kube.patches)
    assert served.scale("shrink", "ens-1", -1) is Outcome.SUCCESS          # at minSize: no resize
    assert served.scale("grow", "stranger", 1) is Outcome.DENIED
    assert served.actions() == {}
    assert served.kube.applies == [] and len(served.kube.patches) == patches


def test_a_budgeted_grow_is_recorded_in_its_ledger_write_not_by_an_extra_write() -> None:
    served = Served(budget=8)
    assert served.scale("grow", "ens-0", 2) is Outcome.SUCCESS
    ledger_writes = [patch for name, patch in served.kube.patches if name == "ens"]
    assert len(ledger_writes) == 1 and set(ledger_writes[0]["status"]) == {"budgetGrants", "serviceActions"}
    assert served.actions()["ens-0"] | {"time": None} == {"name": "ens-0", "kind": "grow", "from": 2, "to": 4,
                                                          "time": None, "grows": 1, "shrinks": 0}
    assert served.kube.applies == []                # the writer found the list stored already


def test_a_ledger_write_carries_the_resizes_recorded_before_it() -> None:
    served = Served(budget=8)
    assert served.scale("shrink", "ens-1", -1) is Outcome.SUCCESS    # in memory only
    assert served.scale("grow", "ens-0", 1) is Outcome.SUCCESS
    [ledger_write] = [patch for name, patch in served.kube.patches if name == "ens"]
    assert [entry["name"] for entry in ledger_write["status"]["serviceActions"]] == ["ens-0", "ens-1"]
    assert not served.writer.flush() and served.kube.applies == []


def test_a_failed_ledger_write_records_nothing() -> None:
    served = Served(budget=8)
    forbid_ensemble_patches(served.kube)
    assert served.scale("grow", "ens-0", 1) is Outcome.ERROR
    assert served.writer.book.unstored() == [] and served.actions() == {}


def test_a_grow_retried_after_a_conflict_is_counted_once() -> None:
    served = Served(budget=8)
    original_patch = served.kube.patch
    conflicts = [1]

    def conflicting_once(res: Resource, name: str, patch: object, **kwargs) -> dict:
        if res is MINICLUSTERS and conflicts:
            conflicts.pop()     # another writer changed the MiniCluster after the ledger write
            original_patch(res, name, {"metadata": {"labels": {"touched": "yes"}}}, namespace="ns")
        return original_patch(res, name, patch, **kwargs)

    served.kube.patch = conflicting_once  # type: ignore[method-assign]
    assert served.scale("grow", "ens-0", 1) is Outcome.SUCCESS
    assert served.kube.conflicts >= 1
    assert (served.actions()["ens-0"]["to"], served.actions()["ens-0"]["grows"]) == (3, 1)


def test_resizes_served_at_once_for_two_members_are_all_recorded_and_counted() -> None:
    served = Served()
    turns = itertools.count()

    def one() -> Outcome:
        return served.scale("grow", "ens-0", 1) if next(turns) % 2 else served.scale("grow", "ens-1", 1)

    assert run_together(one, 8, timeout=30) == [Outcome.SUCCESS] * 8
    actions = served.actions()
    assert [(actions[name]["to"], actions[name]["grows"]) for name in ("ens-0", "ens-1")] == [(6, 4), (6, 4)]


def test_a_failed_store_leaves_the_list_for_the_next_and_the_resize_stands() -> None:
    served = Served()
    original_apply = served.kube.apply

    def forbidden(res: Resource, obj: dict, **kwargs) -> dict:
        raise ApiError(403, "Forbidden", "cannot patch resource ensembles/status")

    served.kube.apply = forbidden  # type: ignore[method-assign]
    assert served.scale("grow", "ens-0", 1) is Outcome.SUCCESS
    assert served.kube.get(MINICLUSTERS, "ens-0", "ns")["spec"]["size"] == 3
    with pytest.raises(ApiError):
        served.writer.flush()
    assert served.writer.book.unstored() == ["ens-0"]
    served.kube.apply = original_apply  # type: ignore[method-assign]
    served.scale("grow", "ens-0", 1)
    assert (served.actions()["ens-0"]["from"], served.actions()["ens-0"]["grows"]) == (3, 2)


def test_a_restarted_service_keeps_the_other_members_entries_and_counts() -> None:
    served = Served()
    served.scale("grow", "ens-0", 1)
    served.scale("grow", "ens-0", 1)
    served.scale("shrink", "ens-1", -1)
    served.writer.flush()                       # as the old service's graceful stop does
    served.scaler = served.new_scaler()
    served.scale("grow", "ens-1", 1)
    actions = served.actions()
    assert (actions["ens-0"]["kind"], actions["ens-0"]["grows"]) == ("grow", 2)
    assert (actions["ens-1"]["kind"], actions["ens-1"]["grows"], actions["ens-1"]["shrinks"]) == ("grow", 1, 1)


def test_the_operators_status_apply_keeps_the_services_entries(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    entry = {"name": "e1-0", "kind": "grow", "from": 1, "to": 2, "time": "2026-12-07T03:00:00Z",
             "grows": 1, "shrinks": 0}
    api.apply(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                          "metadata": {"name": "e1", "namespace": "ns"}, "status": {"serviceActions": [entry]}},
              field_manager=FIELD_MANAGER, subresource="status")
    before = len(api.writes)
    reconciler.reconcile(Request("ns", "e1"))
    assert api.writes[before:] == []                          # the service's record is no reason to write
    stored_ensemble(api)["status"]["phase"] = "Stale"          # now the operator has to apply its status
    reconciler.reconcile(Request("ns", "e1"))
    assert len(api.writes) > before and stored_ensemble(api)["status"]["serviceActions"] == [entry]
