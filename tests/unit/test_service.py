"""The ensemble service's decisions against an in-memory API server (FakeKube)."""
from __future__ import annotations

import json
import random

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import EnsembleScaler, Outcome, RetryPolicy, last_polls
from controller.service.servicer import EnsembleServicer, actions_counter
from tests.helpers import run_together
from tests.unit.fakes.kube import FakeKube, ensemble_obj, minicluster_obj

NO_WAIT = RetryPolicy(attempts=50, base_delay=0.0, max_delay=0.0)
PAYLOAD = {"version": "v1alpha2", "group": "flux-framework.org"}


class Setup:
    def __init__(self, *, budget: int | None = None, polls: dict | None = None, members: int = 1) -> None:
        self.kube = FakeKube()
        self.ensemble = self.kube.put(ENSEMBLES, ensemble_obj("ens", budget=budget, polls=polls, members=members))
        self.scaler = EnsembleScaler(self.kube, "ens", "ns", clock=FakeClock(), rng=random.Random(7),
                                     retry=NO_WAIT)
        self.registry = CollectorRegistry()
        self.servicer = EnsembleServicer(self.scaler, actions_counter(self.registry))

    def member(self, name: str, **kwargs) -> None:
        self.kube.put(MINICLUSTERS, minicluster_obj(name, self.ensemble, **kwargs))

    def size(self, name: str) -> int:
        return self.kube.get(MINICLUSTERS, name, "ns")["spec"]["size"]

    def act(self, name: str, action: str, **payload) -> tuple[int, dict]:
        request = pb2.ActionRequest(member="miniclusters", name=name, action=action,
                                    payload=json.dumps({**PAYLOAD, **payload}))
        response = self.servicer.RequestAction(request, None)
        return response.status, json.loads(response.payload)

    def counted(self, action: str, result: str) -> float:
        return self.registry.get_sample_value("ensemble_service_actions_total",
                                              {"action": action, "result": result}) or 0.0


@pytest.mark.parametrize("spec, action, payload, status, size", [
    ({"size": 1}, "grow", {}, pb2.Response.SUCCESS, 2),
    ({"size": 1}, "grow", {"grow": 4}, pb2.Response.SUCCESS, 5),
    ({"size": 14}, "grow", {"grow": 5}, pb2.Response.SUCCESS, 16),            # clamped to maxSize
    ({"size": 4}, "shrink", {}, pb2.Response.SUCCESS, 3),
    ({"size": 4}, "shrink", {"shrink": -2}, pb2.Response.SUCCESS, 2),        # sign ignored
    ({"size": 4, "min_size": 3}, "shrink", {"shrink": 3}, pb2.Response.SUCCESS, 3),   # clamped to minSize
    ({"size": 2}, "shrink", {"shrink": 5}, pb2.Response.SUCCESS, 1),         # minSize defaults to 1
    ({"size": 3, "max_size": None}, "grow", {}, pb2.Response.SUCCESS, 3),   # maxSize defaults to size
    ({"size": 4}, "grow", {"grow": 0}, pb2.Response.ERROR, 4),
    ({"size": 4}, "shrink", {"shrink": 0}, pb2.Response.ERROR, 4),
    ({"size": 4}, "grow", {"grow": -1}, pb2.Response.ERROR, 4),
])
def test_grow_and_shrink_semantics(spec: dict, action: str, payload: dict, status: int, size: int) -> None:
    setup = Setup()
    setup.member("ens-0", **spec)
    got_status, body = setup.act("ens-0", action, **payload)
    assert got_status == status, body
    assert setup.size("ens-0") == size
    if status == pb2.Response.SUCCESS:
        assert body["to"] == size


def test_clamped_reply_says_so() -> None:
    setup = Setup()
    setup.member("ens-0", size=15)
    _, body = setup.act("ens-0", "grow", grow=3)
    assert body == {"action": "grow", "name": "ens-0", "from": 15, "requested": 18, "to": 16, "clamped": True}


