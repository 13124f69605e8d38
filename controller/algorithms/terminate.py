"""``terminate``: declare a member Completed once its work is done for sure.

A drained queue can be a gap between job waves, so the verdict needs
``confirmPolls`` consecutive drained polls and at least one finished job (an
empty queue before anything ran means the work has not started, not that it ended).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.algorithms.base import Action, MemberSample, MemberView
from controller.algorithms.options import option, parse_dataclass
from controller.algorithms.runs import trailing_run
from controller.algorithms.status import ACTIVE_FIELDS, queue_total


@dataclass(frozen=True)
class TerminateOptions:
    confirm_polls: int = option("confirmPolls", 3, minimum=1)
    delete_minicluster: bool = option("deleteMiniCluster", False)


def _is_done(status: dict) -> bool:
    return queue_total(status, ACTIVE_FIELDS) == 0 and queue_total(status, ("inactive",)) > 0


class TerminateAlgorithm:
    name = "terminate"

    def parse_options(self, options: Mapping[str, object]) -> TerminateOptions:
        return parse_dataclass(TerminateOptions, self.name, options)

    def decide(
        self, history: Sequence[MemberSample], member: MemberView, options: Mapping[str, object], now: float
    ) -> list[Action]:
        parsed = self.parse_options(options)
        if member.last_action("terminate") is not None:
            return []
        drained = trailing_run(history, _is_done)
        if len(drained) < parsed.confirm_polls:
            return []
        finished = queue_total(drained[-1].status, ("inactive",))
        reason = f"queue drained for {len(drained)} polls, {finished} jobs finished"
        # Delete first: once terminated, a member is never decided on again, so a delete
        # that failed after the terminate would be lost; failing before it, it is retried.
        # One already recorded is not asked for twice.
        delete = parsed.delete_minicluster and member.last_action("delete") is None
        actions = [Action("delete", member.name, reason="deleteMiniCluster is set")] if delete else []
        return actions + [Action("terminate", member.name, reason=reason)]
