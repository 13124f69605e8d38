"""Structured logging: one JSON object per line, with the reconcile context attached.

The controller sets the context (controller, ensemble, reconcileID) around each
reconcile in a ContextVar, so every log line written during that reconcile carries it
without the reconciler passing loggers around.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, TextIO

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}

LEVELS = ("debug", "info", "warning", "error")


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log record written in this context (thread or task)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
    return {**_context.get(), **extra}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["error"] = str(record.exc_info[1])
            entry["stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, context appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            suffix = " ".join(f"{k}={v}" for k, v in fields.items())
            first, newline, rest = line.partition("\n")
            line = f"{first} {suffix}{newline}{rest}"
        return line


class _ConfiguredHandler(logging.StreamHandler):
    """Marks the handler ``configure`` installed, so reconfiguring replaces only it."""


def configure(log_format: str = "json", level: str = "info", stream: TextIO | None = None) -> None:
    """Send root logging to one handler writing ``log_format`` lines at ``level``."""
    if log_format not in ("json", "text"):
        raise ValueError(f"--log-format must be json or text, got {log_format!r}")
    if level.lower() not in LEVELS:
        raise ValueError(f"--log-level must be one of {', '.join(LEVELS)}, got {level!r}")
    handler = _ConfiguredHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ConfiguredHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
