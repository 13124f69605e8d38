"""The informer cache: a thread-safe map keyed by "ns/name", with secondary indexes.

Indexes answer "which pods belong to this MiniCluster" without scanning the cache;
they are kept exact on every write, so readers never see an index out of step with
the objects.
"""
from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

IndexFunc = Callable[[dict[str, Any]], list[str]]

CONTROLLER_UID_INDEX = "controller-uid"


def meta_namespace_key(obj: dict[str, Any] | DeletedFinalStateUnknown) -> str:
    """"ns/name", or "name" for a cluster-scoped object; a tombstone keeps its key."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise ValueError(f"{obj.get('kind', 'object')} has no metadata.name: cannot key it")
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """A delete the informer did not see happen (it vanished while the watch was down).

    ``obj`` is the last state the cache held, which may be stale.
    """

    key: str
    obj: dict[str, Any]


def index_by_controller_uid(obj: dict[str, Any]) -> list[str]:
    """The UID of the owner reference marked ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("uid"):
            return [ref["uid"]]
    return []


class Indexer:
    """Objects by key plus named indexes; every method is safe from any thread."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._lock = threading.RLock()
        self._items: dict[str, dict[str, Any]] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        if indexers:
            self.add_indexers(indexers)

    # -- reads ----------------------------------------------------------------------

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        return self.get_by_key(meta_namespace_key(obj))

    def get_by_key(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> builtins.list[dict[str, Any]]:
        with self._lock:
            return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def by_index(self, index_name: str, value: str) -> builtins.list[dict[str, Any]]:
        with self._lock:
            return [self._items[key] for key in self._index(index_name).get(value, ())]

    def _index(self, index_name: str) -> dict[str, set[str]]:
        try:
            return self._indices[index_name]
        except KeyError:
            known = ", ".join(sorted(self._indices)) or "none"
            raise KeyError(f"no index named {index_name!r} (indexes: {known})") from None

    # -- index management -----------------------------------------------------------

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add indexes; existing objects are indexed at once."""
        with self._lock:
            clash = sorted(set(indexers) & set(self._indexers))
            if clash:
                raise ValueError(f"index {', '.join(clash)} already exists")
            for name, func in indexers.items():
                self._indexers[name] = func
                self._indices[name] = self._build_index(func)

    # -- writes (the informer's) ----------------------------------------------------

    def upsert(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Store ``obj``; returns the object it replaced, if any."""
        key = meta_namespace_key(obj)
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            if self._indexers:
                self._reindex(key, old, obj)
            return old

    def remove(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None and self._indexers:
                self._reindex(key, old, None)
            return old

    def replace(self, objects: dict[str, dict[str, Any]]) -> None:
        """Make the cache exactly ``objects`` (key -> object) and rebuild the indexes."""
        with self._lock:
            self._items = dict(objects)
            for name, func in self._indexers.items():
                self._indices[name] = self._build_index(func)

    def _build_index(self, func: IndexFunc) -> dict[str, set[str]]:
        """Index value -> keys over every stored object (caller holds the lock)."""
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        return index

    def _reindex(self, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            old_values: Iterable[str] = func(old) if old is not None else ()
            new_values = set(func(new)) if new is not None else set()
            for value in old_values:
                if value not in new_values:
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            for value in new_values:
                index.setdefault(value, set()).add(key)
