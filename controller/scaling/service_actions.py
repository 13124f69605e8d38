"""The ensemble service's record of the resizes it served: ``status.serviceActions``.

Members' rules grow and shrink through the service, not through an operator algorithm, so
without this record ``ensemble-operator status`` has nothing to show for them. One entry per
member (the list is a map keyed by ``name``), holding its last served action and a count per
kind. The service is the entry list's only writer (field manager ``ensemble-service``) and
writes it whole, so the book keeps what it last wrote, seeded from the Ensemble's status
once, so that a restarted service keeps the other members' entries and counts.

Counts only move once the MiniCluster patch landed (``commit``): a write retried after a
conflict records the same count again, not one more.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Callable

STATUS_FIELD = "serviceActions"
KINDS = {"grow": "grows", "shrink": "shrinks"}


def kind_of(size: int, target: int) -> str:
    return "grow" if target > size else "shrink"


class ServiceActionBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[str, dict] | None = None
        self._counts: dict[str, dict[str, int]] = {}

    def record(self, ensemble: dict, name: str, size: int, target: int, when: float,
               write: Callable[[list[dict]], None]) -> None:
        """``write`` the whole entry list with ``name``'s last action set to ``size`` -> ``target``.

        ``ensemble`` seeds the book on first use. Writes are serialised, so two resizes served at
        once cannot each write a list without the other's entry. ``write`` raising records nothing.
        """
        kind = kind_of(size, target)
        with self._lock:
            if self._written is None:
                self._seed(ensemble)
            assert self._written is not None
            counts = self._counts.setdefault(name, dict.fromkeys(KINDS.values(), 0))
            entry = {"name": name, "kind": kind, "from": size, "to": target, "time": _stamp(when),
                     **counts, KINDS[kind]: counts[KINDS[kind]] + 1}
            entries = {**self._written, name: entry}
            write([entries[key] for key in sorted(entries)])
            self._written = entries

    def commit(self, name: str, size: int, target: int) -> None:
        """The MiniCluster patch for ``name``'s last recorded action landed: count it."""
        with self._lock:
            counts = self._counts.setdefault(name, dict.fromkeys(KINDS.values(), 0))
            counts[KINDS[kind_of(size, target)]] += 1

    def _seed(self, ensemble: dict) -> None:
        written = {}
        for entry in (ensemble.get("status") or {}).get(STATUS_FIELD) or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                written[entry["name"]] = entry
                self._counts[entry["name"]] = {count: _count(entry.get(count)) for count in KINDS.values()}
        self._written = written


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _stamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
