"""The Ensemble's status, computed from what the caches and the poller observed.

Pure functions: the reconciler gathers observations, this module turns them into the
status dict the CRD schema describes, and says whether it differs from the stored one
(so an unchanged ensemble costs no write).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property

from api.v1alpha1.errors import FieldError
from api.v1alpha1.service_mode import service_mode
from controller.memberpods.leadbroker import LeadBroker, lead_broker, lead_broker_pods
from controller.scaling.minicluster_sizes import accepted_size
from controller.reconcilers.poller import PollResult

READY = "Ready"
SERVICE_READY = "ServiceReady"
MEMBERS_READY = "MembersReady"
INVALID_SPEC = "InvalidSpec"
MEMBERS_REACHABLE = "MembersReachable"
SPEC_WARNINGS = "SpecWarnings"
# A condition message lists at most this many warnings, and says how many more there are.
MAX_LISTED_WARNINGS = 10
MAX_POLL_ERROR = 512   # characters of a failed poll's message kept in a member's status

PENDING, RUNNING, COMPLETED, FAILED, INVALID = "Pending", "Running", "Completed", "Failed", "Invalid"

# The Flux Operator's MiniCluster condition once its Job is done.
MINICLUSTER_FINISHED = "JobFinished"
# Changes every heartbeat without meaning anything changed: never a reason to write.
_CHURNING_MEMBER_FIELDS = ("lastPollTime",)
# Consecutive failed polls after which a member counts as unreachable.
UNREACHABLE_AFTER_FAILURES = 3
# The status fields this module computes; written by server-side apply, so others' stay.
# ``memberActions`` (what algorithms did) has its own guarded writes: see intents.py;
# ``budgetGrants`` and ``serviceActions`` are the ensemble service's (controller/scaling/).
OWNED_FIELDS = ("observedGeneration", "phase", "conditions", "members", "summary", "serviceMode",
                "memberPolling")


@dataclass(frozen=True)
class MemberObservation:
    """One member as the caches and the poller see it right now."""

    name: str
    spec_size: int
    min_size: int
    max_size: int
    minicluster: dict | None = None
    pods: list[dict] = field(default_factory=list)
    job_uid: str | None = None
    """The UID of the Job the MiniCluster controls: only pods it controls are the member's lead broker."""
    poll: PollResult | None = None
    """The latest poll, failed or not."""
    published: PollResult | None = None
    """The successful poll the status shows (rate-limited by the caller); default: ``poll``."""
    terminated: bool = False
    """An algorithm declared the member's work done."""

    @cached_property
    def lead(self) -> LeadBroker | None:
        """The lead broker among ``pods``; phase, status, polling and algorithms all read it,
        so it is chosen once per observation rather than once per reader."""
        return lead_broker(self.pods, job_uids=self.job_uids, minicluster=self.name)

    @property
    def job_uids(self) -> dict[str, str]:
        return {self.name: self.job_uid} if self.job_uid else {}


