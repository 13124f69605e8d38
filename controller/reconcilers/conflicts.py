"""No adoption: an object the Ensemble would own, but that exists without its controller reference.

Server-side apply with force takes over any object of the same name: an object that existed
before the Ensemble (a tenant's ConfigMap, another controller's Service, what a deleted
Ensemble of the same name left for garbage collection) would be rewritten, get our owner
reference, and be deleted with the Ensemble. Such an object is left alone instead, and the
Ensemble says so: a ``Conflict`` condition and a Warning Event name it.
"""
from __future__ import annotations

from controller.reconcilers.status import set_condition

CONFLICT = "Conflict"


def controlled_by(obj: dict, ensemble: dict) -> bool:
    """True when ``obj``'s controller owner reference is this Ensemble (by uid, which a
    re-created Ensemble of the same name does not share)."""
    uid = (ensemble.get("metadata") or {}).get("uid")
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return bool(uid) and ref.get("uid") == uid and ref.get("kind") == ensemble.get("kind", "Ensemble")
    return False


def conflict_message(kind: str, namespace: str, name: str) -> str:
    return (f"{kind} {namespace}/{name} exists and is not controlled by this Ensemble; it is left alone "
            f"(delete or rename it, and the Ensemble creates its own)")


def with_conflicts(status: dict, conflicts: list[str], generation: int | None, stamp: str) -> dict:
    """``status`` with the ``Conflict`` condition: True naming every conflict, False once a
    conflict reported before is gone, absent when there never was one."""
    conditions = list(status.get("conditions") or [])
    if conflicts:
        message = "; ".join(conflicts)
        conditions = set_condition(conditions, CONFLICT, "True", "ObjectNotOwned", message, generation, stamp)
    elif any(c.get("type") == CONFLICT for c in conditions):
        conditions = set_condition(conditions, CONFLICT, "False", "NoConflict",
                                   "Every object of the Ensemble is controlled by it.", generation, stamp)
    return {**status, "conditions": conditions}
