"""The few Kubernetes calls the ensemble service makes, as a protocol.

``controller.kube.client.KubeClient`` satisfies it; unit tests use an in-memory fake.
"""
from __future__ import annotations

from typing import Protocol

from controller.kube.resources import Resource


class KubeApi(Protocol):
    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict: ...

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None: ...

    def patch(self, res: Resource, name: str, patch: object, *, namespace: str | None = None,
              patch_type: str = "merge", subresource: str | None = None,
              field_manager: str | None = None) -> dict: ...

    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict: ...
