"""Background components the manager starts once caches synced and stops on shutdown."""
from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """A background component the Manager starts and stops (a poller, a periodic sweeper).

    An optional ``needs_leader_election`` attribute (default True) says whether it may
    only run on the leader; False runs it on every replica once caches synced. An optional
    ``drain()`` method is called before ``stop()`` on a graceful shutdown (the lease still
    held), to finish work already accepted within a bound of its own.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...


def needs_leader_election(runnable: Runnable) -> bool:
    return bool(getattr(runnable, "needs_leader_election", True))


class Runnables:
    """The manager's runnables: every replica's started first, the leader's once leading.

    ``lock`` and ``stopping`` are the manager's: a runnable starts under the lock, and only
    while the manager is not stopping, so a shutdown from another thread stops a runnable
    only once its ``start()`` returned, never during or before it.
    """

    def __init__(self, lock: threading.Lock, stopping: threading.Event) -> None:
        self._lock = lock
        self._stopping = stopping
        self.registered: list[Runnable] = []
        self._started: list[Runnable] = []

    def add(self, runnable: Runnable) -> None:
        if not (callable(getattr(runnable, "start", None)) and callable(getattr(runnable, "stop", None))):
            raise TypeError(f"add_runnable: {type(runnable).__name__} needs start() and stop() methods")
        self.registered.append(runnable)

    def start(self, *, leading: bool) -> None:
        """Start the runnables of this phase: those that need leadership when ``leading``, else the others."""
        for runnable in self.registered:
            if needs_leader_election(runnable) != leading:
                continue
            with self._lock:
                if self._stopping.is_set():
                    return
                self._started.append(runnable)
                runnable.start()

    def stop(self, *, drain: bool = False) -> None:
        """Stop the started runnables, last started first; one failing stop does not keep the others
        running. With ``drain`` (a graceful shutdown), a runnable with a ``drain()`` drains first."""
        with self._lock:
            started, self._started = self._started, []
        for runnable in reversed(started):
            try:
                if drain and callable(getattr(runnable, "drain", None)):
                    runnable.drain()  # type: ignore[attr-defined]
                runnable.stop()
            except Exception:
                log.exception("stopping %s failed", type(runnable).__name__)
