"""Status computation: member phases, condition transitions, change detection."""
from __future__ import annotations

import copy

import pytest

from controller.reconcilers.poller import PollResult
from controller.reconcilers.status import (MemberObservation, invalid_status, member_phase, rfc3339, set_condition,
                                           status_changed, valid_status)
from api.v1alpha1 import FieldError
from tests.helpers import job_owner


def pod(phase: str, index: int = 0, ip: str | None = "10.1.1.1") -> dict:
    return {"metadata": {"name": f"m-{index}-xyz", "namespace": "ns", "ownerReferences": [job_owner("m")],
                         "labels": {"job-name": "m", "batch.kubernetes.io/job-completion-index": str(index)}},
            "status": {"phase": phase, **({"podIP": ip} if ip else {})}}


def observation(**kwargs) -> MemberObservation:
    """A member whose Job (the one its pods' owner reference names) is known, unless given."""
    defaults = dict(name="m", spec_size=2, min_size=1, max_size=4, minicluster={"spec": {"size": 3}},
                    job_uid=job_owner(kwargs.get("name", "m"))["uid"])
    return MemberObservation(**{**defaults, **kwargs})


def ok_poll(time: float = 1_700_000_000.0, status: dict | None = None) -> PollResult:
    return PollResult(True, time, "10.1.1.1:1", 0.01, 0, status or {"queue": {"run": 1}})


def test_member_phase_follows_minicluster_pods_and_poller() -> None:
    assert member_phase(observation(minicluster=None)) == "Pending"
    assert member_phase(observation(pods=[pod("Pending", ip=None)])) == "Pending"
    assert member_phase(observation(pods=[pod("Running")])) == "Running"
    assert member_phase(observation(pods=[pod("Running", ip=None)], poll=ok_poll())) == "Running"
    assert member_phase(observation(pods=[pod("Succeeded")])) == "Completed"
    assert member_phase(observation(pods=[pod("Failed")])) == "Failed"
    finished = {"spec": {}, "status": {"conditions": [{"type": "JobFinished", "status": "True"}]}}
    assert member_phase(observation(minicluster=finished)) == "Completed"


def ensemble(status: dict | None = None, generation: int = 4) -> dict:
    return {"metadata": {"name": "e", "namespace": "ns", "generation": generation}, "status": status or {}}


def test_valid_status_reports_sizes_lead_broker_and_conditions() -> None:
    obs = observation(pods=[pod("Running"), pod("Running", 1), pod("Pending", 2, ip=None)], poll=ok_poll())
    status = valid_status(ensemble(), [obs], {"status": {"availableReplicas": 1}}, now=1_700_000_100.0)
    (member,) = status["members"]
    assert member == {"name": "m", "minicluster": "m", "phase": "Running", "desiredSize": 3,
                      "currentSize": 2, "minSize": 1, "maxSize": 4,
                      "leadBroker": {"pod": "m-0-xyz", "ip": "10.1.1.1"},
                      "lastPollTime": "2023-11-14T22:13:20Z", "lastPoll": {"queue": {"run": 1}}}
    assert status["observedGeneration"] == 4 and status["phase"] == "Running"
    assert status["summary"] == {"members": 1, "ready": 1}
    by_type = {c["type"]: c for c in status["conditions"]}
    assert {t: c["status"] for t, c in by_type.items()} == {
        "InvalidSpec": "False", "ServiceReady": "True", "MembersReady": "True", "Ready": "True"}
    assert all(c["observedGeneration"] == 4 and c["lastTransitionTime"] == "2023-11-14T22:15:00Z"
               for c in by_type.values())


def test_last_transition_time_moves_only_when_the_status_does() -> None:
    first = set_condition([], "Ready", "False", "NotReady", "waiting", 1, "T1")
    same = set_condition(first, "Ready", "False", "NotReady", "still waiting", 2, "T2")
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["message"] == "still waiting"
    flipped = set_condition(same, "Ready", "True", "Ready", "ok", 2, "T3")
    assert flipped[0]["lastTransitionTime"] == "T3"
    assert len(flipped) == 1


def test_invalid_status_keeps_members_and_names_the_field() -> None:
    old = {"members": [{"name": "m"}], "summary": {"members": 1, "ready": 0}, "phase": "Running"}
    status = invalid_status(ensemble(old), [FieldError("spec.members[0].ensemble", "bad yaml")], 1_700_000_000.0)
    assert status["phase"] == "Invalid" and status["members"] == [{"name": "m"}]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], ready["message"]) == ("InvalidSpec", "spec.members[0].ensemble: bad yaml")


def test_status_changed_ignores_poll_timestamps_and_foreign_fields_only() -> None:
    earlier = valid_status(ensemble(), [observation(poll=ok_poll(1_700_000_000.0))], None, 1_700_000_000.0)
    later = valid_status(ensemble(earlier), [observation(poll=ok_poll(1_700_000_050.0))], None, 1_700_000_050.0)
    assert later["members"][0]["lastPollTime"] != earlier["members"][0]["lastPollTime"]
    assert not status_changed(later, {**earlier, "algorithm": {"set": "by someone else"}})
    busier = valid_status(ensemble(earlier), [observation(poll=ok_poll(status={"queue": {"run": 2}}))],
                          None, 1_700_000_060.0)
    assert status_changed(busier, earlier)
    assert status_changed(earlier, None)


def test_status_changed_leaves_both_statuses_as_they_were() -> None:
    earlier = valid_status(ensemble(), [observation(poll=ok_poll(1_700_000_000.0))], None, 1_700_000_000.0)
    later = valid_status(ensemble(earlier), [observation(poll=ok_poll(1_700_000_050.0))], None, 1_700_000_050.0)
    stored = {**earlier, "members": earlier["members"] + ["written by someone else"]}
    before = copy.deepcopy((later, stored))
    assert status_changed(later, stored)
    assert (later, stored) == before
    assert later["members"][0]["lastPollTime"] == rfc3339(1_700_000_050.0)


def test_summary_ready_counts_running_and_completed_members_not_pending_ones() -> None:
    def pod_of(member: str, phase: str) -> dict:
        p = pod(phase)
        p["metadata"]["labels"]["job-name"] = member
        p["metadata"]["ownerReferences"] = [job_owner(member)]
        return p

    running = observation(name="a", pods=[pod_of("a", "Running")], poll=ok_poll())
    completed = observation(name="b", pods=[pod_of("b", "Succeeded")])
    pending = observation(name="c", pods=[pod_of("c", "Pending")])
    status = valid_status(ensemble(), [running, completed, pending], {"status": {"availableReplicas": 1}},
                          now=1_700_000_100.0)
    assert status["summary"] == {"members": 3, "ready": 2}


def test_a_finished_member_keeps_its_last_report_once_no_longer_polled() -> None:
    last = {"name": "m", "lastPollTime": "2023-11-14T22:13:20Z", "lastPoll": {"queue": {"inactive": 7}}}
    old = {"members": [last]}
    done = observation(pods=[pod("Succeeded")])
    (member,) = valid_status(ensemble(old), [done], None, now=1_700_000_100.0)["members"]
    assert member["phase"] == "Completed"
    assert member["lastPoll"] == {"queue": {"inactive": 7}}
    assert member["lastPollTime"] == "2023-11-14T22:13:20Z"
    # A member still on its way (not finished) shows no stale report.
    (pending,) = valid_status(ensemble(old), [observation(pods=[pod("Pending", ip=None)])], None,
                              now=1_700_000_100.0)["members"]
    assert "lastPoll" not in pending


# ---- the real Flux Operator: no JobFinished, OnFailure pods, refused sizes left in the spec ----

# A MiniCluster's status as the Flux Operator writes it (seen running it): every condition,
# JobFinished never True; size 0 until its first resize; maximumSize from its first reconcile.
FLUX_OPERATOR_STATUS = {
    "jobid": "", "selector": "hpa-selector=m", "size": 0, "maximumSize": 4,
    "conditions": [{"type": t, "status": "True" if t == "JobMiniClusterReady" else "False", "reason": t}
                   for t in ("JobRequested", "JobWaitingForResources", "JobRunning", "JobMiniClusterReady",
                             "JobFinished")]}


def flux_operator_mc(size: int = 2, max_size: int = 4, status: dict | None = None) -> dict:
    return {"spec": {"size": size, "maxSize": max_size}, "status": status or FLUX_OPERATOR_STATUS}