def test_a_grow_never_writes_a_size_above_the_flux_operators_maximum_size() -> None:
    # maxSize raised to 16 after the Flux Operator recorded maximumSize 4: it refuses 5+.
    setup = Setup()
    setup.kube.put(MINICLUSTERS, {**minicluster_obj("ens-0", setup.ensemble, size=3, max_size=16),
                                  "status": {"size": 3, "maximumSize": 4, "selector": "hpa-selector=ens-0",
                                             "jobid": ""}})
    status, body = setup.act("ens-0", "grow", grow=3)
    assert status == pb2.Response.SUCCESS and body["to"] == 4 and body["clamped"] is True
    assert setup.size("ens-0") == 4
    status, body = setup.act("ens-0", "grow")
    assert status == pb2.Response.SUCCESS and body["to"] == 4 and setup.size("ens-0") == 4


def test_minicluster_of_another_ensemble_is_denied() -> None:
    setup = Setup()
    other = setup.kube.put(ENSEMBLES, ensemble_obj("other"))
    setup.kube.put(MINICLUSTERS, minicluster_obj("other-0", other, size=2))
    status, body = setup.act("other-0", "grow")
    assert status == pb2.Response.DENIED
    assert "not a member of Ensemble 'ens'" in body["error"] and "'other'" in body["error"]
    assert setup.size("other-0") == 2
    assert setup.counted("grow", "DENIED") == 1


def test_unowned_minicluster_and_recreated_ensemble_are_denied() -> None:
    setup = Setup()
    setup.kube.put(MINICLUSTERS, minicluster_obj("loose", None))
    stale_owner = dict(setup.ensemble, metadata={**setup.ensemble["metadata"], "uid": "old-uid"})
    setup.kube.put(MINICLUSTERS, minicluster_obj("leftover", stale_owner))
    assert setup.act("loose", "grow")[0] == pb2.Response.DENIED
    assert setup.act("leftover", "grow")[0] == pb2.Response.DENIED


@pytest.mark.parametrize("name, action, payload, message", [
    ("absent", "grow", json.dumps(PAYLOAD), "MiniCluster ns/absent"),
    ("ens-0", "grow", "{oops", "payload: malformed JSON"),
    ("ens-0", "explode", "{}", "action: unknown action 'explode'"),
])
def test_errors_carry_the_reason(name: str, action: str, payload: str, message: str) -> None:
    setup = Setup()
    setup.member("ens-0", size=2)
    response = setup.servicer.RequestAction(
        pb2.ActionRequest(member="miniclusters", name=name, action=action, payload=payload), None)
    assert response.status == pb2.Response.ERROR
    assert message in json.loads(response.payload)["error"]
    assert setup.size("ens-0") == 2


def test_missing_ensemble_is_an_error() -> None:
    kube = FakeKube()
    kube.put(MINICLUSTERS, minicluster_obj("ens-0", None))
    scaler = EnsembleScaler(kube, "ens", "ns", clock=FakeClock(), retry=NO_WAIT)
    decision = scaler.scale(ScaleRequest("grow", "ens-0", 1))
    assert decision.outcome is Outcome.ERROR and "Ensemble ns/ens not found" in decision.payload["error"]


def test_decisions_are_counted_by_action_and_result() -> None:
    setup = Setup()
    setup.member("ens-0", size=2)
    setup.act("ens-0", "grow")
    setup.act("ens-0", "grow")
    setup.act("ens-0", "shrink", shrink=0)
    setup.act("ens-0", "dance")
    assert setup.counted("grow", "SUCCESS") == 2
    assert setup.counted("shrink", "ERROR") == 1
    assert setup.counted("unknown", "ERROR") == 1


def test_concurrent_grows_lose_nothing() -> None:
    setup = Setup()
    setup.member("ens-0", size=1, max_size=16)
    results = run_together(lambda: setup.act("ens-0", "grow")[0], 10, timeout=10)
    assert results == [pb2.Response.SUCCESS] * 10
    assert setup.size("ens-0") == 11


