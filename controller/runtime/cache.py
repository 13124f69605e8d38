"""A read-only view over the informer caches of one resource across watched namespaces.

Reconcilers read through this instead of the API server, like controller-runtime's
cache-backed client; when the manager watches several namespaces, one informer per
namespace backs the view.
"""
from __future__ import annotations

import builtins
from typing import Any

from controller.informers.store import IndexFunc
from controller.kube.resources import Resource


class ObjectCache:
    def __init__(self, resource: Resource, informers_by_namespace: dict[str | None, Any]) -> None:
        self.resource = resource
        self._informers = informers_by_namespace

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        """The cached object, or None when it is absent (or outside the watched namespaces)."""
        key = f"{namespace}/{name}" if self.resource.namespaced else name
        indexer = self._indexer_for(namespace)
        return indexer.get_by_key(key) if indexer is not None else None

    def list(self, namespace: str | None = None) -> builtins.list[dict]:
        """Cached objects in ``namespace``, or in every watched namespace when None."""
        if namespace is not None and self.resource.namespaced:
            indexer = self._indexer_for(namespace)
            objs = indexer.list() if indexer is not None else []
            return [o for o in objs if (o.get("metadata") or {}).get("namespace") == namespace]
        return [obj for informer in self._informers.values() for obj in informer.get_indexer().list()]

    def by_index(self, index_name: str, value: str) -> builtins.list[dict]:
        return [obj for informer in self._informers.values()
                for obj in informer.get_indexer().by_index(index_name, value)]

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add indexers to every backing informer (before the manager starts)."""
        for informer in self._informers.values():
            informer.add_indexers(indexers)

    def has_synced(self) -> bool:
        return all(informer.has_synced() for informer in self._informers.values())

    def _indexer_for(self, namespace: str | None) -> Any:
        if None in self._informers:
            return self._informers[None].get_indexer()
        informer = self._informers.get(namespace)
        return informer.get_indexer() if informer is not None else None
