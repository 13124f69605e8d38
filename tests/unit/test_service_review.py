"""Ensemble service defects found in review: each test failed before its fix."""
from __future__ import annotations

import json

from controller.kube.errors import ApiError
from controller.kube.resources import MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from tests.unit.test_service import Setup


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
