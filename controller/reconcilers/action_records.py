"""What the algorithm did to each member, remembered across reconciles and restarts.

Cooldowns, terminate-once and maxRefills are decided from these records, so they
live in memory for exact times and in ``status.memberActions`` so that a restarted
operator neither repeats a terminate nor forgets a cooldown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.algorithms import Action, MemberView
from controller.reconcilers.status import rfc3339

STATUS_FIELD = "memberActions"


@dataclass
class ActionRecords:
    """Per action kind: when it was last taken and how often; plus the latest action."""

    last_times: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last: dict | None = None

    def note(self, action: Action, amount: int, time: float) -> None:
        self.last_times[action.kind] = time
        self.counts[action.kind] = self.counts.get(action.kind, 0) + 1
        self.last = {"time": rfc3339(time), "kind": action.kind, "amount": amount, "reason": action.reason}

    @property
    def terminated(self) -> bool:
        return "terminate" in self.counts

    @property
    def deleted(self) -> bool:
        return "delete" in self.counts

    def view(self, name: str, size: int, min_size: int, max_size: int) -> MemberView:
        return MemberView(name, size, min_size, max_size, dict(self.last_times), dict(self.counts))

    def to_status(self, member: str) -> dict:
        entry: dict = {"name": member,
                       "lastActionTimes": {kind: rfc3339(t) for kind, t in sorted(self.last_times.items())},
                       "actionCounts": dict(sorted(self.counts.items()))}
        if self.last is not None:
            entry["lastAction"] = dict(self.last)
        return entry


def _epoch(stamp: object) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def records_from_status(status: dict | None) -> dict[str, ActionRecords]:
    """Records as a previous run wrote them; unreadable entries are skipped, not fatal."""
    records: dict[str, ActionRecords] = {}
    for entry in (status or {}).get(STATUS_FIELD) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        times = {kind: t for kind, stamp in (entry.get("lastActionTimes") or {}).items()
                 if (t := _epoch(stamp)) is not None}
        counts = {kind: n for kind, n in (entry.get("actionCounts") or {}).items()
                  if isinstance(n, int) and not isinstance(n, bool) and n > 0}
        last = entry.get("lastAction") if isinstance(entry.get("lastAction"), dict) else None
        records[entry["name"]] = ActionRecords(times, counts, last)
    return records


def records_to_status(records: dict[str, ActionRecords], members: list[str]) -> list[dict]:
    """``status.memberActions`` in member order, for members something was done to."""
    return [records[name].to_status(name) for name in members if name in records and records[name].counts]
