"""Ensemble names: every object the operator creates is named after the Ensemble, and the
ensemble service's Service `<e>-grpc` (like the MiniClusters' headless Service `<e>`) must be a
DNS label of at most 63 characters. A name that cannot make them is an invalid spec, reported
on the Ensemble (condition and Event), not an apply error retried forever in the logs."""
from __future__ import annotations

from api.v1alpha1 import Ensemble, validate
from api.v1alpha1.crd import crd
from api.v1alpha1.names import MAX_ENSEMBLE_NAME_LENGTH
from controller.kube.resources import ENSEMBLES
from controller.reconcilers.desired import DesiredSettings, desired_objects
from controller.reconcilers.desired.meta import grpc_service_name
from controller.runtime.reconcile import Request, Result
from tests.unit import test_reconciler
from tests.unit.test_reconciler import conditions, make_ensemble, stored_ensemble

env = test_reconciler.env  # the reconciler on a fake API server, caches and recorder


def named(name: str) -> dict:
    return make_ensemble(name=name)


def test_the_longest_valid_name_makes_a_63_character_service_name() -> None:
    name = "e" * MAX_ENSEMBLE_NAME_LENGTH
    assert validate(named(name)) == []
    assert len(grpc_service_name(named(name))) == 63


def test_a_name_too_long_for_the_service_is_a_field_error() -> None:
    errors = validate(named("e" * (MAX_ENSEMBLE_NAME_LENGTH + 1)))
    assert [e.path for e in errors] == ["metadata.name"]
    assert "at most 58 characters" in errors[0].message and "-grpc" in errors[0].message


def test_a_dotted_name_is_a_field_error() -> None:
    errors = validate(named("my.ensemble"))
    assert [e.path for e in errors] == ["metadata.name"]
    assert "dots" in errors[0].message


def test_objects_without_a_name_are_judged_on_their_spec_only() -> None:
    obj = named("x")
    del obj["metadata"]["name"]
    assert validate(obj) == []


def test_every_object_name_the_operator_builds_fits_a_dns_label() -> None:
    ensemble = named("e" * MAX_ENSEMBLE_NAME_LENGTH)
    ensemble["spec"]["members"] = ensemble["spec"]["members"] * 10
    typed = Ensemble.from_dict(ensemble).to_dict()
    settings = DesiredSettings(operator_image="op:dev", member_status_port=7000)
    for obj in desired_objects(typed, settings):
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


def test_a_name_too_long_gets_invalid_spec_and_a_warning_instead_of_failing_applies(env) -> None:
    api, recorder, _, _, reconciler = env
    name = "e" * (MAX_ENSEMBLE_NAME_LENGTH + 1)
    api.put(ENSEMBLES, make_ensemble(name=name))
    assert reconciler.reconcile(Request("ns", name)) == Result()
    assert api.kinds_written() == [("Ensemble", name)]   # no Service the API server would refuse
    assert stored_ensemble(api, name)["status"]["phase"] == "Invalid"
    assert "metadata.name" in conditions(api, name)["InvalidSpec"]["message"]
    (warning,) = recorder.events
    assert warning[:2] == ("Warning", "InvalidSpec") and "metadata.name" in warning[2]


def test_the_crd_refuses_such_names_at_apply() -> None:
    rules = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == [
        f"oldSelf.hasValue() || (self.metadata.name.size() <= {MAX_ENSEMBLE_NAME_LENGTH})",
        "oldSelf.hasValue() || (!self.metadata.name.contains('.'))"]
    assert all(r["optionalOldSelf"] for r in rules)   # at create only: stored objects stay writable
    assert all(r["message"].startswith("metadata.name") for r in rules)
