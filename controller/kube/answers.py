"""Answers to our applies, kept by their exact bytes for the watch event that brings them back.

Every object this process applies comes back on its informer's watch, as the very bytes the
API server answered the apply with (the same object at the same resourceVersion, encoded
alike; checked against a real API server in tests/integration/test_informers.py). Decoding
those bytes again gives what the apply's answer already holds, so the watch takes the answer
instead: identical bytes can only be the same object. Each answer is taken once; answers no
event comes for (an apply that changed nothing is not echoed) are dropped oldest first, past
a bound on their number and on their bytes (one larger than that is not kept at all).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

# Answers kept at most, and their bytes: in flight between an apply and its echo there are a
# few per reconcile worker, ~2-5 KiB each (a tenant's MiniCluster can be far larger).
MAX_ANSWERS = 512
MAX_BYTES = 16 * 1024 * 1024


class SharedAnswers:
    """Thread-safe: request threads keep, watch readers take."""

    def __init__(self, max_answers: int = MAX_ANSWERS, max_bytes: int = MAX_BYTES) -> None:
        self._max_answers = max_answers
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._by_bytes: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._bytes = 0

    def keep(self, data: bytes, answer: dict[str, Any]) -> None:
        """``answer``, decoded from ``data`` (one JSON object, no trailing newline)."""
        with self._lock:
            if self._by_bytes.pop(data, None) is None:
                self._bytes += len(data)
            self._by_bytes[data] = answer
            while len(self._by_bytes) > self._max_answers or self._bytes > self._max_bytes:
                dropped, _ = self._by_bytes.popitem(last=False)
                self._bytes -= len(dropped)

    def take(self, data: bytes) -> dict[str, Any] | None:
        """The answer that was decoded from exactly ``data``, once; None if none was kept."""
        with self._lock:
            answer = self._by_bytes.pop(data, None)
            if answer is not None:
                self._bytes -= len(data)
            return answer

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        return len(self._by_bytes)
