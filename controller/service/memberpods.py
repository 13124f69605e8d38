"""The ensemble service's own cache of its Ensemble's member pods, which caller identity reads.

One informer over the API server (list + watch, label-selected on this Ensemble's member pods,
in its namespace): the labels only narrow the watch, since anyone who may create pods there may
set them; ownership is checked on every decision (``callers``). Pods are cached slimmed to what
that check reads, so a member of 1,000 pods costs little.
"""
from __future__ import annotations

from typing import Any

from controller.clock import Clock
from controller.informers.shared_informer import SharedInformer
from controller.kube.client import KubeClient
from controller.kube.resources import PODS
from controller.memberpods.labels import member_pod_selector

_KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences",
                  "creationTimestamp", "deletionTimestamp")
_KEPT_STATUS = ("phase", "podIP", "podIPs")


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies a pod and its owner, its phase and addresses."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    return {"metadata": {key: metadata[key] for key in _KEPT_METADATA if key in metadata},
            "status": {key: status[key] for key in _KEPT_STATUS if key in status}}


class MemberPods:
    """The member pods of one Ensemble, as ``callers.PodCache``; ``start`` before use."""

    def __init__(self, client: KubeClient, ensemble: str, namespace: str, *, clock: Clock) -> None:
        self.informer = SharedInformer(client, PODS, namespace=namespace, label_selector=member_pod_selector(ensemble),
                                       transform=slim_pod, clock=clock)

    def start(self) -> None:
        self.informer.start()

    def stop(self) -> None:
        self.informer.stop()

    def wait_for_sync(self, timeout: float) -> bool:
        return self.informer.wait_for_sync(timeout)

    def has_synced(self) -> bool:
        return self.informer.has_synced()

    def list(self) -> list[dict]:
        return self.informer.get_indexer().list()
