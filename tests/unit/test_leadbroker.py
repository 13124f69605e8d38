from __future__ import annotations

import pytest

from controller.memberpods.leadbroker import (
    LeadBroker,
    index_by_minicluster,
    lead_broker,
    lead_broker_pods,
    member_job_uid,
    minicluster_of,
    pod_index,
)
from tests.helpers import job_owner, member_job

JOB_UIDS = {mc: job_owner(mc)["uid"] for mc in ("e-0", "e-1")}  # each member's Job, as the caches show it


def pod(
    name: str,
    *,
    labels: dict | None = None,
    phase: str = "Running",
    ip: str | None = "10.0.0.1",
    created: str = "2024-01-01T00:00:00Z",
    namespace: str = "default",
    deleting: bool = False,
) -> dict:
    metadata: dict = {"name": name, "namespace": namespace, "creationTimestamp": created}
    if labels is not None:
        metadata["labels"] = labels
    if deleting:
        metadata["deletionTimestamp"] = "2024-01-01T00:10:00Z"
    status: dict = {"phase": phase}
    if ip:
        status["podIP"] = ip
    return {"metadata": metadata, "status": status}


def indexed(mc: str, index: int, suffix: str = "abcde", **kwargs: object) -> dict:
    labels = {
        "job-name": mc,
        "batch.kubernetes.io/job-completion-index": str(index),
        "job-index": str(index),
        "hpa-selector": mc,
    }
    made = pod(f"{mc}-{index}-{suffix}", labels=labels, **kwargs)  # type: ignore[arg-type]
    made["metadata"]["ownerReferences"] = [job_owner(mc)]
    return made


@pytest.mark.parametrize(
    ("case", "given", "expected"),
    [
        ("completion index label wins", pod("e-0-7-x", labels={"job-name": "e-0", "batch.kubernetes.io/job-completion-index": "3", "job-index": "5"}), 3),
        ("job-index when completion index missing", pod("odd", labels={"job-name": "e-0", "job-index": "2"}), 2),
        ("malformed completion index falls through", pod("odd", labels={"job-name": "e-0", "batch.kubernetes.io/job-completion-index": "x", "job-index": "4"}), 4),
        ("name pattern when no labels", pod("lammps-0-12-q8z2x"), 12),
        ("name pattern checked against job-name", pod("other-1-q8z2x", labels={"job-name": "lammps-0"}), None),
        ("name pattern with matching job-name", pod("lammps-0-1-q8z2x", labels={"job-name": "lammps-0"}), 1),
        ("negative label is not an index", pod("p", labels={"job-index": "-1"}), None),
        ("nothing tells", pod("plain"), None),
        ("no metadata at all", {}, None),
    ],
)
def test_pod_index(case: str, given: dict, expected: int | None) -> None:
    assert pod_index(given) == expected, case


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (indexed("ens-1", 0), ["ens-1"]),
        (pod("loose"), []),
        (pod("empty", labels={"job-name": ""}), []),
    ],
)
def test_index_by_minicluster(given: dict, expected: list[str]) -> None:
    assert index_by_minicluster(given) == expected
    assert minicluster_of(given) == (expected[0] if expected else None)


@pytest.mark.parametrize(
    ("case", "pods", "kwargs", "expected"),
    [
        ("no pods", [], {}, None),
        ("only workers", [indexed("e-0", 1), indexed("e-0", 2)], {}, None),
        (
            "index 0 among workers",
            [indexed("e-0", 1, ip="10.0.0.2"), indexed("e-0", 0, ip="10.0.0.9")],
            {},
            LeadBroker(pod="e-0-0-abcde", ip="10.0.0.9", phase="Running"),
        ),
        (
            "running with IP beats newer pending",
            [
                indexed("e-0", 0, suffix="old", ip="10.0.0.3", created="2024-01-01T00:00:00Z"),
                indexed("e-0", 0, suffix="new", phase="Pending", ip=None, created="2024-01-02T00:00:00Z"),
            ],
            {},
            LeadBroker(pod="e-0-0-old", ip="10.0.0.3", phase="Running"),
        ),
        (
            "newest among running",
            [
                indexed("e-0", 0, suffix="old", ip="10.0.0.3", created="2024-01-01T00:00:00Z"),
                indexed("e-0", 0, suffix="new", ip="10.0.0.4", created="2024-01-02T00:00:00Z"),
            ],
            {},
            LeadBroker(pod="e-0-0-new", ip="10.0.0.4", phase="Running"),
        ),
        (
            "terminating pod loses to its pending replacement",
            [
                indexed("e-0", 0, suffix="old", ip="10.0.0.3", deleting=True),
                indexed("e-0", 0, suffix="new", phase="Pending", ip=None, created="2023-01-01T00:00:00Z"),
            ],
            {},
            LeadBroker(pod="e-0-0-new", ip=None, phase="Pending"),
        ),
        (
            "filter by minicluster",
            [indexed("e-0", 0, ip="10.0.0.1"), indexed("e-1", 0, ip="10.0.0.2")],
            {"minicluster": "e-1"},
            LeadBroker(pod="e-1-0-abcde", ip="10.0.0.2", phase="Running"),
        ),
        (
            "filter by namespace",
            [indexed("e-0", 0, ip="10.0.0.1", namespace="a"), indexed("e-0", 0, ip="10.0.0.2", namespace="b", created="2020-01-01T00:00:00Z")],
            {"namespace": "b"},
            LeadBroker(pod="e-0-0-abcde", ip="10.0.0.2", phase="Running"),
        ),
        (
            "missing phase reads Unknown",
            [{"metadata": {"name": "e-0-0-z", "labels": {"job-name": "e-0", "job-index": "0"},
                           "ownerReferences": [job_owner("e-0")]}}],
            {},
            LeadBroker(pod="e-0-0-z", ip=None, phase="Unknown"),
        ),
    ],
)
def test_lead_broker(case: str, pods: list[dict], kwargs: dict, expected: LeadBroker | None) -> None:
    assert lead_broker(pods, job_uids=JOB_UIDS, **kwargs) == expected, case


