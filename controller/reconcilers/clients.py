"""What the Ensemble reconciler and its parts read and write through.

Protocols, so that unit tests hand in an in-memory API server and caches; the Manager
hands in ``KubeClient``, informer caches, its event recorder and the ``StatusPoller``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.kube.resources import Resource
from controller.reconcilers.poller import PollKey, PollTarget
from controller.runtime.reconcile import Request

# The operator's field manager for owned objects and the main status apply.
FIELD_MANAGER = "ensemble-operator"


class Cache(Protocol):
    def get(self, name: str, namespace: str | None = None) -> dict | None: ...

    def by_index(self, index_name: str, value: str) -> list[dict]: ...


class Writer(Protocol):
    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict: ...

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None: ...

    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict: ...

    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = "Background",
               preconditions: dict | None = None) -> dict | None: ...


class Poller(Protocol):
    def register(self, target: PollTarget) -> None: ...

    def unregister(self, key: PollKey) -> None: ...


@dataclass
class EnsembleCaches:
    """The informer caches the reconciler reads (owned ones indexed by controller UID)."""

    ensembles: Cache
    owned: dict[Resource, Cache]
    pods: Cache
    jobs: Cache  # the members' Jobs (they carry their pods' labels), for the UID lead brokers are checked by


def request_of(ensemble: dict) -> Request:
    """The workqueue key of ``ensemble``."""
    return Request(ensemble["metadata"]["namespace"], ensemble["metadata"]["name"])
