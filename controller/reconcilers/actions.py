"""Carry out an algorithm's decisions: the one place where they touch the cluster.

Grow and shrink go through the ensemble service's scaler, so an algorithm and a
member asking the service share one write path (resourceVersion-guarded patches of
spec.size, bounds and budget included). Each decision taken becomes an Event.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controller.algorithms import Action
from controller.kube.errors import is_conflict, is_not_found
from controller.kube.resources import MINICLUSTERS, Resource
from controller.proto.errors import ActionCallError
from controller.reconcilers.member_client import MemberClient
from controller.runtime.events import Recorder
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import Decision, Outcome

log = logging.getLogger(__name__)

EVENT_REASONS = {"grow": "ScaledUp", "shrink": "ScaledDown", "submit": "Refilled",
                 "terminate": "Terminated", "delete": "MiniClusterDeleted"}
FAILED_REASON = "AlgorithmActionFailed"
# An action recorded before a crash or failure whose outcome nobody saw.
UNCONFIRMED_REASON = "AlgorithmActionUnconfirmed"


class Scaler(Protocol):
    def scale(self, request: ScaleRequest) -> Decision: ...


class Deleter(Protocol):
    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = "Background",
               preconditions: dict | None = None) -> dict | None: ...


ScalerFactory = Callable[[str, str], Scaler]
"""(ensemble name, namespace) -> the scaler the ensemble service would use."""


@dataclass(frozen=True)
class Taken:
    """An action that changed something; ``amount`` is what it really changed."""

    action: Action
    amount: int


class ActionExecutor:
    def __init__(self, *, client: Deleter, scalers: ScalerFactory, members: MemberClient,
                 events: Recorder) -> None:
        self._client = client
        self._scalers = scalers
        self._members = members
        self._events = events

    def execute(self, ensemble: dict, action: Action, lead_address: str | None, *,
                minicluster_uid: str | None = None) -> Taken | None:
        """Carry out ``action``; None when it changed nothing (refused, failed, already there).

        ``minicluster_uid``: a delete removes only that MiniCluster, never one of the same name
        created since the decision.
        """
        if action.kind == "delete":
            return self._delete(ensemble, action, minicluster_uid)
        handler = {"grow": self._scale, "shrink": self._scale, "submit": self._submit,
                   "terminate": self._terminate}[action.kind]
        try:
            return handler(ensemble, action, lead_address)
        except ActionCallError as error:
            if error.maybe_done and action.kind == "submit":  # jobs may be in: never submit them twice
                log.warning("algorithm action submit on %s: outcome unknown: %s", action.member, error)
                self._events.event(ensemble, "Warning", UNCONFIRMED_REASON,
                                   f"Member {action.member}: submit may or may not have been done ({error}): "
                                   f"counted as done, not repeated")
                return Taken(action, action.amount)
            self._failed(ensemble, action, str(error))
            return None

    def _scale(self, ensemble: dict, action: Action, lead_address: str | None) -> Taken | None:
        meta = ensemble["metadata"]
        delta = action.amount if action.kind == "grow" else -action.amount
        decision = self._scalers(meta["name"], meta["namespace"]).scale(
            ScaleRequest(action.kind, action.member, delta))
        if decision.outcome != Outcome.SUCCESS:
            self._failed(ensemble, action, f"{decision.outcome.value}: {decision.payload.get('error', '')}")
            return None
        before, after = decision.payload["from"], decision.payload["to"]
        if before == after:
            return None
        self._record(ensemble, action, f"MiniCluster {action.member} size {before} -> {after}")
        if lead_address is not None:
            # The member learns its new size from us; if it cannot be told, the size still changed.
            try:
                self._members.request(lead_address, action.member, "resize", {"nodes": after})
            except ActionCallError as error:
                self._failed(ensemble, action, f"size changed, but {error}")
        return Taken(action, abs(after - before))

    def _submit(self, ensemble: dict, action: Action, lead_address: str | None) -> Taken | None:
        if lead_address is None:
            raise ActionCallError(f"member {action.member}: submit: no serving lead broker")
        reply = self._members.request(lead_address, action.member, "submit",
                                      {"group": action.group, "count": action.amount})
        jobs = reply.get("submitted") or []
        if not isinstance(jobs, list):  # len() of a string or a TypeError would miscount or crash
            raise ActionCallError(f"member {action.member}: submit: reply's 'submitted' is not a list "
                                    f"of jobs: {jobs!r}")
        submitted = len(jobs)
        if reply.get("error"):  # part of the jobs went in: count those, say why not the rest
            self._failed(ensemble, action, f"{submitted} of {action.amount} jobs submitted: {reply['error']}")
            if not submitted:
                return None
        self._record(ensemble, action, f"submitted {submitted} jobs of group {action.group!r}")
        return Taken(action, submitted)

    def _terminate(self, ensemble: dict, action: Action, lead_address: str | None) -> Taken:
        self._record(ensemble, action, "marked Completed")
        return Taken(action, 0)

    def _delete(self, ensemble: dict, action: Action, uid: str | None) -> Taken:
        """Idempotent: a MiniCluster already gone (or replaced: another uid) counts as deleted,
        without a second Event."""
        try:
            answer = self._client.delete(MINICLUSTERS, action.member, ensemble["metadata"]["namespace"],
                                         preconditions={"uid": uid} if uid else None)
        except Exception as error:
            if not (is_not_found(error) or is_conflict(error)):
                raise
            answer = None
        if answer is not None:
            self._record(ensemble, action, f"deleted MiniCluster {action.member}")
        return Taken(action, 0)

    def _record(self, ensemble: dict, action: Action, what: str) -> None:
        message = f"Member {action.member}: {what} ({action.reason})" if action.reason \
            else f"Member {action.member}: {what}"
        log.info("algorithm action: %s", message)
        self._events.event(ensemble, "Normal", EVENT_REASONS[action.kind], message)

    def _failed(self, ensemble: dict, action: Action, why: str) -> None:
        log.warning("algorithm action %s on %s failed: %s", action.kind, action.member, why)
        self._events.event(ensemble, "Warning", FAILED_REASON,
                           f"Member {action.member}: {action.kind} not done: {why}")
