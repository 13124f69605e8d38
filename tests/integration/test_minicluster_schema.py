"""Our MiniClusters against the Flux Operator's own CRD (hack/crds/minicluster.yaml).

The API server prunes fields a structural schema does not know, silently, unless the
request asks for strict field validation. A field our builders wrote that the Flux
Operator does not know would be lost on a user's cluster (and the reconciler, seeing it
missing, would apply again on every pass), so every MiniCluster built from the upstream
and our own example Ensembles is created strictly and read back whole.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.reconcilers.desired.member import minicluster
from controller.reconcilers.desired.settings import DesiredSettings
from tests.compat import UPSTREAM_EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(UPSTREAM_EXAMPLES.glob("*.yaml")) + sorted((ROOT / "examples").glob("*/ensemble.yaml"))


def missing_from(sent: object, stored: object, path: str = "spec") -> list[str]:
    """Paths of what ``sent`` has and ``stored`` lacks (stored may add defaults)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path]
        return [p for key, value in sent.items()
                for p in (missing_from(value, stored[key], f"{path}.{key}") if key in stored else [f"{path}.{key}"])]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [path]
        return [p for i, (a, b) in enumerate(zip(sent, stored)) for p in missing_from(a, b, f"{path}[{i}]")]
    return [] if sent == stored else [path]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem if p.parent == UPSTREAM_EXAMPLES else p.parent.name)
def test_every_field_of_our_miniclusters_is_known_to_the_flux_operator(
        kube, minicluster_crd: str, ensemble_crd: str, namespace: str, path: Path) -> None:
    ensemble = kube.create(ENSEMBLES, yaml.safe_load(path.read_text()), namespace)  # as defaulted
    for index in range(len(ensemble["spec"]["members"])):
        desired = minicluster(ensemble, index, DesiredSettings())
        try:
            stored = kube.request("POST", MINICLUSTERS.path(namespace), body=desired,
                                  params={"fieldValidation": "Strict"})
        except ApiError as err:
            pytest.fail(f"member {index} of {path.name}: the Flux Operator's schema refuses it: {err}")
        assert missing_from(desired["spec"], stored["spec"]) == []
        assert missing_from(desired["metadata"].get("labels"), stored["metadata"].get("labels"), "labels") == []


def test_the_check_sees_a_field_the_flux_operator_does_not_know(kube, minicluster_crd: str,
                                                                 namespace: str) -> None:
    unknown = {"apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster",
               "metadata": {"name": "unknown-field", "namespace": namespace},
               "spec": {"size": 1, "containers": [{"image": "app:1"}], "notAFluxField": True}}
    with pytest.raises(ApiError, match="notAFluxField"):
        kube.request("POST", MINICLUSTERS.path(namespace), body=unknown, params={"fieldValidation": "Strict"})
    unknown["metadata"]["name"] = "unknown-field-pruned"
    stored = kube.request("POST", MINICLUSTERS.path(namespace), body=unknown)
    assert missing_from(unknown["spec"], stored["spec"]) == ["spec.notAFluxField"]
