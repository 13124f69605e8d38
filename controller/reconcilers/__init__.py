"""Reconcilers; ``setup`` registers the Ensemble controller with a Manager.

Owns the Ensemble reconciler and its collaborators, the desired objects (``desired``),
status, the StatusPoller and the ActionRunner that carries out algorithm decisions.

May import: ``controller.runtime``, ``controller.scaling``, ``controller.proto``,
``controller.informers``, ``controller.workqueue``, ``controller.kube``,
``controller.algorithms``, ``controller.memberpods`` (labels, lead brokers), ``api`` and the
foundations (clock, logs, backoff). Never another process package (service, member,
statusview, cli).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from controller.informers import CONTROLLER_UID_INDEX, index_by_controller_uid
from controller.memberpods.labels import ENSEMBLE_LABEL, MANAGED_SELECTOR, MEMBER_POD_SELECTOR
from controller.memberpods.leadbroker import MINICLUSTER_INDEX, index_by_minicluster
from controller.kube.resources import (CONFIGMAPS, DEPLOYMENTS, ENSEMBLES, JOBS, MINICLUSTERS, NETWORKPOLICIES, PODS,
                                       ROLEBINDINGS, ROLES, SERVICEACCOUNTS, SERVICES, Resource)
from controller.reconcilers.action_runner import ActionRunner
from controller.reconcilers.budget_metrics import BudgetCollector
from controller.reconcilers.desired import DesiredSettings
from controller.reconcilers.desired.settings import (DEFAULT_MEMBER_STATUS_PORT, DEFAULT_OPERATOR_IMAGE,
                                                     DEFAULT_OPERATOR_NAMESPACE)
from controller.reconcilers.ensemble import EnsembleCaches, EnsembleReconciler
from controller.reconcilers.member_client import GrpcMemberClient
from controller.reconcilers.aiopoller import AsyncStatusPoller
from controller.runtime.builder import ControllerBuilder
from controller.runtime.controller import Controller
from controller.runtime.predicates import PredicateFuncs, generation_changed
from controller.runtime.reconcile import Request
from controller.runtime.writes import WrittenObjects
from controller.scaling.scaler import EnsembleScaler

OPERATOR_IMAGE_ENV = "ENSEMBLE_OPERATOR_IMAGE"
OWNED_RESOURCES = (SERVICEACCOUNTS, ROLES, ROLEBINDINGS, SERVICES, DEPLOYMENTS, CONFIGMAPS, MINICLUSTERS,
                   NETWORKPOLICIES)


def _ensemble_of_member_object(obj: dict) -> list[Request]:
    """A member pod's or Job's Ensemble, from the label the MiniCluster's pod labels carry."""
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(ENSEMBLE_LABEL)
    return [Request(meta.get("namespace", ""), name)] if name else []


def _owners_changed(old: dict, new: dict) -> bool:
    return (old.get("metadata") or {}).get("ownerReferences") != (new.get("metadata") or {}).get("ownerReferences")


# Of a member Job only its UID and controller matter (its status follows its pods, watched already).
job_identity_changed = PredicateFuncs(update=_owners_changed)


def settings_from(args: Any) -> DesiredSettings:
    """Operator image: ``--operator-image``, else $ENSEMBLE_OPERATOR_IMAGE, else the default.
    Operator namespace (the source NetworkPolicies let in): ``--operator-namespace``, else
    $POD_NAMESPACE, else the manifests' namespace. The ensemble services' rate limit: the
    ``--service-rate-limit-*`` flags, else the service's own defaults."""
    return DesiredSettings(
        operator_image=(getattr(args, "operator_image", None) or os.environ.get(OPERATOR_IMAGE_ENV)
                        or DEFAULT_OPERATOR_IMAGE),
        member_status_port=getattr(args, "member_status_port", None) or DEFAULT_MEMBER_STATUS_PORT,
        operator_namespace=(getattr(args, "operator_namespace", None) or os.environ.get("POD_NAMESPACE")
                            or DEFAULT_OPERATOR_NAMESPACE),
        service_rate_limit_qps=getattr(args, "service_rate_limit_qps", None),
        service_rate_limit_burst=getattr(args, "service_rate_limit_burst", None))


