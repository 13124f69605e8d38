"""KnownValid: which Ensembles a reconcile need not walk again, and when that knowledge ends."""
from __future__ import annotations

from api.v1alpha1 import Ensemble
from controller.reconcilers.known_valid import KnownValid
from controller.runtime.reconcile import Request
from tests.unit.fakes.reconciler import make_ensemble

REQUEST = Request("ns", "e1")


def at(version: str, *, generation: int = 1, uid: str = "uid-e1", status: dict | None = None) -> dict:
    ensemble = make_ensemble()
    ensemble["metadata"].update(resourceVersion=version, generation=generation, uid=uid)
    if status is not None:
        ensemble["status"] = status
    return ensemble


def test_a_status_is_known_valid_only_at_the_version_it_passed_or_was_written_at() -> None:
    known = KnownValid()
    assert known.status_known(REQUEST, at("1"))  # no status: nothing to walk
    assert not known.status_known(REQUEST, at("1", status={"phase": "Pending"}))
    known.passed(REQUEST, at("1", status={"phase": "Pending"}), Ensemble.from_dict(at("1")))
    assert known.status_known(REQUEST, at("1", status={"phase": "Pending"}))
    assert not known.status_known(REQUEST, at("2", status={"phase": "Pending"}))  # someone else's change
    known.status_written(REQUEST, {"metadata": {"resourceVersion": "3"}})
    assert known.status_known(REQUEST, at("3", status={"phase": "Running"}))
    assert not known.status_known(Request("ns", "other"), at("3", status={"phase": "Running"}))


def test_the_decoded_spec_is_reused_until_the_generation_or_uid_changes_or_the_status_is_unknown() -> None:
    known = KnownValid()
    typed = Ensemble.from_dict(at("1"))
    assert known.decoded(REQUEST, at("1")) is None
    known.passed(REQUEST, at("1", status={"phase": "Pending"}), typed)
    assert known.decoded(REQUEST, at("1", status={"phase": "Pending"})) is typed
    known.status_written(REQUEST, {"metadata": {"resourceVersion": "2"}})
    assert known.decoded(REQUEST, at("2", status={"phase": "Running"})) is typed  # our own status write
    assert known.decoded(REQUEST, at("3", status={"phase": "Running"})) is None  # status not known at 3
    assert known.decoded(REQUEST, at("2", generation=2, status={"phase": "Running"})) is None  # a spec edit
    assert known.decoded(REQUEST, at("2", uid="uid-new", status={"phase": "Running"})) is None  # recreated
    known.forget(REQUEST)
    assert known.decoded(REQUEST, at("2", status={"phase": "Running"})) is None
    assert not known.status_known(REQUEST, at("2", status={"phase": "Running"}))


def test_an_ensemble_without_a_generation_is_never_reused() -> None:
    known = KnownValid()
    ensemble = at("1")
    del ensemble["metadata"]["generation"]
    known.passed(REQUEST, ensemble, Ensemble.from_dict(at("1")))
    assert known.decoded(REQUEST, ensemble) is None
