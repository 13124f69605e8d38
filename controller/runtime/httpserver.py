"""A tiny HTTP server for the health probes and the metrics endpoint."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
Route = Callable[[], Response]


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

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self._address = (host, port)
        self._routes = routes
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when asked for 0); only valid once started."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    def start(self) -> None:
        try:
            self._server = ThreadingHTTPServer(self._address, _handler_for(self._routes))
        except OSError as err:
            host, port = self._address
            raise OSError(f"cannot serve {', '.join(self._routes)} on {host or '*'}:{port}: {err}") from err
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"http-{self.port}",
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler_for(routes: dict[str, Route]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            route = routes.get(self.path.split("?", 1)[0])
            status, content_type, body = route() if route else (404, "text/plain", b"not found")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler
