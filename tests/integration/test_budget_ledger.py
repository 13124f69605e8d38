"""spec.budget across deciders on a real API server: the shared ledger in status.budgetGrants.

The ensemble service and the operator's ``scale`` algorithm are two processes, each with its
own EnsembleScaler; a lock inside one of them cannot keep the budget for both.
"""
from __future__ import annotations

import json
import threading

import pytest

from controller.clock import RealClock
from controller.kube.client import KubeClient
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, Resource
from controller.reconcilers.desired.service import role, role_binding
from controller.reconcilers.ensemble import FIELD_MANAGER as OPERATOR_FIELD_MANAGER
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import EnsembleScaler, Outcome
from tests.helpers import run_together, wait_for
from tests.integration.objects import JOBS_ONLY, make_minicluster
from tests.integration.test_rbac import can_i

pytestmark = pytest.mark.integration

BUDGET = 6


class DecidedTogether:
    """A KubeApi whose first write waits until the other decider reached its first write too, so
    both have read the cluster before either changed it: the race two processes can run into."""

    def __init__(self, client: KubeClient, barrier: threading.Barrier) -> None:
        self._client = client
        self._barrier = barrier
        self._first = True

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        return self._client.get(res, name, namespace)

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None:
        return self._client.get_or_none(res, name, namespace)

    def patch(self, res: Resource, name: str, patch: object, *, namespace: str | None = None,
              patch_type: str = "merge", subresource: str | None = None,
              field_manager: str | None = None) -> dict:
        if self._first:
            self._first = False
            self._barrier.wait(timeout=30)
        return self._client.patch(res, name, patch, namespace=namespace, patch_type=patch_type,
                                  subresource=subresource, field_manager=field_manager)


def budgeted_ensemble(kube: KubeClient, namespace: str) -> dict:
    member = {"minicluster": {"spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}]}},
              "ensemble": JOBS_ONLY}
    ensemble = kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                       "metadata": {"name": "ens", "namespace": namespace},
                                       "spec": {"members": [member, member], "budget": BUDGET}}, namespace)
    make_minicluster(kube, namespace, "ens-0", ensemble)
    make_minicluster(kube, namespace, "ens-1", ensemble)
    return ensemble


def sizes(kube: KubeClient, namespace: str) -> list[int]:
    return [kube.get(MINICLUSTERS, name, namespace)["spec"]["size"] for name in ("ens-0", "ens-1")]


def test_two_deciders_growing_at_once_keep_the_budget(kube_cluster, kube: KubeClient, namespace: str,
                                                      minicluster_crd: str, ensemble_crd: str) -> None:
    budgeted_ensemble(kube, namespace)
    barrier = threading.Barrier(2)
    # Two deciders as two processes would be: own client, own scaler, own lock.
    deciders = {member: EnsembleScaler(DecidedTogether(kube_cluster.admin_client(), barrier), "ens",
                                       namespace, clock=RealClock())
                for member in ("ens-0", "ens-1")}
    members = iter(deciders)
    lock = threading.Lock()

    def grow_until_denied() -> list[Outcome]:
        with lock:
            member = next(members)
        scaler = deciders[member]
        outcomes = [scaler.scale(ScaleRequest("grow", member, 4)).outcome]   # each alone would fit
        while outcomes[-1] is Outcome.SUCCESS and len(outcomes) < 20:
            outcomes.append(scaler.scale(ScaleRequest("grow", member, 1)).outcome)
        return outcomes

    results = run_together(grow_until_denied, 2, timeout=60)
    assert len(results) == 2
    assert all(Outcome.ERROR not in outcomes for outcomes in results), results
    assert sum(sizes(kube, namespace)) <= BUDGET, sizes(kube, namespace)   # sizes only grew: never above
    assert sum(sizes(kube, namespace)) == BUDGET, sizes(kube, namespace)   # and the budget is used


def test_the_ledger_and_the_operators_status_writes_leave_each_other_alone(
        kube: KubeClient, namespace: str, minicluster_crd: str, ensemble_crd: str) -> None:
    """The reconciler applies its status fields (server-side apply, its own field manager): the
    ledger is not among them, so it stays; a ledger write is a merge patch of budgetGrants only,
    and changes no generation, so the reconciler's generation_changed predicate ignores it."""
    ensemble = budgeted_ensemble(kube, namespace)
    scaler = EnsembleScaler(kube, "ens", namespace, clock=RealClock())
    assert scaler.scale(ScaleRequest("grow", "ens-0", 2)).outcome is Outcome.SUCCESS
    ledger = kube.get(ENSEMBLES, "ens", namespace)["status"]["budgetGrants"]
    assert [(g["minicluster"], g["size"]) for g in ledger] == [("ens-0", 3)]
    operator_status = {"observedGeneration": 1, "phase": "Running", "summary": {"members": 2, "ready": 2}}
    for _ in range(2):  # the first apply takes ownership of these fields, the second re-applies them
        kube.apply(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                               "metadata": {"name": "ens", "namespace": namespace}, "status": operator_status},
                   field_manager=OPERATOR_FIELD_MANAGER, force=True, subresource="status")
    stored = kube.get(ENSEMBLES, "ens", namespace)
    assert stored["status"]["budgetGrants"] == ledger
    assert scaler.scale(ScaleRequest("grow", "ens-1", 2)).outcome is Outcome.SUCCESS
    stored = kube.get(ENSEMBLES, "ens", namespace)
    assert {key: stored["status"][key] for key in operator_status} == operator_status
    assert [g["minicluster"] for g in stored["status"]["budgetGrants"]] == ["ens-1"]   # ens-0's grant landed
    assert stored["metadata"]["generation"] == ensemble["metadata"]["generation"]


def test_the_service_may_write_its_own_ensembles_status_only(kube_cluster, namespace: str,
                                                             ensemble_crd: str) -> None:
    ensemble = {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                "metadata": {"name": "svc", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000002"},
                "spec": {"members": [{"minicluster": {"spec": {}}}]}}
    for obj in (role(ensemble), role_binding(ensemble)):
        obj["metadata"].pop("ownerReferences")
        kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    service, ensembles = f"system:serviceaccount:{namespace}:svc", "ensembles.ensemble.flux-framework.org"
    # Waited for: the authorizer's RBAC caches lag the apply, and until then every "no" below would pass.
    wait_for(lambda: can_i(kube_cluster, service, "patch", f"{ensembles}/status", namespace, "svc"), 30,
             "the service may patch its own Ensemble's status")
    for verb, resource, name in (("patch", f"{ensembles}/status", "other"), ("patch", ensembles, "svc"),
                                 ("update", f"{ensembles}/status", "svc"), ("patch", f"{ensembles}/status", None)):
        assert not can_i(kube_cluster, service, verb, resource, namespace, name), f"{verb} {resource} {name}"
