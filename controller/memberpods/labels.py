"""The labels the operator puts on what it owns, and the selectors that find them again.

The operator sets them (the desired objects, the MiniClusters' ``spec.pod.labels``) and the
operator and the ensemble service select by them; one home, so the two never disagree.
Labels only narrow a watch: anyone who may create pods may set them, so ownership is
checked separately (``leadbroker``).
"""
from __future__ import annotations

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "ensemble-operator"
ENSEMBLE_LABEL = "ensemble.flux-framework.org/name"
MEMBER_LABEL = "ensemble.flux-framework.org/member"

# Every object the operator owns carries this label, so informers can watch only those.
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
# Member pods carry our labels too (set through the MiniCluster's spec.pod.labels).
MEMBER_POD_SELECTOR = f"{MANAGED_SELECTOR},{MEMBER_LABEL}"


def member_pod_selector(ensemble: str) -> str:
    """The member pods of one Ensemble (the ensemble service's pod cache)."""
    return f"{MANAGED_SELECTOR},{ENSEMBLE_LABEL}={ensemble},{MEMBER_LABEL}"
