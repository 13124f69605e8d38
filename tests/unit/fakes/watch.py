"""A watch response read through ``read1``, scripted read by read (WatchStream's fallback path)."""
from __future__ import annotations

import threading


class ScriptedReads:
    """Each read returns the next scripted payload (b"" after the last: the stream ends) and
    appends "read" to ``log``. ``gated``: a read first waits for the test's ``release``."""

    def __init__(self, payloads: list[bytes], *, log: list[str] | None = None, gated: bool = False) -> None:
        self.headers: dict[str, str] = {}
        self._payloads = payloads
        self.log = log if log is not None else []
        self._gate = threading.Semaphore(0) if gated else None

    @property
    def reads(self) -> int:
        return self.log.count("read")

    def release(self, count: int = 1) -> None:
        if self._gate is not None:
            for _ in range(count):
                self._gate.release()

    def read1(self, size: int) -> bytes:
        if self._gate is not None:
            self._gate.acquire()
        self.log.append("read")
        return self._payloads.pop(0) if self._payloads else b""

    def shutdown(self) -> None:
        self.release(len(self._payloads) + 1)

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass
