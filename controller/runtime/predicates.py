"""Event filters applied before an informer event becomes a reconcile request.

A controller's predicates are ANDed: an event is mapped only when every predicate
lets it through. Tombstones are unwrapped before a predicate sees them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Predicate(Protocol):
    def create(self, obj: dict) -> bool: ...

    def update(self, old: dict, new: dict) -> bool: ...

    def delete(self, obj: dict) -> bool: ...


class PredicateFuncs:
    """A predicate from callables; a missing callable lets that kind of event through."""

    def __init__(self, create: Callable[[dict], bool] | None = None,
                 update: Callable[[dict, dict], bool] | None = None,
                 delete: Callable[[dict], bool] | None = None) -> None:
        self._create = create
        self._update = update
        self._delete = delete

    def create(self, obj: dict) -> bool:
        return self._create(obj) if self._create else True

    def update(self, old: dict, new: dict) -> bool:
        return self._update(old, new) if self._update else True

    def delete(self, obj: dict) -> bool:
        return self._delete(obj) if self._delete else True


_SIGNIFICANT_METADATA = ("generation", "deletionTimestamp", "finalizers", "labels", "annotations")


def _significant_metadata_changed(old: dict, new: dict) -> bool:
    old_meta = old.get("metadata") or {}
    new_meta = new.get("metadata") or {}
    return any(old_meta.get(field) != new_meta.get(field) for field in _SIGNIFICANT_METADATA)


generation_changed: Predicate = PredicateFuncs(update=_significant_metadata_changed)
"""Pass updates only when the spec (metadata.generation) or metadata a reconciler acts on
changed (deletionTimestamp, finalizers, labels, annotations). Status-only updates, which
our own status writes cause, are filtered so they do not trigger another reconcile."""


def allows_create(predicates: list[Predicate], obj: dict) -> bool:
    return all(p.create(obj) for p in predicates)


def allows_update(predicates: list[Predicate], old: dict, new: dict) -> bool:
    return all(p.update(old, new) for p in predicates)


def allows_delete(predicates: list[Predicate], obj: dict) -> bool:
    return all(p.delete(obj) for p in predicates)