def rfc3339(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_true_condition(obj: dict | None, type_: str) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def member_phase(observation: MemberObservation) -> str:
    """Completed from an algorithm's verdict, else Completed/Failed from the lead broker's pods;
    Running once the broker answers.

    The Flux Operator never sets ``JobFinished`` (still read, should a version set it), and
    its Job retries a failed lead broker (restartPolicy OnFailure, backoffLimit 100): the
    kubelet restarts the container in the same pod, or the Job replaces a pod that failed.
    Either way the run that failed is lost, so one failed index-0 pod or broker exit fails
    the member, unless a retry then completed (the Job completed too).
    """
    if observation.terminated:
        return COMPLETED
    if observation.minicluster is None:
        return PENDING
    if _has_true_condition(observation.minicluster, MINICLUSTER_FINISHED):
        return COMPLETED
    lead = observation.lead
    if lead is not None and (lead.phase == "Succeeded" or lead.broker_exit == 0):
        return COMPLETED
    if (lead is not None and (lead.phase == "Failed" or lead.broker_exit)) or any(
            (pod.get("status") or {}).get("phase") == "Failed"
            for pod in lead_broker_pods(observation.pods, job_uids=observation.job_uids, minicluster=observation.name)):
        return FAILED
    if (lead is not None and lead.reachable) or (observation.poll is not None and observation.poll.ok):
        return RUNNING
    return PENDING


def _running_pods(pods: list[dict]) -> int:
    return sum(1 for pod in pods
               if (pod.get("status") or {}).get("phase") == "Running"
               and not (pod.get("metadata") or {}).get("deletionTimestamp"))


def member_status(observation: MemberObservation, previous: dict | None = None) -> dict:
    """One member's status; ``previous`` (its last written status) keeps the last report
    of a member that is no longer polled (finished), so its final queue stays visible."""
    status: dict = {
        "name": observation.name,
        "minicluster": observation.name,
        "phase": member_phase(observation),
        # Never a size the Flux Operator refused (it leaves those in the spec).
        "desiredSize": accepted_size(observation.minicluster or {}, observation.spec_size),
        "currentSize": _running_pods(observation.pods),
        "minSize": observation.min_size,
        "maxSize": observation.max_size,
    }
    lead = observation.lead
    if lead is not None:
        status["leadBroker"] = {"pod": lead.pod, **({"ip": lead.ip} if lead.ip else {})}
    poll = observation.poll
    if poll is not None and not poll.ok and poll.error:   # e.g. the sidecar cannot load Flux's bindings
        status["lastPollError"] = poll.error[:MAX_POLL_ERROR]
    shown = observation.published or observation.poll
    if shown is not None:
        status["lastPollTime"] = rfc3339(shown.time)
        if shown.ok and shown.status is not None:
            status["lastPoll"] = shown.status
    elif previous and status["phase"] in (COMPLETED, FAILED):
        for key in ("lastPollTime", "lastPoll"):
            if key in previous:
                status[key] = previous[key]
    return status


def status_sidecar_enabled(ensemble: dict) -> bool:
    """``spec.statusSidecar``, true unless set false."""
    return (ensemble.get("spec") or {}).get("statusSidecar") is not False


def unreachable(observation: MemberObservation) -> bool:
    poll = observation.poll
    return poll is not None and not poll.ok and poll.consecutive_failures >= UNREACHABLE_AFTER_FAILURES


def _reachability(conditions: list[dict], members: list[MemberObservation], generation: int | None,
                  stamp: str) -> list[dict]:
    """MembersReachable appears once a member stops answering, and turns True on recovery."""
    lost = [m for m in members if unreachable(m)]
    if lost:
        names = ", ".join(f"{m.name} at {m.poll.address}" for m in lost if m.poll is not None)
        return set_condition(conditions, MEMBERS_REACHABLE, "False", "MembersUnreachable",
                             f"Lead brokers not answering {UNREACHABLE_AFTER_FAILURES}+ status polls in a "
                             f"row (polls back off): {names}.", generation, stamp)
    if any(c.get("type") == MEMBERS_REACHABLE for c in conditions):
        return set_condition(conditions, MEMBERS_REACHABLE, "True", "MembersReachable",
                             "Every polled lead broker answers.", generation, stamp)
    return conditions


def set_condition(conditions: list[dict], type_: str, status: str, reason: str, message: str,
                  generation: int | None, now: str) -> list[dict]:
    """Replace condition ``type_``; its lastTransitionTime moves only when ``status`` does."""
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    updated = {"type": type_, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": transition or now}
    if generation is not None:
        updated["observedGeneration"] = generation
    return [c for c in conditions if c.get("type") != type_] + [updated]


def _deployment_available(deployment: dict | None) -> bool:
    return int(((deployment or {}).get("status") or {}).get("availableReplicas") or 0) >= 1


def _ensemble_phase(member_phases: list[str]) -> str:
    if any(phase == FAILED for phase in member_phases):
        return FAILED
    if member_phases and all(phase == COMPLETED for phase in member_phases):
        return COMPLETED
    if any(phase in (RUNNING, COMPLETED) for phase in member_phases):
        return RUNNING
    return PENDING


def valid_status(ensemble: dict, members: list[MemberObservation], deployment: dict | None,
                 now: float) -> dict:
    """Status of a valid Ensemble whose owned objects were applied."""
    old = ensemble.get("status") or {}
    generation = ensemble["metadata"].get("generation")
    stamp = rfc3339(now)
    previous = {m.get("name"): m for m in old.get("members") or []}
    member_statuses = [member_status(m, previous.get(m.name)) for m in members]
    phases = [m["phase"] for m in member_statuses]
    not_ready = [m["name"] for m in member_statuses if m["phase"] not in (RUNNING, COMPLETED)]
    service_ok = _deployment_available(deployment)
    conditions = list(old.get("conditions") or [])
    conditions = set_condition(conditions, INVALID_SPEC, "False", "SpecValid", "The spec is valid.",
                               generation, stamp)
    conditions = set_condition(
        conditions, SERVICE_READY, "True" if service_ok else "False",
        "DeploymentAvailable" if service_ok else "DeploymentUnavailable",
        "The ensemble service has an available replica." if service_ok
        else "The ensemble service Deployment has no available replica yet.", generation, stamp)
    conditions = set_condition(
        conditions, MEMBERS_READY, "False" if not_ready else "True",
        "MembersNotReady" if not_ready else "MembersReady",
        f"Members not running yet: {', '.join(not_ready)}." if not_ready
        else "Every member is running or completed.", generation, stamp)
    conditions = _reachability(conditions, members, generation, stamp)
    ready = service_ok and not not_ready
    conditions = set_condition(
        conditions, READY, "True" if ready else "False", "Ready" if ready else "NotReady",
        "The service and every member are ready." if ready
        else "Waiting for the ensemble service and members.", generation, stamp)
    # Ready in the printer column means what MembersReady means: running or completed.
    ready_members = sum(1 for phase in phases if phase in (RUNNING, COMPLETED))
    status = {
        "observedGeneration": generation,
        "phase": _ensemble_phase(phases),
        "conditions": conditions,
        "members": member_statuses,
        "summary": {"members": len(members), "ready": ready_members},
        "serviceMode": service_mode((ensemble.get("spec") or {}).get("sidecar")),
        "memberPolling": "Enabled" if status_sidecar_enabled(ensemble) else "Disabled",
    }
    return status


def with_spec_warnings(status: dict, warnings: list[FieldError], generation: int | None, now: float) -> dict:
    """``status`` with the SpecWarnings condition: True listing what a valid spec says that will not
    do what it seems (the Ensemble still runs), False when there is nothing to say."""
    listed = "; ".join(str(warning) for warning in warnings[:MAX_LISTED_WARNINGS])
    more = len(warnings) - MAX_LISTED_WARNINGS
    message = f"{listed}; and {more} more" if more > 0 else listed
    conditions = set_condition(
        status.get("conditions") or [], SPEC_WARNINGS, "True" if warnings else "False",
        SPEC_WARNINGS if warnings else "NoSpecWarnings",
        message or "Nothing in the spec is ignored or unable to act.", generation, rfc3339(now))
    return {**status, "conditions": conditions}


def spec_warnings_message(status: dict | None) -> str | None:
    """The message of a True SpecWarnings condition, else None."""
    condition = next((c for c in (status or {}).get("conditions") or [] if c.get("type") == SPEC_WARNINGS), None)
    return condition.get("message") if condition and condition.get("status") == "True" else None


def invalid_status(ensemble: dict, errors: list[FieldError], now: float) -> dict:
    """Status of an invalid Ensemble: the field errors, and everything else as it was."""
    old = ensemble.get("status") or {}
    generation = ensemble["metadata"].get("generation")
    stamp = rfc3339(now)
    message = "; ".join(str(error) for error in errors)
    conditions = list(old.get("conditions") or [])
    conditions = set_condition(conditions, INVALID_SPEC, "True", INVALID_SPEC, message, generation, stamp)
    conditions = set_condition(conditions, READY, "False", INVALID_SPEC, message, generation, stamp)
    status = {"observedGeneration": generation, "phase": INVALID, "conditions": conditions}
    for key in ("members", "summary"):
        if key in old:
            status[key] = old[key]
    return status


def _without_churn(status: dict) -> dict:
    """Our fields, members without their churning fields: new dicts only where a field is left
    out (nothing is mutated), not deep copies, which were most of the comparison's cost."""
    stripped = {key: status[key] for key in OWNED_FIELDS if key in status}
    members = stripped.get("members")
    if isinstance(members, list):
        stripped["members"] = [{key: value for key, value in member.items() if key not in _CHURNING_MEMBER_FIELDS}
                               if isinstance(member, dict) else member for member in members]
    return stripped


def status_changed(new: dict, old: dict | None) -> bool:
    """True when our fields differ (poll timestamps alone do not count).

    Fields other writers keep in the status (the schema preserves unknown ones) are theirs.
    """
    return _without_churn(new) != _without_churn(old or {})
