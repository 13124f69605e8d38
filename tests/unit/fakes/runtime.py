"""Small fakes of a manager and its informers, for tests of what a controller is built from."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.kube.resources import Resource
from controller.runtime.controller import Controller
from controller.runtime.metrics import ControllerMetrics
from controller.workqueue import RateLimitingQueue, new_rate_limiting_queue


class FakeInformer:
    """Holds registered handlers; tests call ``add``/``update``/``delete`` to emit events."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []
        self.read_intervals: list[float | None] = []

    def add_event_handler(self, handler: Any, resync_period: float | None = None, *,
                          read_interval: float | None = None) -> object:
        self.handlers.append(handler)
        self.read_intervals.append(read_interval)
        return handler

    def add(self, obj: dict) -> None:
        for handler in self.handlers:
            handler.on_add(obj, False)

    def update(self, old: dict, new: dict) -> None:
        for handler in self.handlers:
            handler.on_update(old, new)

    def delete(self, obj: Any) -> None:
        for handler in self.handlers:
            handler.on_delete(obj)


class FakeManager:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.controller_metrics = ControllerMetrics(self.registry)
        self.informers: dict[tuple[Resource, str | None, str | None], FakeInformer] = {}
        self.queues: dict[str, RateLimitingQueue] = {}
        self.controllers: list[Controller] = []
        self.selectors: dict[Resource, str] = {}

    def select(self, resource: Resource, label_selector: str) -> None:
        self.selectors[resource] = label_selector

    def informers_for(self, resource: Resource, *, namespace: str | None = None) -> list[FakeInformer]:
        key = (resource, namespace, self.selectors.get(resource))
        return [self.informers.setdefault(key, FakeInformer())]

    def informer(self, resource: Resource, namespace: str | None = None,
                 label_selector: str | None = None) -> FakeInformer:
        return self.informers[(resource, namespace, label_selector)]

    def new_queue(self, name: str) -> RateLimitingQueue:
        self.queues[name] = new_rate_limiting_queue(name, clock=self.clock)
        return self.queues[name]

    def add_controller(self, controller: Controller) -> None:
        self.controllers.append(controller)


def drain(queue: RateLimitingQueue) -> list:
    """Everything ready in ``queue`` right now, in order, marked done."""
    items = []
    while len(queue):
        item, _ = queue.get()
        queue.done(item)
        items.append(item)
    return items


def obj(kind: str, name: str, namespace: str = "ns", *, api_version: str = "v1",
        **metadata: Any) -> dict:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": namespace, **metadata}}


def owner_ref(kind: str, name: str, api_version: str, *, controller: bool = True) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}",
            "controller": controller}