@pytest.mark.parametrize(
    ("broker", "reachable"),
    [
        (LeadBroker(pod="p", ip="10.0.0.1", phase="Running"), True),
        (LeadBroker(pod="p", ip=None, phase="Running"), False),
        (LeadBroker(pod="p", ip="10.0.0.1", phase="Succeeded"), False),
        (LeadBroker(pod="p", ip="10.0.0.1", phase="Running", terminating=True), False),
    ],
)
def test_reachable(broker: LeadBroker, reachable: bool) -> None:
    assert broker.reachable is reachable


def test_a_lone_terminating_index_0_pod_is_the_lead_broker_but_not_polled() -> None:
    broker = lead_broker([indexed("e-0", 0, deleting=True)], job_uids=JOB_UIDS)
    assert broker == LeadBroker(pod="e-0-0-abcde", ip="10.0.0.1", phase="Running", terminating=True)
    assert not broker.reachable


def forged(owner: dict | None, **changes: object) -> dict:
    """Index 0 of e-0 by its labels, with the given controller owner (None: no owner at all)."""
    made = indexed("e-0", 0, suffix="forged", ip="10.9.9.9", created="2030-01-01T00:00:00Z")
    made["metadata"]["ownerReferences"] = [] if owner is None else [{**owner, **changes}]
    return made


@pytest.mark.parametrize("case, pod_", [
    ("no owner reference", forged(None)),
    ("owned by another Job", forged(job_owner("e-1"))),
    ("owned by a Job of the member's name but another UID", forged(job_owner("e-0"), uid="uid-another-job")),
    ("owner reference without a UID", forged({k: v for k, v in job_owner("e-0").items() if k != "uid"})),
    ("owner not the controller", forged(job_owner("e-0"), controller=False)),
    ("controller of another kind", forged(job_owner("e-0"), kind="ReplicaSet", apiVersion="apps/v1")),
    ("a Job of another group", forged(job_owner("e-0"), apiVersion="example.com/v1")),
])
def test_only_a_pod_the_members_job_controls_counts_as_its_lead_broker(case: str, pod_: dict) -> None:
    """A pod carrying the member's labels, newer and serving, is still not the lead broker."""
    real = indexed("e-0", 0, ip="10.0.0.1")
    assert lead_broker([pod_, real], job_uids=JOB_UIDS, minicluster="e-0") == LeadBroker(
        pod="e-0-0-abcde", ip="10.0.0.1", phase="Running"), case
    assert lead_broker([pod_], job_uids=JOB_UIDS, minicluster="e-0") is None, case
    assert lead_broker([pod_], job_uids=JOB_UIDS) is None, case
    assert lead_broker_pods([pod_], job_uids=JOB_UIDS, minicluster="e-0") == [], case


def test_no_pod_is_the_lead_broker_while_the_members_job_is_unknown() -> None:
    assert lead_broker([indexed("e-0", 0)], job_uids={}, minicluster="e-0") is None
    assert lead_broker([indexed("e-0", 0)], job_uids={"e-0": "uid-job-recreated"}, minicluster="e-0") is None


@pytest.mark.parametrize("case, job, minicluster_uid, expected", [
    ("the Job the MiniCluster controls", member_job("e-0", "uid-mc"), "uid-mc", "uid-job-e-0"),
    ("controlled by a MiniCluster of that name with another UID", member_job("e-0", "uid-old-mc"), "uid-mc", None),
    ("checked by name where MiniClusters are not cached", member_job("e-0", "uid-old-mc"), None, "uid-job-e-0"),
    ("no Job yet", None, "uid-mc", None),
    ("a Job of another name", {**member_job("e-0", "uid-mc"),
                               "metadata": {**member_job("e-0", "uid-mc")["metadata"], "name": "e-1"}}, "uid-mc", None),
    ("a Job no MiniCluster controls", {"metadata": {"name": "e-0", "uid": "uid-job-e-0"}}, None, None),
    ("a Job another kind controls", {"metadata": {"name": "e-0", "uid": "uid-job-e-0", "ownerReferences": [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "e-0", "uid": "uid-mc", "controller": True}]}},
     "uid-mc", None),
])
def test_member_job_uid(case: str, job: dict | None, minicluster_uid: str | None, expected: str | None) -> None:
    assert member_job_uid(job, "e-0", minicluster_uid=minicluster_uid) == expected, case
