"""A tiny HTTP server for the health probes and the metrics endpoint.

Both listen where any pod may connect, so a client can neither hold a handler thread for
long (every request must arrive whole within ``request_timeout`` seconds, however slowly
it trickles in) nor make the server start threads without end (``max_handlers``; beyond
it a connection is answered 503 at once): a slow or flooding client must not starve the
kubelet's probes, which would restart the operator.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from controller.clock import Clock, RealClock

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_HANDLERS = 16
_REFUSAL = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

Response = tuple[int, str, bytes]
Route = Callable[[], Response]
Authorize = Callable[[str | None, str], "tuple[int, str] | None"]


def check(name: str, ok: Callable[[], bool]) -> Route:
    """A probe answering 200 "ok" while ``ok()`` holds, 500 otherwise (kubelet semantics)."""

    def probe() -> Response:
        if ok():
            return 200, "text/plain; charset=utf-8", b"ok"
        return 500, "text/plain; charset=utf-8", f"{name} check failed".encode()

    return probe


def metrics(registry: CollectorRegistry) -> Route:
    return lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))


class RouteServer:
    """Serves GET on fixed paths from a daemon thread; port 0 picks a free port."""

    def __init__(self, host: str, port: int, routes: dict[str, Route], *,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT, max_handlers: int = DEFAULT_MAX_HANDLERS,
                 clock: Clock | None = None, tls: ssl.SSLContext | None = None,
                 authorize: Authorize | None = None) -> None:
        """``tls``: serve HTTPS with it; ``authorize(Authorization header, path)``: None lets a
        request through, else the (status, reason) it is answered with."""
        self._address = (host, port)
        self._routes = routes
        self._tls = tls
        self._authorize = authorize
        self._request_timeout = request_timeout
        self._max_handlers = max_handlers
        self._clock = clock or RealClock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when asked for 0); only valid once started."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    def start(self) -> None:
        try:
            self._server = _BoundedServer(self._address, _handler_for(self._routes, self._request_timeout,
                                                                      self._clock, self._authorize),
                                          self._max_handlers)
        except OSError as err:
            host, port = self._address
            raise OSError(f"cannot serve {', '.join(self._routes)} on {host or '*'}:{port}: {err}") from err
        self._server.daemon_threads = True
        if self._tls is not None:  # the handshake runs in the handler thread, under its timeout
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True,
                                                        do_handshake_on_connect=False)
        threading.Thread(target=self._server.serve_forever, name=f"http-{self.port}",
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _BoundedServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_handlers`` at a time; the rest get a 503."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_handlers: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_handlers)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that breaks off (a failed TLS handshake, a reset) is its problem, not a traceback."""
        log.debug("http: connection from %s ended in an error", client_address, exc_info=True)


def _refuse(request: socket.socket) -> None:
    """A short answer from the accepting thread: it fits the socket buffer, so no wait."""
    try:
        request.settimeout(1.0)
        request.sendall(_REFUSAL)
    except OSError:
        pass


class _DeadlineReader:
    """The request stream, each read bounded by what is left of the request's time, so a
    client trickling a byte at a time cannot hold the thread past the deadline."""

    def __init__(self, stream: Any, sock: socket.socket, deadline: float, clock: Clock) -> None:
        self._stream, self._sock, self._deadline, self._clock = stream, sock, deadline, clock

    def _arm(self) -> None:
        remaining = self._deadline - self._clock.now()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self._sock.settimeout(remaining)

    def readline(self, size: int = -1) -> bytes:
        self._arm()
        return self._stream.readline(size)

    def read(self, size: int = -1) -> bytes:
        self._arm()
        return self._stream.read(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _handler_for(routes: dict[str, Route], request_timeout: float, clock: Clock,
                 authorize: Authorize | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = request_timeout  # each socket operation (StreamRequestHandler.setup sets it)

        def setup(self) -> None:
            super().setup()
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            self.rfile = _DeadlineReader(self.rfile, self.connection,  # type: ignore[assignment]
                                         clock.now() + request_timeout, clock)

        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            path = self.path.split("?", 1)[0]
            route = routes.get(path)
            refusal = authorize(self.headers.get("Authorization"), path) if authorize and route else None
            if refusal is not None:
                status, content_type, body = refusal[0], "text/plain; charset=utf-8", refusal[1].encode()
            else:
                status, content_type, body = route() if route else (404, "text/plain", b"not found")
            self.connection.settimeout(request_timeout)  # the reply gets a whole timeout of its own
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler
