"""Kubernetes Events (events.k8s.io/v1) for users, written off the reconcile path.

``event()`` only updates an in-memory aggregation cache and queues a write, so a slow
or failing API server never delays or fails a reconcile. As client-go's EventCorrelator,
events are correlated before they cost a write:

- an event repeated within ``window`` seconds (same object, type, reason, action and
  note) becomes one Event whose ``series.count`` grows, with at most one write queued
  per Event at a time;
- past ``aggregate_after`` distinct notes for one object, type, reason and action within
  the window, further ones count into one "(combined from similar events)" Event;
- for the reasons in ``coalesced_reasons`` ("Created", "Deleted": one per owned object),
  an event whose similar Event is still unwritten joins that Event's note, and such an
  Event waits ``linger`` seconds for its siblings, so one reconcile creating 7 objects
  writes one Event;
- each object gets a token bucket for new Events (``spam_burst``, one more every
  ``spam_refill_seconds``), so one object cannot flood the API server.

Nothing is lost silently: an event refused by the spam filter or a full write queue is
counted in ``ensemble_events_dropped_total`` (and ``dropped``) and logged.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Counter

from controller.clock import Clock
from controller.kube.errors import is_not_found
from controller.kube.resources import EVENTS
from controller.runtime.leader import micro_time

log = logging.getLogger(__name__)

REPORTING_CONTROLLER = "ensemble-operator"
EVENT_TYPES = ("Normal", "Warning")
MAX_NOTE_LENGTH = 1024
MAX_NAME_PREFIX = 253 - 17  # room for "." and 16 hex digits
COALESCED_REASONS = frozenset({"Created", "Deleted"})
AGGREGATE_AFTER = 10  # client-go's maxEvents
AGGREGATE_PREFIX = "(combined from similar events): "
NOTE_SEPARATOR = "; "
DROP_CAUSES = ("spam_filter", "queue_full")


def joined_notes(notes: list[str]) -> list[str]:
    """``notes`` joined as the recorder joins a coalesced reason's notes into one Event's
    (``NOTE_SEPARATOR``, a new Event past ``MAX_NOTE_LENGTH``): for a caller with several
    events at once, one ``event()`` per Event instead of one per note."""
    joined: list[str] = []
    for note in (note[:MAX_NOTE_LENGTH] for note in notes):
        longer = _joined(joined[-1], note) if joined else None
        if longer is not None:
            joined[-1] = longer
        else:
            joined.append(note)
    return joined


def _joined(note: str, more: str) -> str | None:
    """``more`` added to an Event's ``note``, or None when the two do not fit in one."""
    joined = f"{note}{NOTE_SEPARATOR}{more}"
    return joined if len(joined) <= MAX_NOTE_LENGTH else None


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    written_count: int = 0
    patch_queued: bool = False


@dataclass
class _Write:
    series: _Series
    body: dict | None  # the full Event to create, or None to patch the series count
    recorded: float = 0.0
    open_key: tuple | None = None  # set while similar events may still join this Event's note


@dataclass
class _Bucket:
    tokens: float
    updated: float

    def take(self, now: float, burst: int, refill_seconds: float) -> bool:
        self.tokens = min(float(burst), self.tokens + (now - self.updated) / refill_seconds)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Recorder(Protocol):
    """What reconcilers need of an event recorder (client-go's record.EventRecorder):
    ``EventRecorder`` is the real one, tests keep the events in a list."""

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None: ...


class EventRecorder:
    def __init__(self, client, clock: Clock, *, reporting_instance: str,
                 reporting_controller: str = REPORTING_CONTROLLER, window: float = 360.0,
                 max_series: int = 4096, max_pending: int = 1000,
                 registry: CollectorRegistry | None = None, linger: float = 1.0,
                 coalesced_reasons: frozenset[str] = COALESCED_REASONS,
                 aggregate_after: int = AGGREGATE_AFTER, spam_burst: int = 25,
                 spam_refill_seconds: float = 300.0) -> None:
        if spam_burst < 1 or spam_refill_seconds <= 0 or aggregate_after < 1:
            raise ValueError("EventRecorder: spam_burst and aggregate_after must be >= 1, "
                             "spam_refill_seconds > 0")
        self._client = client
        self._clock = clock
        self._reporting_instance = reporting_instance
        self._reporting_controller = reporting_controller
        # Each repeat re-inserts its series, so an entry lives ``window`` past its last repeat.
        self._series: TTLCache[tuple, _Series] = TTLCache(max_series, window, timer=clock.now)
        # (object, type, reason, action) -> the distinct notes seen within the window.
        self._similar: TTLCache[tuple, set[str]] = TTLCache(max_series, window, timer=clock.now)
        self._buckets: TTLCache[tuple, _Bucket] = TTLCache(
            max_series, spam_burst * spam_refill_seconds, timer=clock.now)
        self._open: dict[tuple, _Write] = {}  # unwritten Events that similar events may join
        self._lock = threading.Lock()
        self._pending: queue.Queue[_Write | None] = queue.Queue(max_pending)
        self._last_suffix = 0
        self._thread: threading.Thread | None = None
        self._abandoned = threading.Event()  # stop's timeout passed: drop what is still queued
        self._wake = threading.Condition()  # ends a linger early once stopping
        self._stopping = False
        self._linger = linger
        self._coalesced_reasons = coalesced_reasons
        self._aggregate_after = aggregate_after
        self._spam_burst = spam_burst
        self._spam_refill_seconds = spam_refill_seconds
        registry = registry if registry is not None else CollectorRegistry()
        self._dropped = Counter("ensemble_events_dropped_total",
                                "Events not written: refused by the per-object spam filter or a full write queue.",
                                ["cause"], registry=registry)
        self._merged = Counter("ensemble_events_merged_total",
                               "Events written as part of a similar Event (a joined note or a series count).",
                               registry=registry)
        for cause in DROP_CAUSES:
            self._dropped.labels(cause)

    @property
    def dropped(self) -> int:
        """Events dropped so far, all causes."""
        return int(sum(self._dropped.labels(cause)._value.get() for cause in DROP_CAUSES))

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
        regarding = (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"),
                     meta.get("uid"))
        similar_key = (*regarding, type_, reason, action)
        now = self._clock.now()
        with self._lock:
            note = self._aggregated(similar_key, note)
            key = (*similar_key, note)
            series = self._series.get(key)
            if series is not None:
                series.count += 1
                self._series[key] = series
                self._merged.inc()
                if series.patch_queued:
                    return  # the queued patch will carry this count
                series.patch_queued = True
                write = _Write(series, None)
            elif self._join(similar_key, key, note):
                self._merged.inc()
                return
            else:
                bucket = self._buckets.get(regarding) or _Bucket(float(self._spam_burst), now)
                allowed = bucket.take(now, self._spam_burst, self._spam_refill_seconds)
                self._buckets[regarding] = bucket
                if not allowed:
                    self._drop("spam_filter", reason, meta)
                    return
                series = _Series(self._new_name(meta.get("name", "unknown")),
                                 meta.get("namespace") or "default", 1)
                write = _Write(series, self._body(obj, series, type_, reason, action, note), now)
                if reason in self._coalesced_reasons:
                    write.open_key = similar_key
                    self._open[similar_key] = write
                self._series[key] = series
            try:
                self._pending.put_nowait(write)
            except queue.Full:
                self._unqueued(write, key)
                self._drop("queue_full", reason, meta)

    def _aggregated(self, similar_key: tuple, note: str) -> str:
        """``note``, or the combined note once the object had ``aggregate_after`` distinct
        notes for this type, reason and action within the window (caller holds the lock)."""
        notes = self._similar.get(similar_key)
        if notes is None:
            notes = set()
        if note not in notes and len(notes) >= self._aggregate_after:
            note = f"{AGGREGATE_PREFIX}{note}"[:MAX_NOTE_LENGTH]
            aggregate = next((n for n in notes if n.startswith(AGGREGATE_PREFIX)), None)
            if aggregate is not None:
                note = aggregate  # one combined Event per object and reason: its count grows
            else:
                notes.add(note)
        elif len(notes) < self._aggregate_after:
            notes.add(note)
        self._similar[similar_key] = notes
        return note

    def _join(self, similar_key: tuple, key: tuple, note: str) -> bool:
        """Add ``note`` to the unwritten similar Event, if there is one and it has room
        (caller holds the lock)."""
        write = self._open.get(similar_key)
        if write is None or write.body is None:
            return False
        joined = _joined(write.body["note"], note)
        if joined is None:
            return False
        write.body["note"] = joined
        self._series[key] = write.series  # a repeat of this note counts on the joined Event
        return True

    def _unqueued(self, write: _Write, key: tuple) -> None:
        """Undo the bookkeeping of a write that never made it into the queue (caller holds the lock)."""
        if write.open_key is not None:
            self._open.pop(write.open_key, None)
        if write.body is not None:
            self._series.pop(key, None)
        else:
            write.series.patch_queued = False

    def _drop(self, cause: str, reason: str, meta: dict) -> None:
        self._dropped.labels(cause).inc()
        message = ("dropping event, too many pending writes" if cause == "queue_full"
                   else "dropping event, too many new events for this object (spam filter)")
        log.warning(message, extra={"reason": reason,
                                    "object": f"{meta.get('namespace')}/{meta.get('name')}"})

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
        with self._wake:
            self._stopping = False
        self._thread = threading.Thread(target=self._drain, name="event-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded by ``timeout``), then end the writer thread."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        with self._wake:
            self._stopping = True  # a lingering Event is written now
            self._wake.notify_all()
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
            if write.open_key is not None:
                self._linger_for(write)
            self._write(write)

    def _linger_for(self, write: _Write) -> None:
        """Give similar events ``linger`` seconds from the first to join this Event's note."""
        with self._wake:
            while not self._stopping:
                remaining = write.recorded + self._linger - self._clock.now()
                if remaining <= 0:
                    return
                self._clock.wait(self._wake, remaining)

    def _write(self, write: _Write) -> None:
        series = write.series
        with self._lock:
            count = series.count
            if write.body is None:
                series.patch_queued = False
            elif write.open_key is not None:
                if self._open.get(write.open_key) is write:
                    del self._open[write.open_key]  # written from here on: nothing joins it
                write.open_key = None
            body = dict(write.body) if write.body is not None else None
        if body is None and count <= series.written_count:
            return  # an earlier patch already carried this count
        try:
            if body is not None:
                self._client.create(EVENTS, body, series.namespace)
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
