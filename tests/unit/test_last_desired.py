"""LastDesired: what a decoded spec desired, kept for that very decoded object only."""
from __future__ import annotations

from api.v1alpha1 import Ensemble
from controller.kube.resources import CONFIGMAPS
from controller.reconcilers.last_desired import LastDesired
from controller.reconcilers.owned_objects import DesiredRef
from controller.runtime.reconcile import Request
from tests.unit.fakes.reconciler import make_ensemble

REQUEST = Request("ns", "e1")
REFS = (DesiredRef(CONFIGMAPS, "ns", "e1-0", "0123456789abcdef"),)


def decoded() -> Ensemble:
    return Ensemble.from_dict(make_ensemble())


def test_the_refs_are_given_back_for_the_same_decoded_object_only() -> None:
    last = LastDesired()
    typed = decoded()
    assert last.get(REQUEST, typed) is None
    last.keep(REQUEST, typed, REFS)
    assert last.get(REQUEST, typed) == REFS
    equal_but_decoded_again = decoded()
    assert equal_but_decoded_again == typed and last.get(REQUEST, equal_but_decoded_again) is None
    assert last.get(Request("ns", "e2"), typed) is None


def test_a_forgotten_ensemble_has_no_refs() -> None:
    last = LastDesired()
    typed = decoded()
    last.keep(REQUEST, typed, REFS)
    last.forget(REQUEST)
    last.forget(REQUEST)  # twice is fine: an Ensemble may be gone and invalid
    assert last.get(REQUEST, typed) is None
