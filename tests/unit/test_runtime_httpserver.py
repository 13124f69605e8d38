"""Probe and metrics endpoints served on loopback."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from controller.runtime.httpserver import RouteServer, check, metrics


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def server():
    state = {"ready": False}
    registry = CollectorRegistry()
    Counter("demo_total", "a demo counter", registry=registry).inc(3)
    srv = RouteServer("127.0.0.1", 0, {"/readyz": check("readyz", lambda: state["ready"]),
                                       "/metrics": metrics(registry)})
    srv.start()
    yield srv, state
    srv.stop()


def test_probe_follows_its_condition(server):
    srv, state = server
    assert fetch(srv.port, "/readyz") == (500, "readyz check failed")
    state["ready"] = True
    assert fetch(srv.port, "/readyz?verbose") == (200, "ok")


def test_metrics_are_in_prometheus_text_format(server):
    srv, _ = server
    status, body = fetch(srv.port, "/metrics")
    assert status == 200 and "demo_total 3.0" in body


def test_unknown_paths_are_404(server):
    srv, _ = server
    assert fetch(srv.port, "/nope")[0] == 404


def test_a_taken_port_is_a_clear_error(server):
    srv, _ = server
    with pytest.raises(OSError, match=rf"cannot serve /healthz on 127.0.0.1:{srv.port}"):
        RouteServer("127.0.0.1", srv.port, {"/healthz": check("healthz", lambda: True)}).start()
