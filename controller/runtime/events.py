"""Kubernetes Events (events.k8s.io/v1) for users, written off the reconcile path.

``event()`` only updates an in-memory aggregation cache and queues a write, so a slow
or failing API server never delays or fails a reconcile. An event repeated within
``window`` seconds (same object, type, reason, action and note) becomes one Event
whose ``series.count`` grows, instead of a new object per repeat.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from cachetools import TTLCache

from controller.clock import Clock
from controller.kube.errors import is_not_found
from controller.kube.resources import EVENTS
from controller.runtime.leader import micro_time

log = logging.getLogger(__name__)

REPORTING_CONTROLLER = "ensemble-operator"
EVENT_TYPES = ("Normal", "Warning")
MAX_NOTE_LENGTH = 1024
MAX_NAME_PREFIX = 253 - 17  # room for "." and 16 hex digits


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    written_count: int = 0


@dataclass(frozen=True)
class _Write:
    series: _Series
    body: dict | None  # the full Event to create, or None to patch the series count


class EventRecorder:
    def __init__(self, client, clock: Clock, *, reporting_instance: str,
                 reporting_controller: str = REPORTING_CONTROLLER, window: float = 360.0,
                 max_series: int = 4096, max_pending: int = 1000) -> None:
        self._client = client
        self._clock = clock
        self._reporting_instance = reporting_instance
        self._reporting_controller = reporting_controller
        # Each repeat re-inserts its series, so an entry lives ``window`` past its last repeat.
        self._series: TTLCache[tuple, _Series] = TTLCache(max_series, window, timer=clock.now)
        self._lock = threading.Lock()
        self._pending: queue.Queue[_Write | None] = queue.Queue(max_pending)
        self._last_suffix = 0
        self._thread: threading.Thread | None = None
        self._abandoned = threading.Event()  # stop's timeout passed: drop what is still queued

    def event(self, obj: dict, type_: str, reason: str, message: str, *,
              action: str | None = None) -> None:
        """Record that ``reason`` happened to ``obj``; ``action`` defaults to ``reason``."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"event type must be one of {EVENT_TYPES}, got {type_!r}")
        if not reason:
            raise ValueError("event reason must not be empty")
        meta = obj.get("metadata") or {}
        note = message[:MAX_NOTE_LENGTH]
        action = action or reason
        key = (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"),
               meta.get("uid"), type_, reason, action, note)
        with self._lock:
            series = self._series.get(key)
            if series is not None:
                series.count += 1
                write = _Write(series, None)
            else:
                series = _Series(self._new_name(meta.get("name", "unknown")),
                                 meta.get("namespace") or "default", 1)
                write = _Write(series, self._body(obj, series, type_, reason, action, note))
            self._series[key] = series
        try:
            self._pending.put_nowait(write)
        except queue.Full:
            log.warning("dropping event, too many pending writes",
                        extra={"reason": reason, "object": f"{series.namespace}/{meta.get('name')}"})

    def _new_name(self, object_name: str) -> str:
        """``<object>.<hex nanoseconds>``, strictly increasing so names never repeat."""
        self._last_suffix = max(int(self._clock.wall() * 1e9), self._last_suffix + 1)
        return f"{object_name[:MAX_NAME_PREFIX]}.{self._last_suffix:x}"

    def _body(self, obj: dict, series: _Series, type_: str, reason: str, action: str,
              note: str) -> dict:
        meta = obj.get("metadata") or {}
        regarding = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                     "name": meta.get("name"), "namespace": meta.get("namespace"),
                     "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        return {
            "apiVersion": EVENTS.api_version, "kind": EVENTS.kind,
            "metadata": {"name": series.name, "namespace": series.namespace},
            "eventTime": micro_time(self._clock.wall()),
            "reportingController": self._reporting_controller,
            "reportingInstance": self._reporting_instance,
            "action": action, "reason": reason, "note": note, "type": type_,
            "regarding": {k: v for k, v in regarding.items() if v},
        }

    def start(self) -> None:
        """Write queued events from a background thread until ``stop``."""
        self._abandoned.clear()
        self._thread = threading.Thread(target=self._drain, name="event-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded by ``timeout``), then end the writer thread."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            # A full queue behind a hung write frees no slot for the end marker in time.
            self._pending.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._abandoned.set()
        self._thread = None

    def _drain(self) -> None:
        while not self._abandoned.is_set() and (write := self._pending.get()) is not None:
            self._write(write)

    def write_pending(self) -> int:
        """Write everything queued, in the calling thread; the number of writes attempted."""
        written = 0
        while True:
            try:
                write = self._pending.get_nowait()
            except queue.Empty:
                return written
            if write is None:
                return written
            self._write(write)
            written += 1

    def _write(self, write: _Write) -> None:
        series = write.series
        with self._lock:
            count = series.count
        if write.body is None and count <= series.written_count:
            return  # an earlier patch already carried this count
        try:
            if write.body is not None:
                self._client.create(EVENTS, write.body, series.namespace)
                series.written_count = 1
            else:
                patch = {"series": {"count": count,
                                    "lastObservedTime": micro_time(self._clock.wall())}}
                self._client.patch(EVENTS, series.name, patch, namespace=series.namespace)
                series.written_count = count
        except Exception as err:
            self._forget(series)
            if is_not_found(err):
                log.debug("event %s/%s is gone, the next repeat starts a new one",
                          series.namespace, series.name)
            else:
                log.warning("could not write event %s/%s: %s", series.namespace, series.name, err)

    def _forget(self, series: _Series) -> None:
        """Drop a series whose Event is missing so the next repeat creates a fresh Event."""
        with self._lock:
            for key in [k for k, s in self._series.items() if s is series]:
                self._series.pop(key, None)
