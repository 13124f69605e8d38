"""Objects integration tests create on, and read back from, the local control plane."""
from __future__ import annotations

from api.v1alpha1.names import member_object_name
from controller.kube.client import KubeClient
from controller.kube.errors import is_not_found
from controller.kube.resources import ENSEMBLES, JOBS, MINICLUSTERS, PODS, Resource
from controller.reconcilers.desired.meta import ownership_labels

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


def member_job(kube: KubeClient, namespace: str, name: str, pod_labels: dict[str, str] | None = None) -> dict:
    """The Job ``name`` as the Flux Operator creates it for a MiniCluster: no Job labels (the API
    server copies its pods' ``pod_labels`` onto it), controlled by the MiniCluster of its name if
    one exists. Managed by no one: the Job controller (which runs once a test of the session
    started kube-controller-manager) skips a Job whose managedBy names another controller, so it
    neither makes pods for it nor deletes ours."""
    existing = get_or_none(kube, JOBS, name, namespace)
    if existing is not None:
        return existing
    metadata: dict = {"name": name, "namespace": namespace}
    minicluster = get_or_none(kube, MINICLUSTERS, name, namespace)
    if minicluster is not None:
        metadata["ownerReferences"] = [{"apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster", "name": name,
                                        "uid": minicluster["metadata"]["uid"], "controller": True}]
    template = {"metadata": {"labels": dict(pod_labels or {})},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "flux", "image": "busybox"}]}}
    return kube.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                              "spec": {"managedBy": "ensemble.flux-framework.org/tests", "template": template}},
                       namespace)


def start_member_pod(kube: KubeClient, namespace: str, ensemble: dict, member: int, name: str, ip: str, *,
                     owner_job: str | None = "", owner_uid: str | None = None, index: int = 0) -> dict:
    """Pod ``index`` of the Ensemble's member ``member`` as the Job controller creates it (its labels,
    and a controller reference to the Job ``owner_job``: default the member's own, None for none;
    ``owner_uid`` forges the reference's UID), marked Running at ``ip``."""
    minicluster = member_object_name(ensemble["metadata"]["name"], member)
    labels = {"job-name": minicluster, "batch.kubernetes.io/job-completion-index": str(index),
              "hpa-selector": minicluster, **ownership_labels(ensemble, member)}
    metadata: dict = {"name": name, "namespace": namespace, "labels": labels}
    if owner_job is not None:
        job = member_job(kube, namespace, owner_job or minicluster,
                         ownership_labels(ensemble, member) if not owner_job else None)
        metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                                        "uid": owner_uid or job["metadata"]["uid"], "controller": True}]
    kube.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                       "spec": {"containers": [{"name": "flux", "image": "busybox"}]}}, namespace)
    return kube.patch(PODS, name, {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
                      namespace=namespace, subresource="status")