def test_write_from_someone_else_is_not_overwritten() -> None:
    setup = Setup()
    setup.member("ens-0", size=2)
    setup.act("ens-0", "grow")                                  # cache now holds size 3
    setup.kube.patch(MINICLUSTERS, "ens-0", {"spec": {"size": 6}}, namespace="ns")   # another writer
    status, body = setup.act("ens-0", "grow")
    assert status == pb2.Response.SUCCESS and body["from"] == 6
    assert setup.size("ens-0") == 7
    assert setup.kube.conflicts == 1


def test_steady_requests_cost_one_write_and_no_reads() -> None:
    setup = Setup()
    setup.member("ens-0", size=1)
    setup.act("ens-0", "grow")
    writes_before = len(setup.kube.patches)
    calls = []
    original_get = setup.kube.get
    setup.kube.get = lambda *a, **k: calls.append(a) or original_get(*a, **k)
    setup.act("ens-0", "grow")
    setup.act("ens-0", "shrink")
    assert calls == []
    assert len(setup.kube.patches) == writes_before + 2


def test_persistent_conflicts_give_up_with_an_error() -> None:
    setup = Setup()
    setup.member("ens-0", size=2)
    scaler = EnsembleScaler(setup.kube, "ens", "ns", clock=FakeClock(),
                            retry=RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0))
    original_get = setup.kube.get

    def get_then_someone_writes(res, name, namespace=None):
        obj = original_get(res, name, namespace)
        if res is MINICLUSTERS:
            setup.kube.patch(MINICLUSTERS, name, {"metadata": {"labels": {"touched": "yes"}}}, namespace="ns")
        return obj

    setup.kube.get = get_then_someone_writes
    decision = scaler.scale(ScaleRequest("grow", "ens-0", 1))
    assert decision.outcome is Outcome.ERROR
    assert "still conflicting after 3 attempts" in decision.payload["error"]
    assert setup.kube.conflicts == 3


def test_budget_grants_in_proportion_to_waiting_demand() -> None:
    polls = {"ens-0": {"waiting": {"1": 6}}, "ens-1": {"waiting": {"2": 1}}}
    setup = Setup(budget=8, polls=polls, members=2)
    setup.member("ens-0", size=2)
    setup.member("ens-1", size=2)
    status, body = setup.act("ens-0", "grow", grow=6)
    # demand 6 vs 2 -> shares 6 and 2 of 8; ens-0 holds 2, so it gets 4 of the 6 it asked for
    assert status == pb2.Response.SUCCESS
    assert body["to"] == 6 and "fair share of ens-0 is 6 (by waiting demand)" in body["budget"]
    status, body = setup.act("ens-1", "grow", grow=2)
    assert status == pb2.Response.DENIED and "no nodes granted" in body["error"]
    assert (setup.size("ens-0"), setup.size("ens-1")) == (6, 2)


def test_budget_without_polls_uses_equal_shares_and_ignores_foreign_members() -> None:
    setup = Setup(budget=6, members=2)
    other = setup.kube.put(ENSEMBLES, ensemble_obj("other"))
    setup.kube.put(MINICLUSTERS, minicluster_obj("other-0", other, size=10))
    setup.member("ens-0", size=1)
    setup.member("ens-1", size=1)
    status, body = setup.act("ens-0", "grow", grow=5)
    assert status == pb2.Response.SUCCESS and body["to"] == 3
    assert "equal shares" in body["budget"]


def test_grow_within_budget_is_not_limited() -> None:
    setup = Setup(budget=10)
    setup.member("ens-0", size=1)
    status, body = setup.act("ens-0", "grow", grow=3)
    assert (status, body["to"]) == (pb2.Response.SUCCESS, 4)
    assert body["budget"].startswith("within budget")


