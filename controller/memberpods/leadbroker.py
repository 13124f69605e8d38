"""Find the lead broker (index 0) of a MiniCluster among its pods.

A MiniCluster runs as an Indexed Job, so the pod of completion index 0 hosts the
lead broker and its status endpoint. Pods are recreated with new names and IPs, so
the operator re-derives the lead broker from the pod cache on every reconcile.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_INDEX_LABEL = "job-index"
MINICLUSTER_INDEX = "minicluster"
LEAD_BROKER_INDEX = 0

# `<mc>-<index>-<suffix>`: the Job controller's name for an indexed pod.
_INDEXED_POD_NAME = re.compile(r"^(?P<mc>.+)-(?P<index>\d+)-(?P<suffix>[a-z0-9]+)$")


@dataclass(frozen=True)
class LeadBroker:
    """The pod chosen as lead broker; ``ip`` is None until the pod is scheduled."""

    pod: str
    ip: str | None
    phase: str
    terminating: bool = False
    broker_exit: int | None = None
    """How the pod's Flux broker container last ended (see ``broker_exit``), None while it has not."""

    @property
    def reachable(self) -> bool:
        """True when the status endpoint can be dialled: Running with an IP, and not being
        deleted (a terminating pod is on its way out, as Endpoints treat it)."""
        return self.phase == "Running" and bool(self.ip) and not self.terminating


def _labels(pod: dict) -> dict:
    return (pod.get("metadata") or {}).get("labels") or {}


def _parse_index(value: object, pod_name: str, source: str) -> int | None:
    text = str(value)
    if text.isdigit():
        return int(text)
    log.debug("pod %s: ignoring %s=%r (not a non-negative integer)", pod_name, source, value)
    return None


def minicluster_of(pod: dict) -> str | None:
    """The MiniCluster a pod belongs to: its Job name (Job and MiniCluster share it)."""
    return _labels(pod).get(JOB_NAME_LABEL) or None


def pod_index(pod: dict) -> int | None:
    """The completion index of a pod, or None when nothing tells it.

    Sources in order of trust: the Job controller's completion-index label, the Flux
    Operator's ``job-index`` label, then the pod name. A malformed label falls through
    to the next source instead of failing, because one odd pod must not hide the others.
    """
    labels = _labels(pod)
    name = (pod.get("metadata") or {}).get("name") or ""
    for label in (COMPLETION_INDEX_LABEL, JOB_INDEX_LABEL):
        if label in labels:
            index = _parse_index(labels[label], name, f"label {label}")
            if index is not None:
                return index
    match = _INDEXED_POD_NAME.match(name)
    if match is None:
        return None
    owner = minicluster_of(pod)
    if owner is not None and match.group("mc") != owner:
        return None
    return int(match.group("index"))


def index_by_minicluster(pod: dict) -> list[str]:
    """Informer index function (register under ``MINICLUSTER_INDEX``): pod -> [MiniCluster name].

    Values are bare names, so callers filter by namespace (``lead_broker(..., namespace=)``)
    when the cache spans namespaces.
    """
    owner = minicluster_of(pod)
    return [owner] if owner else []


def _is_deleting(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _rank(pod: dict) -> tuple[bool, bool, str, str]:
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    serving = status.get("phase") == "Running" and bool(status.get("podIP")) and not _is_deleting(pod)
    # RFC 3339 timestamps in UTC compare correctly as strings.
    return (serving, not _is_deleting(pod), metadata.get("creationTimestamp") or "", metadata.get("name") or "")


def broker_exit(pod: dict) -> int | None:
    """The exit code of the pod's Flux broker container if its run ended: its current state
    when terminated, else a failed previous run (None if neither).

    The broker runs in the pod's first container (the Flux Operator's ``runFlux`` container;
    sidecars such as the member status endpoint come after it). The Flux Operator's Job
    pods restart a failed container in place (restartPolicy OnFailure), so a failed run
    shows only as the container's ``lastState`` while the pod stays Running.
    """
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return None
    name = containers[0].get("name")
    status = next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s.get("name") == name), None)
    if status is None:
        return None
    current = ((status.get("state") or {}).get("terminated") or {}).get("exitCode")
    if isinstance(current, int):
        return current
    previous = ((status.get("lastState") or {}).get("terminated") or {}).get("exitCode")
    return previous if isinstance(previous, int) and previous != 0 else None


def controlling_job(pod: dict) -> str | None:
    """The name of the Job (``batch``) that is the pod's controller owner, else None."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if not isinstance(ref, dict) or ref.get("controller") is not True:
            continue
        group = str(ref.get("apiVersion") or "").partition("/")[0]
        if ref.get("kind") == "Job" and group == "batch" and isinstance(ref.get("name"), str):
            return ref["name"]
        return None  # one controller at most, and it is not a Job
    return None


def _owned_by_members_job(pod: dict, minicluster: str | None) -> bool:
    return minicluster is not None and controlling_job(pod) == minicluster


def lead_broker_pods(
    pods: Iterable[dict], *, minicluster: str | None = None, namespace: str | None = None
) -> list[dict]:
    """Every index-0 pod of the MiniCluster: the lead broker and the ones it replaced.

    Only pods the member's Job controls count: labels are anyone's to set, so a pod that merely
    carries the member's labels (a tenant's forgery) would otherwise be polled for the
    member's status or mark it Failed. The Job is named as the MiniCluster (the Flux Operator's
    Indexed Job), and names are unique in a namespace.
    """
    return [
        pod
        for pod in pods
        if pod_index(pod) == LEAD_BROKER_INDEX
        and (minicluster is None or minicluster_of(pod) == minicluster)
        and _owned_by_members_job(pod, minicluster or minicluster_of(pod))
        and (namespace is None or (pod.get("metadata") or {}).get("namespace") == namespace)
    ]


def lead_broker(
    pods: Iterable[dict], *, minicluster: str | None = None, namespace: str | None = None
) -> LeadBroker | None:
    """Choose the index-0 pod: a Running pod with an IP first, then the newest.

    During a restart the old and new index-0 pods can coexist; the serving one wins,
    and among equals the newest, since the older one is on its way out.
    """
    candidates = lead_broker_pods(pods, minicluster=minicluster, namespace=namespace)
    if not candidates:
        return None
    chosen = max(candidates, key=_rank)
    status = chosen.get("status") or {}
    return LeadBroker(
        pod=(chosen.get("metadata") or {}).get("name") or "",
        ip=status.get("podIP") or None,
        phase=status.get("phase") or "Unknown",
        terminating=_is_deleting(chosen),
        broker_exit=broker_exit(chosen),
    )
