"""``scale``: grow a member while jobs wait, shrink it when it idles, never flap.

Like the HorizontalPodAutoscaler, each sample yields a recommended size; growth
follows the latest recommendation at once, while shrinking takes the largest
recommendation of the last ``stabilizationSeconds``, so one quiet poll between busy
ones never shrinks. After any scale, ``cooldownSeconds`` pass before the next one,
which leaves new brokers time to join before their absence is read as demand.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.algorithms.base import Action, MemberSample, MemberView
from controller.algorithms.options import option, parse_dataclass
from controller.algorithms.status import (
    ACTIVE_FIELDS,
    PENDING_FIELDS,
    free_nodes,
    largest_waiting_request,
    queue_total,
)


@dataclass(frozen=True)
class ScaleOptions:
    wait_seconds: float = option("waitSeconds", 60.0, minimum=0)
    idle_polls: int = option("idlePolls", 3, minimum=1)
    grow_step: int = option("growStep", 1, minimum=1)
    shrink_step: int = option("shrinkStep", 1, minimum=1)
    stabilization_seconds: float = option("stabilizationSeconds", 120.0, minimum=0)
    cooldown_seconds: float = option("cooldownSeconds", 60.0, minimum=0)


@dataclass(frozen=True)
class _Recommendation:
    time: float
    size: int
    reason: str


def _starved(status: dict) -> str | None:
    """Why waiting jobs cannot start on the free nodes, or None if they can."""
    needed, free = largest_waiting_request(status), free_nodes(status)
    if needed > free:
        return f"a waiting job needs {needed} nodes, {free} free"
    return None


def _is_idle(status: dict) -> bool:
    return queue_total(status, ACTIVE_FIELDS) == 0 and free_nodes(status) > 0


class ScaleAlgorithm:
    name = "scale"

    def parse_options(self, options: Mapping[str, object]) -> ScaleOptions:
        return parse_dataclass(ScaleOptions, self.name, options)

    def _recommendations(
        self, history: Sequence[MemberSample], member: MemberView, options: ScaleOptions
    ) -> list[_Recommendation]:
        """One recommended size per sample, judged on the history up to that sample."""
        recommendations = []
        pending_since: float | None = None
        idle_polls = 0
        for sample in history:
            pending = queue_total(sample.status, PENDING_FIELDS)
            if pending > 0:
                pending_since = sample.time if pending_since is None else pending_since
            else:
                pending_since = None
            idle_polls = idle_polls + 1 if _is_idle(sample.status) else 0
            waited = sample.time - pending_since if pending_since is not None else 0.0
            starved = _starved(sample.status)
            if pending_since is not None and waited >= options.wait_seconds:
                size, reason = member.size + options.grow_step, f"{pending} jobs pending for {waited:g}s"
            elif starved is not None:
                size, reason = member.size + options.grow_step, starved
            elif idle_polls >= options.idle_polls:
                size, reason = member.size - options.shrink_step, f"idle for {idle_polls} polls"
            else:
                size, reason = member.size, "steady"
            recommendations.append(_Recommendation(sample.time, member.clamp(size), reason))
        return recommendations

    def decide(
        self, history: Sequence[MemberSample], member: MemberView, options: Mapping[str, object], now: float
    ) -> list[Action]:
        parsed = self.parse_options(options)
        last_scale = member.last_action("grow", "shrink")
        if not history or (last_scale is not None and now - last_scale < parsed.cooldown_seconds):
            return []
        recommendations = self._recommendations(history, member, parsed)
        latest = recommendations[-1]
        if latest.size > member.size:
            return [Action("grow", member.name, latest.size - member.size, reason=latest.reason)]
        window = [r for r in recommendations if r.time >= now - parsed.stabilization_seconds]
        if latest.size < member.size and window:
            target = max(window, key=lambda r: r.size)
            if target.size < member.size:
                return [Action("shrink", member.name, member.size - target.size, reason=latest.reason)]
        return []
