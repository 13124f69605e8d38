"""List, then watch from the list's resourceVersion, forever: the informer's feed.

Resumes a broken or expired watch from the last resourceVersion it saw (bookmarks
included) so reconnects cost nothing; relists only when the server says that version
is gone (410). Failures are logged once each, naming the resource, and retried with
jittered backoff: a reflector never stops on its own. An API server that is still
settling (429 "storage is (re)initializing", 503, 504) is retried at debug level until
it has failed for ``transient_grace`` seconds: only a failure that persists is a warning.
"""
from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

from controller.backoff import Backoff
from controller.clock import Clock, RealClock
from controller.informers.stopper import Stopper
from controller.kube.client import UNDECODABLE_ITEMS, KubeClient
from controller.kube.errors import ApiError, KubeError, is_gone, status_of
from controller.kube.jsonscan import describe as describe_object
from controller.kube.resources import Resource
from controller.kube.watch import UNDECODABLE, WatchStalled, WatchStream

log = logging.getLogger(__name__)


# A watch that ends sooner than this without a single event is treated as a failure
# (backoff), so a server that closes every watch at once cannot cause a hot loop.
MIN_HEALTHY_WATCH_SECONDS = 1.0
# Statuses of a server that asks to be retried while it settles (its watch cache
# initializing after a start, an aggregated API not ready yet).
TRANSIENT_STATUSES = frozenset({429, 503, 504})


