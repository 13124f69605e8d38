"""Carry out algorithm decisions off the reconcile workers.

Design. A reconcile reads caches and writes only its owned objects and status, so it never
waits on a member or on the scaling path. With ``spec.algorithm`` set it decides, records
the decisions as pending in ``status.memberActions`` (``intents.py``: before anything acts,
so a crash never repeats one), and hands each member's recorded intents to this runner as
one ``ActionJob``. The runner is a Manager runnable that runs only on the leader, like the
``StatusPoller``; its worker threads carry each job's intents out in order through
``ActionExecutor`` (grow/shrink through the scaler, then ``resize`` to the member; ``submit``
to the member; the MiniCluster's DELETE; an Event for each, Warnings for failures). It keeps
one ``EnsembleScaler`` per Ensemble for as long as the Ensemble exists, so the scaler's TTL
caches and budget lock serve every action taken for it.

A finished job becomes an ``ActionOutcome`` kept for its Ensemble, and the Ensemble's
Request goes to the workqueue (``on_outcome``), as a poll result does. The next reconcile
takes the outcomes and turns each pending record into a count (done, or outcome unknown) or
drops it (changed nothing, so it may be decided again), then writes the records.

While the runner holds a member (its job queued, running, or its outcome not yet taken),
the reconcile neither decides for that member (its polls wait and are decided on once the
outcome is known) nor settles its pending records: they are in flight, not lost. Pending
records the runner does not hold (the operator restarted, the lease moved, an action raised)
are settled by the reconcile as before. An action that raises stops its job: it and the
intents after it stay pending, and the reconcile that takes the outcome raises the error, so
the workqueue's rate limiter paces the retry.

Stopping. A graceful stop (the manager shutting down while it still holds the lease) first
``drain``s: no new job is accepted, and the workers finish the job in progress and the queued
ones for up to ``stop_grace`` seconds, so decisions already recorded are carried out rather than
left for the next leader. Whatever is still queued then, and every queued job on a stop without
the lease, is dropped, its records left pending to be settled.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from controller.clock import Clock, RealClock
from controller.reconcilers.action_records import Intent
from controller.reconcilers.actions import ActionExecutor, Deleter, Scaler, ScalerFactory, Taken
from controller.reconcilers.member_client import MemberClient
from controller.runtime.events import Recorder
from controller.runtime.reconcile import Request

log = logging.getLogger(__name__)

# Seconds a graceful stop lets queued jobs run: within the controller Deployment's 60 s
# termination grace, leaving the reconcile workers' 30 s drain and the lease release room.
DEFAULT_STOP_GRACE = 20.0


@dataclass(frozen=True)
class ActionJob:
    """A member's recorded intents, to carry out in order."""

    request: Request
    ensemble: dict  # as last written: Events name it, the actions read its name and namespace
    member: str
    intents: tuple[Intent, ...]
    address: str | None  # the member's serving lead broker (host:port), None when there is none


@dataclass(frozen=True)
class ActionOutcome:
    """What a job did: each intent carried out, with what it changed (None: nothing), in
    order; ``error`` is what stopped the job, whose remaining intents were not tried."""

    member: str
    taken: tuple[tuple[Intent, Taken | None], ...]
    error: Exception | None = None


class ActionRunner:
    needs_leader_election = True

    def __init__(self, *, client: Deleter, scalers: ScalerFactory, members: MemberClient, events: Recorder,
                 on_outcome: Callable[[Request], None] | None = None, workers: int = 2,
                 clock: Clock | None = None, stop_grace: float = DEFAULT_STOP_GRACE) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be >= 1, got {workers}")
        if not stop_grace >= 0:
            raise ValueError(f"stop_grace: must be >= 0 seconds, got {stop_grace}")
        self._clock = clock or RealClock()
        self._stop_grace = stop_grace
        self._new_scaler = scalers
        self._scalers: dict[tuple[str, str], Scaler] = {}
        self._executor = ActionExecutor(client=client, scalers=self._scaler, members=members, events=events)
        self.on_outcome = on_outcome
        self._workers = workers
        self._cond = threading.Condition()
        self._jobs: deque[ActionJob] = deque()
        self._held: dict[Request, set[str]] = {}
        self._outcomes: dict[Request, list[ActionOutcome]] = {}
        self._threads: list[threading.Thread] = []
        self._running = 0  # jobs a worker has taken and not finished
        self._closed = False  # no new job accepted (draining or stopped)
        self._stopped = False  # workers take no more jobs

    # -- the reconcile's side ----------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """Once draining or stopped no new job runs: the reconcile then decides nothing it could
        not carry out."""
        with self._cond:
            return self._closed

    def submit(self, job: ActionJob) -> None:
        """Queue ``job``; once draining or stopped it is dropped, its records left pending to be settled."""
        with self._cond:
            if self._closed:
                return
            self._held.setdefault(job.request, set()).add(job.member)
            self._jobs.append(job)
            self._cond.notify()

    def holds(self, request: Request, member: str) -> bool:
        """Whether ``member``'s job is queued, running or has an outcome not yet taken."""
        with self._cond:
            return member in self._held.get(request, ())

    def take_outcomes(self, request: Request) -> list[ActionOutcome]:
        """The outcomes of ``request``'s finished jobs, each returned once."""
        with self._cond:
            outcomes = self._outcomes.pop(request, [])
            held = self._held.get(request, set())
            for outcome in outcomes:
                held.discard(outcome.member)
            if not held:
                self._held.pop(request, None)
            return outcomes

    def forget(self, request: Request) -> None:
        """The Ensemble is gone: its queued jobs are dropped, a running one's outcome too,
        and its scaler goes."""
        with self._cond:
            self._jobs = deque(job for job in self._jobs if job.request != request)
            self._held.pop(request, None)
            self._outcomes.pop(request, None)
            self._scalers.pop((request.namespace, request.name), None)
            self._cond.notify_all()  # a drain may have nothing left to wait for

    # -- the runnable ----------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._threads or self._stopped:
                return
            self._threads = [threading.Thread(target=self._work, name=f"algorithm-actions-{index}", daemon=True)
                             for index in range(self._workers)]
        for thread in self._threads:
            thread.start()

    def drain(self) -> None:
        """A graceful stop's first step: accept no new job, and wait until the job in progress
        and the queued ones are done or ``stop_grace`` seconds passed (the manager calls it
        only while it holds the lease; ``stop`` follows)."""
        with self._cond:
            self._closed = True
            if not self._threads or self._stopped:
                return  # never started: no worker would run the queue
            deadline = self._clock.now() + self._stop_grace
            while self._jobs or self._running:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    log.warning("grace period of %.0f s over with %d algorithm action jobs not started",
                                self._stop_grace, len(self._jobs))
                    return
                self._clock.wait(self._cond, remaining)

    def stop(self) -> None:
        """Jobs running finish; queued ones are dropped, their records left pending for the
        next leader to settle (a process that dies leaves them so too)."""
        with self._cond:
            self._closed = self._stopped = True
            if self._jobs:
                log.warning("stopping with %d algorithm action jobs not started", len(self._jobs))
            self._jobs.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def _work(self) -> None:
        while self.process_next(block=True):
            pass

    def process_next(self, *, block: bool) -> bool:
        """Run the next job in the calling thread (a worker's loop body); False when there is
        none (``block``: wait for one) or the runner stopped."""
        with self._cond:
            while not self._jobs and block and not self._stopped:
                self._cond.wait()
            if not self._jobs or self._stopped:
                return False
            job = self._jobs.popleft()
            self._running += 1
        try:
            outcome = self._run(job)
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()  # a drain waits for the last job
        with self._cond:
            if job.member not in self._held.get(job.request, ()):
                return True  # forgotten meanwhile: nobody will take it
            self._outcomes.setdefault(job.request, []).append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(job.request)
        return True

    def _run(self, job: ActionJob) -> ActionOutcome:
        taken: list[tuple[Intent, Taken | None]] = []
        for intent in job.intents:
            try:
                result = self._executor.execute(job.ensemble, intent.action(job.member), job.address,
                                                minicluster_uid=intent.uid)
            except Exception as error:  # left pending: the reconcile taking the outcome raises it
                log.warning("algorithm action %s on %s raised: %s", intent.kind, job.member, error)
                return ActionOutcome(job.member, tuple(taken), error)
            taken.append((intent, result))
        return ActionOutcome(job.member, tuple(taken))

    def _scaler(self, name: str, namespace: str) -> Scaler:
        """The Ensemble's one scaler, made on its first action."""
        with self._cond:
            scaler = self._scalers.get((namespace, name))
            if scaler is None:
                scaler = self._scalers[(namespace, name)] = self._new_scaler(name, namespace)
            return scaler
