"""What ``ensemble-operator status`` shows of an Ensemble, read from its status alone.

Pure functions of the Ensemble objects, so the command, its ``--watch`` and the demo print
the same thing and tests need no cluster. Every value comes from ``status`` (the operator's
observations; LAST ACTION also the ensemble service's ``serviceActions``), so a user needs only get/list/watch on ensembles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

COLUMNS = ("MEMBER", "PHASE", "SIZE", "PODS", "QUEUE new/sched/run/done", "NODES up/free", "LEAD BROKER",
           "LAST ACTION")
NONE = "-"
# Actions whose amount is a change of size, shown signed.
SIZE_CHANGES = {"grow": "+", "shrink": "-"}


@dataclass(frozen=True)
class LastAction:
    kind: str
    amount: int
    time: str | None
    pending: bool = False

    def text(self) -> str:
        amount = f" {SIZE_CHANGES.get(self.kind, '')}{self.amount}" if self.amount else ""
        when = f" {_clock_time(self.time)}" if self.time else ""
        return f"{self.kind}{amount}{when}{' (pending)' if self.pending else ''}"


@dataclass(frozen=True)
class MemberRow:
    name: str
    phase: str | None
    size: int | None
    pods: int | None
    queue: dict[str, int] | None
    nodes: dict[str, int] | None
    lead_broker: str | None
    last_action: LastAction | None

    def cells(self) -> tuple[str, ...]:
        queue = (f"{self.queue['new']}/{self.queue['sched']}/{self.queue['run']}/{self.queue['done']}"
                 if self.queue else NONE)
        nodes = f"{self.nodes['up']}/{self.nodes['free']}" if self.nodes else NONE
        return (self.name, self.phase or NONE, _text(self.size), _text(self.pods), queue, nodes,
                self.lead_broker or NONE, self.last_action.text() if self.last_action else NONE)


@dataclass(frozen=True)
class EnsembleView:
    namespace: str
    name: str
    phase: str
    members: tuple[MemberRow, ...]
    invalid_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        view = asdict(self)
        view["members"] = [asdict(row) for row in self.members]
        for row in view["members"]:
            row["leadBroker"] = row.pop("lead_broker")
            row["lastAction"] = row.pop("last_action")
        view["invalidReason"] = view.pop("invalid_reason")
        return view


def view_of(ensemble: dict[str, Any]) -> EnsembleView:
    """The table's content for one Ensemble object, as the API server returned it."""
    metadata, status = ensemble.get("metadata") or {}, ensemble.get("status") or {}
    actions = _by_name(status.get("memberActions"))
    served = _by_name(status.get("serviceActions"))
    rows = tuple(_member_row(member, actions.get(member.get("name")),
                             served.get(member.get("minicluster") or member.get("name")))
                 for member in status.get("members") or [] if isinstance(member, dict))
    phase = status.get("phase") or "Pending"
    return EnsembleView(metadata.get("namespace", ""), metadata.get("name", ""), phase, rows,
                        _invalid_reason(status) if phase == "Invalid" else None)


def render(views: Iterable[EnsembleView]) -> str:
    """One block per Ensemble: a heading line, then a row per member, columns aligned."""
    return "\n\n".join(_render_one(view) for view in views)


def _render_one(view: EnsembleView) -> str:
    rows = [row.cells() for row in view.members]
    widths = [max([len(column), *(len(row[i]) for row in rows)]) for i, column in enumerate(COLUMNS)]
    lines = [f"Ensemble {view.namespace}/{view.name}: phase {view.phase}",
             _line(COLUMNS, widths), *(_line(row, widths) for row in rows)]
    if view.invalid_reason:
        lines.append(f"Invalid: {view.invalid_reason}")
    return "\n".join(lines)


def _line(cells: Iterable[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def _by_name(entries: object) -> dict[Any, dict[str, Any]]:
    return {entry.get("name"): entry for entry in entries if isinstance(entry, dict)} \
        if isinstance(entries, list) else {}


def _member_row(member: dict[str, Any], actions: dict[str, Any] | None,
                served: dict[str, Any] | None) -> MemberRow:
    poll, lead = _mapping(member.get("lastPoll")), _mapping(member.get("leadBroker"))
    queue, nodes = poll.get("queue"), poll.get("nodes")
    return MemberRow(
        name=str(member.get("name", "")), phase=member.get("phase"),
        size=_int(member.get("desiredSize")), pods=_int(member.get("currentSize")),
        queue={"new": _count(queue, "new"), "sched": _count(queue, "sched"), "run": _count(queue, "run"),
               "done": _count(queue, "inactive")} if isinstance(queue, dict) and queue else None,
        nodes={"up": _count(nodes, "node_up_count"), "free": _count(nodes, "node_free_count")}
        if isinstance(nodes, dict) and nodes else None,
        lead_broker=lead.get("ip"), last_action=_newer(_last_action(actions), _served_action(served)))


def _newer(algorithm: LastAction | None, service: LastAction | None) -> LastAction | None:
    """The later of the algorithm's and the service's last action (the algorithm's on a tie)."""
    if algorithm is None or service is None:
        return algorithm or service
    return service if _instant(service.time) > _instant(algorithm.time) else algorithm


def _instant(stamp: str | None) -> datetime:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except ValueError:
        moment = None
    return moment if moment is not None and moment.tzinfo is not None else datetime.min.replace(tzinfo=timezone.utc)


def _served_action(entry: dict[str, Any] | None) -> LastAction | None:
    """A member's ``status.serviceActions`` entry: the last resize its rules asked the service for."""
    if not entry or entry.get("kind") not in SIZE_CHANGES:
        return None
    before, after = _int(entry.get("from")), _int(entry.get("to"))
    amount = abs(after - before) if before is not None and after is not None else 0
    time = entry.get("time")
    return LastAction(entry["kind"], amount, time if isinstance(time, str) else None)


def _last_action(entry: dict[str, Any] | None) -> LastAction | None:
    """The newest of the member's pending actions, else its last one done."""
    if not entry:
        return None
    pending = [action for action in entry.get("pendingActions") or [] if isinstance(action, dict)]
    latest, is_pending = (pending[-1], True) if pending else (entry.get("lastAction"), False)
    if not isinstance(latest, dict) or not isinstance(latest.get("kind"), str):
        return None
    return LastAction(latest["kind"], _int(latest.get("amount")) or 0, latest.get("time"), is_pending)


def _invalid_reason(status: dict[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "InvalidSpec":
            return condition.get("message") or "(no message)"
    return "(no InvalidSpec condition)"


def _clock_time(stamp: str) -> str:
    """``2026-12-07T02:15:04Z`` -> ``02:15:04``: the table is read the day it runs; JSON keeps the date."""
    _, sep, rest = stamp.partition("T")
    return rest[:8] if sep and len(rest) >= 8 else stamp


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(values: dict[str, Any], key: str) -> int:
    return _int(values.get(key)) or 0


def _text(value: int | None) -> str:
    return NONE if value is None else str(value)
