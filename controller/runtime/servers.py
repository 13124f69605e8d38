"""The manager's HTTP servers: ``/metrics`` (optionally TLS and authorized) and the probes."""
from __future__ import annotations

import ssl
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from controller.clock import Clock
from controller.runtime.httpserver import RouteServer, check, metrics
from controller.runtime.metricsauth import MetricsAuthorizer


def metrics_server(client, clock: Clock, registry: CollectorRegistry, host: str, port: int | None,
                   tls: ssl.SSLContext | None) -> RouteServer | None:
    """``/metrics`` on ``host:port`` (None: no server). With ``tls``, only to callers whose token
    the API server accepts and whose user may get /metrics (metricsauth.py); without, to anyone."""
    if port is None:
        return None
    authorizer = MetricsAuthorizer(client, clock) if tls is not None else None
    return RouteServer(host, port, {"/metrics": metrics(registry)}, tls=tls,
                       authorize=authorizer.check if authorizer is not None else None)


def probe_server(host: str, port: int | None, *, healthz: Callable[[], bool],
                 readyz: Callable[[], bool]) -> RouteServer | None:
    """``/healthz`` and ``/readyz`` on ``host:port`` (None: no server)."""
    if port is None:
        return None
    return RouteServer(host, port, {"/healthz": check("healthz", healthz), "/readyz": check("readyz", readyz)})
