"""An in-memory stand-in for the KubeApi protocol, with the API server's optimistic locking.

The scaler's correctness under concurrency rests on the 409 a stale resourceVersion gets,
so the fake enforces it the same way (pinned down by tests/unit/test_service_fake_kube.py).
"""
from __future__ import annotations

import copy
import itertools
import threading

from controller.kube.errors import ApiError, is_not_found
from controller.kube.resources import ENSEMBLES, MINICLUSTERS, Resource


class FakeKube:
    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], dict] = {}
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        self._lock = threading.Lock()
        self.patches: list[tuple[str, dict]] = []
        self.applies: list[tuple[str, dict]] = []
        self.conflicts = 0

    def put(self, res: Resource, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "ns")
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        with self._lock:
            meta["resourceVersion"] = str(next(self._versions))
            self._objects[(res.plural, meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        with self._lock:
            obj = self._objects.get((res.plural, namespace or "", name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{res} "{name}" not found')
            return copy.deepcopy(obj)

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.get(res, name, namespace)   # through get, which subclasses may override
        except ApiError as err:
            if is_not_found(err):
                return None
            raise

    def patch(self, res: Resource, name: str, patch: object, *, namespace: str | None = None,
              patch_type: str = "merge", subresource: str | None = None,
              field_manager: str | None = None) -> dict:
        assert patch_type == "merge" and isinstance(patch, dict)
        with self._lock:
            key = (res.plural, namespace or "", name)
            obj = self._objects.get(key)
            if obj is None:
                raise ApiError(404, "NotFound", f'{res} "{name}" not found')
            wanted = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:
                self.conflicts += 1
                raise ApiError(409, "Conflict", "the object has been modified")
            updated = copy.deepcopy(obj)
            _merge(updated, patch)
            updated["metadata"]["resourceVersion"] = str(next(self._versions))
            self._objects[key] = updated
            self.patches.append((name, copy.deepcopy(patch)))
            return copy.deepcopy(updated)


    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict:
        """Server-side apply, as far as the service uses it: the given top-level fields of
        ``status`` (with ``subresource="status"``) replace the stored ones; no field ownership."""
        assert subresource == "status" and set(obj) <= {"apiVersion", "kind", "metadata", "status"}
        meta = obj["metadata"]
        with self._lock:
            key = (res.plural, meta.get("namespace") or "", meta["name"])
            stored = self._objects.get(key)
            if stored is None:
                raise ApiError(404, "NotFound", f'{res} "{meta["name"]}" not found')
            updated = copy.deepcopy(stored)
            updated.setdefault("status", {}).update(copy.deepcopy(obj.get("status") or {}))
            updated["metadata"]["resourceVersion"] = str(next(self._versions))
            self._objects[key] = updated
            self.applies.append((meta["name"], copy.deepcopy(obj)))
            return copy.deepcopy(updated)


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def ensemble_obj(name: str = "ens", *, budget: int | None = None, polls: dict | None = None,
                 members: int = 1) -> dict:
    """An Ensemble whose ``members`` entries are MiniClusters ``<name>-<i>`` (the service reads them so)."""
    member = {"minicluster": {"spec": {"size": 1}}, "ensemble": "jobs: []\nrules: []\n"}
    obj: dict = {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                 "metadata": {"name": name, "namespace": "ns"}, "spec": {"members": [member] * members}}
    if budget is not None:
        obj["spec"]["budget"] = budget
    if polls:
        obj["status"] = {"members": [{"name": member, "lastPoll": poll} for member, poll in polls.items()]}
    return obj


def minicluster_obj(name: str, owner: dict | None, *, size: int = 1, min_size: int | None = None,
                    max_size: int | None = 16) -> dict:
    spec: dict = {"size": size}
    if min_size is not None:
        spec["minSize"] = min_size
    if max_size is not None:
        spec["maxSize"] = max_size
    meta: dict = {"name": name, "namespace": "ns"}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    return {"apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster", "metadata": meta, "spec": spec}


def forbid_ensemble_patches(kube: FakeKube) -> None:
    """Make ``kube`` refuse every PATCH of an Ensemble (its status included) as an RBAC Role
    without that verb would, and pass every other PATCH through."""
    original_patch = kube.patch

    def forbidden(res: Resource, name: str, patch: object, **kwargs) -> dict:
        if res is ENSEMBLES:
            raise ApiError(403, "Forbidden", "cannot patch resource ensembles/status")
        return original_patch(res, name, patch, **kwargs)

    kube.patch = forbidden  # type: ignore[method-assign]
