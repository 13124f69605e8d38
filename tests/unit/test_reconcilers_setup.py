"""The Ensemble controller's wiring (controller/reconcilers/__init__.py): what its watches let through."""
from __future__ import annotations

from controller.reconcilers import job_identity_changed
from tests.helpers import member_job


def test_a_member_jobs_status_updates_are_no_reason_to_reconcile_its_coming_going_and_owner_are() -> None:
    job = member_job("e-0", "uid-mc")
    counted = {**job, "status": {"active": 3, "ready": 2}}
    assert not job_identity_changed.update(job, counted)
    orphaned = {**job, "metadata": {**job["metadata"], "ownerReferences": []}}
    assert job_identity_changed.update(job, orphaned)
    assert job_identity_changed.create(job) and job_identity_changed.delete(job)
