"""Which pods the real-member runtime runs as members: Job pods with our status container, or
labelled as a member's when spec.statusSidecar false leaves the container out."""
from __future__ import annotations

from controller.memberpods.labels import MEMBER_LABEL
from sim.realmembers import is_member_pod


def pod(labels: dict[str, str], containers: list[str]) -> dict:
    return {"metadata": {"name": "e-0-0-abc", "labels": labels},
            "spec": {"containers": [{"name": name} for name in containers]}}


def test_a_member_pod_is_a_job_pod_with_the_status_container_or_the_member_label() -> None:
    assert is_member_pod(pod({"job-name": "e-0"}, ["app", "ensemble-member-status"]))
    assert is_member_pod(pod({"job-name": "e-0", MEMBER_LABEL: "0"}, ["app"]))   # statusSidecar false
    assert not is_member_pod(pod({"job-name": "other"}, ["app"]))                 # someone else's Job
    assert not is_member_pod(pod({MEMBER_LABEL: "0"}, ["app"]))                   # not a Job's pod