def test_invalid_budget_is_an_error_naming_the_field() -> None:
    setup = Setup(budget=-1)
    setup.member("ens-0", size=1)
    status, body = setup.act("ens-0", "grow")
    assert status == pb2.Response.ERROR and "spec.budget" in body["error"]


def test_status_returns_members_sizes_and_last_poll() -> None:
    poll = {"queue": {"run": 2}, "waiting": {"1": 1}}
    setup = Setup(budget=9, polls={"ens-0": poll}, members=2)
    setup.member("ens-1", size=3, min_size=1, max_size=4)
    setup.member("ens-0", size=2)
    other = setup.kube.put(ENSEMBLES, ensemble_obj("other"))
    setup.kube.put(MINICLUSTERS, minicluster_obj("other-0", other))
    response = setup.servicer.RequestStatus(pb2.StatusRequest(), None)
    assert response.status == pb2.Response.SUCCESS
    view = json.loads(response.payload)
    assert view["ensemble"] == "ens" and view["budget"] == 9
    assert [(m["name"], m["size"], m["lastPoll"]) for m in view["members"]] == [
        ("ens-0", 2, poll), ("ens-1", 3, None)]
    one = json.loads(setup.servicer.RequestStatus(pb2.StatusRequest(name="ens-1"), None).payload)
    assert [m["name"] for m in one["members"]] == ["ens-1"]
    missing = setup.servicer.RequestStatus(pb2.StatusRequest(name="other-0"), None)
    assert missing.status == pb2.Response.ERROR


def test_update_requests_are_refused_with_a_reason() -> None:
    response = Setup().servicer.RequestUpdate(pb2.UpdateRequest(member="miniclusters"), None)
    assert response.status == pb2.Response.ERROR
    assert "not supported" in json.loads(response.payload)["error"]


def test_last_polls_prefer_the_minicluster_name() -> None:
    ensemble = {"status": {"members": [
        {"name": "ens-0", "minicluster": "renamed", "lastPoll": {"waiting": {"1": 2}}},
        {"name": "ens-1", "lastPoll": {"waiting": {}}},
        {"name": "ens-2"},
    ]}}
    assert last_polls(ensemble) == {"renamed": {"waiting": {"1": 2}}, "ens-1": {"waiting": {}}}


def test_no_op_decision_is_not_taken_from_a_stale_cached_size() -> None:
    """A grow clamped to the cached size sends no write, so no resourceVersion guard catches a
    stale cache: the member's grow was answered SUCCESS "4 -> 4" while the MiniCluster had 2."""
    setup = Setup()
    setup.member("ens-0", size=3, max_size=4)
    setup.act("ens-0", "grow")                                   # cache now holds size 4
    setup.kube.patch(MINICLUSTERS, "ens-0", {"spec": {"size": 2}}, namespace="ns")   # e.g. the operator shrank it
    status, body = setup.act("ens-0", "grow")
    assert status == pb2.Response.SUCCESS and (body["from"], body["to"]) == (2, 3)
    assert setup.size("ens-0") == 3


def test_budget_denial_is_not_taken_from_a_stale_cached_size() -> None:
    setup = Setup(budget=4, members=2)
    setup.member("ens-0", size=1)
    setup.member("ens-1", size=1)
    assert setup.act("ens-0", "grow", grow=2)[1]["to"] == 3      # cache now holds size 3
    setup.kube.patch(MINICLUSTERS, "ens-0", {"spec": {"size": 1}}, namespace="ns")
    status, body = setup.act("ens-0", "grow")
    assert status == pb2.Response.SUCCESS, body
    assert setup.size("ens-0") == 2


