"""Which ensemble service an Ensemble runs: the operator's (``operator``) or upstream's (``upstream``).

``operator`` runs this project's service from the operator image (grow/shrink within bounds, the
budget's fair share, its status view). ``upstream`` runs ``spec.sidecar.image`` with upstream's
command, ``ensemble-server start ...``, exactly as upstream's operator creates it, so a user's own
ensemble-python service image, and whatever ensemble-python's service adds, runs unchanged.
``spec.sidecar.mode`` chooses; unset, an image of upstream's own service repositories (which cannot
run ours: they have no ``ensemble-operator`` command, and upstream Ensembles name them) means
``operator``, and any other image means ``upstream``.
"""
from __future__ import annotations

from typing import Any

OPERATOR = "operator"
UPSTREAM = "upstream"
SERVICE_MODES = (OPERATOR, UPSTREAM)

# Images of upstream's ensemble service: ensemble-python (upstream's examples) and
# ensemble-operator-api (the default of upstream's CRD, so an Ensemble exported from an upstream
# cluster carries it).
UPSTREAM_SERVICE_REPOSITORIES = ("ghcr.io/converged-computing/ensemble-python",
                                 "ghcr.io/converged-computing/ensemble-operator-api")


def image_repository(image: str) -> str:
    """``registry/name`` without ``:tag`` or ``@digest`` (a registry port is kept)."""
    without_digest = image.split("@", 1)[0]
    slash = without_digest.rfind("/")
    colon = without_digest.rfind(":")
    return without_digest[:colon] if colon > slash else without_digest


def is_upstream_default_image(image: str | None) -> bool:
    return not image or image_repository(image) in UPSTREAM_SERVICE_REPOSITORIES


def service_mode(sidecar: Any) -> str:
    """The mode of an Ensemble's ``spec.sidecar`` (a dict, possibly missing)."""
    sidecar = sidecar if isinstance(sidecar, dict) else {}
    mode = sidecar.get("mode")
    if mode in SERVICE_MODES:
        return str(mode)
    return OPERATOR if is_upstream_default_image(sidecar.get("image")) else UPSTREAM
