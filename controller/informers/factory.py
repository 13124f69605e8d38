"""Hands out one shared informer per (resource, namespace, selectors), however often asked,
so controllers that watch the same things share one watch and one cache."""
from __future__ import annotations

import threading
from typing import Callable

from controller.clock import Clock, RealClock
from controller.informers.reflector import ReflectorOptions
from controller.informers.shared_informer import SharedInformer
from controller.informers.transform import Transform, default_transform
from controller.kube.client import KubeClient
from controller.kube.resources import Resource

InformerKey = tuple[Resource, str | None, str | None, str | None]


class SharedInformerFactory:
    def __init__(self, client: KubeClient, *, resync_period: float = 0, clock: Clock | None = None,
                 transform: Transform | None = default_transform,
                 rand: Callable[[], float] | None = None,
                 reflector_options: ReflectorOptions | None = None,
                 on_undecodable: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._on_undecodable = on_undecodable
        self._resync_period = resync_period
        self._clock = clock or RealClock()
        self._transform = transform
        self._rand = rand
        self._reflector_options = reflector_options
        self._lock = threading.Lock()
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._started = False

    def informer_for(self, resource: Resource, *, namespace: str | None = None,
                     label_selector: str | None = None,
                     field_selector: str | None = None) -> SharedInformer:
        """The informer for this view; started at once if the factory already runs."""
        key = (resource, namespace if resource.namespaced else None, label_selector or None,
               field_selector or None)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                informer = SharedInformer(
                    self._client, resource, namespace=key[1], label_selector=key[2],
                    field_selector=key[3], resync_period=self._resync_period,
                    transform=self._transform, clock=self._clock, rand=self._rand,
                    reflector_options=self._reflector_options, on_undecodable=self._on_undecodable)
                self._informers[key] = informer
                if self._started:
                    informer.start()
            return informer

    def informers(self) -> list[SharedInformer]:
        with self._lock:
            return list(self._informers.values())

    def start(self) -> None:
        with self._lock:
            self._started = True
            informers = list(self._informers.values())
        for informer in informers:
            informer.start()

    def wait_for_cache_sync(self, timeout: float) -> bool:
        """True when every informer has its first list cached within ``timeout`` seconds."""
        deadline = self._clock.now() + timeout
        for informer in self.informers():
            if not informer.wait_for_sync(max(deadline - self._clock.now(), 0.0)):
                return False
        return True

    def shutdown(self) -> None:
        with self._lock:
            self._started = False
            informers = list(self._informers.values())
        for informer in informers:
            informer.stop()
