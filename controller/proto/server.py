"""A gRPC server carrying a servicer plus the standard health service.

Shared by the ensemble service and the member status endpoint.
"""
from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.proto.limits import DEFAULT_MAX_MESSAGE_BYTES, message_size_options

log = logging.getLogger(__name__)

SERVICE_NAME = "convergedcomputing.org.grpc.v1.EnsembleOperator"


class GrpcServer:
    """Owns the grpc.Server; ``port`` is the bound port (useful with port 0 in tests).

    Messages either way are capped at ``max_message_bytes`` (``controller.proto.limits``).
    """

    def __init__(self, servicer: pb2_grpc.EnsembleOperatorServicer, host: str, port: int,
                 workers: int, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be >= 1, got {workers}")
        limits = message_size_options(max_message_bytes)
        # gRPC sets SO_REUSEPORT by default: a second server on a port in use would bind too and
        # the kernel would split connections between the two processes (a stale one answering).
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                   options=[("grpc.so_reuseport", 0), *limits])
        pb2_grpc.add_EnsembleOperatorServicer_to_server(servicer, self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        address = f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as err:
            raise OSError(f"cannot bind gRPC server to {address}: {err}") from err
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {address}")
        self.address = f"{host}:{self.port}"

    def start(self) -> None:
        self._server.start()
        for name in ("", SERVICE_NAME):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC server listening on %s", self.address)

    def stop(self, grace: float) -> None:
        """Report NOT_SERVING first so health checks fail while in-flight calls finish."""
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        log.info("gRPC server on %s stopped", self.address)

    def serve_until_signal(self, grace: float, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
                           stopping: threading.Event | None = None) -> None:
        """Block until one of ``signals`` arrives (or ``stopping`` is set), then shut down gracefully."""
        stopping = stopping or threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in signals}
        try:
            self.start()
            stopping.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop(grace)
