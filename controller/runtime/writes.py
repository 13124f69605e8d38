"""Objects this process wrote that its informers do not show yet: read through, echoes dropped.

An informer shows a write back a moment after the API server answered it, sometimes before
the writer has read the answer. Meanwhile a reconcile reads the object as it was before
(absent, right after a create), and the write arrives as an event that wakes another
reconcile of its owner, which finds nothing to do: in a burst of creates, every second
reconcile. As client-go's MutationCache, ``WrittenObjects`` keeps the API server's answer to
each write until the informer shows that object: the views ``cache()`` returns read it in
place of the informer's older copy, and the predicate ``not_echo()`` returns drops the event
that brings exactly the object written (its resourceVersion), which every reconcile since
the write has read already. An event for the object while its write is in flight waits for
the answer: the echo is dropped, anything else (someone else's change came first, or the
write failed) wakes the writer's owner through ``wake``. Any other event ends the entry
and passes (someone else's change, a delete, a relist).
"""
from __future__ import annotations

import builtins
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.clock import Clock
from controller.informers import default_transform, index_by_controller_uid
from controller.kube.resources import Resource
from controller.runtime.predicates import Predicate, PredicateFuncs

# An answer the informer never matched (its watch down for long) is forgotten after this long.
DEFAULT_TTL_SECONDS = 60.0

_Key = tuple[Resource, "str | None", str]


class Cache(Protocol):
    def get(self, name: str, namespace: str | None = None) -> dict | None: ...

    def by_index(self, index_name: str, value: str) -> builtins.list[dict]: ...


@dataclass
class _Entry:
    owner_uid: str
    answer: dict | None = None  # None while the write is in flight
    expires: float = float("inf")
    seen: list[str | None] = field(default_factory=list)  # versions of the events held back in flight


class WrittenObjects:
    """Thread-safe: reconcile workers write, informer threads run the predicates."""

    def __init__(self, clock: Clock, wake: Callable[[Any], None], ttl: float = DEFAULT_TTL_SECONDS) -> None:
        """``wake(owner)`` enqueues the writer's owner when an event held back was not the echo."""
        self._clock = clock
        self._wake = wake
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[_Key, _Entry] = {}
        # Keys of settled entries by expiry (one TTL for all: the order they were kept in), so
        # that expiring costs what expired, not a scan of every entry on every write. Keys
        # only: an answer ended by its echo is not kept alive here until its expiry.
        self._expiries: deque[tuple[float, _Key]] = deque()
        self._informers: dict[Resource, Cache] = {}

    def cache(self, resource: Resource, informer: Cache) -> WrittenThrough:
        """``informer``'s view of ``resource`` with the writes it does not show yet."""
        self._informers[resource] = informer
        return WrittenThrough(self, resource, informer)

    def not_echo(self, resource: Resource) -> Predicate:
        """Drops the create or update event of an object of ``resource`` written here (the
        echo, or any event while the write is in flight: see ``end``); deletes pass."""
        def delete(obj: dict) -> bool:
            self._held(resource, obj, deleted=True)
            return True
        return PredicateFuncs(create=lambda obj: not self._held(resource, obj),
                              update=lambda old, new: not self._held(resource, new), delete=delete)

    def begin(self, resource: Resource, namespace: str | None, name: str, owner_uid: str) -> None:
        """A write of the object, controlled by ``owner_uid``, is about to be sent."""
        with self._lock:
            self._entries[(resource, namespace, name)] = _Entry(owner_uid)

    def end(self, resource: Resource, namespace: str | None, name: str, before: dict | None,
            answer: dict | None, owner: Any) -> None:
        """The write ``begin`` announced got ``answer`` (None: it failed or wrote nothing),
        made while the cache showed ``before`` (None: absent). The answer is kept only while
        the informer still shows ``before``; showing anything else, its copy wins."""
        key = (resource, namespace, name)
        now = self._clock.now()
        answer = None if answer is None else default_transform(answer)  # as the informer caches it
        version = _version(answer)
        with self._lock:
            while self._expiries and self._expiries[0][0] <= now:
                _, stale_key = self._expiries.popleft()
                stale = self._entries.get(stale_key)
                if stale is not None and stale.expires <= now:  # not a later answer, nor in flight
                    del self._entries[stale_key]
            entry = self._entries.pop(key, None)
            seen = entry.seen if entry is not None else []
            kept = None
            if answer is not None and not seen:
                kept = self._entries[key] = _Entry(entry.owner_uid if entry else "", answer, now + self._ttl)
                self._expiries.append((kept.expires, key))
        if any(event_version is None or event_version != version for event_version in seen):
            self._wake(owner)  # an event held back was not our write's
        informer = self._informers.get(resource)
        if kept is not None and informer is not None and _version(informer.get(name, namespace)) != _version(before):
            with self._lock:
                if self._entries.get(key) is kept:
                    del self._entries[key]

    def get(self, resource: Resource, name: str, namespace: str | None) -> dict | None:
        """The answer kept for the object, if any."""
        with self._lock:
            entry = self._entries.get((resource, namespace, name))
        return entry.answer if entry is not None and entry.expires > self._clock.now() else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _held(self, resource: Resource, obj: dict, deleted: bool = False) -> bool:
        """Whether the event bringing ``obj`` is held back: the echo of a write, or any event
        of its owner's object while the write is in flight (``end`` decides). A settled
        entry ends with the first event."""
        meta = obj.get("metadata") or {}
        key = (resource, meta.get("namespace"), meta.get("name") or "")
        version = meta.get("resourceVersion")
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if entry.answer is None:  # in flight
                if deleted or index_by_controller_uid(obj) != [entry.owner_uid]:
                    return False  # an event the writer's owner would not get passes now
                entry.seen.append(version)
                return True
            del self._entries[key]
        return not deleted and version is not None and version == _version(entry.answer)


class WrittenThrough:
    """An informer cache of one resource, showing this process's writes it has not shown yet."""

    def __init__(self, written: WrittenObjects, resource: Resource, informer: Cache) -> None:
        self._written = written
        self._resource = resource
        self._informer = informer

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        written = self._written.get(self._resource, name, namespace)
        return written if written is not None else self._informer.get(name, namespace)

    def by_index(self, index_name: str, value: str) -> builtins.list[dict]:
        """The informer's (an index lookup finds the objects; writes do not move them)."""
        return self._informer.by_index(index_name, value)


def _version(obj: dict | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")
