"""RBAC as shipped: each identity may make exactly the calls its code makes.

Checked with the API server's own authorizer (SubjectAccessReview through `kubectl auth
can-i --as`), against the manifests' ClusterRole and the Role the reconciler builds for
each ensemble service. A verb the code starts using without RBAC, or RBAC that grows
beyond the code, fails here.
"""
from __future__ import annotations

from pathlib import Path

import json

import pytest

from controller.reconcilers.desired.service import role, role_binding
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
OPERATOR = "system:serviceaccount:ensemble-operator-system:ensemble-operator"

# (resource, verbs the controller uses): informers list/watch, apply = create/patch,
# a live get for objects it just created, deletes of removed members, status patches.
OPERATOR_CALLS = {
    "ensembles.ensemble.flux-framework.org": ("get", "list", "watch"),
    "ensembles.ensemble.flux-framework.org/status": ("patch",),
    "miniclusters.flux-framework.org": ("get", "list", "watch", "create", "patch", "delete"),
    "configmaps": ("get", "list", "watch", "create", "patch", "delete"),
    "services": ("get", "list", "watch", "create", "patch"),
    "serviceaccounts": ("get", "list", "watch", "create", "patch"),
    "deployments.apps": ("get", "list", "watch", "create", "patch"),
    "roles.rbac.authorization.k8s.io": ("get", "list", "watch", "create", "patch"),
    "rolebindings.rbac.authorization.k8s.io": ("get", "list", "watch", "create", "patch"),
    "networkpolicies.networking.k8s.io": ("get", "list", "watch", "create", "patch", "delete"),
    "pods": ("list", "watch"),
    "events.events.k8s.io": ("create", "patch"),
    "tokenreviews.authentication.k8s.io": ("create",),
    "subjectaccessreviews.authorization.k8s.io": ("create",),
}
OPERATOR_NEVER = {
    "pods": ("create", "delete", "patch"),
    "secrets": ("get", "list"),
    "deployments.apps": ("delete",),
    "networkpolicies.networking.k8s.io": ("update", "deletecollection"),
    "ensembles.ensemble.flux-framework.org": ("create", "delete", "patch"),
}


def can_i(cluster, user: str, verb: str, resource: str, namespace: str, name: str | None = None) -> bool:
    subresource = []
    if "/" in resource:
        resource, sub = resource.split("/", 1)
        subresource = [f"--subresource={sub}"]
    target = f"{resource}/{name}" if name else resource
    out = cluster.kubectl("auth", "can-i", verb, target, *subresource, "-n", namespace, "--as", user,
                          check=False)
    return out.strip() == "yes"


@pytest.fixture(scope="module")
def operator_rbac(kube_cluster, ensemble_crd: str, minicluster_crd: str) -> None:
    for name in ("namespace.yaml", "service_account.yaml", "cluster_role.yaml", "cluster_role_binding.yaml",
                 "leader_election_role.yaml", "leader_election_role_binding.yaml"):
        kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(MANIFESTS / name))
    # The authorizer reads RBAC from its own caches: until the binding reaches them, every
    # answer is "no", which the checks of what the operator may not do would take for a pass.
    wait_for(lambda: can_i(kube_cluster, OPERATOR, "list", "ensembles.ensemble.flux-framework.org", "default"),
             30, "the operator's ClusterRoleBinding to take effect")


def test_the_operator_may_make_every_call_it_makes(kube_cluster, operator_rbac, namespace):
    refused = [f"{verb} {resource}" for resource, verbs in OPERATOR_CALLS.items() for verb in verbs
               if not can_i(kube_cluster, OPERATOR, verb, resource, namespace)]
    assert refused == []
    for verb in ("get", "create", "update"):
        assert can_i(kube_cluster, OPERATOR, verb, "leases.coordination.k8s.io", "ensemble-operator-system")


def test_the_operator_may_not_do_more(kube_cluster, operator_rbac, namespace):
    allowed = [f"{verb} {resource}" for resource, verbs in OPERATOR_NEVER.items() for verb in verbs
               if can_i(kube_cluster, OPERATOR, verb, resource, namespace)]
    assert allowed == []
    assert not can_i(kube_cluster, OPERATOR, "get", "leases.coordination.k8s.io", "kube-system")


def test_an_ensemble_service_may_resize_its_own_members_and_nothing_else(
        kube_cluster, operator_rbac, namespace):
    ensemble = {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
                "metadata": {"name": "svc", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
                "spec": {"members": [{"minicluster": {"spec": {}}}, {"minicluster": {"spec": {}}}]}}
    for obj in (role(ensemble), role_binding(ensemble)):
        obj["metadata"].pop("ownerReferences")
        kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    service = f"system:serviceaccount:{namespace}:svc"
    minicluster, ensembles = "miniclusters.flux-framework.org", "ensembles.ensemble.flux-framework.org"
    wait_for(lambda: can_i(kube_cluster, service, "get", ensembles, namespace, "svc"), 30,
             "the service's RoleBinding to take effect")  # before it, every "no" below would pass
    for member in ("svc-0", "svc-1"):
        assert can_i(kube_cluster, service, "get", minicluster, namespace, member)
        assert can_i(kube_cluster, service, "patch", minicluster, namespace, member)
    assert can_i(kube_cluster, service, "get", ensembles, namespace, "svc")
    for verb, resource, name in (("get", minicluster, "svc-2"), ("patch", minicluster, "other-0"),
                                 ("get", ensembles, "other"), ("list", minicluster, None),
                                 ("delete", minicluster, "svc-0"), ("patch", ensembles, "svc"),
                                 ("get", "configmaps", "svc-0"), ("patch", f"{minicluster}/scale", "svc-0")):
        assert not can_i(kube_cluster, service, verb, resource, namespace, name), f"{verb} {resource} {name}"
    assert not can_i(kube_cluster, service, "patch", minicluster, "default", "svc-0")
