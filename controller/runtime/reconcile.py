"""What a reconciler is asked (Request) and what it answers (Result)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Request:
    """The key of one primary object; events only say "look at this one again"."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """How the controller schedules the next look: never by default (level-triggered).

    ``requeue_after`` wins over ``requeue``: a known delay beats a backoff guess.
    """

    requeue: bool = False
    requeue_after: float | None = None

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError(f"Result.requeue_after must be >= 0, got {self.requeue_after}")


class TerminalError(Exception):
    """A reconcile failure that retrying cannot fix (controller-runtime's ``reconcile.TerminalError``).

    The controller logs and counts it, and does not requeue: the next event for the object
    (an edit that may fix it) is what brings it back.
    """


class Reconciler(Protocol):
    def reconcile(self, request: Request) -> Result:
        """Drive the object named by ``request`` toward its desired state.

        Raise to be retried with backoff; raise ``TerminalError`` for a failure no retry can fix.
        """
