"""What the algorithm did to each member, remembered across reconciles and restarts.

Cooldowns, terminate-once and maxRefills are decided from these records, so they
live in memory for exact times and in ``status.memberActions`` so that a restarted
operator neither repeats a terminate nor forgets a cooldown.

An action is written down as pending (``pendingActions``) before it acts, and a pending
action already counts as taken: a crash or a lost lease between the record and the act
can then leave an action undone, never done twice (a delete, a refill past maxRefills).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.algorithms import Action, MemberView
from controller.reconcilers.status import rfc3339

STATUS_FIELD = "memberActions"
KINDS = ("grow", "shrink", "terminate", "submit", "delete")


@dataclass(frozen=True)
class Intent:
    """An action recorded before it acts; ``uid`` is the MiniCluster it was decided for."""

    kind: str
    time: float
    amount: int = 0
    reason: str = ""
    group: str | None = None
    uid: str | None = None

    @classmethod
    def of(cls, action: Action, time: float, uid: str | None) -> Intent:
        return cls(action.kind, time, action.amount, action.reason, action.group, uid)

    def action(self, member: str) -> Action:
        return Action(self.kind, member, self.amount, group=self.group, reason=self.reason)  # type: ignore[arg-type]

    def to_status(self) -> dict:
        entry: dict = {"time": rfc3339(self.time), "kind": self.kind, "amount": self.amount,
                       "reason": self.reason}
        if self.group is not None:
            entry["group"] = self.group
        if self.uid is not None:
            entry["miniclusterUID"] = self.uid
        return entry


@dataclass
class ActionRecords:
    """Per action kind: when it was last taken and how often; the latest action; and the
    actions recorded but not yet known to be done (``pending``), which count as taken."""

    last_times: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last: dict | None = None
    pending: list[Intent] = field(default_factory=list)

    def note(self, action: Action, amount: int, time: float) -> None:
        self.last_times[action.kind] = time
        self.counts[action.kind] = self.counts.get(action.kind, 0) + 1
        self.last = {"time": rfc3339(time), "kind": action.kind, "amount": amount, "reason": action.reason}

    def intend(self, actions: list[Action], time: float, uid: str | None) -> list[Intent]:
        """Record ``actions`` as pending (taken, outcome not yet known)."""
        intents = [Intent.of(action, time, uid) for action in actions]
        self.pending.extend(intents)
        return intents

    def confirm(self, intent: Intent, amount: int) -> None:
        """The pending action was done (``amount``: what it changed) or its outcome is unknown."""
        self.pending.remove(intent)
        self.note(intent.action(""), amount, intent.time)

    def cancel(self, intent: Intent) -> None:
        """The pending action surely changed nothing: it may be decided again."""
        self.pending.remove(intent)

    def find_pending(self, intent: Intent) -> Intent | None:
        """The pending record of ``intent``, also once read back from the status (whole
        seconds); None when it is no longer pending (another writer's records won)."""
        if intent in self.pending:
            return intent
        stored = intent.to_status()
        return next((known for known in self.pending if known.to_status() == stored), None)

    def _kinds(self) -> dict[str, int]:
        counts = dict(self.counts)
        for intent in self.pending:
            counts[intent.kind] = counts.get(intent.kind, 0) + 1
        return counts

    @property
    def terminated(self) -> bool:
        return "terminate" in self._kinds()

    @property
    def deleted(self) -> bool:
        return "delete" in self._kinds()

    def view(self, name: str, size: int, min_size: int, max_size: int) -> MemberView:
        times = dict(self.last_times)
        for intent in self.pending:
            times[intent.kind] = max(times.get(intent.kind, intent.time), intent.time)
        return MemberView(name, size, min_size, max_size, times, self._kinds())

    def to_status(self, member: str) -> dict:
        entry: dict = {"name": member,
                       "lastActionTimes": {kind: rfc3339(t) for kind, t in sorted(self.last_times.items())},
                       "actionCounts": dict(sorted(self.counts.items()))}
        if self.last is not None:
            entry["lastAction"] = dict(self.last)
        if self.pending:
            entry["pendingActions"] = [intent.to_status() for intent in self.pending]
        return entry

    def adopt_times(self, known: ActionRecords) -> None:
        """Keep ``known``'s exact times where the status (whole seconds) says the same."""
        for kind, time in known.last_times.items():
            if kind in self.last_times and rfc3339(time) == rfc3339(self.last_times[kind]):
                self.last_times[kind] = time


def _epoch(stamp: object) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _intents(entries: object) -> list[Intent]:
    """Pending actions as stored; one that cannot be read is dropped."""
    intents = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
            continue
        time, amount = _epoch(entry.get("time")), entry.get("amount", 0)
        if time is None or isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            continue
        group, uid, reason = entry.get("group"), entry.get("miniclusterUID"), entry.get("reason")
        intents.append(Intent(entry["kind"], time, amount, reason if isinstance(reason, str) else "",
                              group if isinstance(group, str) else None, uid if isinstance(uid, str) else None))
    return intents


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
        records[entry["name"]] = ActionRecords(times, counts, last, _intents(entry.get("pendingActions")))
    return records


def records_to_status(records: dict[str, ActionRecords], members: list[str]) -> list[dict]:
    """``status.memberActions`` in member order, for members something was done to or is pending."""
    return [records[name].to_status(name) for name in members
            if name in records and (records[name].counts or records[name].pending)]
