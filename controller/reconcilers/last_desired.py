"""What each Ensemble's decoded spec desired last: its objects' references and applied hashes.

Desired objects are a pure function of the decoded spec, the Ensemble's name, namespace and
uid, and the reconciler's settings. ``KnownValid`` hands out the same decoded ``Ensemble``
object while its uid and generation stay, so while a reconcile holds that same object, what
it desires is what it desired last time. Most reconciles (poll results, status echoes,
resyncs) meet such an Ensemble whose owned objects the caches still show as last matched:
building its desired objects again and hashing each (about 40% of such a reconcile, measured
by bench/bench_reconcile_cpu.py) would only find nothing to apply. Only the references and
hashes are kept (about 1.3 KiB per one-member Ensemble), not the objects.
"""
from __future__ import annotations

from api.v1alpha1 import Ensemble
from controller.reconcilers.owned_objects import DesiredRef
from controller.runtime.reconcile import Request


class LastDesired:
    """Per Ensemble, keyed by its Request; the reconciler's workers never share a Request."""

    def __init__(self) -> None:
        self._by_request: dict[Request, tuple[Ensemble, tuple[DesiredRef, ...]]] = {}

    def get(self, request: Request, typed: Ensemble) -> tuple[DesiredRef, ...] | None:
        """What ``typed`` desired when kept, if it is the very object kept (not an equal one)."""
        known = self._by_request.get(request)
        return known[1] if known is not None and known[0] is typed else None

    def keep(self, request: Request, typed: Ensemble, refs: tuple[DesiredRef, ...]) -> None:
        self._by_request[request] = (typed, refs)

    def forget(self, request: Request) -> None:
        """The Ensemble is invalid or gone."""
        self._by_request.pop(request, None)
