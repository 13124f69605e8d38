"""Informers against a real kube-apiserver: bulk churn, apiserver restarts, compaction (410)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from controller.informers import (
    DeletedFinalStateUnknown, ReflectorOptions, SharedInformer, SharedInformerFactory,
    meta_namespace_key,
)
from controller.kube.client import KubeClient
from controller.kube.errors import ApiError, KubeError, is_already_exists
from controller.kube.resources import CONFIGMAPS, CRDS, DEPLOYMENTS, Resource
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

WIDGETS = Resource("informertest.example.com", "v1", "widgets", "Widget")
QUICK = ReflectorOptions(max_backoff=2.0)
WRITERS = 8


class StateFromEvents:
    """Replays handler events into key -> resourceVersion: must end equal to the server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, str] = {}
        self.added: set[str] = set()
        self.tombstones = 0

    def on_add(self, obj: dict, is_in_initial_list: bool) -> None:
        with self.lock:
            self.state[meta_namespace_key(obj)] = obj["metadata"]["resourceVersion"]
            self.added.add(obj["metadata"]["name"])

    def on_update(self, old: dict, new: dict) -> None:
        with self.lock:
            self.state[meta_namespace_key(new)] = new["metadata"]["resourceVersion"]

    def on_delete(self, obj: dict | DeletedFinalStateUnknown) -> None:
        with self.lock:
            self.tombstones += isinstance(obj, DeletedFinalStateUnknown)
            self.state.pop(meta_namespace_key(obj), None)

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.state)


def server_state(kube: KubeClient, res: Resource, namespace: str) -> dict[str, str]:
    items = kube.list(res, namespace)["items"]
    return {meta_namespace_key(o): o["metadata"]["resourceVersion"] for o in items}


def cache_state(informer: SharedInformer) -> dict[str, str]:
    return {meta_namespace_key(o): o["metadata"]["resourceVersion"] for o in informer.get_indexer().list()}


def converged(kube: KubeClient, res: Resource, namespace: str, informer: SharedInformer,
              handler: StateFromEvents) -> Callable[[], bool]:
    def check() -> bool:
        expected = server_state(kube, res, namespace)
        return cache_state(informer) == expected and handler.snapshot() == expected
    return check


