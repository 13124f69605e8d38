"""Storing ``status.serviceActions`` off the request path: one background writer per service.

A served resize only records its action in memory (``ServiceActionBook``) and returns; one
server-side apply per request used to cost the service nearly half its actions/s. This thread
applies the latest list at most once per ``interval``: the first change after a quiet spell is
written at once, the changes of a burst behind it together in the next write. A failed write is
counted (``on_failed``), logged and retried with exponential backoff; a list the API server has
already (a budgeted grow's ledger write carried it) is not written again. ``stop`` flushes what
is left, trying ``FLUSH_ATTEMPTS`` times.
"""
from __future__ import annotations

import logging
import random
import threading
from typing import Callable

from controller.backoff import Backoff
from controller.clock import Clock
from controller.kube.resources import ENSEMBLES
from controller.scaling.kubeapi import KubeApi
from controller.scaling.scaler import FIELD_MANAGER
from controller.scaling.service_actions import STATUS_FIELD, ServiceActionBook

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
FLUSH_ATTEMPTS = 3


class ServiceActionWriter:
    """Applies ``book``'s list to Ensemble ``namespace/ensemble`` from a thread, ``start`` to ``stop``."""

    def __init__(self, api: KubeApi, ensemble: str, namespace: str, *, clock: Clock,
                 interval: float = DEFAULT_INTERVAL, rng: random.Random | None = None,
                 retry_initial: float = 0.5, retry_max: float = 30.0,
                 on_failed: Callable[[], None] = lambda: None) -> None:
        if not interval >= 0:
            raise ValueError(f"--record-interval: must be >= 0 seconds, got {interval}")
        self._api = api
        self._ensemble = ensemble
        self._namespace = namespace
        self._clock = clock
        self._interval = interval
        self._on_failed = on_failed
        self._backoff = Backoff((rng or random.Random()).random, initial=retry_initial, maximum=retry_max,
                                jitter=0.5)
        self._wake = threading.Condition()
        self._changed = False
        self._stopping = False
        self._not_before = float("-inf")   # the next write's earliest time: interval or backoff
        self._thread: threading.Thread | None = None
        self.book = ServiceActionBook(on_change=self._on_change)

    def start(self) -> None:
        with self._wake:
            self._stopping = False
        self._thread = threading.Thread(target=self._run, name="service-actions-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is not stored yet (waiting no interval), then end the thread."""
        if self._thread is None:
            return
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join(timeout)
        self._thread = None
        unstored = self.book.unstored()
        if unstored:
            log.error("the last resizes of MiniClusters %s in Namespace %s are not recorded in status.%s of "
                      "Ensemble %s: the service stopped before it could write them", ", ".join(unstored),
                      self._namespace, STATUS_FIELD, self._ensemble)

    def flush(self) -> bool:
        """Write the list now unless the API server has it; whether it did. Raises what the write raised."""
        return self.book.store(self._apply)

    def _on_change(self) -> None:
        with self._wake:
            self._changed = True
            self._wake.notify_all()

    def _run(self) -> None:
        while self._wait_until_due():
            self._write()
        for attempt in range(FLUSH_ATTEMPTS):
            if self._write():
                return
            if attempt + 1 < FLUSH_ATTEMPTS:
                self._pause_until_retry()

    def _wait_until_due(self) -> bool:
        """Block until a change is due to be written (True) or ``stop`` was called (False)."""
        with self._wake:
            while not self._stopping:
                if not self._changed:
                    self._clock.wait(self._wake, None)
                    continue
                remaining = self._not_before - self._clock.now()
                if remaining <= 0:
                    self._changed = False
                    return True
                self._clock.wait(self._wake, remaining)
            return False

    def _pause_until_retry(self) -> None:
        with self._wake:
            while (remaining := self._not_before - self._clock.now()) > 0:
                self._clock.wait(self._wake, remaining)

    def _write(self) -> bool:
        """One store of the latest list; False when it failed (then it is due again after a backoff)."""
        try:
            wrote = self.flush()
        except Exception as err:
            delay = self._backoff.next_delay()
            self._on_failed()
            log.warning("writing status.%s of Ensemble %s/%s failed (next try in %.1fs): %s",
                        STATUS_FIELD, self._namespace, self._ensemble, delay, err)
            with self._wake:
                self._changed = True
                self._not_before = self._clock.now() + delay
            return False
        self._backoff.reset()
        if wrote:
            with self._wake:
                self._not_before = self._clock.now() + self._interval
        return True

    def _apply(self, actions: list[dict]) -> None:
        """A server-side apply of only this field (the operator's status fields stay its own)."""
        applied = {"apiVersion": ENSEMBLES.api_version, "kind": ENSEMBLES.kind,
                   "metadata": {"name": self._ensemble, "namespace": self._namespace},
                   "status": {STATUS_FIELD: actions}}
        self._api.apply(ENSEMBLES, applied, field_manager=FIELD_MANAGER, subresource="status")