def test_steady_no_op_requests_read_once_each() -> None:
    """The fix costs one GET for a request that changes nothing, and none for one that writes."""
    setup = Setup()
    setup.member("ens-0", size=3, max_size=3)
    setup.act("ens-0", "grow")
    calls = []
    original_get = setup.kube.get
    setup.kube.get = lambda *a, **k: calls.append(a) or original_get(*a, **k)
    status, body = setup.act("ens-0", "grow")
    assert status == pb2.Response.SUCCESS and body["to"] == 3
    assert len(calls) == 1 and setup.kube.patches == []


def test_zero_min_and_max_size_mean_unset_as_in_the_api() -> None:
    """0 is the Go zero value ("unset") for minSize/maxSize, and the Ensemble API documents it so;
    the MiniCluster carries the member's spec as written. minSize 0 let a shrink reach 0 pods
    (no lead broker), maxSize 0 made every grow and shrink an ERROR "minSize 1 > maxSize 0"."""
    setup = Setup()
    setup.member("ens-0", size=2, min_size=0)
    setup.member("ens-1", size=2, max_size=0)
    status, body = setup.act("ens-0", "shrink", shrink=5)
    assert (status, body["to"], setup.size("ens-0")) == (pb2.Response.SUCCESS, 1, 1)
    status, body = setup.act("ens-1", "shrink")
    assert status == pb2.Response.SUCCESS, body
    assert setup.size("ens-1") == 1


def test_zero_size_means_one() -> None:
    """An Ensemble member's ``size: 0`` means 1 and reaches the MiniCluster as written; with
    maxSize unset every request was an ERROR "minSize 1 > maxSize 0"."""
    setup = Setup()
    setup.member("ens-0", size=0, max_size=3)
    setup.member("ens-1", size=0, max_size=None)
    status, body = setup.act("ens-0", "grow")
    assert (status, body["from"], setup.size("ens-0")) == (pb2.Response.SUCCESS, 1, 2)
    status, body = setup.act("ens-1", "grow")
    assert (status, body["to"]) == (pb2.Response.SUCCESS, 1), body


def forbid_list(setup: Setup) -> None:
    """The shipped Role grants the service get/patch on MiniClusters and get on its Ensemble, no list."""
    def forbidden(*args, **kwargs):
        raise ApiError(403, "Forbidden", 'miniclusters.flux-framework.org is forbidden: cannot list')
    setup.kube.list = forbidden


def test_budget_grow_needs_no_list_permission() -> None:
    """Every grow of an Ensemble with spec.budget listed MiniClusters, which the service's Role does
    not allow: under its own ServiceAccount each such grow was an ERROR '... forbidden'."""
    setup = Setup(budget=6, members=2)
    setup.member("ens-0", size=1)
    setup.member("ens-1", size=1)
    forbid_list(setup)
    status, body = setup.act("ens-0", "grow", grow=5)
    assert status == pb2.Response.SUCCESS, body
    assert body["to"] == 3 and "equal shares" in body["budget"]


def test_status_needs_no_list_permission() -> None:
    setup = Setup(members=3)
    setup.member("ens-0", size=2)
    setup.member("ens-1", size=3)                                # ens-2 not created yet
    forbid_list(setup)
    response = setup.servicer.RequestStatus(pb2.StatusRequest(), None)
    assert response.status == pb2.Response.SUCCESS, response.payload
    assert [(m["name"], m["size"]) for m in json.loads(response.payload)["members"]] == [("ens-0", 2), ("ens-1", 3)]


def test_a_minicluster_the_role_does_not_name_is_denied_not_an_error() -> None:
    """The service's Role lists its members by name, so the API server answers 403 for any
    other MiniCluster: that is the upstream DENIED (not ours), not an ERROR."""
    setup = Setup()
    setup.member("ens-0", size=1)

    def forbidden(res, name, namespace=None):
        raise ApiError(403, "Forbidden", f'miniclusters "{name}" is forbidden: User cannot get resource')

    setup.kube.get = forbidden
    status, body = setup.act("other-0", "grow")
    assert status == pb2.Response.DENIED, body
    assert "not a member of Ensemble" in body["error"] and "forbidden" in body["error"]
