"""The ensemble service's record of the resizes it served: ``status.serviceActions``.

Members' rules grow and shrink through the service, not through an operator algorithm, so
without this record ``ensemble-operator status`` has nothing to show for them. One entry per
member (the list is a map keyed by ``name``), holding its last served action and a count per
kind. The service is the entry list's only writer (field manager ``ensemble-service``) and
writes it whole, so the book keeps the list it wants stored and the one it last stored, seeded
from the Ensemble's status once, so that a restarted service keeps the other members' entries
and counts.

Recording is in memory, off the request's write path: ``ServiceActionWriter`` stores the
latest list now and then (``store``). A budgeted grow writes the Ensemble's status anyway, so
its record rides in that write (``record_in``). Stores are serialised, so the last list
stored is what the API server has, and a list equal to it is never written again.

Counts only move once the MiniCluster patch landed (``commit``): a write retried after a
conflict records the same count again, not one more.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Callable

STATUS_FIELD = "serviceActions"
KINDS = {"grow": "grows", "shrink": "shrinks"}

Write = Callable[[list[dict]], None]


def kind_of(size: int, target: int) -> str:
    return "grow" if target > size else "shrink"


class ServiceActionBook:
    """``on_change`` is called (without the book's locks held) after each in-memory record."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()            # the lists and counts
        self._store_lock = threading.Lock()      # one write of the list at a time, taken first
        self._entries: dict[str, dict] | None = None
        self._stored: list[dict] | None = None
        self._counts: dict[str, dict[str, int]] = {}

    def record(self, ensemble: dict, name: str, size: int, target: int, when: float) -> None:
        """Set ``name``'s last action to ``size`` -> ``target`` in memory; ``store`` writes it.

        ``ensemble`` seeds the book on first use."""
        with self._lock:
            entries = self._seeded(ensemble)
            entries[name] = self._entry(name, size, target, when)
        self._on_change()

    def record_in(self, ensemble: dict, name: str, size: int, target: int, when: float, write: Write) -> None:
        """``write`` the whole list with ``name``'s last action set, now, as part of another write.

        ``write`` raising records nothing (the action it was for did not happen)."""
        with self._store_lock:
            with self._lock:
                entries = self._seeded(ensemble)
                before = entries.get(name)
                entry = self._entry(name, size, target, when)
                listed = _listed({**entries, name: entry})
            write(listed)
            with self._lock:
                if entries.get(name) is before:  # else a later record of this member wins
                    entries[name] = entry
                self._stored = listed
        self._on_change()  # what other members recorded meanwhile may still need a store

    def store(self, write: Write) -> bool:
        """``write`` the list unless the API server has it already; whether it wrote.

        ``write`` raising leaves the list unstored, for the next call to write."""
        with self._store_lock:
            with self._lock:
                if self._entries is None:
                    return False
                listed = _listed(self._entries)
                if listed == self._stored:
                    return False
            write(listed)
            with self._lock:
                self._stored = listed
            return True

    def unstored(self) -> list[str]:
        """The members whose last action the API server does not have (yet)."""
        with self._lock:
            stored = {entry["name"]: entry for entry in self._stored or []}
            return sorted(name for name, entry in (self._entries or {}).items() if stored.get(name) != entry)

    def commit(self, name: str, size: int, target: int) -> None:
        """The MiniCluster patch for ``name``'s last recorded action landed: count it."""
        with self._lock:
            counts = self._counts.setdefault(name, dict.fromkeys(KINDS.values(), 0))
            counts[KINDS[kind_of(size, target)]] += 1

    def _entry(self, name: str, size: int, target: int, when: float) -> dict:
        """The entry for this action, counting it (caller holds ``_lock``)."""
        kind = kind_of(size, target)
        counts = self._counts.setdefault(name, dict.fromkeys(KINDS.values(), 0))
        return {"name": name, "kind": kind, "from": size, "to": target, "time": _stamp(when),
                **counts, KINDS[kind]: counts[KINDS[kind]] + 1}

    def _seeded(self, ensemble: dict) -> dict[str, dict]:
        """The entries to store, seeded from ``ensemble``'s status once (caller holds ``_lock``)."""
        if self._entries is None:
            entries = {}
            for entry in (ensemble.get("status") or {}).get(STATUS_FIELD) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    entries[entry["name"]] = entry
                    self._counts[entry["name"]] = {count: _count(entry.get(count)) for count in KINDS.values()}
            self._entries = entries
            self._stored = _listed(entries)
        return self._entries


def _listed(entries: dict[str, dict]) -> list[dict]:
    return [entries[key] for key in sorted(entries)]


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _stamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
