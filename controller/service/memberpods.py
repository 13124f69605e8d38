"""The ensemble service's own cache of its Ensemble's member pods and Jobs, which caller identity reads.

Two informers over the API server (list + watch, label-selected on this Ensemble's member pods,
in its namespace; the Flux Operator's Jobs carry their pods' labels): the labels only narrow
the watch, since anyone who may create pods there may set them; ownership (the pod's controller
is its member's Job, by UID) is checked on every decision (``callers``). Objects are cached
slimmed to what that check reads, so a member of 1,000 pods costs little.
"""
from __future__ import annotations

from typing import Any

from controller.clock import Clock
from controller.informers.shared_informer import SharedInformer
from controller.kube.client import KubeClient
from controller.kube.resources import JOBS, PODS
from controller.memberpods.labels import member_pod_selector

_KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences",
                  "creationTimestamp", "deletionTimestamp")
_KEPT_STATUS = ("phase", "podIP", "podIPs")
_KEPT_JOB_METADATA = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences")


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies a pod and its owner, its phase and addresses."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    return {"metadata": {key: metadata[key] for key in _KEPT_METADATA if key in metadata},
            "status": {key: status[key] for key in _KEPT_STATUS if key in status}}


def slim_job(job: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies a Job and its owner."""
    metadata = job.get("metadata") or {}
    return {"metadata": {key: metadata[key] for key in _KEPT_JOB_METADATA if key in metadata}}


class MemberPods:
    """The member pods and Jobs of one Ensemble, as ``callers.PodCache``; ``start`` before use."""

    def __init__(self, client: KubeClient, ensemble: str, namespace: str, *, clock: Clock) -> None:
        self._clock = clock
        selector = member_pod_selector(ensemble)
        self.informer = SharedInformer(client, PODS, namespace=namespace, label_selector=selector,
                                       transform=slim_pod, clock=clock)
        self.job_informer = SharedInformer(client, JOBS, namespace=namespace, label_selector=selector,
                                           transform=slim_job, clock=clock)

    def start(self) -> None:
        self.informer.start()
        self.job_informer.start()

    def stop(self) -> None:
        self.job_informer.stop()
        self.informer.stop()

    def wait_for_sync(self, timeout: float) -> bool:
        """Both caches synced within ``timeout`` seconds in all (they sync side by side)."""
        deadline = self._clock.now() + timeout
        return self.informer.wait_for_sync(timeout) and self.job_informer.wait_for_sync(
            max(0.0, deadline - self._clock.now()))

    def has_synced(self) -> bool:
        return self.informer.has_synced() and self.job_informer.has_synced()

    def jobs(self) -> list[dict]:
        return self.job_informer.get_indexer().list()

    def list(self) -> list[dict]:
        return self.informer.get_indexer().list()
