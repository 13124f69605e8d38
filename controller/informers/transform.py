"""What the informer drops before caching: fields that cost memory and serve no reader.

managedFields (server-side apply bookkeeping) and kubectl's last-applied annotation
are often the largest part of an object; nothing in a controller reads them from a cache.
"""
from __future__ import annotations

from typing import Any, Callable

Transform = Callable[[dict[str, Any]], dict[str, Any]]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def default_transform(obj: dict[str, Any]) -> dict[str, Any]:
    """Strip managedFields and the last-applied annotation, in place (objects are fresh from JSON)."""
    metadata = obj.get("metadata")
    if metadata:
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if annotations:
            annotations.pop(LAST_APPLIED_ANNOTATION, None)
    return obj

