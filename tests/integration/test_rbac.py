"""RBAC as shipped: each identity may make exactly the calls its code makes.

Checked with the API server's own authorizer (SubjectAccessReview through `kubectl auth
can-i --as`), against the manifests' ClusterRole and the Role the reconciler builds for
each ensemble service. A verb the code starts using without RBAC, or RBAC that grows
beyond the code, fails here.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import yaml

from controller.kube.client import KubeClient
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, NETWORKPOLICIES, ROLES, SERVICEACCOUNTS
from controller.reconcilers import setup
from controller.reconcilers.desired.service import role, role_binding
from controller.runtime import Manager
from tests.compat import UPSTREAM_EXAMPLES
from tests.helpers import wait_for
from tests.integration.objects import get_or_none
from tests.integration.running import RunningManager

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
    "jobs.batch": ("list", "watch"),
    "events.events.k8s.io": ("create", "patch"),
    "tokenreviews.authentication.k8s.io": ("create",),
    "subjectaccessreviews.authorization.k8s.io": ("create",),
}
OPERATOR_NEVER = {
    "pods": ("create", "delete", "patch"),
    "jobs.batch": ("get", "create", "delete", "patch"),
    "secrets": ("get", "list"),
    "deployments.apps": ("delete",),
    "networkpolicies.networking.k8s.io": ("update", "deletecollection"),
    "ensembles.ensemble.flux-framework.org": ("create", "delete", "patch"),
}


def can_i(cluster, user: str, verb: str, resource: str, namespace: str, name: str | None = None, *,
          all_namespaces: bool = False) -> bool:
    subresource = []
    if "/" in resource:
        resource, sub = resource.split("/", 1)
        subresource = [f"--subresource={sub}"]
    target = f"{resource}/{name}" if name else resource
    scope = ["--all-namespaces"] if all_namespaces else ["-n", namespace]
    out = cluster.kubectl("auth", "can-i", verb, target, *subresource, *scope, "--as", user, check=False)
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
    for verb in ("list", "watch"):  # its cache of the pods that call it, and of their Jobs
        assert can_i(kube_cluster, service, verb, "pods", namespace, None)
        assert can_i(kube_cluster, service, verb, "jobs.batch", namespace, None)
    for verb, resource, name in (("get", minicluster, "svc-2"), ("patch", minicluster, "other-0"),
                                 ("get", ensembles, "other"), ("list", minicluster, None),
                                 ("delete", minicluster, "svc-0"), ("patch", ensembles, "svc"),
                                 ("get", "configmaps", "svc-0"), ("patch", f"{minicluster}/scale", "svc-0"),
                                 ("get", "pods", "svc-0-0"), ("create", "pods", None), ("patch", "pods", "x"),
                                 ("delete", "pods", "x"), ("get", "pods/log", "x"), ("create", "pods/exec", "x"),
                                 ("get", "jobs.batch", "svc-0"), ("create", "jobs.batch", None),
                                 ("delete", "jobs.batch", "svc-0")):
        assert not can_i(kube_cluster, service, verb, resource, namespace, name), f"{verb} {resource} {name}"
    assert not can_i(kube_cluster, service, "patch", minicluster, "default", "svc-0")
    assert not can_i(kube_cluster, service, "list", "pods", "default", None)


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}
# Reviews store nothing: every authenticated user may create the self- ones, the operator the others.
REVIEWS = {"selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io",
           "selfsubjectreviews.authentication.k8s.io", "tokenreviews.authentication.k8s.io",
           "subjectaccessreviews.authorization.k8s.io"}


def namespaced_install(kube_cluster, operator_namespace: str, watched: str) -> list[dict]:
    """manifests-namespaced/ as kustomize builds it, for this operator namespace and watched namespace."""
    built = kube_cluster.kubectl("kustomize", str(MANIFESTS.parent / "manifests-namespaced"))
    built = built.replace("ensemble-operator-system", operator_namespace)
    built = re.sub(r"(?m)^(\s*(?:name|namespace): )ensembles$", rf"\g<1>{watched}", built)
    return [doc for doc in yaml.safe_load_all(built.replace("--namespaces=ensembles", f"--namespaces={watched}"))
            if doc]


def writes_anywhere(kube_cluster, user: str, namespace: str) -> list[str]:
    """Resources ``user`` may write in ``namespace`` (cluster-wide rights show in every one)."""
    out = kube_cluster.kubectl("auth", "can-i", "--list", "--as", user, "-n", namespace)
    writes = []
    for line in out.splitlines()[1:]:
        resource, verbs = line.split()[0] if line.strip() else "", re.findall(r"\[([^\]]*)\]", line)
        if resource and not resource.startswith("[") and resource not in REVIEWS and verbs \
                and WRITE_VERBS & set(verbs[-1].split()):
            writes.append(resource)
    return writes


def test_a_namespaced_install_acts_in_its_namespace_only_and_holds_no_cluster_wide_write(
        kube_cluster, kube, operator_rbac, minicluster_crd, namespace):
    operator_namespace = f"{namespace}-op"
    operator = f"system:serviceaccount:{operator_namespace}:ensemble-operator"
    docs = namespaced_install(kube_cluster, operator_namespace, namespace)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert f"--namespaces={namespace}" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "ensemble-operator"]
    rbac = [d for d in docs if d["kind"] in ("Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                              "ClusterRoleBinding") and d["metadata"]["name"] != namespace]
    try:
        kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                             input="\n---\n".join(json.dumps(d) for d in rbac))
        wait_for(lambda: can_i(kube_cluster, operator, "list", "ensembles.ensemble.flux-framework.org", namespace),
                 30, "the namespaced install's RoleBinding to take effect")
        namespaced = {resource: verbs for resource, verbs in OPERATOR_CALLS.items() if resource not in REVIEWS}
        refused = [f"{verb} {resource}" for resource, verbs in namespaced.items() for verb in verbs
                   if not can_i(kube_cluster, operator, verb, resource, namespace)]
        assert refused == []
        for review in ("tokenreviews.authentication.k8s.io", "subjectaccessreviews.authorization.k8s.io"):
            assert can_i(kube_cluster, operator, "create", review, namespace)
        elsewhere = [f"{verb} {resource}" for resource, verbs in namespaced.items() for verb in verbs
                     if can_i(kube_cluster, operator, verb, resource, "default")]
        assert elsewhere == []
        assert writes_anywhere(kube_cluster, operator, "default") == []
        assert "configmaps" in writes_anywhere(kube_cluster, OPERATOR, "default")  # as the cluster-wide install
        assert not can_i(kube_cluster, operator, "create", "configmaps", namespace, None, all_namespaces=True)
        for verb, resource in (("create", "namespaces"), ("patch", "clusterroles.rbac.authorization.k8s.io"),
                               ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
                               ("delete", "customresourcedefinitions.apiextensions.k8s.io")):
            assert not can_i(kube_cluster, operator, verb, resource, namespace), f"{verb} {resource}"
        reconciles_as(kube_cluster, kube, operator_namespace, namespace)
    finally:
        kube_cluster.kubectl("delete", "clusterrolebinding", "ensemble-operator-metrics-auth", "--ignore-not-found",
                             check=False)
        kube_cluster.kubectl("delete", "namespace", operator_namespace, "--wait=false", "--ignore-not-found",
                             check=False)


def reconciles_as(kube_cluster, kube, operator_namespace: str, watched: str) -> None:
    """The controller, with --namespaces and the namespaced install's token, reconciles an Ensemble."""
    token = kube.request("POST", SERVICEACCOUNTS.path(operator_namespace, "ensemble-operator", "token"),
                         body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                               "spec": {"expirationSeconds": 600}})["status"]["token"]
    client = KubeClient.with_token(kube_cluster.server, token, kube_cluster.ca_file)
    manager = Manager(client, namespaces=[watched], metrics_port=None, health_port=None, cache_sync_timeout=30)
    setup(manager, argparse.Namespace(operator_image="op:test", workers=2))
    runner = RunningManager(manager)
    try:
        wait_for(manager.is_ready, 30, "the namespaced controller's caches to sync")
        example = yaml.safe_load((UPSTREAM_EXAMPLES / "hello-world.yaml").read_text())
        example["metadata"] = {"name": "ns-install", "namespace": watched}
        kube.create(ENSEMBLES, example, watched)
        wait_for(lambda: ((get_or_none(kube, ENSEMBLES, "ns-install", watched) or {}).get("status") or {})
                 .get("observedGeneration") == 1, 30, "the Ensemble's status from the namespaced controller")
        for res, name in ((MINICLUSTERS, "ns-install-0"), (NETWORKPOLICIES, "ns-install-grpc"),
                          (ROLES, "ns-install")):
            assert get_or_none(kube, res, name, watched) is not None, f"{res.kind} {name}"
    finally:
        runner.stop()
