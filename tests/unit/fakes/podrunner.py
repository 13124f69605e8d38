"""A manager as the pod process runner (hack/sim/podrunner.py) uses it: a pod cache and a client
that records the pod status patches."""
from __future__ import annotations

import threading
from typing import Any

from controller.kube.resources import Resource


class RecordingClient:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.patched = threading.Condition()

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert path.endswith("/token")
        return {"status": {"token": "t"}}

    def patch(self, res: Resource, name: str, patch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with self.patched:
            self.patches.append({"name": name, "patch": patch, **kwargs})
            self.patched.notify_all()
        return {}


class PodCache:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return next((p for p in self.pods if p["metadata"]["name"] == name), None)

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self.pods)


class FakeManager:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.client = RecordingClient()
        self.pod_cache = PodCache(pods)

    def cache(self, resource: Resource) -> PodCache:
        return self.pod_cache
