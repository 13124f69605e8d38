"""Which MiniClusters belong to this service's Ensemble (by controller ownerReference)."""
from __future__ import annotations

from controller.kube.resources import ENSEMBLES


def controller_owner(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owned_by(obj: dict, ensemble_name: str, ensemble_uid: str | None) -> bool:
    """True when ``obj``'s controller is the Ensemble ``ensemble_name`` (and uid, when known).

    The uid check keeps a recreated Ensemble of the same name from adopting leftovers.
    """
    ref = controller_owner(obj)
    if ref is None:
        return False
    group = str(ref.get("apiVersion", "")).split("/", 1)[0]
    return (ref.get("kind") == ENSEMBLES.kind and group == ENSEMBLES.group
            and ref.get("name") == ensemble_name
            and (ensemble_uid is None or ref.get("uid") == ensemble_uid))


def describe_owner(obj: dict) -> str:
    ref = controller_owner(obj)
    if ref is None:
        return "no controller owner"
    return f"controlled by {ref.get('kind')} {ref.get('name')!r} (uid {ref.get('uid')})"
