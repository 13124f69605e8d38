"""One handler's private queue and thread, so a slow handler delays only itself.

Notifications reach each handler in the order the informer saw them; the buffer is
unbounded, as a bounded one would make the informer (and every other handler) wait.
A handler that never blocks (``inline = True``: it only adds to a work queue) is called on
the informer's thread instead: handing each event to a thread of its own cost more than
the handler (a wake-up per event was ~6% of the operator's CPU in a burst of creates).
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from controller.informers.handlers import ResourceEventHandler

log = logging.getLogger(__name__)

ADD, UPDATE, DELETE, SYNCED = "add", "update", "delete", "synced"
Notification = tuple[str, Any, Any]


class ProcessorListener:
    """Feeds one handler; also the registration ``add_event_handler`` returns."""

    def __init__(self, handler: ResourceEventHandler, resync_period: float, name: str, *,
                 inline: bool = False) -> None:
        """``inline``: call ``handler`` on the pushing thread (the informer's, under its lock,
        so in order); for handlers that never block."""
        self.handler = handler
        self.inline = inline
        self.resync_period = resync_period
        self.next_resync = 0.0
        self._name = name
        self._buffer: deque[Notification] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start delivering on this handler's own thread (what was pushed before waits for it)."""
        if self.inline:
            return
        with self._cond:
            if self._thread is not None or self._stopped:
                return
            self._thread = threading.Thread(target=self._run, name=f"handler-{self._name}", daemon=True)
        self._thread.start()

    def push(self, kind: str, first: Any, second: Any = None) -> None:
        if self.inline:
            if not self._stopped:
                self._dispatch(kind, first, second)
            return
        with self._cond:
            # The handler thread waits only on an empty buffer: waking it once is enough
            # (a notify per event was ~10% of the operator's CPU in a burst of creates).
            if not self._buffer:
                self._cond.notify()
            self._buffer.append((kind, first, second))

    def push_many(self, notifications: list[Notification]) -> None:
        if self.inline:
            for kind, first, second in notifications:
                self.push(kind, first, second)
            return
        with self._cond:
            if not self._buffer:
                self._cond.notify()
            self._buffer.extend(notifications)

    def has_synced(self) -> bool:
        """True once this handler has processed every add of the informer's first list."""
        return self._synced.is_set()

    def stop(self) -> None:
        """Stop promptly: undelivered notifications are dropped."""
        with self._cond:
            self._stopped = True
            self._buffer.clear()
            self._cond.notify()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buffer and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                kind, first, second = self._buffer.popleft()
            self._dispatch(kind, first, second)

    def _dispatch(self, kind: str, first: Any, second: Any) -> None:
        try:
            if kind == ADD:
                self.handler.on_add(first, second)
            elif kind == UPDATE:
                self.handler.on_update(first, second)
            elif kind == DELETE:
                self.handler.on_delete(first)
            else:
                self._synced.set()
        except Exception:  # a handler bug must not kill its feed: log it and go on
            log.exception("event handler %s failed on %s", self._name, kind)
