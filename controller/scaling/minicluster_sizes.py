"""The sizes the Flux Operator accepts for a MiniCluster (read from its controller at the
commit whose CRD we vendor, and seen running it).

It refuses a ``spec.size`` of 0, above ``spec.maxSize`` or below ``spec.minSize``: it logs,
leaves the size in the spec and keeps the Job as it was. It also refuses a size above
``status.maximumSize`` (the larger of size and maxSize when it first reconciled the
MiniCluster; a later maxSize does not raise it) and patches the spec back to that. So the
service must never write such a size, and the Ensemble's status must never claim one.
``status.size`` is 0 until its first resize, then the size it last gave the Job.
"""
from __future__ import annotations


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def maximum_size(minicluster: dict) -> int | None:
    """``status.maximumSize`` once the Flux Operator has recorded it (0 or absent: not yet)."""
    value = _int(((minicluster.get("status") or {}).get("maximumSize")))
    return value if value else None


def refusal(minicluster: dict, size: int) -> str | None:
    """Why the Flux Operator would refuse ``size`` for this MiniCluster, or None."""
    spec = minicluster.get("spec") or {}
    min_size, max_size, ceiling = _int(spec.get("minSize")), _int(spec.get("maxSize")), maximum_size(minicluster)
    if size < 1:
        return f"size {size} < 1"
    if max_size and size > max_size:
        return f"size {size} > spec.maxSize {max_size}"
    if min_size and size < min_size:
        return f"size {size} < spec.minSize {min_size}"
    if ceiling is not None and size > ceiling:
        return f"size {size} > status.maximumSize {ceiling}"
    return None


def accepted_size(minicluster: dict, fallback: int) -> int:
    """The size the Flux Operator runs the MiniCluster at: ``spec.size`` unless it refuses it,
    then the size it last gave the Job (``status.size``), else ``fallback`` (the size the
    MiniCluster was created with)."""
    spec_size = _int((minicluster.get("spec") or {}).get("size"))
    if spec_size is not None and refusal(minicluster, spec_size) is None:
        return spec_size
    status_size = _int((minicluster.get("status") or {}).get("size"))
    return status_size if status_size else fallback


def effective_max_size(configured: int, minicluster: dict | None) -> int:
    """The Ensemble's ``maxSize`` for a member, capped by the Flux Operator's ``status.maximumSize``."""
    ceiling = maximum_size(minicluster or {})
    return configured if ceiling is None else min(configured, ceiling)
