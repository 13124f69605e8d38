"""Probe and metrics endpoints served on loopback."""
from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from tests.fakes import FakeClock
from controller.runtime.certs import server_context
from controller.runtime.httpserver import RouteServer, check, metrics
from tests.helpers import https_get, wait_for


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


def raw_exchange(port: int, sent: bytes = b"", timeout: float = 5.0) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    client.sendall(sent)
    return client


def read_all(client: socket.socket) -> bytes:
    chunks = []
    while chunk := client.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_client_that_sends_nothing_is_cut_off_after_the_request_timeout() -> None:
    srv = RouteServer("127.0.0.1", 0, {"/healthz": check("healthz", lambda: True)}, request_timeout=0.2)
    srv.start()
    try:
        with raw_exchange(srv.port) as silent:
            assert read_all(silent) == b""  # closed by the server, long before this socket's 5 s
        assert fetch(srv.port, "/healthz") == (200, "ok")
    finally:
        srv.stop()


class ReadClock(FakeClock):
    """Says when the server first read it: the connection's deadline is then set."""

    def __init__(self) -> None:
        super().__init__()
        self.read = threading.Event()

    def now(self) -> float:
        self.read.set()
        return super().now()


def test_a_request_trickling_in_is_cut_off_at_its_deadline_however_often_bytes_arrive() -> None:
    clock = ReadClock()
    srv = RouteServer("127.0.0.1", 0, {"/healthz": check("healthz", lambda: True)}, request_timeout=10.0,
                      clock=clock)
    srv.start()
    try:
        with raw_exchange(srv.port, b"GET /healthz HTTP/1.0\r\n") as slow:
            assert clock.read.wait(5)
            clock.step(11)  # each byte came in time, the request as a whole did not
            slow.sendall(b"X-Slow: 1\r\n")
            assert read_all(slow) == b""
    finally:
        srv.stop()


def test_connections_beyond_the_handler_bound_get_a_503_until_a_handler_is_free() -> None:
    srv = RouteServer("127.0.0.1", 0, {"/healthz": check("healthz", lambda: True)}, max_handlers=1)
    srv.start()
    try:
        holder = raw_exchange(srv.port)  # holds the one handler while it sends nothing
        with raw_exchange(srv.port, b"GET /healthz HTTP/1.0\r\n\r\n") as refused:
            assert read_all(refused).startswith(b"HTTP/1.0 503 ")
        holder.close()
        wait_for(lambda: fetch(srv.port, "/healthz") == (200, "ok"), 5, "the handler to be free again")
    finally:
        srv.stop()


def test_secure_metrics_serve_tls_and_only_the_callers_authorize_lets_through() -> None:
    registry = CollectorRegistry()
    Counter("demo_total", "a demo counter", registry=registry).inc()
    seen: list[tuple[str | None, str]] = []

    def authorize(header: str | None, path: str) -> tuple[int, str] | None:
        seen.append((header, path))
        return None if header == "Bearer good" else (401, "Unauthorized")

    srv = RouteServer("127.0.0.1", 0, {"/metrics": metrics(registry)}, tls=server_context(None),
                      authorize=authorize)
    srv.start()
    try:
        assert https_get(srv.port, "/metrics") == (401, "Unauthorized")
        status, body = https_get(srv.port, "/metrics", "good")
        assert status == 200 and "demo_total 1.0" in body
        assert https_get(srv.port, "/nope", "bad")[0] == 404  # no route: nothing to authorize
        assert seen == [(None, "/metrics"), ("Bearer good", "/metrics")]
        with pytest.raises((OSError, http.client.HTTPException)):  # plain HTTP to the TLS port: no metrics
            fetch(srv.port, "/metrics")
    finally:
        srv.stop()


def test_a_client_that_never_starts_its_tls_handshake_does_not_hold_up_the_others() -> None:
    srv = RouteServer("127.0.0.1", 0, {"/metrics": metrics(CollectorRegistry())}, tls=server_context(None))
    srv.start()
    try:
        with raw_exchange(srv.port):  # TCP only: its handshake waits in its own handler thread
            assert https_get(srv.port, "/metrics")[0] == 200
    finally:
        srv.stop()
