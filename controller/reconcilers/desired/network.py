"""NetworkPolicies of one Ensemble: who may reach its ensemble service and its members' status port.

Tenants share the cluster network: without these, any pod of any namespace could ask an
ensemble service to resize members, or a member's sidecar for its status. A policy isolates
the pods it selects for ingress, so each one lists every source it keeps: the service is
reached only from this Ensemble's member pods and the operator; a member's status port only
from the operator, while every other port (and the status port between pods of the same
MiniCluster) stays open as before, so the Flux brokers and the tenant's own traffic are
untouched.
"""
from __future__ import annotations

from controller.memberpods.labels import ENSEMBLE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, MEMBER_LABEL
from controller.reconcilers.desired.meta import (
    ensemble_name, grpc_service_name, member_name, object_meta, service_selector)
from controller.reconcilers.desired.service import service_port
from controller.reconcilers.desired.settings import DesiredSettings

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
MAX_PORT = 65535


def network_policy_enabled(ensemble: dict) -> bool:
    """``spec.networkPolicy``, on unless it is false."""
    return (ensemble.get("spec") or {}).get("networkPolicy") is not False


def _operator_pods(settings: DesiredSettings) -> dict:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: settings.operator_namespace}},
            "podSelector": {"matchLabels": dict(settings.operator_pod_labels)}}


def _member_pods(ensemble: dict, index: int | None = None) -> dict:
    """Pods of this Ensemble's members (of member ``index`` only, when given)."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY, ENSEMBLE_LABEL: ensemble_name(ensemble)}
    if index is not None:
        return {"matchLabels": {**labels, MEMBER_LABEL: str(index)}}
    return {"matchLabels": labels, "matchExpressions": [{"key": MEMBER_LABEL, "operator": "Exists"}]}


def _policy(ensemble: dict, name: str, pods: dict, ingress: list[dict], member_index: int | None = None) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": object_meta(ensemble, name, member_index=member_index),
            "spec": {"podSelector": pods, "policyTypes": ["Ingress"], "ingress": ingress}}


def service_policy(ensemble: dict, settings: DesiredSettings) -> dict:
    """``<e>-grpc``: the service's port, from this Ensemble's member pods and the operator only."""
    return _policy(ensemble, grpc_service_name(ensemble), {"matchLabels": service_selector(ensemble)}, [
        {"from": [{"podSelector": _member_pods(ensemble)}, _operator_pods(settings)],
         "ports": [{"protocol": "TCP", "port": service_port(ensemble)}]}])


def _ports_except(port: int) -> list[dict]:
    """Every TCP port but ``port``, and every UDP and SCTP port (ranges use ``endPort``)."""
    ranges = [(low, high) for low, high in ((1, port - 1), (port + 1, MAX_PORT)) if low <= high]
    tcp = [{"protocol": "TCP", "port": low, **({"endPort": high} if high > low else {})} for low, high in ranges]
    return tcp + [{"protocol": protocol, "port": 1, "endPort": MAX_PORT} for protocol in ("UDP", "SCTP")]


def member_policy(ensemble: dict, index: int, settings: DesiredSettings) -> dict:
    """``<e>-<i>``: the member's status port from the operator only; everything else as before."""
    port = settings.member_status_port
    return _policy(ensemble, member_name(ensemble, index), _member_pods(ensemble, index), [
        {"from": [{"podSelector": _member_pods(ensemble, index)}]},
        {"from": [_operator_pods(settings)], "ports": [{"protocol": "TCP", "port": port}]},
        {"ports": _ports_except(port)},
    ], member_index=index)
