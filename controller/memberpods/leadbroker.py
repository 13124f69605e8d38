"""Find the lead broker (index 0) of a MiniCluster among its pods.

A MiniCluster runs as an Indexed Job, so the pod of completion index 0 hosts the
lead broker and its status endpoint. Pods are recreated with new names and IPs, so
the operator re-derives the lead broker from the pod cache on every reconcile.

Labels are anyone's to set, and so are owner references, names included: a pod counts only
when its controller is the member's Job by UID, the Job the member's MiniCluster controls
(``member_job_uid``). The Flux Operator creates that Job named as the MiniCluster without Job
labels, so the API server gives it its pods' labels (ours among them) and the Jobs can be
cached with the member pods' selector.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_INDEX_LABEL = "job-index"
MINICLUSTER_INDEX = "minicluster"
MINICLUSTER_GROUP = "flux-framework.org"
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


def _controller(obj: dict, kind: str, group: str) -> tuple[str, str] | None:
    """(name, uid) of ``obj``'s controller owner when it is a ``kind`` of ``group``, else None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if not isinstance(ref, dict) or ref.get("controller") is not True:
            continue
        ref_group = str(ref.get("apiVersion") or "").partition("/")[0]
        name, uid = ref.get("name"), ref.get("uid")
        if ref.get("kind") == kind and ref_group == group and isinstance(name, str) and isinstance(uid, str):
            return name, uid
        return None  # one controller at most, and it is not that
    return None


def controlling_job(pod: dict) -> tuple[str, str] | None:
    """(name, uid) of the Job (``batch``) that is the pod's controller owner, else None."""
    return _controller(pod, "Job", "batch")


def member_job_uid(job: dict | None, minicluster: str, *, minicluster_uid: str | None) -> str | None:
    """The UID of ``job`` when it is MiniCluster ``minicluster``'s Job: named as it and controlled
    by it (by UID when ``minicluster_uid`` is given, else by name: the ensemble service caches
    no MiniClusters); else None, and then no pod is that member's lead broker."""
    if job is None or (job.get("metadata") or {}).get("name") != minicluster:
        return None
    owner = _controller(job, "MiniCluster", MINICLUSTER_GROUP)
    if owner is None or owner[0] != minicluster or (minicluster_uid is not None and owner[1] != minicluster_uid):
        return None
    uid = (job.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None


def controlled_by_members_job(pod: dict, job_uids: Mapping[str, str]) -> bool:
    """Whether the pod's controller is its MiniCluster's Job, by UID (``job_uids``: MiniCluster
    name -> its Job's UID, from ``member_job_uid``)."""
    minicluster = minicluster_of(pod)
    job = controlling_job(pod)
    return minicluster is not None and job is not None and job == (minicluster, job_uids.get(minicluster))


def lead_broker_pods(
    pods: Iterable[dict], *, job_uids: Mapping[str, str], minicluster: str | None = None,
    namespace: str | None = None
) -> list[dict]:
    """Every index-0 pod of the MiniCluster: the lead broker and the ones it replaced.

    Only pods the member's Job controls count (``controlled_by_members_job``): a pod that merely
    carries the member's labels, or names the member's Job as its owner (a tenant's forgery),
    would otherwise be polled for the member's status or mark it Failed.
    """
    return [
        pod
        for pod in pods
        if pod_index(pod) == LEAD_BROKER_INDEX
        and (minicluster is None or minicluster_of(pod) == minicluster)
        and controlled_by_members_job(pod, job_uids)
        and (namespace is None or (pod.get("metadata") or {}).get("namespace") == namespace)
    ]


def lead_broker(
    pods: Iterable[dict], *, job_uids: Mapping[str, str], minicluster: str | None = None,
    namespace: str | None = None
) -> LeadBroker | None:
    """Choose the index-0 pod: a Running pod with an IP first, then the newest.

    During a restart the old and new index-0 pods can coexist; the serving one wins,
    and among equals the newest, since the older one is on its way out.
    """
    candidates = lead_broker_pods(pods, job_uids=job_uids, minicluster=minicluster, namespace=namespace)
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
