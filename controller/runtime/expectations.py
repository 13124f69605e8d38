"""What a controller created or deleted that its caches have not shown yet.

Modelled on client-go's ``ControllerExpectations`` (its UID-tracking variant): a reconcile
reads informer caches, which lag its own writes. Right after deleting an object the cache
may still show it, and a reconcile woken meanwhile would delete it again (a second DELETE,
a second Event); right after creating one the cache may not show it yet. So the controller
records, per controller key (here an Ensemble's Request), the objects it is waiting to see
created (by name) or gone (by uid), and skips them while the expectation holds.

An expectation ends when the cache shows its outcome (``creation_observed``,
``deletions_observed``) or, as in client-go, when it expires: a watch event lost or
coalesced must not make the controller wait forever. Time comes from an injected clock.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from controller.clock import Clock

# client-go's ExpectationsTimeout: long enough for any watch to deliver the event.
DEFAULT_TTL_SECONDS = 300.0


@dataclass
class _Pending:
    """One key's expectations: identifier -> the monotonic time it expires."""

    creations: dict[str, float] = field(default_factory=dict)
    deletions: dict[str, float] = field(default_factory=dict)

    def expire(self, now: float) -> None:
        for expected in (self.creations, self.deletions):
            for ident in [i for i, deadline in expected.items() if deadline <= now]:
                del expected[ident]

    def __bool__(self) -> bool:
        return bool(self.creations or self.deletions)


class Expectations:
    """Thread-safe: reconciles of different keys run on several workers at once."""

    def __init__(self, clock: Clock, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl: must be > 0 seconds, got {ttl}")
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._keys: dict[Hashable, _Pending] = {}

    def expect_creations(self, key: Hashable, names: Iterable[str]) -> None:
        self._expect(key, names, creations=True)

    def expect_deletions(self, key: Hashable, uids: Iterable[str]) -> None:
        self._expect(key, uids, creations=False)

    def creation_observed(self, key: Hashable, name: str) -> None:
        with self._lock:
            pending = self._keys.get(key)
            if pending is not None:
                pending.creations.pop(name, None)
                self._drop_if_empty(key, pending)

    def deletions_observed(self, key: Hashable, cached_uids: Iterable[str]) -> None:
        """The cache now holds only ``cached_uids`` of ``key``'s objects: every expected
        deletion not among them has been seen."""
        still = set(cached_uids)
        with self._lock:
            pending = self._keys.get(key)
            if pending is None:
                return
            for uid in [u for u in pending.deletions if u not in still]:
                del pending.deletions[uid]
            self._drop_if_empty(key, pending)

    def creating(self, key: Hashable, name: str) -> bool:
        """Whether ``name`` was created for ``key`` and the cache has not shown it yet."""
        return name in self._current(key).creations

    def deleting(self, key: Hashable, uid: str) -> bool:
        """Whether ``uid`` was deleted for ``key`` and the cache may still show it."""
        return uid in self._current(key).deletions

    def satisfied(self, key: Hashable) -> bool:
        """Nothing ``key`` did is still waiting to be seen (as client-go: no record counts)."""
        return not self._current(key)

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s expectations (its controller object is gone)."""
        with self._lock:
            self._keys.pop(key, None)

    def _expect(self, key: Hashable, idents: Iterable[str], *, creations: bool) -> None:
        deadline = self._clock.now() + self._ttl
        with self._lock:
            pending = self._keys.setdefault(key, _Pending())
            expected = pending.creations if creations else pending.deletions
            for ident in idents:
                expected[ident] = deadline
            self._drop_if_empty(key, pending)

    def _current(self, key: Hashable) -> _Pending:
        """``key``'s unexpired expectations (a copy: read outside the lock)."""
        now = self._clock.now()
        with self._lock:
            pending = self._keys.get(key)
            if pending is None:
                return _Pending()
            pending.expire(now)
            self._drop_if_empty(key, pending)
            return _Pending(dict(pending.creations), dict(pending.deletions))

    def _drop_if_empty(self, key: Hashable, pending: _Pending) -> None:
        if not pending:
            self._keys.pop(key, None)
