"""A real Manager against the local control plane, running a toy ConfigMap controller.

The toy controller copies each ConfigMap's data into a Secret it owns, so events on the
primary and on owned objects, cached reads, Events, probes, metrics and leader election
are all exercised end to end.
"""
from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.kube.resources import CLUSTERROLEBINDINGS, CONFIGMAPS, EVENTS, LEASES, SECRETS, SERVICEACCOUNTS
from controller.runtime import ControllerBuilder, Manager, Request, Result
from controller.runtime.certs import server_context
from tests.helpers import https_get, wait_for
from tests.integration.objects import get_or_none
from tests.integration.running import RunningManager

pytestmark = pytest.mark.integration

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


class CopyToSecret:
    """Reads the ConfigMap from the cache and creates a Secret it controls."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.cache = manager.cache(CONFIGMAPS)
        self.seen: list[Request] = []
        self.lock = threading.Lock()

    def reconcile(self, request: Request) -> Result:
        with self.lock:
            self.seen.append(request)
        configmap = self.cache.get(request.name, request.namespace)
        if configmap is None or not request.name.startswith("src-"):
            return Result()
        meta = configmap["metadata"]
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": f"{request.name}-copy", "namespace": request.namespace,
                               "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                    "name": meta["name"], "uid": meta["uid"],
                                                    "controller": True}]},
                  "stringData": configmap.get("data") or {}}
        self.manager.client.apply(SECRETS, secret, field_manager="toy-controller")
        self.manager.events.event(configmap, "Normal", "Copied", f"copied to {request.name}-copy")
        return Result()

    def count(self, request: Request) -> int:
        with self.lock:
            return self.seen.count(request)


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def toy_manager(kube_cluster, namespace: str, **options) -> tuple[Manager, CopyToSecret]:
    manager = Manager(kube_cluster.admin_client(), namespaces=[namespace], metrics_port=0,
                      health_port=0, metrics_host="127.0.0.1", health_host="127.0.0.1", **options)
    reconciler = CopyToSecret(manager)
    ControllerBuilder(manager).named("toy").for_(CONFIGMAPS).owns(SECRETS).complete(reconciler)
    return manager, reconciler


@pytest.fixture
def running(kube_cluster, namespace) -> Iterator[tuple[Manager, CopyToSecret]]:
    manager, reconciler = toy_manager(kube_cluster, namespace)
    runner = RunningManager(manager)
    yield manager, reconciler
    runner.stop()


def configmap(name: str, namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def test_events_flow_from_configmaps_to_owned_secrets(kube, namespace, running):
    manager, reconciler = running
    wait_for(manager.is_ready, 20, "the manager to be ready")
    assert http_status(manager.health_server.port, "/readyz") == 200
    assert http_status(manager.health_server.port, "/healthz") == 200
    kube.create(CONFIGMAPS, configmap("src-a", namespace, {"k": "v"}), namespace)
    secret = wait_for(lambda: get_or_none(kube, SECRETS, "src-a-copy", namespace), 20, "the Secret src-a-copy")
    assert secret["metadata"]["ownerReferences"][0]["name"] == "src-a"

    # An event on the owned Secret wakes up its owner, the ConfigMap.
    request = Request(namespace, "src-a")
    # The ConfigMap's add, then the Secret's.
    wait_for(lambda: reconciler.count(request) >= 2, 20, "two reconciles of src-a")
    before = reconciler.count(request)
    kube.patch(SECRETS, "src-a-copy", {"metadata": {"labels": {"touched": "yes"}}}, namespace=namespace)
    wait_for(lambda: reconciler.count(request) > before, 20, "a reconcile after the Secret changed")

    # The recorded Event reaches the API server as an events.k8s.io/v1 Event.
    events = wait_for(lambda: [e for e in kube.list(EVENTS, namespace)["items"]
                                 if e.get("reason") == "Copied"], 20, "the Copied Event")
    assert events[0]["regarding"]["name"] == "src-a"
    assert events[0]["reportingController"] == "ensemble-operator"

    with urllib.request.urlopen(f"http://127.0.0.1:{manager.metrics_server.port}/metrics",
                                timeout=5) as response:
        metrics = response.read().decode()
    assert 'controller_runtime_reconcile_total{controller="toy",result="success"}' in metrics
    assert 'workqueue_adds_total{name="toy"}' in metrics


def test_deleting_the_primary_is_reconciled_from_the_cache(kube, namespace, running):
    manager, reconciler = running
    wait_for(manager.is_ready, 20, "the manager to be ready")
    kube.create(CONFIGMAPS, configmap("plain", namespace, {}), namespace)
    request = Request(namespace, "plain")
    wait_for(lambda: reconciler.count(request) >= 1, 20, "a reconcile of plain")
    seen = reconciler.count(request)
    kube.delete(CONFIGMAPS, "plain", namespace)
    wait_for(lambda: reconciler.count(request) > seen, 20, "a reconcile after plain was deleted")
    wait_for(lambda: manager.cache(CONFIGMAPS).get("plain", namespace) is None, 20, "plain to leave the cache")


def test_the_second_manager_leads_once_the_first_stops_and_releases(kube_cluster, kube, namespace):
    timing = {"leader_election": True, "leader_election_namespace": namespace,
              "leader_election_id": "toy-leader", "lease_duration": 4.0, "renew_deadline": 3.0,
              "retry_period": 0.5}
    first, first_reconciler = toy_manager(kube_cluster, namespace, identity="first", **timing)
    second, second_reconciler = toy_manager(kube_cluster, namespace, identity="second", **timing)
    first_run = RunningManager(first)
    wait_for(lambda: first.is_leader, 20, "the first manager to lead")
    second_run = RunningManager(second)
    try:
        wait_for(second.is_ready, 20, "the second manager to be ready")   # ready while not leading
        assert kube.get(LEASES, "toy-leader", namespace)["spec"]["holderIdentity"] == "first"
        kube.create(CONFIGMAPS, configmap("src-before", namespace, {"a": "1"}), namespace)
        wait_for(lambda: first_reconciler.count(Request(namespace, "src-before")), 20,
                 "the leader to reconcile src-before")
        assert second_reconciler.seen == [] and not second.is_leader

        first_run.stop()
        # Released, not left to expire: without the release the lease still names "first" for 4 s.
        assert kube.get(LEASES, "toy-leader", namespace)["spec"]["holderIdentity"] in ("", "second")
        wait_for(lambda: second.is_leader, 20, "the second manager to lead")
        lease = kube.get(LEASES, "toy-leader", namespace)["spec"]
        assert lease["holderIdentity"] == "second" and lease["leaseTransitions"] >= 1
        kube.create(CONFIGMAPS, configmap("src-after", namespace, {"b": "2"}), namespace)
        wait_for(lambda: second_reconciler.count(Request(namespace, "src-after")), 20,
                 "the new leader to reconcile src-after")
    finally:
        second_run.stop()
    assert kube.get(LEASES, "toy-leader", namespace)["spec"]["holderIdentity"] == ""


def test_a_manager_whose_lease_is_taken_stops_with_leader_election_lost(kube_cluster, kube, namespace):
    manager, _ = toy_manager(kube_cluster, namespace, identity="victim", leader_election=True,
                             leader_election_namespace=namespace, leader_election_id="toy-lost",
                             lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)
    runner = RunningManager(manager)
    wait_for(lambda: manager.is_leader, 20, "the manager to lead")
    lease = kube.get(LEASES, "toy-lost", namespace)
    lease["spec"]["holderIdentity"] = "intruder"
    kube.replace(LEASES, lease)
    runner.thread.join(30)
    assert not runner.thread.is_alive()
    assert type(runner.error).__name__ == "LeaderElectionLost"
    assert kube.get(LEASES, "toy-lost", namespace)["spec"]["holderIdentity"] == "intruder"


def bound_port(manager: Manager) -> int | None:
    try:
        return manager.metrics_server.port if manager.metrics_server is not None else None
    except RuntimeError:  # not started yet
        return None


def test_secure_metrics_serve_only_a_caller_rbac_lets_get_metrics(kube_cluster, kube, namespace) -> None:
    manager = Manager(kube_cluster.admin_client(), namespaces=[namespace], metrics_host="127.0.0.1",
                      metrics_port=0, health_port=None, secure_metrics=server_context(None))
    runner = RunningManager(manager)
    binding = f"{namespace}-metrics-reader"
    try:
        kube.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                      "metadata": {"name": "scraper", "namespace": namespace}}, namespace)
        token = kube.request("POST", SERVICEACCOUNTS.path(namespace, "scraper", "token"), body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600}})["status"]["token"]
        port = wait_for(lambda: bound_port(manager), 20, "the metrics server")
        assert https_get(port, "/metrics")[0] == 401
        assert https_get(port, "/metrics", "forged")[0] == 401
        assert https_get(port, "/metrics", token) == (
            403, f"Forbidden: user 'system:serviceaccount:{namespace}:scraper' may not get /metrics")
        kube_cluster.kubectl("apply", "--server-side", "-f", str(MANIFESTS / "metrics_reader_role.yaml"))
        kube.create(CLUSTERROLEBINDINGS, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "ensemble-operator-metrics-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": namespace}]})
        status, body = wait_for(lambda: (answer := https_get(port, "/metrics", token))[0] == 200 and answer,
                                30,
                                "the bound scraper to be served (after the 10 s the refusal is kept)")
        assert "informer_undecodable_objects_total" in body
    finally:
        runner.stop()
        kube_cluster.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)
