"""dist/ensemble-operator.yaml, applied as a user would (`kubectl apply -f`): it is what
`kubectl kustomize manifests/` builds, its Deployment is admitted and rolls out on the local
nodes, and an operator holding its ServiceAccount's token runs an example to completion."""
from __future__ import annotations

import pytest
import yaml

from localcluster import LocalCluster
from localenv import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from tests.conftest import ROOT
from tests.integration.installs import (local_system, operator_identity, run_example_to_completion,
                                        service_account_user)

pytestmark = pytest.mark.integration

DIST = ROOT / "dist" / "ensemble-operator.yaml"


def by_kind_and_name(documents) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in documents if d}


def test_the_one_file_install_is_what_kustomize_builds_from_the_manifests(kube_cluster) -> None:
    built = by_kind_and_name(yaml.safe_load_all(kube_cluster.kubectl("kustomize", str(ROOT / "manifests"))))
    assert by_kind_and_name(yaml.safe_load_all(DIST.read_text())) == built


def apply_dist(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "-f", str(DIST))
    # Admitted in the restricted namespace and scheduled: kwok marks the pod ready (it runs no
    # container; the operator runs as a process below).
    cluster.kubectl("-n", OPERATOR_NAMESPACE, "rollout", "status", "deployment/ensemble-operator", "--timeout=120s")


def test_kubectl_apply_of_the_one_file_install_runs_an_example_to_completion() -> None:
    with local_system(apply_dist, OPERATOR_SERVICE_ACCOUNT) as env:
        assert operator_identity(env) == service_account_user(OPERATOR_SERVICE_ACCOUNT)
        tables = run_example_to_completion(env, "dist-example")
    assert tables[-1].startswith("Ensemble dist-example/hello-world: phase Completed"), tables[-1]
