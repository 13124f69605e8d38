"""One list+watch of a resource, fanned out to many handlers, with a shared cache.

The reflector thread writes the cache and queues notifications to every handler under
one lock, so each handler sees events in cache order; each handler then runs on its own
thread (see ``listener.py``). Resyncs and the adds replayed to late handlers go through
the same lock, so they never overtake a real event.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from controller.clock import Clock, RealClock
from controller.informers.stopper import Stopper
from controller.informers.handlers import ResourceEventHandler
from controller.informers.listener import ADD, DELETE, SYNCED, UPDATE, Notification, ProcessorListener
from controller.informers.reflector import Reflector, ReflectorOptions, describe
from controller.informers.store import DeletedFinalStateUnknown, IndexFunc, Indexer, meta_namespace_key
from controller.informers.transform import Transform, default_transform
from controller.kube.client import KubeClient
from controller.kube.resources import Resource

log = logging.getLogger(__name__)

# Resync periods below this are raised to it: resync replays the whole cache.
MIN_RESYNC_PERIOD = 1.0
STOP_JOIN_SECONDS = 5.0


class SharedInformer:
    def __init__(self, client: KubeClient, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float = 0, transform: Transform | None = default_transform,
                 clock: Clock | None = None, rand: Callable[[], float] | None = None,
                 reflector_options: ReflectorOptions | None = None,
                 on_undecodable: Callable[[str], None] | None = None) -> None:
        self.resource = resource
        self.name = describe(resource, namespace, label_selector, field_selector)
        self._resync_period = resync_period
        self._transform = transform
        self._clock = clock or RealClock()
        self._indexer = Indexer()
        self._lock = threading.RLock()
        self._listeners: list[ProcessorListener] = []
        self._synced = threading.Condition(self._lock)
        self._has_synced = False
        self._started = False
        self._stopper = Stopper(self._clock)
        self._threads: list[threading.Thread] = []
        self.reflector = Reflector(client, resource, self, namespace=namespace,
                                   label_selector=label_selector, field_selector=field_selector,
                                   options=reflector_options, clock=self._clock, rand=rand,
                                   on_undecodable=on_undecodable)
        self._default_read_interval = self.reflector.min_read_interval  # what handlers that ask none get
        self._read_intervals: list[float] = []

    # -- public API -----------------------------------------------------------------

    def add_event_handler(self, handler: ResourceEventHandler, resync_period: float | None = None, *,
                          read_interval: float | None = None) -> ProcessorListener:
        """Register a handler; if the cache is already filled it first gets an add per object.
        A handler whose ``inline`` attribute is true runs on the informer's thread (see listener.py).
        ``read_interval``: how long into a burst of events this handler may wait for them (the
        reflector's ``min_read_interval``, None: the one the informer was made with); the
        reflector waits what its least patient handler allows."""
        interval = self._default_read_interval if read_interval is None else read_interval
        with self._lock:
            self.reflector.set_min_read_interval(min([*self._read_intervals, interval]))  # refuses a bad one
            self._read_intervals.append(interval)
        period = self._resync_period if resync_period is None else resync_period
        if period:
            period = max(period, MIN_RESYNC_PERIOD)
        listener = ProcessorListener(handler, period, f"{self.resource}-{len(self._listeners)}",
                                     inline=bool(getattr(handler, "inline", False)))
        with self._lock:
            listener.next_resync = self._clock.now() + period
            if self._has_synced:
                replay: list[Notification] = [(ADD, obj, True) for obj in self._indexer.list()]
                replay.append((SYNCED, None, None))
                listener.push_many(replay)
            self._listeners.append(listener)
            started = self._started
        if started:
            listener.start()
        self._stopper.wake()
        return listener

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self._indexer.add_indexers(indexers)

    def get_indexer(self) -> Indexer:
        return self._indexer

    def has_synced(self) -> bool:
        return self._has_synced

    def wait_for_sync(self, timeout: float) -> bool:
        """Block until the first list is in the cache, at most ``timeout`` (clock) seconds."""
        with self._synced:
            deadline = self._clock.now() + timeout
            while not self._has_synced:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    return False
                self._clock.wait(self._synced, remaining)
            return True

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            listeners = list(self._listeners)
        for listener in listeners:
            listener.start()
        for target, role in ((self.reflector.run, "reflector"), (self._resync_loop, "resync")):
            thread = threading.Thread(target=target, name=f"{role}-{self.resource}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stopper.stop()
        self.reflector.stop()
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.stop()
        for thread in self._threads:
            thread.join(STOP_JOIN_SECONDS)
        for listener in listeners:
            listener.join(STOP_JOIN_SECONDS)

    # -- ReflectorStore: called on the reflector thread ------------------------------

    def replace(self, objects: list[dict[str, Any]], resource_version: str) -> None:
        """A full list: diff it against the cache and tell handlers what changed."""
        transform = self._transform
        fresh = {}
        for obj in objects:
            if transform:
                obj = transform(obj)
            fresh[meta_namespace_key(obj)] = obj
        with self._lock:
            first = not self._has_synced
            old = {} if first else {meta_namespace_key(obj): obj for obj in self._indexer.list()}
            self._indexer.replace(fresh)
            notes: list[Notification] = []
            for key, obj in fresh.items():
                before = old.get(key)
                if before is None:
                    notes.append((ADD, obj, first))
                elif _resource_version(before) != _resource_version(obj):
                    notes.append((UPDATE, before, obj))
            for key in old.keys() - fresh.keys():
                notes.append((DELETE, DeletedFinalStateUnknown(key, old[key]), None))
            if first:
                notes.append((SYNCED, None, None))
            for listener in self._listeners:
                listener.push_many(notes)
            if first:
                self._has_synced = True
                self._synced.notify_all()
        if first:
            self._stopper.wake()
        log.debug("%s: list of %d objects at resourceVersion %s", self.name, len(fresh), resource_version)

    def upsert(self, obj: dict[str, Any]) -> None:
        if self._transform:
            obj = self._transform(obj)
        with self._lock:
            old = self._indexer.upsert(obj)
            for listener in self._listeners:
                if old is None:
                    listener.push(ADD, obj, False)
                else:
                    listener.push(UPDATE, old, obj)

    def delete(self, obj: dict[str, Any]) -> None:
        if self._transform:
            obj = self._transform(obj)
        with self._lock:
            self._indexer.remove(meta_namespace_key(obj))
            for listener in self._listeners:
                listener.push(DELETE, obj)

    # -- resync ---------------------------------------------------------------------

    def _resync_loop(self) -> None:
        """Replay the cache as updates (old == new) to each handler when its period is due."""
        while not self._stopper.stopped:
            with self._lock:
                periodic = [listener for listener in self._listeners if listener.resync_period]
                now = self._clock.now()
                if self._has_synced:
                    due = [listener for listener in periodic if listener.next_resync <= now]
                    if due:
                        objects = self._indexer.list()
                        for listener in due:
                            listener.push_many([(UPDATE, obj, obj) for obj in objects])
                            listener.next_resync = now + listener.resync_period
                next_due = min((listener.next_resync for listener in periodic), default=None) \
                    if self._has_synced else None
            self._stopper.wait_until(next_due)


def _resource_version(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")
