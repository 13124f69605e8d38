"""A real Manager against the local control plane, running a toy ConfigMap controller.

The toy controller copies each ConfigMap's data into a Secret it owns, so events on the
primary and on owned objects, cached reads, Events, probes, metrics and leader election
are all exercised end to end.
"""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from controller.kube.errors import is_not_found
from controller.kube.resources import CONFIGMAPS, EVENTS, LEASES, SECRETS
from controller.runtime import ControllerBuilder, Manager, Request, Result

pytestmark = pytest.mark.integration


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


def eventually(condition: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.1)


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


class Running:
    """A manager started in a thread, with the outcome of ``start`` kept."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.manager.start()
        except BaseException as err:  # reported by stop()
            self.error = err

    def stop(self) -> None:
        self.manager.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "manager did not stop within 30s"
        assert self.error is None, f"manager.start failed: {self.error!r}"


def toy_manager(kube_cluster, namespace: str, **options) -> tuple[Manager, CopyToSecret]:
    manager = Manager(kube_cluster.admin_client(), namespaces=[namespace], metrics_port=0,
                      health_port=0, metrics_host="127.0.0.1", health_host="127.0.0.1", **options)
    reconciler = CopyToSecret(manager)
    ControllerBuilder(manager).named("toy").for_(CONFIGMAPS).owns(SECRETS).complete(reconciler)
    return manager, reconciler


@pytest.fixture
def running(kube_cluster, namespace) -> Iterator[tuple[Manager, CopyToSecret]]:
    manager, reconciler = toy_manager(kube_cluster, namespace)
    runner = Running(manager)
    yield manager, reconciler
    runner.stop()


def configmap(name: str, namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def get_or_none(kube, res, name: str, namespace: str) -> dict | None:
    try:
        return kube.get(res, name, namespace)
    except Exception as err:
        if is_not_found(err):
            return None
        raise


def test_events_flow_from_configmaps_to_owned_secrets(kube, namespace, running):
    manager, reconciler = running
    eventually(manager.is_ready)
    assert http_status(manager.health_server.port, "/readyz") == 200
    assert http_status(manager.health_server.port, "/healthz") == 200
    kube.create(CONFIGMAPS, configmap("src-a", namespace, {"k": "v"}), namespace)
    secret = eventually(lambda: get_or_none(kube, SECRETS, "src-a-copy", namespace))
    assert secret["metadata"]["ownerReferences"][0]["name"] == "src-a"

    # An event on the owned Secret wakes up its owner, the ConfigMap.
    request = Request(namespace, "src-a")
    eventually(lambda: reconciler.count(request) >= 2)   # the ConfigMap's add, then the Secret's
    before = reconciler.count(request)
    kube.patch(SECRETS, "src-a-copy", {"metadata": {"labels": {"touched": "yes"}}}, namespace=namespace)
    eventually(lambda: reconciler.count(request) > before)

    # The recorded Event reaches the API server as an events.k8s.io/v1 Event.
    events = eventually(lambda: [e for e in kube.list(EVENTS, namespace)["items"]
                                 if e.get("reason") == "Copied"])
    assert events[0]["regarding"]["name"] == "src-a"
    assert events[0]["reportingController"] == "ensemble-operator"

    with urllib.request.urlopen(f"http://127.0.0.1:{manager.metrics_server.port}/metrics",
                                timeout=5) as response:
        metrics = response.read().decode()
    assert 'controller_runtime_reconcile_total{controller="toy",result="success"}' in metrics
    assert 'workqueue_adds_total{name="toy"}' in metrics


def test_deleting_the_primary_is_reconciled_from_the_cache(kube, namespace, running):
    manager, reconciler = running
    eventually(manager.is_ready)
    kube.create(CONFIGMAPS, configmap("plain", namespace, {}), namespace)
    request = Request(namespace, "plain")
    eventually(lambda: reconciler.count(request) >= 1)
    seen = reconciler.count(request)
    kube.delete(CONFIGMAPS, "plain", namespace)
    eventually(lambda: reconciler.count(request) > seen)
    eventually(lambda: manager.cache(CONFIGMAPS).get("plain", namespace) is None)


def test_the_second_manager_leads_once_the_first_stops_and_releases(kube_cluster, kube, namespace):
    timing = {"leader_election": True, "leader_election_namespace": namespace,
              "leader_election_id": "toy-leader", "lease_duration": 4.0, "renew_deadline": 3.0,
              "retry_period": 0.5}
    first, first_reconciler = toy_manager(kube_cluster, namespace, identity="first", **timing)
    second, second_reconciler = toy_manager(kube_cluster, namespace, identity="second", **timing)
    first_run = Running(first)
    eventually(lambda: first.is_leader)
    second_run = Running(second)
    try:
        eventually(second.is_ready)   # ready while not leading
        assert kube.get(LEASES, "toy-leader", namespace)["spec"]["holderIdentity"] == "first"
        kube.create(CONFIGMAPS, configmap("src-before", namespace, {"a": "1"}), namespace)
        eventually(lambda: first_reconciler.count(Request(namespace, "src-before")))
        assert second_reconciler.seen == [] and not second.is_leader

        stopped_at = time.monotonic()
        first_run.stop()
        assert kube.get(LEASES, "toy-leader", namespace)["spec"]["holderIdentity"] in ("", "second")
        eventually(lambda: second.is_leader)
        assert time.monotonic() - stopped_at < 4.0, "took over by expiry, not by release"
        lease = kube.get(LEASES, "toy-leader", namespace)["spec"]
        assert lease["holderIdentity"] == "second" and lease["leaseTransitions"] >= 1
        kube.create(CONFIGMAPS, configmap("src-after", namespace, {"b": "2"}), namespace)
        eventually(lambda: second_reconciler.count(Request(namespace, "src-after")))
    finally:
        second_run.stop()
    assert kube.get(LEASES, "toy-leader", namespace)["spec"]["holderIdentity"] == ""


def test_a_manager_whose_lease_is_taken_stops_with_leader_election_lost(kube_cluster, kube, namespace):
    manager, _ = toy_manager(kube_cluster, namespace, identity="victim", leader_election=True,
                             leader_election_namespace=namespace, leader_election_id="toy-lost",
                             lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)
    runner = Running(manager)
    eventually(lambda: manager.is_leader)
    lease = kube.get(LEASES, "toy-lost", namespace)
    lease["spec"]["holderIdentity"] = "intruder"
    kube.replace(LEASES, lease)
    runner.thread.join(30)
    assert not runner.thread.is_alive()
    assert type(runner.error).__name__ == "LeaderElectionLost"
    assert kube.get(LEASES, "toy-lost", namespace)["spec"]["holderIdentity"] == "intruder"
