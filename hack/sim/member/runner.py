"""A member's ensemble run (what ``ensemble run`` does in a lead broker) against the simulated queue.

Flux cannot run here, so the demo and e2e suite run the member's ensemble.yaml with this
instead: it fires ``start`` rules, turns the queue's job transitions into the job events Flux
would post, keeps metric models per job group, fires ``metric`` and ``job-<event>`` rules, and
asks the ensemble service to grow or shrink. Custom actions (user Python) are not executed.

As ensemble-python 0.0.16 does (observed running it in a real Flux instance): metrics follow
only the jobs this run submitted (a job of the same group submitted by anyone else, such as the
operator's refill through the member endpoint, counts nowhere); ``job-<event>`` rules fire for
every job in the queue, whatever their ``name``; a terminate ends the run once the event that
fired it has run all its rules (later rules of that pass still act).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import yaml

from api.v1alpha1.ensemble_yaml import load_ensemble_yaml
from controller.clock import Clock
from sim.member.action_client import ActionReply
from sim.member.metrics import GroupMetrics
from sim.member.rules import SCALING_ACTIONS, Rule, run_rules
from sim.member.simulator import JobTransition
from controller.proto.errors import ActionCallError

log = logging.getLogger(__name__)

# The events Flux's job-manager journal posts, per simulated state, for a job that runs and succeeds.
STATE_EVENTS = {
    "new": ("submit", "validate"),
    "sched": ("depend", "priority"),
    "run": ("alloc", "start"),
    "inactive": ("finish", "release", "free", "clean"),
}
IDLE_POLL_SECONDS = 1.0


class JobQueue(Protocol):
    """What the run needs from the simulated Flux (``SimulatedFlux``)."""

    def submit(self, group: str, count: int) -> list[int]: ...

    def journal(self, start: int = 0) -> list[JobTransition]: ...

    def next_change_at(self) -> float | None: ...


class ScaleRequester(Protocol):
    """What the run needs from the ensemble service (``ActionClient``)."""

    def scale(self, action: str, amount: int) -> ActionReply: ...


@dataclass(frozen=True)
class FiredAction:
    """One action a rule fired; ``at`` is seconds since the run began."""
    at: float
    rule: str
    action: str
    detail: str


@dataclass
class _Job:
    group: str
    submitted: float
    started: float | None = None


class EnsembleRun:
    """Follows one member's ensemble.yaml; ``run()`` returns True once a terminate rule fired."""

    def __init__(self, config: dict, flux: JobQueue, actions: ScaleRequester | None, clock: Clock, *,
                 source: str = "ensemble.yaml", idle_poll: float = IDLE_POLL_SECONDS) -> None:
        loaded = load_ensemble_yaml(yaml.safe_dump(config), source)
        if loaded.config is None:
            raise ValueError("; ".join(str(error) for error in loaded.errors))
        for warning in loaded.warnings:
            log.warning("%s", warning)
        self.rules = run_rules(loaded.config)
        for rule in self.rules:
            if rule.action in SCALING_ACTIONS and actions is None:
                raise ValueError(f"{source}.{rule.where}.action.name: {rule.action} needs the ensemble "
                                 "service address (--service HOST:PORT)")
        self.heartbeat = loaded.config.heartbeat
        self.metrics = GroupMetrics()
        self.fired: list[FiredAction] = []
        self._job_sets = loaded.config.groups()
        self._flux = flux
        self._actions = actions
        self._clock = clock
        self._idle_poll = idle_poll
        self._origin = clock.now()
        self._next_heartbeat: float | None = None
        self._jobs: dict[int, _Job] = {}
        self._submitted: set[int] = set()  # ids this run submitted: the only jobs its metrics follow
        self._cursor = 0
        self._started = False
        self._terminated = False
        self._stopping = False
        self._wakeup = threading.Condition()

    @property
    def terminated(self) -> bool:
        return self._terminated

    def run(self, until: float | None = None) -> bool:
        """Follow the queue until terminate (True), ``until`` seconds after the run began, or ``stop()``."""
        if not self._started:
            self._started = True
            self._origin = self._clock.now()
            if self.heartbeat:
                self._next_heartbeat = self._origin + self.heartbeat
            self._fire_all(self._triggered("start"), "start")
        deadline = None if until is None else self._origin + until
        while True:
            self._drain_journal()
            if self._terminated:
                return True
            now = self._clock.now()
            if self._next_heartbeat is not None and now >= self._next_heartbeat:
                self._beat(now)
                continue
            if self._stopping or (deadline is not None and now >= deadline):
                return False
            wake_at = min(at for at in (self._flux.next_change_at(), self._next_heartbeat, deadline,
                                        now + self._idle_poll) if at is not None)
            with self._wakeup:
                if not self._stopping:
                    self._clock.wait(self._wakeup, wake_at - now)

    def stop(self) -> None:
        """Make ``run()`` return soon (from another thread, e.g. on SIGTERM)."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()

    def _drain_journal(self) -> None:
        """Each event runs all its rules, as one record of Flux's journal does in ensemble-python;
        a terminate among them stops the run before the next event."""
        while not self._terminated:
            transitions = self._flux.journal(self._cursor)
            if not transitions:
                return
            for transition in transitions:
                self._cursor += 1
                for event in STATE_EVENTS[transition.state]:
                    self._job_event(transition, event)
                    if self._terminated:
                        return

    def _job_event(self, transition: JobTransition, event: str) -> None:
        """Record metrics; run metric rules (for a job of this run, up to finish); then the
        job-<event> rules, for any job (ensemble-python does not filter them by name)."""
        cause = f"job {transition.job_id} ({transition.group}) {event}"
        if self._record(transition, event):
            self._evaluate_metrics(cause)
        self._fire_all(self._triggered(f"job-{event}"), cause)

    def _record(self, transition: JobTransition, event: str) -> bool:
        """Update the job's times and the group metrics; False for a job this run did not submit
        and once the job is done."""
        job_id, group, at = transition.job_id, transition.group, transition.at
        if event == "submit" and job_id in self._submitted:
            self._jobs[job_id] = _Job(group, submitted=at)
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if event == "start":
            job.started = at
            self.metrics.record(f"{group}-pending", at - job.submitted)
        elif event == "finish":
            self.metrics.record(f"{group}-duration", at - (job.started if job.started is not None else at))
            self.metrics.increment(group, "finished")
            self.metrics.increment(group, "success")
            del self._jobs[job_id]
        return True

    def _beat(self, now: float) -> None:
        """Jobs still waiting add their time so far to the pending model, then metric rules run."""
        self._next_heartbeat = now + self.heartbeat
        for job in self._jobs.values():
            if job.started is None:
                self.metrics.record(f"{job.group}-pending", now - job.submitted)
        log.debug("heartbeat at t=%.1f: %s", now - self._origin, self.metrics.snapshot())
        self._evaluate_metrics("heartbeat")

    def _evaluate_metrics(self, cause: str) -> None:
        for rule in self._triggered("metric"):
            value = self.metrics.value(rule.name or "")
            if value is None or (rule.when is not None and not rule.when.matches(value)):
                continue
            self._fire(rule, f"{cause}: {rule.name} = {value:g}")

    def _triggered(self, trigger: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.trigger == trigger]

    def _fire_all(self, rules: list[Rule], cause: str) -> None:
        for rule in rules:
            self._fire(rule, cause)

    def _fire(self, rule: Rule, cause: str) -> None:
        if not rule.frequency.allow():
            return
        if rule.action == "submit":
            detail = self._submit(rule.label)
        elif rule.action in SCALING_ACTIONS:
            detail = self._scale(rule.action, rule.value if isinstance(rule.value, int) else 1)
        elif rule.action == "terminate":
            self._terminated = True
            detail = "ensemble run ends"
        else:
            detail = (f"skipped: custom action {rule.label!r} is user Python, "
                      "which the simulated run does not execute")
        at = self._clock.now() - self._origin
        self.fired.append(FiredAction(at, rule.where, rule.action, detail))
        level = logging.WARNING if rule.action == "custom" else logging.INFO
        log.log(level, "t=%.1f %s fired on %s -> %s: %s", at, rule.describe(), cause, rule.action, detail)

    def _submit(self, group: object) -> str:
        """Submit each set of the group (its ``count`` jobs; the simulated queue runs the group's
        first set's command). A label naming no group ends the run as it ends ensemble-python's
        (the validator warns about it)."""
        if not isinstance(group, str) or group not in self._job_sets:
            raise ValueError(f'job with name "{group}" is not known')
        ids = [job_id for job in self._job_sets[group] for job_id in self._flux.submit(group, job.count)]
        self._submitted.update(ids)
        return f"{group} jobs {ids}"

    def _scale(self, action: str, amount: int) -> str:
        assert self._actions is not None  # checked in __init__ for every grow/shrink rule
        try:
            reply = self._actions.scale(action, amount)
        except ActionCallError as err:
            return f"{action} {amount} not delivered: {err}"
        return f"{action} {amount}: service replied {reply.status} {reply.payload}"
