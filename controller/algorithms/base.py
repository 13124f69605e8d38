"""What every algorithm sees and returns.

Algorithms are pure: the same history, member view, options and time give the same
decision, so they are tested as tables and the reconciler alone owns side effects.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

ActionKind = Literal["grow", "shrink", "terminate", "submit", "delete"]


class MemberSample(NamedTuple):
    """One successful status poll; ``time`` is on the same clock as ``decide``'s ``now``."""

    time: float
    status: dict


@dataclass(frozen=True)
class MemberView:
    """The member as the algorithm needs it: its size bounds and what was done to it."""

    name: str
    size: int
    min_size: int
    max_size: int
    last_actions: Mapping[str, float] = field(default_factory=dict)
    """Action kind -> time the latest action of that kind was taken."""
    action_counts: Mapping[str, int] = field(default_factory=dict)
    """Action kind -> how many times it was taken."""

    def last_action(self, *kinds: ActionKind) -> float | None:
        """Time of the latest action among ``kinds``, None if none was taken."""
        times = [self.last_actions[kind] for kind in kinds if kind in self.last_actions]
        return max(times, default=None)

    def clamp(self, size: int) -> int:
        return max(self.min_size, min(self.max_size, size))


@dataclass(frozen=True)
class Action:
    """A decision for the reconciler: ``amount`` is nodes (grow/shrink) or jobs (submit)."""

    kind: ActionKind
    member: str
    amount: int = 0
    group: str | None = None
    reason: str = ""


class Algorithm(Protocol):
    name: str

    def parse_options(self, options: Mapping[str, object]) -> object:
        """Typed options, or ``OptionError`` naming the offending option."""

    def decide(
        self, history: Sequence[MemberSample], member: MemberView, options: Mapping[str, object], now: float
    ) -> list[Action]:
        """Actions to take now; ``history`` is oldest first and holds successful polls only."""
