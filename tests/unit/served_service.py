"""Our ensemble service over a FakeKube on a loopback port, for tests that speak gRPC to it."""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.scaling.scaler import EnsembleScaler, RetryPolicy
from controller.scaling.service_action_writer import ServiceActionWriter
from controller.proto.server import GrpcServer
from controller.service.servicer import EnsembleServicer, actions_counter
from tests.unit.fakes.kube import FakeKube


@contextmanager
def serving(kube: FakeKube, workers: int) -> Iterator[GrpcServer]:
    """The service for Ensemble ns/ens; conflicts are retried at once and the seed is fixed, for repeatable runs."""
    clock = FakeClock()
    recorder = ServiceActionWriter(kube, "ens", "ns", clock=clock)
    scaler = EnsembleScaler(kube, "ens", "ns", clock=clock, rng=random.Random(1),
                            retry=RetryPolicy(base_delay=0.0, max_delay=0.0), actions=recorder.book)
    server = GrpcServer(EnsembleServicer(scaler, actions_counter(CollectorRegistry())), "127.0.0.1", 0, workers)
    recorder.start()
    server.start()
    try:
        yield server
    finally:
        server.stop(grace=1)
        recorder.stop()