def job_pod(phase: str, suffix: str, created: str, *, broker: dict | None = None,
            sidecar: dict | None = None) -> dict:
    """An index-0 pod of the Flux Operator's Job: the broker container is named after the
    MiniCluster and runs its wait script; the status sidecar follows."""
    running = {"state": {"running": {"startedAt": created}}}
    return {"metadata": {"name": f"m-0-{suffix}", "namespace": "ns", "creationTimestamp": created,
                         "ownerReferences": [job_owner("m")],
                         "labels": {"job-name": "m", "batch.kubernetes.io/job-completion-index": "0",
                                    "job-index": "0"}},
            "spec": {"restartPolicy": "OnFailure",
                     "containers": [{"name": "m", "command": ["/bin/bash", "/flux_operator/wait-0.sh"]},
                                    {"name": "ensemble-member-status",
                                     "command": ["/bin/bash", "/flux_operator/start-1.sh"]}]},
            "status": {"phase": phase, "podIP": "10.1.1.1",
                       "containerStatuses": [{"name": "m", **(broker or running)},
                                             {"name": "ensemble-member-status", **(sidecar or running)}]}}


def exited(code: int) -> dict:
    return {"terminated": {"exitCode": code}}


def test_a_member_completes_from_its_lead_pod_without_job_finished() -> None:
    done = observation(minicluster=flux_operator_mc(), pods=[job_pod("Succeeded", "a", "T1")])
    assert member_phase(done) == "Completed"
    assert member_phase(observation(minicluster=flux_operator_mc(), pods=[job_pod("Running", "a", "T1")])) \
        == "Running"


def test_a_failed_lead_pod_the_job_replaced_keeps_the_member_failed() -> None:
    # kwok (or an eviction) fails the pod; the Job (backoffLimit 100) starts a new index-0 pod.
    failed = job_pod("Failed", "a", "T1", broker={"state": exited(1)})
    retry = job_pod("Running", "b", "T2")
    obs = observation(minicluster=flux_operator_mc(), pods=[failed, retry])
    assert obs.lead is not None and obs.lead.pod == "m-0-b"
    assert member_phase(obs) == "Failed"
    # A retry that completed completes the member (and the Job).
    done = job_pod("Succeeded", "b", "T2", broker={"state": exited(0)})
    assert member_phase(observation(minicluster=flux_operator_mc(), pods=[failed, done])) == "Completed"


def test_a_broker_restarted_in_place_after_a_failure_fails_the_member() -> None:
    # restartPolicy OnFailure on a real node: the pod stays Running, the exit is in lastState.
    restarted = {"state": {"running": {"startedAt": "T3"}}, "lastState": exited(2), "restartCount": 1}
    obs = observation(minicluster=flux_operator_mc(), pods=[job_pod("Running", "a", "T1", broker=restarted)])
    assert member_phase(obs) == "Failed"


def test_a_restarted_status_sidecar_does_not_fail_the_member() -> None:
    sidecar = {"state": {"running": {"startedAt": "T3"}}, "lastState": exited(1), "restartCount": 1}
    obs = observation(minicluster=flux_operator_mc(), pods=[job_pod("Running", "a", "T1", sidecar=sidecar)])
    assert member_phase(obs) == "Running"


def test_a_broker_that_exited_0_completes_the_member_while_its_sidecar_runs() -> None:
    obs = observation(minicluster=flux_operator_mc(), pods=[job_pod("Running", "a", "T1", broker={"state": exited(0)})])
    assert member_phase(obs) == "Completed"


@pytest.mark.parametrize("spec_size, status_size, shown", [
    (3, 0, 3),     # accepted
    (9, 3, 3),     # above maxSize 4: left in the spec, the Job kept its size
    (0, 3, 3),     # 0: same
    (9, 0, 2),     # refused before any resize: the size it was created with
])
def test_the_status_never_claims_a_size_the_flux_operator_refused(spec_size: int, status_size: int,
                                                                  shown: int) -> None:
    mc = flux_operator_mc(size=spec_size, status={**FLUX_OPERATOR_STATUS, "size": status_size})
    (member,) = valid_status(ensemble(), [observation(minicluster=mc, spec_size=2)], None,
                             now=1_700_000_100.0)["members"]
    assert member["desiredSize"] == shown


def test_a_failing_poll_shows_its_reason_in_the_member_status_until_one_succeeds() -> None:
    from controller.reconcilers.status import member_status
    reason = "10.1.1.1:50052: member answered ERROR: cannot load Flux's Python bindings with Python 3.12"
    failed = PollResult(False, 1_700_000_000.0, "10.1.1.1:50052", 0.01, 1, None, reason)
    shown = member_status(observation(pods=[pod("Running")], poll=failed))
    assert shown["lastPollError"] == reason
    assert "lastPollError" not in member_status(observation(pods=[pod("Running")], poll=ok_poll()))
    long = PollResult(False, 1_700_000_000.0, "a", 0.01, 1, None, "x" * 5000)
    assert len(member_status(observation(poll=long))["lastPollError"]) == 512