def ensemble_caches(cache: Callable[[Resource], Any], written: WrittenObjects) -> EnsembleCaches:
    """The caches the reconciler reads, from ``cache(resource)`` (the manager's shared ones),
    with the indexes it reads them by; owned objects read through ``written``."""
    owned = {res: cache(res) for res in OWNED_RESOURCES}
    for res in (CONFIGMAPS, MINICLUSTERS, NETWORKPOLICIES):  # deleted when no longer desired
        owned[res].add_indexers({CONTROLLER_UID_INDEX: index_by_controller_uid})
    pods = cache(PODS)
    pods.add_indexers({MINICLUSTER_INDEX: index_by_minicluster})
    return EnsembleCaches(ensembles=cache(ENSEMBLES), pods=pods, jobs=cache(JOBS),
                          owned={res: written.cache(res, owned_cache) for res, owned_cache in owned.items()})


def setup(manager: Any, args: Any) -> Controller:
    """Wire the Ensemble controller: owned objects and member pods watched by label only."""
    for res in OWNED_RESOURCES:
        manager.select(res, MANAGED_SELECTOR)
    manager.select(PODS, MEMBER_POD_SELECTOR)
    # The Flux Operator's Jobs get their pods' labels (it sets no Job labels): cached only for
    # their UIDs, which tell a member's pods from pods that name its Job as their owner.
    manager.select(JOBS, MEMBER_POD_SELECTOR)
    # Our writes are read back before their watch events come, and those events wake no reconcile.
    written = WrittenObjects(manager.clock, wake=lambda request: controller.queue.add(request))
    caches = ensemble_caches(manager.cache, written)
    manager.registry.register(BudgetCollector(manager.cache(ENSEMBLES)))  # the same shared cache

    def on_poll(key, result) -> None:
        # Called from the poller's booking thread; polls start (below) once `controller` exists.
        controller.queue.add(reconciler.record_poll(key, result))

    # Calls on one asyncio loop: at 10,000 members a warm round takes 1.0-1.6 s at p99 3-7 ms, where
    # the thread pool took 2.0-3.4 s at p99 38-67 ms (bench/bench_poller.py on idle cores; README).
    poller = AsyncStatusPoller(clock=manager.clock, registry=manager.registry, on_result=on_poll)
    # Algorithms scale through the ensemble service's own write path (see reconcilers/actions.py),
    # off the reconcile workers; an outcome enqueues its Ensemble as a poll result does.
    runner = ActionRunner(
        client=manager.client,
        scalers=lambda name, namespace: EnsembleScaler(manager.client, name, namespace, clock=manager.clock),
        members=GrpcMemberClient(poller.channels), events=manager.events,
        on_outcome=lambda request: controller.queue.add(request), clock=manager.clock)
    reconciler = EnsembleReconciler(client=manager.client, caches=caches, events=manager.events,
                                    clock=manager.clock, settings=settings_from(args), poller=poller,
                                    runner=runner, written=written)
    builder = ControllerBuilder(manager).named("ensemble").for_(ENSEMBLES, predicates=[generation_changed])
    for res in OWNED_RESOURCES:
        builder.owns(res, predicates=[written.not_echo(res)])
    builder.watches(PODS, _ensemble_of_member_object)
    # A Job seen after its pods makes their lead broker known.
    builder.watches(JOBS, _ensemble_of_member_object, predicates=[job_identity_changed])
    controller = builder.with_workers(getattr(args, "workers", None) or 4).complete(reconciler)
    manager.add_runnable(poller)  # polls only while leading; stopped with the manager
    manager.add_runnable(runner)  # acts only while leading; stopped before the poller (its channels)
    return controller
