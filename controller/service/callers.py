"""Who may ask the ensemble service what: caller identity from the connection's source address.

Every pod on the cluster network can reach the service (NetworkPolicies narrow that only where
a CNI enforces them), and ensemble-python dials it without credentials. What a caller cannot
choose is the source address of its TCP connection: on a cluster network a pod sends from its
own pod IP. So the service asks its own cache of the Ensemble's member pods who owns the peer's
address, and serves:

- ``RequestAction`` on member ``<e>-<i>`` only from that member's lead broker: the index-0 pod
  controlled by the member's Job, by UID (``leadbroker.lead_broker_pods``; a pod that merely
  carries the member's labels, or names the member's Job as its owner, is a forgery), Running
  and not being deleted;
- ``RequestStatus`` only from a pod of one of the Ensemble's members (controlled by that
  member's Job, by UID), Running and not being deleted.

The member's Job is the one of its name controlled by the member's MiniCluster (checked by
name here: the service caches the members' Jobs and pods, not their MiniClusters).

Anything else gets a ``Denial`` naming the reason, which the servicer answers as DENIED.
"""
from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from api.v1alpha1.names import member_object_name
from controller.memberpods.labels import MEMBER_LABEL
from controller.memberpods.leadbroker import controlled_by_members_job, lead_broker_pods, member_job_uid, minicluster_of


class Refusal(Enum):
    """Why a request was refused; the value is the metric's ``reason`` label."""

    NOT_SYNCED = "pods_not_synced"
    UNKNOWN_PEER = "unknown_peer"
    NOT_ENSEMBLE_POD = "not_ensemble_pod"
    NOT_LEAD_BROKER = "not_lead_broker"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Denial:
    reason: Refusal
    message: str


class PodCache(Protocol):
    """The service's cache of the Ensemble's member pods and their Jobs (``memberpods.MemberPods``)."""

    def jobs(self) -> list[dict]: ...

    def list(self) -> list[dict]: ...

    def has_synced(self) -> bool: ...


def peer_ip(peer: str) -> str | None:
    """The IP address of a gRPC peer string (``ipv4:10.0.0.5:4321``, ``ipv6:[fd00::5]:4321``,
    possibly percent-encoded), IPv4-mapped IPv6 as plain IPv4; None for anything else (a Unix
    socket, a malformed string)."""
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    if kind == "ipv4":
        host = rest.rpartition(":")[0]
    elif kind == "ipv6" and rest.startswith("["):
        host = rest[1:].partition("]")[0].partition("%")[0]  # drop a zone index
    else:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _pod_ips(pod: dict) -> set[str]:
    status = pod.get("status") or {}
    found = {status.get("podIP")} | {entry.get("ip") for entry in status.get("podIPs") or [] if isinstance(entry, dict)}
    return {str(ipaddress.ip_address(ip)) for ip in found if isinstance(ip, str) and _is_ip(ip)}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _serving(pod: dict) -> bool:
    """Running and not being deleted: a pod that may still speak for itself."""
    return (pod.get("status") or {}).get("phase") == "Running" and not (pod.get("metadata") or {}).get(
        "deletionTimestamp")


def _name(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class CallerAuthorizer:
    """Decides from the pod cache whether the peer of a request may make it (see the module)."""

    def __init__(self, pods: PodCache, ensemble: str, namespace: str) -> None:
        self._pods = pods
        self.ensemble = ensemble
        self.namespace = namespace

    def may_act(self, peer: str, minicluster: str) -> Denial | None:
        """None when ``peer`` is the lead broker of member ``minicluster``, else why not."""
        ip, denial = self._peer(peer)
        if denial is not None:
            return denial
        leads = [pod for pod in lead_broker_pods(self._in_namespace(), job_uids=self._job_uids(),
                                                 minicluster=minicluster, namespace=self.namespace) if _serving(pod)]
        if any(ip in _pod_ips(pod) for pod in leads):
            return None
        caller = self._ensemble_pod(ip)
        who = f"pod {_name(caller)}" if caller is not None else "no pod of this Ensemble"
        lead = ", ".join(_name(pod) for pod in leads) or "none running"
        return Denial(Refusal.NOT_LEAD_BROKER,
                      f"caller {ip} ({who}) is not the lead broker of MiniCluster {self.namespace}/{minicluster} "
                      f"(its lead broker: {lead}); only a member's lead broker may resize it")

    def may_read(self, peer: str) -> Denial | None:
        """None when ``peer`` is a pod of one of the Ensemble's members, else why not."""
        ip, denial = self._peer(peer)
        if denial is not None:
            return denial
        if self._ensemble_pod(ip) is not None:
            return None
        return Denial(Refusal.NOT_ENSEMBLE_POD,
                      f"caller {ip} is not a pod of Ensemble {self.namespace}/{self.ensemble}; "
                      "only the Ensemble's member pods may ask for its status")

    def _peer(self, peer: str) -> tuple[str, Denial | None]:
        if not self._pods.has_synced():
            return "", Denial(Refusal.NOT_SYNCED, "the service has not read the Ensemble's pods yet; "
                                                  "retry in a moment")
        ip = peer_ip(peer)
        if ip is None:
            return "", Denial(Refusal.UNKNOWN_PEER, f"caller address {peer!r} is not an IP address")
        return ip, None

    def _in_namespace(self) -> list[dict]:
        return [pod for pod in self._pods.list() if (pod.get("metadata") or {}).get("namespace") == self.namespace]

    def _job_uids(self) -> dict[str, str]:
        """MiniCluster name -> the UID of its Job, for the Jobs in the cache that are a member's."""
        uids = {}
        for job in self._pods.jobs():
            meta = job.get("metadata") or {}
            name = meta.get("name")
            if meta.get("namespace") == self.namespace and isinstance(name, str):
                uid = member_job_uid(job, name, minicluster_uid=None)
                if uid is not None:
                    uids[name] = uid
        return uids

    def _ensemble_pod(self, ip: str) -> dict | None:
        """The serving pod with address ``ip`` that one of the Ensemble's member Jobs controls."""
        return next((pod for pod in self._member_pods(self._in_namespace()) if _serving(pod) and ip in _pod_ips(pod)),
                    None)

    def _member_pods(self, pods: Iterable[dict]) -> Iterable[dict]:
        job_uids = self._job_uids()
        for pod in pods:
            index = ((pod.get("metadata") or {}).get("labels") or {}).get(MEMBER_LABEL, "")
            if not (isinstance(index, str) and index.isdecimal() and len(index) <= 6):
                continue
            member = member_object_name(self.ensemble, int(index))
            if minicluster_of(pod) == member and controlled_by_members_job(pod, job_uids):
                yield pod
