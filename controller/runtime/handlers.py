"""Informer event handlers that turn object events into reconcile requests.

For, Owns and Watches differ only in how an object maps to requests, so one handler
class takes the mapping as a function.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from controller.kube.resources import Resource
from controller.runtime.predicates import (Predicate, allows_create, allows_delete,
                                           allows_update)
from controller.runtime.reconcile import Request

log = logging.getLogger(__name__)

Mapper = Callable[[dict], Iterable[Request]]


class RequestQueue(Protocol):
    def add(self, item: Any) -> None: ...


def unwrap_tombstone(obj: Any) -> dict:
    """The last known state of a deleted object, also when the informer only has a tombstone
    (``DeletedFinalStateUnknown``, whose ``obj`` holds it)."""
    return obj if isinstance(obj, dict) else obj.obj


def request_for_object(obj: dict) -> list[Request]:
    meta = obj.get("metadata") or {}
    return [Request(meta.get("namespace", ""), meta["name"])]


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def controller_owner_mapper(owner: Resource) -> Mapper:
    """Map an object to its controller owner when that owner is of type ``owner``.

    The group and kind are compared, not the version: an owner reference written under
    another served version still names the same object.
    """

    def map_owner(obj: dict) -> list[Request]:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if not ref.get("controller"):
                continue
            if ref.get("kind") == owner.kind and _group_of(ref.get("apiVersion", "")) == owner.group:
                namespace = meta.get("namespace", "") if owner.namespaced else ""
                return [Request(namespace, ref["name"])]
            return []
        return []

    return map_owner


class EnqueueHandler:
    """A ResourceEventHandler adding ``mapper(obj)`` to a queue for events the predicates pass.

    Updates enqueue the requests of both the old and the new object, so a changed owner
    reference or label wakes up both the previous and the current owner. It never blocks
    (mappers are pure, the queue unbounded), so informers call it on their own thread.
    """

    inline = True

    def __init__(self, queue: RequestQueue, mapper: Mapper, predicates: list[Predicate],
                 source: str) -> None:
        self._queue = queue
        self._mapper = mapper
        self._predicates = list(predicates)
        self._source = source

    def on_add(self, obj: dict, is_in_initial_list: bool = False) -> None:
        if allows_create(self._predicates, obj):
            self._enqueue(obj)

    def on_update(self, old: dict, new: dict) -> None:
        if allows_update(self._predicates, old, new):
            self._enqueue(old, new)

    def on_delete(self, obj: Any) -> None:
        last_state = unwrap_tombstone(obj)
        if allows_delete(self._predicates, last_state):
            self._enqueue(last_state)

    def _enqueue(self, *objs: dict) -> None:
        requests: list[Request] = []
        for obj in objs:
            try:
                mapped = self._mapper(obj)
            except Exception:
                log.exception("mapping %s event to requests failed", self._source,
                              extra={"object": _key(obj)})
                continue
            requests.extend(r for r in mapped if r not in requests)
        for request in requests:
            self._queue.add(request)


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
