"""`ensemble-operator run`'s check that the CRDs it watches are installed, on a real API server:
discovery answers for the served ones, names a missing one, and the operator's ServiceAccount
may ask it (discovery is granted to every authenticated identity)."""
from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import unserved_resources
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, PODS, Resource

pytestmark = pytest.mark.integration

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
OPERATOR = "system:serviceaccount:ensemble-operator-system:ensemble-operator"
WIDGETS = Resource("widgets.example.com", "v1", "widgets", "Widget")


def test_installed_crds_are_served_and_a_missing_one_is_named(kube, ensemble_crd, minicluster_crd) -> None:
    assert unserved_resources(kube, [ENSEMBLES, MINICLUSTERS, PODS]) == []
    assert unserved_resources(kube, [ENSEMBLES, WIDGETS]) == [WIDGETS]


def test_the_operator_may_ask_discovery(kube_cluster, ensemble_crd, minicluster_crd) -> None:
    for path in ("/api/v1", "/apis/ensemble.flux-framework.org/v1alpha1", "/apis/flux-framework.org/v1alpha2"):
        answer = kube_cluster.kubectl("auth", "can-i", "get", path, "--as", OPERATOR, check=False)
        assert answer.strip() == "yes", path
