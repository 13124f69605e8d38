"""Answers to our applies, kept by their exact bytes for the watch event that brings them back.

Every object this process applies comes back on its informer's watch, as the very bytes the
API server answered the apply with (the same object at the same resourceVersion, encoded
alike; checked against a real API server in tests/integration/test_informers.py). Decoding
those bytes again gives what the apply's answer already holds, so the watch takes the answer
instead: identical bytes can only be the same object. Each answer is taken once; answers no
event comes for (an apply that changed nothing is not echoed) are dropped oldest first.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

# Answers kept at most: in flight between an apply and its echo, a few per reconcile worker;
# ~2-5 KiB each.
MAX_ANSWERS = 512


class SharedAnswers:
    """Thread-safe: request threads keep, watch readers take."""

    def __init__(self, max_answers: int = MAX_ANSWERS) -> None:
        self._max = max_answers
        self._lock = threading.Lock()
        self._by_bytes: OrderedDict[bytes, dict[str, Any]] = OrderedDict()

    def keep(self, data: bytes, answer: dict[str, Any]) -> None:
        """``answer``, decoded from ``data`` (one JSON object, no trailing newline)."""
        with self._lock:
            self._by_bytes[data] = answer
            self._by_bytes.move_to_end(data)
            while len(self._by_bytes) > self._max:
                self._by_bytes.popitem(last=False)

    def take(self, data: bytes) -> dict[str, Any] | None:
        """The answer that was decoded from exactly ``data``, once; None if none was kept."""
        with self._lock:
            return self._by_bytes.pop(data, None)

    def __len__(self) -> int:
        return len(self._by_bytes)