def retrying(call: Callable[[], Any], timeout: float = 60) -> Any:
    """Writes during an apiserver restart fail with KubeError until it is back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiError:
            raise
        except KubeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def served_list(kube: KubeClient, res: Resource, namespace: str) -> dict | None:
    """The list, or None while the API server is not back or its storage still initializing
    (429/503 after a restart of the API server by an earlier test)."""
    try:
        return kube.list(res, namespace)
    except ApiError as err:
        if err.status in (429, 503):
            return None
        raise
    except KubeError:
        return None


def configmap(namespace: str, name: str, value: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "data": {"value": value}}


@pytest.fixture(scope="module")
def widgets_crd(kube: KubeClient) -> Resource:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.informertest.example.com"},
           "spec": {"group": "informertest.example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                              "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    try:
        kube.create(CRDS, crd)
    except ApiError as err:
        if not is_already_exists(err):
            raise

    def served() -> bool:
        try:
            kube.list(WIDGETS, "default", limit=1)
            return True
        except ApiError:
            return False
    wait_for(served, 60, "the Widget CRD to be served")
    return WIDGETS


def churn(kube: KubeClient, res: Resource, namespace: str, count: int) -> tuple[list[str], set[str]]:
    """Create ``count`` objects, update every second one, delete every fourth.

    Returns all names and the survivors."""
    names = [f"{res.plural[:-1]}-{i:05d}" for i in range(count)]

    def make(name: str) -> dict:
        obj = configmap(namespace, name, "0")
        obj.update(apiVersion=res.api_version, kind=res.kind)
        return obj

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda n: kube.create(res, make(n)), names))
        list(pool.map(lambda n: kube.patch(res, n, {"data": {"value": "1"}}, namespace=namespace),
                      names[::2]))
        list(pool.map(lambda n: kube.delete(res, n, namespace), names[::4]))
    return names, set(names) - set(names[::4])


def test_caches_and_handlers_follow_thousands_of_changes(kube: KubeClient, namespace: str,
                                                         widgets_crd: Resource) -> None:
    factory = SharedInformerFactory(kube, reflector_options=QUICK)
    handlers = {}
    for res in (CONFIGMAPS, widgets_crd):
        handlers[res] = StateFromEvents()
        factory.informer_for(res, namespace=namespace).add_event_handler(handlers[res])
    factory.start()
    try:
        assert factory.wait_for_cache_sync(30)
        churned = {CONFIGMAPS: churn(kube, CONFIGMAPS, namespace, 2000),
                   widgets_crd: churn(kube, widgets_crd, namespace, 800)}
        for res, handler in handlers.items():
            informer = factory.informer_for(res, namespace=namespace)
            wait_for(converged(kube, res, namespace, informer, handler), 60, f"{res} caches to converge")
            names, survivors = churned[res]
            assert {k.split("/")[1] for k in cache_state(informer)} == survivors
            assert handler.added == set(names)  # the deleted ones were seen being added too
            assert informer.reflector.relist_count == 0
    finally:
        factory.shutdown()


def test_apiserver_restart_during_a_watch_loses_nothing(kube_cluster, kube: KubeClient,
                                                        namespace: str) -> None:
    informer = SharedInformer(kube, CONFIGMAPS, namespace=namespace, reflector_options=QUICK)
    handler = StateFromEvents()
    informer.add_event_handler(handler)
    for i in range(50):
        kube.create(CONFIGMAPS, configmap(namespace, f"before-{i}", "0"))
    informer.start()
    try:
        assert informer.wait_for_sync(30)
        watches_before = informer.reflector.watch_count
        kube_cluster.restart_apiserver()
        for i in range(50):
            retrying(lambda: kube.create(CONFIGMAPS, configmap(namespace, f"after-{i}", "0")))
        for i in range(0, 50, 2):
            retrying(lambda: kube.delete(CONFIGMAPS, f"before-{i}", namespace))
        wait_for(converged(kube, CONFIGMAPS, namespace, informer, handler), 60, "caches to converge")
        assert informer.reflector.watch_count > watches_before
        assert len(cache_state(informer)) == 75
    finally:
        informer.stop()


def test_compacted_resource_version_forces_a_relist(kube_cluster, kube: KubeClient,
                                                    namespace: str) -> None:
    selected = {"informer-test": "watched"}
    informer = SharedInformer(kube, CONFIGMAPS, namespace=namespace, label_selector="informer-test=watched",
                              reflector_options=QUICK)
    handler = StateFromEvents()
    informer.add_event_handler(handler)
    kube.create(CONFIGMAPS, configmap(namespace, "watched-0", "0", selected))
    informer.start()
    try:
        assert informer.wait_for_sync(30)
        # Changes the selective watch does not see move etcd on; compaction then
        # drops the revision the watch would resume from.
        for i in range(20):
            kube.create(CONFIGMAPS, configmap(namespace, f"unwatched-{i}", "0"))
        kube_cluster.compact_etcd()
        kube_cluster.restart_apiserver()
        retrying(lambda: kube.create(CONFIGMAPS, configmap(namespace, "watched-1", "0", selected)))
        wait_for(lambda: informer.reflector.relist_count >= 1, 60, "the reflector to relist after 410")

        def check() -> bool:
            expected = {k: v for k, v in server_state(kube, CONFIGMAPS, namespace).items()
                        if k.split("/")[1].startswith("watched-")}
            return cache_state(informer) == expected == handler.snapshot()
        wait_for(check, 60, "the relisted cache to match the server")
        assert set(cache_state(informer)) == {f"{namespace}/watched-0", f"{namespace}/watched-1"}
    finally:
        informer.stop()


@pytest.mark.parametrize("kind", ["configmap", "deployment", "widget"])
def test_a_watch_brings_an_applied_object_back_as_the_apply_answer_itself(
        controller_manager, namespace: str, widgets_crd: Resource, kind: str) -> None:
    """The API server's watch event carries the very bytes it answered the apply with, so a
    watch of the client that applied yields the answer itself, not a second decoding
    (controller/kube/answers.py). The watch opens after the apply, from the version before it,
    so the answer is kept before its event is read (in a running operator most are: 96% at
    N=400 in bench_scale; an event read first is decoded as before)."""
    client = controller_manager.admin_client()  # its Deployment status writes interleave with ours
    client.share_apply_answers()
    res, body = {
        "configmap": (CONFIGMAPS, configmap(namespace, "shared", "v")),
        "deployment": (DEPLOYMENTS, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shared", "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}}, "template": {
                "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        "widget": (widgets_crd, {"apiVersion": "informertest.example.com/v1", "kind": "Widget",
                                 "metadata": {"name": "shared", "namespace": namespace}, "spec": {"size": 3}}),
    }[kind]
    listed = wait_for(lambda: served_list(client, res, namespace), 60, f"{res} to be served")
    version = listed["metadata"]["resourceVersion"]
    for labels, kind_of_event in (({"app": "x"}, "ADDED"), ({"changed": "yes"}, "MODIFIED")):
        body["metadata"]["labels"] = labels
        answer = client.apply(res, body, field_manager="test")
        ours = answer["metadata"]["resourceVersion"]
        with client.watch(res, namespace, resource_version=version, timeout_seconds=10) as stream:
            # Events of others' writes may come first (the controller manager's Deployment status).
            echo = next(event for event in stream if event["object"]["metadata"]["resourceVersion"] == ours)
        assert echo["type"] == kind_of_event and echo["object"] is answer
        version = ours
