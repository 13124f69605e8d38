"""Read around JSON that is too deep to decode, without recursion.

The API server stores objects nested thousands of levels deep (a tenant's
``spec.algorithm.options``), and every JSON decoder here recurses, so decoding one raises
``RecursionError``. One such object must not stop a list or a watch for everyone: this
scanner walks the tokens with an explicit stack, to name the object (its kind and metadata)
and to cut a list into its items so the others can still be decoded one by one.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

Path = tuple[str, ...]

# A string, one punctuation character, or a bare scalar (number, true, false, null).
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')
_OPEN, _CLOSE = {b"{": "{", b"[": "["}, (b"}", b"]")

IDENTITY_FIELDS = ("name", "namespace", "uid", "resourceVersion")


@dataclass
class Scan:
    values: dict[Path, str] = field(default_factory=dict)      # wanted string values by path
    items: list[tuple[int, int]] = field(default_factory=list)  # byte spans of the array's elements


@dataclass
class _Frame:
    kind: str                  # "{" or "["
    path: Path | None          # keys from the top; None inside an array (not addressable)
    key: str | None = None
    expect_key: bool = True


def scan(data: bytes, wanted: set[Path], items_of: Path | None = None) -> Scan:
    """String values at the ``wanted`` paths of the top-level object, and the spans of the
    elements of the array at ``items_of``. Malformed input yields what was found so far."""
    found = Scan()
    stack: list[_Frame] = []
    item_start: int | None = None
    for match in _TOKEN.finditer(data):
        token = match.group()
        frame = stack[-1] if stack else None
        in_items = frame is not None and frame.kind == "[" and frame.path is not None and frame.path == items_of
        if token in _OPEN:
            if in_items and item_start is None:
                item_start = match.start()
            stack.append(_Frame(_OPEN[token], _child_path(frame)))
            continue
        if token in _CLOSE:
            if stack:
                stack.pop()
            parent = stack[-1] if stack else None
            if parent is not None and parent.kind == "[" and parent.path == items_of and item_start is not None \
                    and parent.path is not None:
                found.items.append((item_start, match.end()))
                item_start = None
            continue
        if token == b":":
            continue
        if token == b",":
            if frame is not None and frame.kind == "{":
                frame.expect_key = True
            continue
        if frame is not None and frame.kind == "{" and frame.expect_key:
            frame.key, frame.expect_key = _string(token), False
            continue
        if in_items:
            found.items.append((match.start(), match.end()))
        path = _child_path(frame)
        if path is not None and path in wanted and token.startswith(b'"'):
            found.values[path] = _string(token)
    return found


def _child_path(frame: _Frame | None) -> Path | None:
    if frame is None:
        return ()
    if frame.kind == "[" or frame.path is None or frame.key is None:
        return None
    return (*frame.path, frame.key)


def _string(token: bytes) -> str:
    try:
        value = json.loads(token)
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def identity(data: bytes, prefix: Path = ()) -> dict[str, object]:
    """``{"kind", "apiVersion", "metadata": {name, namespace, uid, resourceVersion}}`` of the
    object at ``prefix`` in ``data`` (the fields found; the rest is left out)."""
    wanted = {(*prefix, "kind"), (*prefix, "apiVersion")} | {(*prefix, "metadata", f) for f in IDENTITY_FIELDS}
    values = scan(data, wanted).values
    head: dict[str, object] = {key: values[(*prefix, key)] for key in ("kind", "apiVersion")
                               if (*prefix, key) in values}
    head["metadata"] = {f: values[(*prefix, "metadata", f)] for f in IDENTITY_FIELDS
                        if (*prefix, "metadata", f) in values}
    return head


def describe(head: dict[str, object]) -> str:
    """``Kind ns/name (resourceVersion N)`` for logs, from ``identity``."""
    metadata = head.get("metadata")
    meta = metadata if isinstance(metadata, dict) else {}
    where = "/".join(str(meta[k]) for k in ("namespace", "name") if meta.get(k)) or "<unnamed>"
    version = f" (resourceVersion {meta['resourceVersion']})" if meta.get("resourceVersion") else ""
    return f"{head.get('kind') or 'object'} {where}{version}"
