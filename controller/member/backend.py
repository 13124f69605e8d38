"""What a lead broker's status endpoint needs from a workload manager.

Small on purpose: the gRPC side, the real Flux backend and the simulator meet here.
"""
from __future__ import annotations

from typing import Protocol

QUEUE_STATES = ("new", "depend", "priority", "sched", "run", "cleanup", "inactive")
NEXT_JOBS_SHOWN = 10


class BackendError(Exception):
    """A request the backend cannot carry out; the message names the cause."""


class PartialSubmit(BackendError):
    """Some jobs of a submit went in before one failed: ``submitted`` are their ids, so the
    caller counts them rather than submit them again."""

    def __init__(self, submitted: list[int], message: str) -> None:
        super().__init__(message)
        self.submitted = submitted


class MemberBackend(Protocol):
    def status(self) -> dict:
        """``{"nodes": {...}, "queue": {...}, "waiting": {"<nodes>": n}, "nextJobs": [...]}``."""

    def submit(self, group: str, count: int) -> list[int]:
        """Submit ``count`` more jobs of the named group; returns their ids."""

    def resize(self, nodes: int) -> None:
        """The member now has ``nodes`` nodes (after a grow or shrink)."""
