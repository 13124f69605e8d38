"""Names, labels and owner references shared by every object an Ensemble owns.

One place decides how an owned object is named and labelled, so the builders, the
reconciler's orphan clean-up and the informer selectors can never disagree; the labels
themselves live in ``controller.memberpods.labels``, shared with the ensemble service.
"""
from __future__ import annotations

from api.v1alpha1.names import member_object_name
from controller.memberpods.labels import ENSEMBLE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, MEMBER_LABEL

APP_LABEL = "app"
OPERATOR_LABEL = "operator"


def ensemble_name(ensemble: dict) -> str:
    return ensemble["metadata"]["name"]


def ensemble_namespace(ensemble: dict) -> str:
    return ensemble["metadata"]["namespace"]


def member_name(ensemble: dict, index: int) -> str:
    """``<e>-<i>``: the name of member ``i``'s MiniCluster and ConfigMap."""
    return member_object_name(ensemble_name(ensemble), index)


def grpc_service_name(ensemble: dict) -> str:
    return f"{ensemble_name(ensemble)}-grpc"


def grpc_service_host(ensemble: dict) -> str:
    """The service's DNS name: stable across Service re-creation, unlike its ClusterIP."""
    return f"{grpc_service_name(ensemble)}.{ensemble_namespace(ensemble)}.svc"


def owner_reference(ensemble: dict) -> dict:
    """A controller reference, so deleting the Ensemble garbage-collects what it owns."""
    return {
        "apiVersion": ensemble["apiVersion"],
        "kind": ensemble["kind"],
        "name": ensemble_name(ensemble),
        "uid": ensemble["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def ownership_labels(ensemble: dict, member_index: int | None = None) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY, ENSEMBLE_LABEL: ensemble_name(ensemble)}
    if member_index is not None:
        labels[MEMBER_LABEL] = str(member_index)
    return labels


def service_selector(ensemble: dict) -> dict[str, str]:
    """The pod labels of the ensemble service, matched by its Service (upstream's pair)."""
    return {APP_LABEL: ensemble_name(ensemble), OPERATOR_LABEL: MANAGED_BY}


def object_meta(ensemble: dict, name: str, *, member_index: int | None = None,
                extra_labels: dict[str, str] | None = None) -> dict:
    labels = ownership_labels(ensemble, member_index)
    labels.update(extra_labels or {})
    return {
        "name": name,
        "namespace": ensemble_namespace(ensemble),
        "labels": labels,
        "ownerReferences": [owner_reference(ensemble)],
    }


def member_index_of(obj: dict) -> int | None:
    """The member index an owned object is labelled with, or None when it has none."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(MEMBER_LABEL, "")
    return int(value) if value.isdigit() else None
