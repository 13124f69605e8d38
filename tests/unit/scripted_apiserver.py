"""A tiny HTTP server on 127.0.0.1 that plays scripted API server answers, in order.

Tests queue answers per (method, path, list-or-watch) and read back the requests
they caused. Watch answers are streamed chunked, optionally split mid-line, and can
end cleanly, be cut abruptly, or go silent, which is what a real server can do.
"""
from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Json:
    status: int = 200
    body: Any = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """A watch response: ``events`` are dicts (one line each) or raw bytes.

    ``chunk_size`` splits the byte stream into chunks of that size regardless of line
    ends. ``end`` is "close" (clean end), "abort" (cut without the final chunk) or
    "silent" (send nothing more until the server shuts down).
    """

    events: list[Any]
    chunk_size: int | None = None
    end: str = "close"


Answer = Union[Json, Stream, Callable[[Recorded], Union[Json, Stream]]]


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}


class ScriptedApiServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, bool], deque[Answer]] = {}
        self.requests: list[Recorded] = []
        self._released = threading.Event()
        self._request_seen = threading.Condition(self._lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def on(self, method: str, path: str, *answers: Answer, watch: bool = False) -> None:
        with self._lock:
            self._answers.setdefault((method, path, watch), deque()).extend(answers)

    def on_list(self, path: str, *answers: Answer) -> None:
        self.on("GET", path, *answers)

    def on_watch(self, path: str, *answers: Answer) -> None:
        self.on("GET", path, *answers, watch=True)

    def requests_to(self, path: str, *, watch: bool | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path
                    and (watch is None or ("watch" in r.query) == watch)]

    def wait_for_requests(self, count: int, path: str, *, watch: bool | None = None,
                          timeout: float = 5.0) -> list[Recorded]:
        """Block until ``count`` matching requests arrived (bounded by ``timeout``)."""
        def matching() -> list[Recorded]:
            return [r for r in self.requests if r.path == path
                    and (watch is None or ("watch" in r.query) == watch)]
        with self._request_seen:
            self._request_seen.wait_for(lambda: len(matching()) >= count, timeout)
            found = matching()
        if len(found) < count:
            raise AssertionError(f"expected {count} requests to {path}, got {len(found)}")
        return found

    def close(self) -> None:
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- serving --------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = Recorded(handler.command, parts.path, query, dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(record)
            self._request_seen.notify_all()
            queue = self._answers.get((handler.command, parts.path, "watch" in query))
            answer: Answer | None = queue.popleft() if queue else None
        if answer is None:
            if "watch" in query:
                answer = Stream([], end="silent")
            else:
                answer = Json(404, status_body(404, "NotFound", f"nothing scripted for {parts.path}"))
        if callable(answer):
            answer = answer(record)
        if isinstance(answer, Json):
            self._send_json(handler, answer)
        else:
            self._send_stream(handler, answer)

    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, answer: Json) -> None:
        data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _send_stream(self, handler: BaseHTTPRequestHandler, answer: Stream) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()
        data = b"".join(e if isinstance(e, bytes) else json.dumps(e).encode() + b"\n"
                        for e in answer.events)
        size = answer.chunk_size or max(len(data), 1)
        try:
            for start in range(0, len(data), size):
                piece = data[start:start + size]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                handler.wfile.flush()
            if answer.end == "close":
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()
            elif answer.end == "abort":
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
            else:
                self._released.wait()
                handler.close_connection = True
        except OSError:
            handler.close_connection = True  # the client went away first: fine


class RecordingHandler:
    """An informer event handler that records events and lets tests wait for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self._cond = threading.Condition()

    def _record(self, *event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def on_add(self, obj: dict[str, Any], is_in_initial_list: bool) -> None:
        self._record("add", obj, is_in_initial_list)

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._record("update", old, new)

    def on_delete(self, obj: Any) -> None:
        self._record("delete", obj, None)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, Any, Any]]:
        """The first ``count`` events, waiting for them at most ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} events, got {len(self.events)}: {self.events}")
            return list(self.events)


def obj(name: str, rv: str, namespace: str = "ns", **extra: Any) -> dict[str, Any]:
    """A minimal ConfigMap with a name and resourceVersion."""
    return {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, **extra}


def list_of(items: list[dict[str, Any]], rv: str, continue_: str | None = None) -> Json:
    metadata: dict[str, Any] = {"resourceVersion": rv}
    if continue_:
        metadata["continue"] = continue_
    return Json(200, {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": metadata, "items": items})


def event(type_: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "object": item}


def bookmark(rv: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
                                           "metadata": {"resourceVersion": rv}}}
