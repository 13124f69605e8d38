"""A deterministic stand-in for a Flux instance: a FIFO queue of jobs on N nodes.

Flux cannot run here, yet the operator's polling, scaling and fair-share logic need a
lead broker whose queue reacts to time and to grow/shrink. Time comes only from the
injected clock; each read replays completions in time order, so the same submissions
and clock steps always give the same states.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

from controller.clock import Clock
from controller.member.backend import NEXT_JOBS_SHOWN, QUEUE_STATES, BackendError
from controller.member.jobgroups import JobGroup


@dataclass
class SimulatedJob:
    id: int
    group: str
    nodes: int
    duration: float
    state: str = "new"
    history: list[tuple[str, float]] = field(default_factory=list)
    ends_at: float = 0.0

    def move(self, state: str, at: float) -> None:
        self.state = state
        self.history.append((state, at))


class JobTransition(NamedTuple):
    """One state change of one job, in the order the queue made them (for an ensemble run)."""
    job_id: int
    group: str
    state: str
    at: float


class SimulatedFlux:
    """Jobs go new -> sched -> run -> inactive; the head of the queue starts when it fits."""

    def __init__(self, groups: dict[str, JobGroup], nodes: int, clock: Clock, cores_per_node: int = 1) -> None:
        if nodes < 0:
            raise ValueError(f"nodes: must be >= 0, got {nodes}")
        if cores_per_node < 1:
            raise ValueError(f"cores_per_node: must be >= 1, got {cores_per_node}")
        self._groups = groups
        self._nodes = nodes
        self._cores_per_node = cores_per_node
        self._clock = clock
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._jobs: list[SimulatedJob] = []
        self._pending: list[SimulatedJob] = []
        self._running: list[SimulatedJob] = []
        self._journal: list[JobTransition] = []

    def submit(self, group: str, count: int) -> list[int]:
        if group not in self._groups:
            raise BackendError(f"group: unknown job group {group!r} (known: {sorted(self._groups)})")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise BackendError(f"count: expected a positive integer, got {count!r}")
        spec = self._groups[group]
        with self._lock:
            now = self._advance()
            jobs = [SimulatedJob(next(self._ids), group, spec.nodes, spec.duration) for _ in range(count)]
            for job in jobs:
                self._move(job, "new", now)
            self._jobs.extend(jobs)
            self._pending.extend(jobs)
            self._schedule(now)
        return [job.id for job in jobs]

    def resize(self, nodes: int) -> None:
        """Follow a grow/shrink; running jobs on removed nodes finish, nothing new starts there."""
        if nodes < 0:
            raise BackendError(f"nodes: must be >= 0, got {nodes}")
        with self._lock:
            now = self._advance()
            self._nodes = nodes
            self._schedule(now)

    def status(self) -> dict:
        with self._lock:
            self._advance()
            free = self._free_nodes()
            queue = dict.fromkeys(QUEUE_STATES, 0)
            for job in self._jobs:
                queue[job.state] += 1
            waiting: dict[str, int] = {}
            for job in self._pending:
                waiting[str(job.nodes)] = waiting.get(str(job.nodes), 0) + 1
            return {
                "nodes": {"node_cores_free": free * self._cores_per_node,
                          "node_cores_up": self._nodes * self._cores_per_node,
                          "node_up_count": self._nodes, "node_free_count": free},
                "queue": queue,
                "waiting": waiting,
                "nextJobs": [job.id for job in self._pending[:NEXT_JOBS_SHOWN]],
            }

    def job(self, job_id: int) -> SimulatedJob:
        with self._lock:
            self._advance()
            for job in self._jobs:
                if job.id == job_id:
                    return job
        raise BackendError(f"job {job_id}: unknown")

    def journal(self, start: int = 0) -> list[JobTransition]:
        """Every transition from position ``start`` on, up to now; a reader keeps its own position."""
        with self._lock:
            self._advance()
            return self._journal[start:]

    def next_change_at(self) -> float | None:
        """When the next running job ends (the queue changes by itself only then); None if idle."""
        with self._lock:
            self._advance()
            return min((job.ends_at for job in self._running), default=None)

    def _move(self, job: SimulatedJob, state: str, at: float) -> None:
        job.move(state, at)
        self._journal.append(JobTransition(job.id, job.group, state, at))

    def _advance(self) -> float:
        """Replay every completion up to now, scheduling at each completion time."""
        now = self._clock.now()
        while self._running:
            first = min(self._running, key=lambda job: (job.ends_at, job.id))
            if first.ends_at > now:
                break
            self._running.remove(first)
            self._move(first, "inactive", first.ends_at)
            self._schedule(first.ends_at)
        return now

    def _schedule(self, at: float) -> None:
        for job in self._pending:
            if job.state == "new":
                self._move(job, "sched", at)
        while self._pending and self._pending[0].nodes <= self._free_nodes():
            job = self._pending.pop(0)
            self._move(job, "run", at)
            job.ends_at = at + job.duration
            self._running.append(job)

    def _free_nodes(self) -> int:
        return max(0, self._nodes - sum(job.nodes for job in self._running))
