"""Names of what an Ensemble owns: one rule, read by the reconciler that creates the
objects, the Role that grants them by name, and the ensemble service that reads them."""
from __future__ import annotations


def member_object_name(ensemble_name: str, index: int) -> str:
    """``<e>-<i>``: member ``i``'s MiniCluster and ConfigMap."""
    return f"{ensemble_name}-{index}"
