"""Objects integration tests create on, and read back from, the local control plane."""
from __future__ import annotations

from controller.kube.client import KubeClient
from controller.kube.errors import is_not_found
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, Resource

JOBS_ONLY = "jobs:\n- name: a\n  command: sleep 1\n"


def get_or_none(kube: KubeClient, res: Resource, name: str, namespace: str) -> dict | None:
    """The object, or None while it does not exist (tests wait for both)."""
    try:
        return kube.get(res, name, namespace)
    except Exception as error:
        if is_not_found(error):
            return None
        raise


def ensemble_status(kube: KubeClient, name: str, namespace: str) -> dict:
    return kube.get(ENSEMBLES, name, namespace).get("status") or {}


def ensemble_condition(kube: KubeClient, name: str, namespace: str, type_: str) -> dict | None:
    return next((c for c in ensemble_status(kube, name, namespace).get("conditions") or []
                 if c["type"] == type_), None)


def make_ensemble(kube: KubeClient, namespace: str, name: str, ensemble_yaml: str = JOBS_ONLY) -> dict:
    """An Ensemble with one member (size 1, maxSize 16) running ``ensemble_yaml``."""
    member = {"minicluster": {"spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}]}},
              "ensemble": ensemble_yaml}
    return kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                   "metadata": {"name": name, "namespace": namespace},
                                   "spec": {"members": [member]}}, namespace)


def make_minicluster(kube: KubeClient, namespace: str, name: str, owner: dict, **spec: object) -> dict:
    """A MiniCluster controlled by ``owner``, as the controller would create it; ``spec`` adds fields."""
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True}
    return kube.create(MINICLUSTERS, {
        "apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [ref]},
        "spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}], **spec}}, namespace)
