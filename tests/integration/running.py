"""What integration tests run beside them: a Manager in a thread, the Ensemble controller as
`ensemble-operator run` wires it, and the ensemble service on a loopback port."""
from __future__ import annotations

import argparse
import threading
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry

from controller.clock import RealClock
from controller.kube.client import KubeClient
from controller.reconcilers import setup
from controller.runtime.manager import Manager
from controller.scaling.scaler import EnsembleScaler
from controller.scaling.service_action_writer import ServiceActionWriter
from controller.proto.server import GrpcServer
from controller.service.servicer import EnsembleServicer, actions_counter
from tests.helpers import wait_for


class RunningManager:
    """A Manager started in a thread, with the outcome of ``start`` kept for ``stop`` to check."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.manager.start()
        except BaseException as err:  # reported by stop()
            self.error = err

    def stop(self) -> None:
        self.manager.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "manager did not stop within 30s"
        assert self.error is None, f"manager.start failed: {self.error!r}"


class RunningController(RunningManager):
    """Manager + reconcilers.setup in a thread, returned once its caches have synced."""

    def __init__(self, client: KubeClient, **options: object) -> None:
        self.client = client
        manager = Manager(client, metrics_port=None, health_port=None, cache_sync_timeout=30)
        self.controller = setup(manager, argparse.Namespace(operator_image="op:test", workers=2, **options))
        super().__init__(manager)
        wait_for(manager.is_ready, 30, "the controller's caches to sync", )


@contextmanager
def ensemble_service(kube: KubeClient, ensemble: str, namespace: str) -> Iterator[str]:
    """Our ensemble service for one Ensemble on a free loopback port, writing the resizes it served
    to status.serviceActions every 0.1 s (faster than deployed, for tests that wait to read them);
    yields its address."""
    recorder = ServiceActionWriter(kube, ensemble, namespace, clock=RealClock(), interval=0.1)
    scaler = EnsembleScaler(kube, ensemble, namespace, clock=RealClock(), actions=recorder.book)
    server = GrpcServer(EnsembleServicer(scaler, actions_counter(CollectorRegistry())), "127.0.0.1", 0, 10)
    recorder.start()
    server.start()
    try:
        yield server.address
    finally:
        server.stop(grace=2)
        recorder.stop()
