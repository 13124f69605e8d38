"""The manager's caches: a resource is selected once, and caches and watches share its informers."""
from __future__ import annotations

import pytest

from controller.informers import SharedInformerFactory
from controller.kube.client import KubeClient
from controller.kube.config import Endpoint
from controller.kube.resources import CONFIGMAPS, ENSEMBLES, PODS
from controller.runtime.caches import Caches


def caches(namespaces: list[str] | None = None) -> Caches:
    """Never started: making informers sends no request."""
    return Caches(SharedInformerFactory(KubeClient(Endpoint("http://127.0.0.1:1"))), namespaces)


def test_a_selected_resource_is_cached_and_watched_through_the_same_selected_informers() -> None:
    c = caches(["a", "b"])
    c.select(PODS, "app=x")
    c.cache(PODS)
    watched = c.informers_for(PODS)
    assert c.informers_for(PODS, namespace="b") == watched[1:]
    assert c.informers.informers() == watched  # the cache made them; the watches share them
    assert [informer.name for informer in watched] == ["pods in namespace a labels 'app=x'",
                                                       "pods in namespace b labels 'app=x'"]
    assert c.label_selector(PODS) == "app=x" and c.label_selector(CONFIGMAPS) is None


def test_selecting_after_the_first_cache_or_watch_is_refused() -> None:
    c = caches()
    c.cache(CONFIGMAPS)
    c.informers_for(ENSEMBLES)
    for resource in (CONFIGMAPS, ENSEMBLES):
        with pytest.raises(ValueError, match=f"select {resource}: it is cached or watched already"):
            c.select(resource, "app=x")


def test_a_resource_is_selected_once() -> None:
    c = caches()
    c.select(PODS, "app=x")
    c.select(PODS, "app=x")  # the same again is no disagreement
    with pytest.raises(ValueError, match="select pods: already selected by 'app=x', not 'app=y'"):
        c.select(PODS, "app=y")
    with pytest.raises(ValueError, match="label_selector must not be empty"):
        c.select(CONFIGMAPS, "")


def test_a_namespace_outside_the_watched_ones_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="namespace 'c' for pods is not watched"):
        caches(["a", "b"]).informers_for(PODS, namespace="c")
