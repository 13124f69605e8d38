"""Parsing grow/shrink requests from members and sizing MiniClusters (pure, no I/O).

Kept apart from the Kubernetes side so the upstream semantics can be tested as a table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from controller.proto.wire import MINICLUSTER_API, MINICLUSTER_MEMBER
from controller.scaling.minicluster_sizes import maximum_size

DEFAULT_MIN_SIZE = 1


class ScaleRequestError(ValueError):
    """A request the service cannot act on; the message names the field and the cause."""


@dataclass(frozen=True)
class ScaleRequest:
    """A validated request to change one MiniCluster's size by ``delta`` nodes."""

    action: str
    name: str
    delta: int


def parse_scale_request(member: str, name: str, action: str, payload: str) -> ScaleRequest:
    """Validate an ActionRequest for grow/shrink.

    Upstream semantics: grow by ``payload.grow`` (default 1), which must be > 0; shrink by
    ``payload.shrink`` (default 1) with the sign ignored. An explicit 0 is refused for both:
    a member asking to change by nothing is a bug worth reporting, not a silent step of 1.
    """
    if member not in ("", MINICLUSTER_MEMBER):
        raise ScaleRequestError(f"member: unsupported member type {member!r} (only {MINICLUSTER_MEMBER!r})")
    if not name:
        raise ScaleRequestError("name: the MiniCluster name is empty")
    if action not in ("grow", "shrink"):
        raise ScaleRequestError(f"action: unknown action {action!r} (expected 'grow' or 'shrink')")
    body = _parse_payload(payload)
    amount = _optional_int(body, action)
    if amount is None:
        amount = 1
    if amount == 0:
        raise ScaleRequestError(f"payload.{action}: 0 is not a change; use a non-zero count")
    if action == "grow":
        if amount < 0:
            raise ScaleRequestError(f"payload.grow: must be > 0, got {amount}")
        return ScaleRequest(action, name, amount)
    return ScaleRequest(action, name, -abs(amount))


def _parse_payload(payload: str) -> dict:
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as err:
        raise ScaleRequestError(f"payload: malformed JSON ({err.msg} at position {err.pos})") from None
    if not isinstance(body, dict):
        raise ScaleRequestError(f"payload: expected a JSON object, got {type(body).__name__}")
    for field, expected in MINICLUSTER_API.items():
        if field in body and body[field] != expected:
            raise ScaleRequestError(f"payload.{field}: {body[field]!r} is not supported (expected {expected!r})")
    return body


def _optional_int(body: dict, field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScaleRequestError(f"payload.{field}: expected an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class SizeBounds:
    minimum: int
    maximum: int


def size_bounds(minicluster: dict) -> SizeBounds:
    """``[spec.minSize, spec.maxSize]`` with upstream defaults (min 1, max = current size),
    the maximum capped by ``status.maximumSize``: the Flux Operator refuses any size above it
    (see controller.scaling.minicluster_sizes), so writing one would only leave it in the spec.

    0 means unset, as for the Go zero value upstream and in the Ensemble API: a minSize of 0
    must not let a shrink remove the lead broker.
    """
    spec = minicluster.get("spec") or {}
    size = current_size(minicluster)
    minimum = _unless_zero(spec.get("minSize"), DEFAULT_MIN_SIZE)
    maximum = _unless_zero(spec.get("maxSize"), size)
    ceiling = maximum_size(minicluster)
    if ceiling is not None and isinstance(maximum, int) and not isinstance(maximum, bool):
        maximum = min(maximum, ceiling)
    for field, value in (("spec.minSize", minimum), ("spec.maxSize", maximum)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScaleRequestError(f"MiniCluster {_name(minicluster)}: {field} is not an integer ({value!r})")
    if minimum > maximum:
        raise ScaleRequestError(f"MiniCluster {_name(minicluster)}: spec.minSize {minimum} > spec.maxSize {maximum}")
    return SizeBounds(minimum, maximum)


def _unless_zero(value: Any, default: int) -> Any:
    return default if value is None or (type(value) is int and value == 0) else value


def current_size(minicluster: dict) -> int:
    """``spec.size``; 0 means unset (1), as in the Ensemble API the member's spec comes from."""
    size = _unless_zero((minicluster.get("spec") or {}).get("size"), 1)
    if isinstance(size, bool) or not isinstance(size, int):
        raise ScaleRequestError(f"MiniCluster {_name(minicluster)}: spec.size is not an integer ({size!r})")
    return size


def clamp(size: int, bounds: SizeBounds) -> int:
    return max(bounds.minimum, min(bounds.maximum, size))


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "<unnamed>")
