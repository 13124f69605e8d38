"""Ensemble.from_dict / to_dict: defaults, typed accessors, and errors that name the field."""
from __future__ import annotations

import copy

import pytest

from api.v1alpha1 import Ensemble, InvalidObjectError
from api.v1alpha1.codec import encode
from api.v1alpha1.types import (DEFAULT_SIDECAR_IMAGE, Condition, EnsembleStatus, LeadBroker, MemberStatus,
                                StatusSummary)


def minimal(**spec_overrides: object) -> dict:
    spec = {"members": [{"minicluster": {"spec": {"containers": [{"image": "app:1"}]}},
                         "ensemble": "jobs: []\nrules: []\n"}]}
    spec.update(spec_overrides)
    return {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": "demo", "namespace": "ns"}, "spec": spec}


def test_defaults_follow_upstream() -> None:
    ensemble = Ensemble.from_dict(minimal())
    member = ensemble.spec.members[0]
    assert (member.size, member.max_size, member.min_size) == (1, 1, 1)
    assert member.branch is None
    assert ensemble.spec.sidecar.image == DEFAULT_SIDECAR_IMAGE
    assert ensemble.spec.sidecar.port == "50051"
    assert ensemble.spec.sidecar.workers == 10
    assert ensemble.spec.sidecar.image_pull_policy is None
    assert ensemble.spec.heartbeat == 10
    assert ensemble.spec.algorithm is None
    assert ensemble.spec.budget is None
    assert (ensemble.name, ensemble.namespace) == ("demo", "ns")


def test_max_size_defaults_to_size_and_zero_means_unset() -> None:
    obj = minimal()
    obj["spec"]["members"][0]["minicluster"]["spec"].update(size=3, maxSize=0)
    member = Ensemble.from_dict(obj).spec.members[0]
    assert (member.size, member.max_size) == (3, 3)
    obj["spec"]["members"][0]["minicluster"]["spec"].update(size=0)
    assert Ensemble.from_dict(obj).spec.members[0].size == 1


def test_explicit_sizes_and_unknown_minicluster_fields_are_kept() -> None:
    obj = minimal()
    obj["spec"]["members"][0]["minicluster"]["spec"].update(
        size=2, minSize=1, maxSize=8, flux={"completeWorkers": True}, interactive=False)
    member = Ensemble.from_dict(obj).spec.members[0]
    assert (member.size, member.min_size, member.max_size) == (2, 1, 8)
    assert member.spec["flux"] == {"completeWorkers": True}
    assert member.containers == [{"image": "app:1"}]


def test_from_dict_does_not_mutate_its_input() -> None:
    obj = minimal()
    before = copy.deepcopy(obj)
    Ensemble.from_dict(obj)
    assert obj == before


def test_new_fields_decode() -> None:
    obj = minimal(algorithm={"name": "scale", "options": {"threshold": 2, "mode": "eager"}},
                  heartbeat=30, budget=12, sidecar={"port": "6000", "workers": 4, "imagePullPolicy": "Never"})
    spec = Ensemble.from_dict(obj).spec
    assert spec.algorithm.name == "scale"
    assert spec.algorithm.options == {"threshold": 2, "mode": "eager"}
    assert (spec.heartbeat, spec.budget) == (30, 12)
    assert (spec.sidecar.port, spec.sidecar.workers, spec.sidecar.image_pull_policy) == ("6000", 4, "Never")


def test_unknown_fields_are_ignored_like_server_pruning() -> None:
    obj = minimal(sidecar={"pullAlways": True}, surprise={"a": 1})
    assert Ensemble.from_dict(obj).spec.sidecar.port == "50051"


def test_errors_name_every_bad_field() -> None:
    obj = minimal(heartbeat="10s", sidecar={"workers": 0, "imagePullPolicy": "Sometimes"})
    obj["spec"]["members"][0]["minicluster"]["spec"]["containers"] = [{"workingDir": "/"}]
    with pytest.raises(InvalidObjectError) as caught:
        Ensemble.from_dict(obj)
    paths = {error.path: error.message for error in caught.value.errors}
    assert paths == {
        "spec.members[0].minicluster.spec.containers[0].image": "required field is missing",
        "spec.heartbeat": "must be an integer, got string '10s'",
        "spec.sidecar.workers": "must be at least 1, got 0",
        "spec.sidecar.imagePullPolicy": "must be one of Always, IfNotPresent, Never, got 'Sometimes'",
    }
    assert "spec.heartbeat" in str(caught.value)


def test_missing_spec_is_an_error() -> None:
    with pytest.raises(InvalidObjectError, match="spec: required field is missing"):
        Ensemble.from_dict({"metadata": {"name": "x"}})


def test_to_dict_round_trips_with_defaults() -> None:
    ensemble = Ensemble.from_dict(minimal(budget=4))
    out = ensemble.to_dict()
    assert out["spec"]["sidecar"] == {"image": DEFAULT_SIDECAR_IMAGE, "port": "50051", "workers": 10}
    assert out["spec"]["members"][0]["minicluster"]["spec"]["maxSize"] == 1
    assert "algorithm" not in out["spec"]
    assert Ensemble.from_dict(out).to_dict() == out


def test_status_encodes_with_wire_names() -> None:
    status = EnsembleStatus(
        observed_generation=3, phase="Running",
        conditions=[Condition(type="Ready", status="True", reason="Polled",
                              last_transition_time="2024-01-01T00:00:00Z", observed_generation=3)],
        members=[MemberStatus(name="demo-0", minicluster="demo-0", desired_size=2, current_size=1,
                              lead_broker=LeadBroker(pod="demo-0-0-abc", ip="10.0.0.5"),
                              last_poll={"queue": {"run": 1}})],
        summary=StatusSummary(members=1, ready=1))
    wire = encode(status)
    assert wire["observedGeneration"] == 3
    assert wire["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert wire["members"][0]["leadBroker"] == {"pod": "demo-0-0-abc", "ip": "10.0.0.5"}
    assert wire["members"][0]["desiredSize"] == 2
    assert "phase" not in wire["members"][0]
    assert wire["summary"] == {"members": 1, "ready": 1}
    obj = minimal()
    obj["status"] = wire
    assert Ensemble.from_dict(obj).status == status
