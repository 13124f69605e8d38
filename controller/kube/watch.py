"""A watch response as an iterator of event dicts, parsed as the bytes arrive.

The API server sends one JSON event per line over a chunked response that stays open
for minutes; chunk boundaries do not respect lines. A read timeout turns a stream that
went silent (a dead peer behind a NAT, a hung proxy) into an error, so the caller can
reconnect instead of waiting forever on a zombie watch.
"""
from __future__ import annotations

import select
import socket
from typing import Any, Callable, Iterable, Iterator

import msgspec
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from controller.kube.answers import SharedAnswers
from controller.kube.chunked import ChunkedReader
from controller.kube.errors import KubeError
from controller.kube.jsonscan import identity

READ_SIZE = 64 * 1024


class WatchStalled(KubeError):
    """No byte arrived within the read timeout: the stream is presumed dead."""


class WatchBroken(KubeError):
    """The connection failed mid-stream (reset, truncated chunk, server went away)."""


class LineParser:
    """Splits a byte stream into complete lines, keeping a partial tail across chunks."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            if chunk:
                self._pending.append(chunk)
            return []
        if self._pending:
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending = []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        return lines

    @property
    def leftover(self) -> bytes:
        return b"".join(self._pending)


UNDECODABLE = "UNDECODABLE"
"""The ``type`` of an event whose line could not be decoded: its ``object`` holds what could
be read around it (kind and metadata, ``controller.kube.jsonscan.identity``), ``error`` why."""


def decode_event(line: bytes) -> dict[str, Any]:
    """One complete event line. A line that cannot be decoded (an object nested past the
    decoder's recursion limit) becomes an ``UNDECODABLE`` event instead of an error: the
    server would send the same line again after a reconnect, stalling the watch forever."""
    try:
        return msgspec.json.decode(line)  # about twice as fast as json.loads on API objects
    except (RecursionError, msgspec.DecodeError) as err:
        return {"type": UNDECODABLE, "object": identity(line, ("object",)),
                "error": f"{type(err).__name__}: {str(err)[:200]}"}


# How the API server writes an added or modified object's event: the object's bytes follow.
_SHARED_EVENT_PREFIXES = ((b'{"type":"ADDED","object":', "ADDED"), (b'{"type":"MODIFIED","object":', "MODIFIED"))


def shared_event(line: bytes, answers: SharedAnswers) -> dict[str, Any] | None:
    """The event of ``line`` when its object is exactly the bytes of a kept answer; else None."""
    if not line.endswith(b"}"):
        return None
    for prefix, kind in _SHARED_EVENT_PREFIXES:
        if line.startswith(prefix):
            answer = answers.take(line[len(prefix):-1])
            return None if answer is None else {"type": kind, "object": answer}
    return None


def parse_events(chunks: Iterable[bytes], answers: SharedAnswers | None = None) -> Iterator[dict[str, Any]]:
    """Watch events from raw chunks; blank lines (keep-alives) are skipped. An object that is
    exactly a kept answer (``answers``) is that answer, not decoded again."""
    parser = LineParser()
    for chunk in chunks:
        for line in parser.feed(chunk):
            if answers:
                shared = shared_event(line, answers)
                if shared is not None:
                    yield shared
                    continue
            if line.strip():
                yield decode_event(line)
    tail = parser.leftover
    if tail.strip():  # no newline after it: the stream was cut, so a decode error means broken
        yield msgspec.json.decode(tail)


def socket_readable(sock: socket.socket) -> Callable[[], bool]:
    """Whether a read of ``sock`` would return at once: TLS bytes decrypted and not read yet,
    or bytes (or the peer's close) arrived. poll, not select: any descriptor number works."""
    pending = getattr(sock, "pending", None)
    poller = select.poll()
    poller.register(sock, select.POLLIN)

    def readable() -> bool:
        if pending is not None and pending() > 0:
            return True
        try:
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True  # closed or broken: the read says how
    return readable


class WatchStream:
    """An open watch: iterate for event dicts; close (or leave the ``with``) to release it.

    Iteration ends when the server closes the stream (its ``timeoutSeconds`` passed);
    it raises ``WatchStalled`` on a read timeout and ``WatchBroken`` on a broken connection.
    """

    def __init__(self, response: urllib3.BaseHTTPResponse, url: str,
                 before_wait: Callable[[], None] | None = None,
                 readable: Callable[[], bool] | None = None, *, answers: SharedAnswers | None = None) -> None:
        """``before_wait`` runs once the events read so far were all delivered and the next read
        would wait, nothing more having arrived: there the reflector paces its reads. While
        data keeps arriving it is read at once, so pacing never caps a busy stream's rate.
        ``readable()`` says whether something arrived; by default the connection's socket is
        asked, and where it cannot be (not the raw chunked path), reads are not paced.
        ``answers``: the client's kept apply answers, taken for the events that bring them back."""
        self._response = response
        self.url = url
        self._closed = False
        self._before_wait = before_wait
        self._readable = readable
        self._answers = answers

    def _chunks(self) -> Iterator[bytes]:
        source = self._raw_payloads() or self._read1_payloads()
        readable = self._readable
        first = True
        while True:
            if not first and self._before_wait is not None and readable is not None and not readable():
                self._before_wait()
                if self._closed:
                    return
            first = False
            try:
                chunk = next(source, b"")
            except Exception as err:  # close() from another thread surfaces as any error
                if self._closed:
                    return
                if isinstance(err, (ReadTimeoutError, TimeoutError)):
                    raise WatchStalled(f"watch {self.url}: no data within the read timeout") from err
                if isinstance(err, (Urllib3Error, OSError, ValueError)):
                    raise WatchBroken(f"watch {self.url}: connection broken: {err}") from err
                raise
            if not chunk:
                return
            yield chunk

    def _read1_payloads(self) -> Iterator[bytes]:
        read1 = self._response.read1
        while chunk := read1(READ_SIZE):
            yield chunk

    def _raw_payloads(self) -> Iterator[bytes] | None:
        """The body read from the connection itself (chunked.py: 62-66 -> 46-55 us of CPU per event),
        when it is a chunked body not yet read, not compressed, over the http.client response
        urllib3 wraps; None otherwise (read1 then)."""
        inner = getattr(self._response, "_fp", None)
        reader = getattr(inner, "fp", None)
        if (reader is None or not getattr(inner, "chunked", False) or getattr(inner, "chunk_left", 0) is not None
                or self._response.headers.get("content-encoding") or not hasattr(reader, "read1")):
            return None
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if self._readable is None and sock is not None:
            self._readable = socket_readable(sock)
        return ChunkedReader(reader.read1, READ_SIZE).payloads()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from parse_events(self._chunks(), self._answers)
        except (msgspec.DecodeError, RecursionError) as err:  # only a cut-off last line gets here
            if self._closed:
                return
            raise WatchBroken(f"watch {self.url}: malformed event: {str(err)[:200]}") from err

    def close(self) -> None:
        """Release the connection; safe from another thread to unblock a reader."""
        if self._closed:
            return
        self._closed = True
        try:
            self._response.shutdown()
        except (ValueError, RuntimeError, OSError):
            pass  # already released or never had a socket: nothing is blocked on it
        self._response.close()
        self._response.release_conn()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