class ReflectorStore(Protocol):
    """Where a reflector delivers what it learns (the shared informer)."""

    def replace(self, objects: list[dict[str, Any]], resource_version: str) -> None: ...

    def upsert(self, obj: dict[str, Any]) -> None: ...

    def delete(self, obj: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ReflectorOptions:
    page_size: int = 500
    # The server ends each watch after a random 5-10 minutes, spreading reconnects.
    min_watch_seconds: int = 300
    # A stream silent for this long past its timeoutSeconds is dead.
    read_timeout_grace: float = 30.0
    # Overrides the computed read timeout (tests of silent streams).
    read_timeout: float | None = None
    initial_backoff: float = 0.8
    max_backoff: float = 30.0
    # How long transient failures in a row are logged at debug before they are warnings.
    transient_grace: float = 30.0
    # Once a reflector has delivered all it read and nothing more has arrived, it waits until
    # this long (seconds) after it last did so before it reads again: events that arrive
    # in between are read and delivered together, in one wake of its thread rather than one
    # wake each (a thread woken per event runs its code with caches the API server's work
    # evicted meanwhile). An event waits at most this long, and only in a burst: after a quiet
    # spell the next one is read as it arrives; data already arrived is always read at once,
    # so a busy stream's rate is not capped. 0: never wait.
    min_read_interval: float = 0.05


class _Gone(Exception):
    """The watch's resourceVersion was compacted: relist."""


class Reflector:
    def __init__(self, client: KubeClient, resource: Resource, store: ReflectorStore, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, options: ReflectorOptions | None = None,
                 clock: Clock | None = None, rand: Callable[[], float] | None = None,
                 on_undecodable: Callable[[str], None] | None = None) -> None:
        """``on_undecodable(resource)`` counts each object skipped because it could not be
        decoded (the manager's ``informer_undecodable_objects_total``)."""
        self._client = client
        self._resource = resource
        self._store = store
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._options = options or ReflectorOptions()
        self._random = rand or random.random
        self._clock = clock or RealClock()
        self._stopper = Stopper(self._clock)
        self._backoff = Backoff(self._random, initial=self._options.initial_backoff,
                                maximum=self._options.max_backoff)
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self.name = describe(resource, namespace, label_selector, field_selector)
        self.last_resource_version = ""
        self.list_count = 0      # complete lists delivered to the store
        self.relist_count = 0    # lists caused by 410 Gone
        self.watch_count = 0     # watch requests opened
        self.error_count = 0     # failures that led to a backoff
        self.undecodable_count = 0  # objects skipped: listed or watched, but not decodable
        self._on_undecodable = on_undecodable
        self._failing_since: float | None = None  # the first of the failures in a row
        self._last_read = 0.0  # when the current watch's latest paced read began (see _pace)

    # -- lifecycle ------------------------------------------------------------------

    def run(self) -> None:
        """List and watch until stop(); blocks the calling thread."""
        need_list = True
        while not self._stopper.stopped:
            listed = False
            try:
                if need_list:
                    self._list_and_replace()
                    if self._stopper.stopped:
                        break  # stopped during the list: no watch to open
                    need_list = False
                    listed = True
                self._watch()
            except _Gone as gone:
                self.relist_count += 1
                need_list = True
                if listed:
                    # Gone from the version just listed: relisting at once could repeat
                    # it forever (a lagging or load-balanced server), so back off first.
                    delay = self._backoff.next_delay()
                    log.info("%s: %s right after a list; relisting in %.1fs", self.name, gone, delay)
                    self._stopper.wait(delay)
                else:
                    log.info("%s: %s; relisting", self.name, gone)
            except WatchStalled as err:
                log.info("%s: %s; reconnecting from resourceVersion %s",
                         self.name, err, self.last_resource_version)
            except Exception as err:  # every failure is retried: a reflector never stops by itself
                self._fail(err)

    def stop(self) -> None:
        self._stopper.stop()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    # -- list -----------------------------------------------------------------------

    def _list_and_replace(self) -> None:
        objects, resource_version = self._list_all()
        if self._stopper.stopped:
            return
        self._store.replace(objects, resource_version)
        self.last_resource_version = resource_version
        self.list_count += 1
        self._failing_since = None

    def _list_all(self) -> tuple[list[dict[str, Any]], str]:
        """All pages of a consistent list; one unpaged list when a continue token expires.

        As client-go's pager does: a paged list that outlives its snapshot (compaction)
        would expire again on every restart, while a single unpaged list always completes.
        """
        objects: list[dict[str, Any]] = []
        continue_token: str | None = None
        limit: int | None = self._options.page_size
        while True:
            try:
                page = self._client.list(self._resource, self._namespace,
                                         label_selector=self._label_selector,
                                         field_selector=self._field_selector,
                                         limit=limit, continue_=continue_token)
            except ApiError as err:
                if is_gone(err) and continue_token:
                    log.info("%s: list continue token expired; listing again without paging", self.name)
                    objects, continue_token, limit = [], None, None
                    continue
                raise
            kind, api_version = self._resource.kind, self._resource.api_version
            for skipped in page.get(UNDECODABLE_ITEMS) or ():
                self._skip(skipped, skipped.get("error"), "listed")
            for item in page.get("items") or ():
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                objects.append(item)
            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue") or None
            if not continue_token or self._stopper.stopped:  # a stopped list is never stored
                return objects, metadata.get("resourceVersion", "")

    @property
    def min_read_interval(self) -> float:
        return self._options.min_read_interval

    def set_min_read_interval(self, seconds: float) -> None:
        """Change ``ReflectorOptions.min_read_interval`` from the next paced read on (a watch
        begun without pacing, at 0, is paced from the next watch on)."""
        if not seconds >= 0:
            raise ValueError(f"min_read_interval: must be a number >= 0, got {seconds!r}")
        self._options = replace(self._options, min_read_interval=seconds)

    # -- watch ----------------------------------------------------------------------

    def _watch(self) -> None:
        options = self._options
        timeout_seconds = int(options.min_watch_seconds * (1.0 + self._random()))
        read_timeout = options.read_timeout or timeout_seconds + options.read_timeout_grace
        paced = options.min_read_interval > 0
        try:
            stream = self._client.watch(
                self._resource, self._namespace, resource_version=self.last_resource_version,
                label_selector=self._label_selector, field_selector=self._field_selector,
                timeout_seconds=timeout_seconds, read_timeout=read_timeout,
                before_wait=self._pace if paced else None)
        except ApiError as err:
            if is_gone(err):
                raise _Gone(f"watch from resourceVersion {self.last_resource_version} is gone") from err
            raise
        self.watch_count += 1
        with self._stream_lock:
            self._stream = stream
        started = self._clock.now()
        self._last_read = started
        try:
            delivered = 0 if self._stopper.stopped else self._consume(stream)
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()
        if not delivered and not self._stopper.stopped \
                and self._clock.now() - started < MIN_HEALTHY_WATCH_SECONDS:
            raise KubeError(f"watch {stream.url} ended at once without events")

    def _consume(self, stream: WatchStream) -> int:
        """Deliver events until the stream ends; returns how many were delivered."""
        store = self._store
        delivered = 0
        for event in stream:
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                self._raise_watch_error(obj)
            elif kind in ("ADDED", "MODIFIED"):
                store.upsert(obj)
            elif kind == "DELETED":
                store.delete(obj)
            elif kind == UNDECODABLE:
                self._skip(obj, event.get("error"), "watched")
            elif kind != "BOOKMARK":
                log.warning("%s: ignoring watch event of unknown type %r", self.name, kind)
                continue
            resource_version = (obj.get("metadata") or {}).get("resourceVersion")
            if resource_version:
                self.last_resource_version = resource_version
            delivered += 1
            if delivered == 1:
                self._backoff.reset()
                self._failing_since = None
            if self._stopper.stopped:
                break
        return delivered

    def _pace(self) -> None:
        """Before a read of the watch that would wait for data: wait until ``min_read_interval``
        has passed since the last such read began. stop() ends the wait, and the watch unread."""
        if self._stopper.wait_until(self._last_read + self._options.min_read_interval):
            with self._stream_lock:
                stream = self._stream
            if stream is not None:
                stream.close()
            return
        self._last_read = self._clock.now()

    def _raise_watch_error(self, status: dict[str, Any]) -> None:
        code = int(status.get("code") or 500)
        if code == 410:
            raise _Gone(f"watch from resourceVersion {self.last_resource_version} expired "
                        f"({status.get('message', 'Gone')})")
        raise ApiError.from_status(code, status, method="WATCH", path=self._resource.path(self._namespace))

    # -- failures -------------------------------------------------------------------

    def _skip(self, head: dict[str, Any], error: object, how: str) -> None:
        """An object that cannot be decoded is left out of the store, and the informer goes on:
        retrying would meet it again, and every other object would wait behind it."""
        self.undecodable_count += 1
        log.warning("%s: skipping %s %s that cannot be decoded: %s", self.name, how,
                    describe_object({"kind": self._resource.kind, **head}), error)
        if self._on_undecodable is not None:
            self._on_undecodable(str(self._resource))

    def _fail(self, err: Exception) -> None:
        self.error_count += 1
        delay = self._backoff.next_delay()
        now = self._clock.now()
        if self._failing_since is None:
            self._failing_since = now
        if status_of(err) in TRANSIENT_STATUSES and now - self._failing_since < self._options.transient_grace:
            log.debug("%s: %s; retrying in %.1fs (the API server is settling)", self.name, err, delay)
        elif isinstance(err, KubeError):
            log.warning("%s: %s; retrying in %.1fs", self.name, err, delay)
        else:
            log.exception("%s: unexpected failure; retrying in %.1fs", self.name, delay)
        self._stopper.wait(delay)


def describe(resource: Resource, namespace: str | None, label_selector: str | None,
             field_selector: str | None) -> str:
    """A reflector's name for logs: the resource and what it is narrowed to."""
    parts = [str(resource), f"in namespace {namespace}" if namespace else "in all namespaces"]
    if label_selector:
        parts.append(f"labels {label_selector!r}")
    if field_selector:
        parts.append(f"fields {field_selector!r}")
    return " ".join(parts)
