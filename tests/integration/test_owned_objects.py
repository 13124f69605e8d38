"""OwnedObjects on the real API server: a cache miss is one create-only apply, and a name
held by any object (another owner's, or ours the cache has not shown yet) is never written."""
from __future__ import annotations

import pytest

from api.v1alpha1 import Ensemble
from controller.kube.client import KubeClient
from controller.kube.resources import CONFIGMAPS, ENSEMBLES, MINICLUSTERS, Resource, for_object
from controller.reconcilers.clients import FIELD_MANAGER, EnsembleCaches
from controller.reconcilers.desired import DesiredSettings, desired_objects
from controller.reconcilers.owned_objects import DELETE_EXPECTATION_SECONDS, SIZE_FIELD_MANAGER, OwnedObjects
from controller.runtime.expectations import Expectations
from tests.fakes import FakeClock, FakeRecorder

pytestmark = pytest.mark.integration

ENSEMBLE_YAML = "jobs:\n  - name: a\n    command: echo hi\n"


class DictCache:
    """An informer cache the test fills by hand: empty is a cache that has not caught up."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str | None, str], dict] = {}

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        return self.objects.get((namespace, name))

    def by_index(self, index_name: str, value: str) -> list[dict]:
        return []


class Owned:
    """OwnedObjects with hand-filled caches, on its own client (its request count is the test's)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.caches: dict[Resource, DictCache] = {}
        self.events = FakeRecorder()
        self.owned = OwnedObjects(
            client=client, events=self.events,
            caches=EnsembleCaches(ensembles=DictCache(), owned=_AutoCaches(self.caches), pods=DictCache(),
                                  jobs=DictCache()),
            expectations=Expectations(FakeClock(), ttl=DELETE_EXPECTATION_SECONDS))

    def show(self, obj: dict) -> None:
        """The informer delivers ``obj``."""
        meta = obj["metadata"]
        self.caches.setdefault(for_object(obj), DictCache()).objects[(meta["namespace"], meta["name"])] = obj

    def apply(self, ensemble: dict, desired: dict) -> tuple[str | None, int, int]:
        """(conflict, requests, writes) of one apply."""
        requests, writes = self.client.request_count, self.client.write_count
        conflict = self.owned.apply(ensemble, desired)
        return conflict, self.client.request_count - requests, self.client.write_count - writes


class _AutoCaches(dict):
    def __init__(self, caches: dict[Resource, DictCache]) -> None:
        super().__init__()
        self._caches = caches

    def __getitem__(self, resource: Resource) -> DictCache:
        return self._caches.setdefault(resource, DictCache())


@pytest.fixture
def owned(kube_cluster) -> Owned:
    return Owned(kube_cluster.admin_client())


def make_ensemble(kube: KubeClient, namespace: str, name: str = "e") -> tuple[dict, list[dict]]:
    """A stored Ensemble (its uid is what owner references name) and its desired objects."""
    ensemble = kube.create(ENSEMBLES, {
        "apiVersion": ENSEMBLES.api_version, "kind": "Ensemble", "metadata": {"name": name, "namespace": namespace},
        "spec": {"networkPolicy": False, "members": [
            {"ensemble": ENSEMBLE_YAML, "minicluster": {"spec": {"size": 2, "containers": [{"image": "app"}]}}}]}},
        namespace)
    typed = Ensemble.from_dict(ensemble).to_dict()
    return ensemble, desired_objects(typed, DesiredSettings(operator_image="op:test"))


def live(kube: KubeClient, obj: dict) -> dict:
    return kube.get(for_object(obj), obj["metadata"]["name"], obj["metadata"]["namespace"])


def desired_minicluster(desired: list[dict]) -> dict:
    return next(obj for obj in desired if for_object(obj) == MINICLUSTERS)


def test_each_missing_object_is_created_with_one_request_owned_as_by_any_apply(
        kube: KubeClient, namespace: str, ensemble_crd: str, minicluster_crd: str, owned: Owned) -> None:
    ensemble, desired = make_ensemble(kube, namespace)
    for obj in desired:
        assert owned.apply(ensemble, obj) == (None, 1, 1)
    assert [e[:2] for e in owned.events.events] == [("Normal", "Created")] * len(desired)
    assert live(kube, desired_minicluster(desired))["spec"]["size"] == 2
    for obj in desired:
        stored = live(kube, obj)
        # (kube-controller-manager, when running, adds its own entry: a Deployment's status.)
        (entry,) = [e for e in stored["metadata"]["managedFields"] if e["manager"] == FIELD_MANAGER]
        assert entry["operation"] == "Apply"
        assert "f:resourceVersion" not in entry["fieldsV1"]["f:metadata"]
        owned.show(stored)
        assert owned.apply(ensemble, obj) == (None, 0, 0)  # the cache shows it as desired: nothing sent


def test_a_field_created_by_a_create_only_apply_is_removed_by_a_later_apply_without_it(
        kube: KubeClient, namespace: str, ensemble_crd: str, minicluster_crd: str, owned: Owned) -> None:
    ensemble, desired = make_ensemble(kube, namespace)
    configmap = next(obj for obj in desired if for_object(obj) == CONFIGMAPS)
    meta = configmap["metadata"]
    labelled = {**configmap, "metadata": {**meta, "labels": {**meta["labels"], "extra": "x"}}}
    assert owned.apply(ensemble, labelled) == (None, 1, 1)
    owned.show(live(kube, configmap))
    assert owned.apply(ensemble, configmap) == (None, 1, 1)  # the applied hash differs
    assert "extra" not in live(kube, configmap)["metadata"]["labels"]  # our apply owned it


def test_an_object_of_another_owner_is_never_written_and_is_named_a_conflict(
        kube: KubeClient, namespace: str, ensemble_crd: str, minicluster_crd: str, owned: Owned) -> None:
    ensemble, desired = make_ensemble(kube, namespace)
    configmap = next(obj for obj in desired if for_object(obj) == CONFIGMAPS)
    name = configmap["metadata"]["name"]
    theirs = kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "data": {"tenant": "data"},
                                      "metadata": {"name": name, "namespace": namespace}}, namespace)
    conflict, requests, _ = owned.apply(ensemble, configmap)
    assert conflict is not None and f"ConfigMap {namespace}/{name} exists" in conflict
    assert requests == 2  # the create, refused, and the read that names the owner
    assert live(kube, configmap) == theirs  # same resourceVersion: nothing was written
    assert ("Warning", "Conflict", conflict) in owned.events.events


