"""The manager's informers: one per (resource, namespace), each resource selected once.

Reconcilers read the same informers their controllers' event handlers are fed from. What a
resource's informers hold is configured once, before anything caches or watches it
(controller-runtime's cache ``ByObject``): ``cache()`` and every watch of that resource then
see the same objects, and cannot disagree by naming different label selectors.
"""
from __future__ import annotations

import threading
from typing import Any

from controller.informers import SharedInformerFactory
from controller.kube.resources import Resource
from controller.runtime.cache import ObjectCache


class Caches:
    def __init__(self, informers: SharedInformerFactory, namespaces: list[str] | None) -> None:
        """``namespaces``: the watched namespaces, one informer per namespace; None: cluster-wide."""
        self.informers = informers
        self.namespaces = namespaces
        self._selectors: dict[Resource, str] = {}
        self._used: set[Resource] = set()
        self._lock = threading.Lock()

    def select(self, resource: Resource, label_selector: str) -> None:
        """Cache and watch only the objects of ``resource`` that match ``label_selector``.

        Once per resource, before its first ``cache`` or watch: informers already made would
        hold other objects than the selector says.
        """
        if not label_selector:
            raise ValueError(f"select {resource}: label_selector must not be empty")
        with self._lock:
            current = self._selectors.get(resource)
            if current is not None and current != label_selector:
                raise ValueError(f"select {resource}: already selected by {current!r}, not {label_selector!r}")
            if current is None and resource in self._used:
                raise ValueError(f"select {resource}: it is cached or watched already; select it before "
                                 "its first cache() or watch")
            self._selectors[resource] = label_selector

    def label_selector(self, resource: Resource) -> str | None:
        with self._lock:
            return self._selectors.get(resource)

    def informers_for(self, resource: Resource, *, namespace: str | None = None) -> list[Any]:
        """The informers feeding a watch: one per watched namespace, or one cluster-wide."""
        return list(self._informers_by_namespace(resource, namespace).values())

    def cache(self, resource: Resource) -> ObjectCache:
        """Cached reads of ``resource`` across the watched namespaces (only selected objects)."""
        return ObjectCache(resource, self._informers_by_namespace(resource, None))

    def _informers_by_namespace(self, resource: Resource, namespace: str | None) -> dict[str | None, Any]:
        with self._lock:
            self._used.add(resource)
            selector = self._selectors.get(resource)
        if not resource.namespaced:
            return {None: self.informers.informer_for(resource, label_selector=selector)}
        if namespace is not None:
            if self.namespaces is not None and namespace not in self.namespaces:
                raise ValueError(f"namespace {namespace!r} for {resource} is not watched "
                                 f"(watched: {', '.join(self.namespaces)})")
            targets: list[str | None] = [namespace]
        else:
            targets = list(self.namespaces) if self.namespaces is not None else [None]
        return {ns: self.informers.informer_for(resource, namespace=ns, label_selector=selector)
                for ns in targets}

    def start(self) -> None:
        self.informers.start()

    def wait_for_sync(self, timeout: float, wake: threading.Event) -> bool:
        """Wait for every informer's first list; False when they did not sync within ``timeout``
        or ``wake`` was set first.

        The wait runs on a helper thread that sets ``wake`` when it ends, so that whoever else
        sets ``wake`` (the manager's ``stop``, from a SIGTERM) ends it at once: caches that
        cannot sync (a watched CRD not installed) would otherwise hold the process for the
        whole timeout, past the pod's termination grace period.
        """
        synced: list[bool] = []

        def wait() -> None:
            synced.append(self.informers.wait_for_cache_sync(timeout))
            wake.set()

        threading.Thread(target=wait, name="cache-sync", daemon=True).start()
        wake.wait()
        return bool(synced) and synced[0]

    def shutdown(self) -> None:
        self.informers.shutdown()
