from __future__ import annotations

import pytest

from controller.informers import (
    CONTROLLER_UID_INDEX, DeletedFinalStateUnknown, Indexer, index_by_controller_uid, meta_namespace_key,
)
from controller.informers.transform import LAST_APPLIED_ANNOTATION, default_transform


def pod(name: str, namespace: str = "ns", owner: str | None = None, rv: str = "1") -> dict:
    metadata: dict = {"name": name, "namespace": namespace, "resourceVersion": rv}
    if owner:
        metadata["ownerReferences"] = [{"uid": "other", "controller": False},
                                       {"uid": owner, "controller": True}]
    return {"kind": "Pod", "metadata": metadata}


def test_keys_are_namespace_slash_name_or_name() -> None:
    assert meta_namespace_key(pod("a")) == "ns/a"
    assert meta_namespace_key({"metadata": {"name": "node1"}}) == "node1"
    assert meta_namespace_key(DeletedFinalStateUnknown("ns/x", {})) == "ns/x"
    with pytest.raises(ValueError, match="Pod has no metadata.name"):
        meta_namespace_key({"kind": "Pod", "metadata": {}})


NAMESPACE_INDEX = "namespace"


def index_by_namespace(obj: dict) -> list[str]:
    """A second index for these tests (the operator itself needs only the controller-UID one)."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def test_index_functions() -> None:
    assert index_by_controller_uid(pod("a", owner="u1")) == ["u1"]
    assert index_by_controller_uid(pod("a")) == []


def index_keys(store: Indexer, index_name: str, value: str) -> list[str]:
    return sorted(meta_namespace_key(obj) for obj in store.by_index(index_name, value))


def test_indexes_follow_updates_removals_and_replace() -> None:
    store = Indexer({NAMESPACE_INDEX: index_by_namespace, CONTROLLER_UID_INDEX: index_by_controller_uid})
    assert store.upsert(pod("a", owner="u1")) is None
    store.upsert(pod("b", owner="u1"))
    store.upsert(pod("c", "other", owner="u2"))
    assert sorted(o["metadata"]["name"] for o in store.by_index(CONTROLLER_UID_INDEX, "u1")) == ["a", "b"]
    old = store.upsert(pod("b", owner="u2", rv="2"))
    assert old["metadata"]["resourceVersion"] == "1"
    assert index_keys(store, CONTROLLER_UID_INDEX, "u1") == ["ns/a"]
    assert index_keys(store, CONTROLLER_UID_INDEX, "u2") == ["ns/b", "other/c"]
    store.remove("ns/a")
    assert store.by_index(CONTROLLER_UID_INDEX, "u1") == []
    assert store.get_by_key("ns/a") is None and store.get(pod("b"))["metadata"]["resourceVersion"] == "2"
    store.replace({"z/d": pod("d", "z")})
    assert store.list_keys() == ["z/d"] and index_keys(store, NAMESPACE_INDEX, "ns") == []
    assert [o["metadata"]["name"] for o in store.by_index(NAMESPACE_INDEX, "z")] == ["d"]


def test_indexers_added_later_index_existing_objects_and_clash_clearly() -> None:
    store = Indexer()
    store.upsert(pod("a", owner="u1"))
    store.add_indexers({"by-owner": index_by_controller_uid})
    assert [o["metadata"]["name"] for o in store.by_index("by-owner", "u1")] == ["a"]
    with pytest.raises(ValueError, match="index by-owner already exists"):
        store.add_indexers({"by-owner": index_by_namespace})
    with pytest.raises(KeyError, match="no index named 'missing'"):
        store.by_index("missing", "x")


def test_default_transform_drops_managed_fields_and_last_applied_only() -> None:
    obj = {"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}],
                        "annotations": {LAST_APPLIED_ANNOTATION: "{}", "keep": "me"}},
           "spec": {"x": 1}}
    assert default_transform(obj) == {"metadata": {"name": "a", "annotations": {"keep": "me"}},
                                      "spec": {"x": 1}}
    assert default_transform({"kind": "Status"}) == {"kind": "Status"}
