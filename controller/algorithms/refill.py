"""``refill``: keep a member busy by asking it to submit more jobs of one group.

Only polls after the latest submit count towards ``emptyPolls``: the member needs
a moment to queue what it was asked for, and counting older empty polls would
submit again before the first batch shows up.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.algorithms.base import Action, MemberSample, MemberView
from controller.algorithms.options import option, parse_dataclass
from controller.algorithms.runs import trailing_run
from controller.algorithms.status import ACTIVE_FIELDS, queue_total


@dataclass(frozen=True)
class RefillOptions:
    group: str = option("group")
    count: int = option("count", 1, minimum=1)
    empty_polls: int = option("emptyPolls", 2, minimum=1)
    max_refills: int = option("maxRefills", 1, minimum=0)


def _is_empty(status: dict) -> bool:
    return queue_total(status, ACTIVE_FIELDS) == 0


class RefillAlgorithm:
    name = "refill"

    def parse_options(self, options: Mapping[str, object]) -> RefillOptions:
        return parse_dataclass(RefillOptions, self.name, options)

    def decide(
        self, history: Sequence[MemberSample], member: MemberView, options: Mapping[str, object], now: float
    ) -> list[Action]:
        parsed = self.parse_options(options)
        refills = member.action_counts.get("submit", 0)
        if refills >= parsed.max_refills:
            return []
        last_submit = member.last_action("submit")
        recent = [s for s in history if last_submit is None or s.time > last_submit]
        empty = trailing_run(recent, _is_empty)
        if len(empty) < parsed.empty_polls:
            return []
        reason = f"queue empty for {len(empty)} polls (refill {refills + 1} of {parsed.max_refills})"
        return [Action("submit", member.name, parsed.count, group=parsed.group, reason=reason)]
