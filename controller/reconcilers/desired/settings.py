"""What the builders need besides the Ensemble: the operator's own image and ports."""
from __future__ import annotations

from dataclasses import dataclass

from api.v1alpha1.service_mode import UPSTREAM_SERVICE_REPOSITORIES, image_repository

__all__ = ["UPSTREAM_SERVICE_REPOSITORIES", "image_repository"]  # also at home here: what builders read

# Our operator image: it carries both the ensemble service and the member status endpoint. Its tag is
# the release version (pyproject.toml), as in manifests/ and the chart (tests/unit/test_release.py).
DEFAULT_OPERATOR_IMAGE = "ghcr.io/converged-computing/ensemble-operator-python:0.1.0"
DEFAULT_SERVICE_PORT = 50051
DEFAULT_SERVICE_WORKERS = 10
DEFAULT_MEMBER_STATUS_PORT = 50052

# Where manifests/ installs the operator, and its pods' labels there: the sources that
# NetworkPolicies let reach ensemble services and member status ports.
DEFAULT_OPERATOR_NAMESPACE = "ensemble-operator-system"
OPERATOR_POD_LABELS = (("app.kubernetes.io/name", "ensemble-operator"),)


@dataclass(frozen=True)
class DesiredSettings:
    operator_image: str = DEFAULT_OPERATOR_IMAGE
    member_status_port: int = DEFAULT_MEMBER_STATUS_PORT
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    operator_pod_labels: tuple[tuple[str, str], ...] = OPERATOR_POD_LABELS
    # The ensemble services' rate limit (``service --rate-limit-qps/--rate-limit-burst``); None: its default.
    service_rate_limit_qps: float | None = None
    service_rate_limit_burst: int | None = None
