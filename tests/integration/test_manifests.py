"""The install manifests: complete, and accepted by a real API server."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk


def test_operator_deployment_is_locked_down() -> None:
    deployment = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_operator_pod_outlives_the_managers_shutdown() -> None:
    """SIGKILL must not come before the drain (a hung reconcile: the whole Controller.shutdown
    timeout), the queued Events (EventRecorder.stop) and the lease release that follow it."""
    from inspect import signature

    from controller.runtime.controller import Controller
    from controller.runtime.events import EventRecorder

    pod = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())["spec"]["template"]["spec"]
    drain = signature(Controller.shutdown).parameters["timeout"].default
    events = signature(EventRecorder.stop).parameters["timeout"].default
    assert pod.get("terminationGracePeriodSeconds", 30) >= drain + events + 10


def test_every_manifest_applies_to_the_api_server(kube_cluster) -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    for name in listed:  # in order: the namespace and CRD before what lives in them
        kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(MANIFESTS / name))
    out = kube_cluster.kubectl("get", "deployment", "ensemble-operator", "-n", "ensemble-operator-system",
                               "-o", "name")
    assert out.strip() == "deployment.apps/ensemble-operator"


def test_the_namespaced_install_role_holds_the_cluster_roles_namespaced_rules() -> None:
    """manifests-namespaced/role.yaml must not drift from the ClusterRole the code is checked against."""
    cluster_role = yaml.safe_load((MANIFESTS / "cluster_role.yaml").read_text())
    role = yaml.safe_load((MANIFESTS.parent / "manifests-namespaced" / "role.yaml").read_text())
    cluster_scoped = {"tokenreviews", "subjectaccessreviews"}
    assert role["rules"] == [rule for rule in cluster_role["rules"] if not set(rule["resources"]) <= cluster_scoped]
