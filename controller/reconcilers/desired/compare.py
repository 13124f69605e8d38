"""Does a cached object already hold what we would apply?

Server-side apply is idempotent, but a write per object per reconcile is still a
write: the reconciler asks this first. Desired is compared as a subset of the cached
object, because the API server adds defaults, status and metadata we never declare.
A subset cannot see a field removed from desired (the cached object still has it), so
each applied object carries a hash of what was applied (``with_applied_hash``).
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import msgspec

APPLIED_HASH_ANNOTATION = "ensemble.flux-framework.org/applied-hash"

# Identity and bookkeeping: never drift, or not ours to compare.
_IGNORED_METADATA = ("name", "namespace")


def _matches(desired: Any, actual: Any) -> bool:
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            key in actual and _matches(value, actual[key]) for key, value in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(desired) == len(actual)
                and all(_matches(d, a) for d, a in zip(desired, actual)))
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    if isinstance(desired, (int, float, str)) and isinstance(actual, (int, float, str)):
        # Int-or-string fields (ports, quantities) come back in either form.
        return desired == actual or str(desired) == str(actual)
    return desired == actual


def differs(desired: dict, cached: dict | None) -> bool:
    """True when applying ``desired`` would change ``cached`` (or create it)."""
    if cached is None:
        return True
    body = {key: value for key, value in desired.items() if key not in ("apiVersion", "kind")}
    metadata = {key: value for key, value in (body.pop("metadata", None) or {}).items()
                if key not in _IGNORED_METADATA}
    cached_meta = cached.get("metadata") or {}
    return not (_owner_references_match(metadata.pop("ownerReferences", []), cached_meta)
                and _matches(metadata, cached_meta) and _matches(body, cached))


def _owner_references_match(desired: list[dict], cached_meta: dict) -> bool:
    """Ours are present: a list merged by uid keeps other owners' references after our apply."""
    by_uid = {ref.get("uid"): ref for ref in cached_meta.get("ownerReferences") or []}
    return all(_matches(ref, by_uid.get(ref.get("uid"))) for ref in desired)


def applied_hash(obj: dict) -> str:
    """A digest of ``obj`` that changes with any field, removals included."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()[:16]


# msgspec's sorted compact JSON equals json.dumps(sort_keys=True, separators=(",", ":"))
# except for non-ASCII characters and DEL (json escapes them; control characters both
# escape alike, and isascii() is 10x faster than a regex over the text) and floats written
# with an exponent by either (1e+16 against 1e16; 1e-05 against 0.00001, msgspec's form
# for 1e-5 <= |x| < 1e-4): such text takes json.dumps, so digests already stored on
# objects stay the same. Inside an object or a list a number follows ":", "[" or ",";
# requiring that keeps hex strings out, as the owner reference's uid ("...-4e5f-..."), which
# sent about half of all Ensembles' objects to json.dumps. A number-like run inside a string
# (":1e5") still only costs the slow path, as does any text not an object or a list.
_EXPONENT = re.compile(rb"[:,\[]-?(?:[0-9]+(?:\.[0-9]+)?[eE]|0\.0000)")


# msgspec's MessagePack writes every float as a float64, after this marker byte. Text whose
# MessagePack lacks the byte holds no float, so the regex above need not read it (5.6 against
# 1.1 us for a desired object); the byte also turns up inside integers, lengths and non-ASCII
# text, which only costs the regex.
_FLOAT64_MARKER = b"\xcb"


def _may_hold_float(obj: Any) -> bool:
    try:
        return _FLOAT64_MARKER in msgspec.msgpack.encode(obj)
    except (TypeError, msgspec.EncodeError):
        return True


def canonical_json(obj: Any) -> bytes:
    """``json.dumps(obj, sort_keys=True, separators=(",", ":"))`` as bytes, about 10x faster."""
    try:
        data = msgspec.json.encode(obj, order="sorted")
    except (TypeError, msgspec.EncodeError):
        data = b"\x80"  # not encodable by msgspec: json.dumps decides
    if (data[:1] in (b"{", b"[") and data.isascii() and b"\x7f" not in data
            and not (_may_hold_float(obj) and _EXPONENT.search(data))):
        return data
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def with_applied_hash(desired: dict, digest: str) -> dict:
    """``desired`` annotated with ``digest``: once the desired object changes in any way,
    the cached annotation no longer matches and ``differs`` says so."""
    meta = desired["metadata"]
    annotations = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**desired, "metadata": {**meta, "annotations": annotations}}