def test_an_unseen_object_of_ours_is_not_applied_again_and_keeps_its_grown_size(
        kube: KubeClient, namespace: str, ensemble_crd: str, minicluster_crd: str, owned: Owned) -> None:
    ensemble, desired = make_ensemble(kube, namespace)
    minicluster = desired_minicluster(desired)
    name = minicluster["metadata"]["name"]
    assert owned.apply(ensemble, minicluster) == (None, 1, 1)
    grown = kube.patch(MINICLUSTERS, name, {"spec": {"size": 4}}, namespace=namespace,
                       field_manager="ensemble-service")
    assert owned.apply(ensemble, minicluster) == (None, 2, 1)  # the create, refused; the read
    assert live(kube, minicluster) == grown
    assert len(owned.events.events) == 1  # one Created

    # Once the cache shows it, a changed spec is applied without size, which survives.
    owned.show(grown)
    changed = {**minicluster, "spec": {**minicluster["spec"], "containers": [{"image": "app:2"}]}}
    conflict, requests, writes = owned.apply(ensemble, changed)
    assert (conflict, requests, writes) == (None, 2, 2)  # the size pin and the apply
    after = live(kube, changed)
    assert (after["spec"]["size"], after["spec"]["containers"][0]["image"]) == (4, "app:2")
    assert SIZE_FIELD_MANAGER in {entry["manager"] for entry in after["metadata"]["managedFields"]}
