"""Member pods and Jobs as the ensemble service's cache holds them, for tests of caller identity."""
from __future__ import annotations

NS = "ns"


def pod(name: str, ip: str, *, member: int = 0, index: int = 0, job: str | None = "ens-0",
        owner: str | None = "ens-0", namespace: str = NS, phase: str = "Running", deleting: bool = False,
        owner_kind: str = "Job", owner_uid: str | None = None, extra_ips: tuple[str, ...] = ()) -> dict:
    labels = {"app.kubernetes.io/managed-by": "ensemble-operator", "ensemble.flux-framework.org/name": "ens",
              "ensemble.flux-framework.org/member": str(member),
              "batch.kubernetes.io/job-completion-index": str(index)}
    if job is not None:
        labels["job-name"] = job
    metadata: dict = {"name": name, "namespace": namespace, "labels": labels, "uid": f"uid-{name}",
                      "creationTimestamp": "2026-01-01T00:00:00Z"}
    if owner is not None:
        metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": owner_kind, "name": owner,
                                        "uid": owner_uid or f"uid-{owner}", "controller": True}]
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return {"metadata": metadata,
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}, *({"ip": x} for x in extra_ips)]}}


def job(name: str, namespace: str = NS) -> dict:
    """Member ``name``'s Job as the Flux Operator makes it: named as its MiniCluster, controlled
    by it, with the UID ``pod`` puts in its pods' owner reference."""
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "ownerReferences": [{"apiVersion": "flux-framework.org/v1alpha2", "kind": "MiniCluster",
                                              "name": name, "uid": f"uid-mc-{name}", "controller": True}]}}


class Pods:
    """The cache: ``pods``, and the members' Jobs (both members' unless given)."""

    def __init__(self, *pods: dict, synced: bool = True, jobs: list[dict] | None = None) -> None:
        self.pods = list(pods)
        self.synced = synced
        self.member_jobs = [job("ens-0"), job("ens-1")] if jobs is None else jobs

    def jobs(self) -> list[dict]:
        return self.member_jobs

    def list(self) -> list[dict]:
        return self.pods

    def has_synced(self) -> bool:
        return self.synced


LEAD0 = pod("ens-0-0-abc", "10.0.0.5")
WORKER0 = pod("ens-0-1-def", "10.0.0.6", index=1)
LEAD1 = pod("ens-1-0-ghi", "10.0.1.5", member=1, job="ens-1", owner="ens-1")
