"""ControllerBuilder: how For, Owns and Watches events become reconcile requests."""
from __future__ import annotations

import logging
import pytest

from controller.informers import DeletedFinalStateUnknown
from controller.kube.resources import CONFIGMAPS, ENSEMBLES, MINICLUSTERS, PODS
from controller.runtime.builder import OWNED_READ_INTERVAL, ControllerBuilder
from controller.runtime.predicates import PredicateFuncs, generation_changed
from controller.runtime.reconcile import Request, Result
from tests.unit.fakes.runtime import FakeManager, drain, obj, owner_ref

ENSEMBLE_API = ENSEMBLES.api_version


class NoopReconciler:
    def reconcile(self, request: Request) -> Result:
        return Result()


def ensemble(name: str, generation: int = 1, **metadata) -> dict:
    return obj("Ensemble", name, api_version=ENSEMBLE_API, generation=generation, **metadata)


def build(manager: FakeManager, **for_kwargs) -> ControllerBuilder:
    return ControllerBuilder(manager).named("ensemble").for_(ENSEMBLES, **for_kwargs)


def test_for_events_enqueue_the_object_itself():
    manager = FakeManager()
    build(manager).complete(NoopReconciler())
    informer = manager.informer(ENSEMBLES)
    informer.add(ensemble("a"))
    informer.update(ensemble("b"), ensemble("b", generation=2))
    informer.delete(ensemble("c"))
    assert drain(manager.queues["ensemble"]) == [Request("ns", "a"), Request("ns", "b"),
                                                 Request("ns", "c")]


def test_tombstone_delete_enqueues_the_last_known_object():
    manager = FakeManager()
    build(manager).complete(NoopReconciler())
    manager.informer(ENSEMBLES).delete(DeletedFinalStateUnknown("ns/gone", ensemble("gone")))
    assert drain(manager.queues["ensemble"]) == [Request("ns", "gone")]


def test_owned_object_events_enqueue_their_controller_owner_of_the_for_type():
    manager = FakeManager()
    build(manager).owns(CONFIGMAPS).complete(NoopReconciler())
    configmaps = manager.informer(CONFIGMAPS)
    configmaps.add(obj("ConfigMap", "e-0", ownerReferences=[owner_ref("Ensemble", "e", ENSEMBLE_API)]))
    configmaps.delete(DeletedFinalStateUnknown("ns/e-1", obj("ConfigMap", "e-1", ownerReferences=[
        owner_ref("Ensemble", "f", "ensemble.flux-framework.org/v1beta1")])))
    assert drain(manager.queues["ensemble"]) == [Request("ns", "e"), Request("ns", "f")]


def test_owned_objects_informers_may_read_a_burst_late_while_for_and_watches_keep_their_pace():
    manager = FakeManager()
    build(manager).owns(CONFIGMAPS).watches(PODS, lambda pod: []).complete(NoopReconciler())
    assert manager.informer(CONFIGMAPS).read_intervals == [OWNED_READ_INTERVAL]
    assert manager.informer(ENSEMBLES).read_intervals == [None]
    assert manager.informer(PODS).read_intervals == [None]


@pytest.mark.parametrize("refs", [
    [],
    [owner_ref("Ensemble", "e", ENSEMBLE_API, controller=False)],
    [owner_ref("Deployment", "d", "apps/v1")],
    [owner_ref("Ensemble", "e", "other.example.com/v1alpha1")],
    [owner_ref("Deployment", "d", "apps/v1"), owner_ref("Ensemble", "e", ENSEMBLE_API)],
], ids=["no-owner", "not-controller", "other-kind", "other-group", "controlled-by-another"])
def test_owned_object_without_a_matching_controller_owner_enqueues_nothing(refs):
    manager = FakeManager()
    build(manager).owns(CONFIGMAPS).complete(NoopReconciler())
    manager.informer(CONFIGMAPS).add(obj("ConfigMap", "cm", ownerReferences=refs))
    assert drain(manager.queues["ensemble"]) == []


def test_owner_change_enqueues_old_and_new_owner():
    manager = FakeManager()
    build(manager).owns(MINICLUSTERS).complete(NoopReconciler())
    old = obj("MiniCluster", "m", ownerReferences=[owner_ref("Ensemble", "old", ENSEMBLE_API)])
    new = obj("MiniCluster", "m", ownerReferences=[owner_ref("Ensemble", "new", ENSEMBLE_API)])
    manager.informer(MINICLUSTERS).update(old, new)
    assert drain(manager.queues["ensemble"]) == [Request("ns", "old"), Request("ns", "new")]


def test_watches_enqueue_what_the_mapper_returns_from_the_selected_informer():
    manager = FakeManager()

    def lead_broker_owner(pod: dict) -> list[Request]:
        return [Request(pod["metadata"]["namespace"], pod["metadata"]["labels"]["ensemble"]),
                Request("ns", "audit")]

    manager.select(PODS, "job-index=0")
    build(manager).watches(PODS, lead_broker_owner, namespace="ns").complete(NoopReconciler())
    pod = obj("Pod", "e-0-0-abc", labels={"ensemble": "e"})
    manager.informer(PODS, "ns", "job-index=0").add(pod)
    assert drain(manager.queues["ensemble"]) == [Request("ns", "e"), Request("ns", "audit")]


def test_a_failing_mapper_is_logged_and_does_not_break_event_delivery(caplog):
    manager = FakeManager()

    def broken(_: dict) -> list[Request]:
        raise KeyError("labels")

    build(manager).watches(PODS, broken).complete(NoopReconciler())
    with caplog.at_level(logging.ERROR):
        manager.informer(PODS).add(obj("Pod", "p"))
    assert drain(manager.queues["ensemble"]) == []
    assert "mapping watches pods event to requests failed" in caplog.text


def test_generation_changed_filters_status_only_updates_of_the_primary():
    manager = FakeManager()
    build(manager, predicates=[generation_changed]).complete(NoopReconciler())
    informer = manager.informer(ENSEMBLES)
    before = ensemble("e", generation=3)
    status_only = {**ensemble("e", generation=3), "status": {"phase": "Ready"}}
    informer.update(before, status_only)
    assert drain(manager.queues["ensemble"]) == []
    informer.update(before, ensemble("e", generation=4))
    informer.update(before, ensemble("e", generation=3, labels={"team": "a"}))
    informer.update(before, ensemble("e", generation=3, finalizers=["x"]))
    informer.update(before, ensemble("e", generation=3, deletionTimestamp="2026-01-01T00:00:00Z"))
    informer.update(before, ensemble("e", generation=3, annotations={"a": "b"}))
    queue = manager.queues["ensemble"]
    assert queue.get() == (Request("ns", "e"), False)  # de-duplicated: one pending request
    assert len(queue) == 0


def test_generation_changed_lets_creates_and_deletes_through():
    manager = FakeManager()
    build(manager, predicates=[generation_changed]).complete(NoopReconciler())
    manager.informer(ENSEMBLES).add(ensemble("a"))
    manager.informer(ENSEMBLES).delete(ensemble("b"))
    assert drain(manager.queues["ensemble"]) == [Request("ns", "a"), Request("ns", "b")]


def test_predicates_on_owns_and_watches_filter_their_events():
    manager = FakeManager()
    only_ready = PredicateFuncs(create=lambda o: o["metadata"].get("labels", {}).get("ready") == "1")
    no_deletes = PredicateFuncs(delete=lambda o: False)
    (build(manager).owns(CONFIGMAPS, predicates=[no_deletes])
     .watches(PODS, lambda o: [Request("ns", "w")], predicates=[only_ready])
     .complete(NoopReconciler()))
    ref = [owner_ref("Ensemble", "e", ENSEMBLE_API)]
    manager.informer(CONFIGMAPS).delete(obj("ConfigMap", "cm", ownerReferences=ref))
    manager.informer(PODS).add(obj("Pod", "p", labels={"ready": "0"}))
    assert drain(manager.queues["ensemble"]) == []
    manager.informer(CONFIGMAPS).add(obj("ConfigMap", "cm", ownerReferences=ref))
    manager.informer(PODS).add(obj("Pod", "p", labels={"ready": "1"}))
    assert drain(manager.queues["ensemble"]) == [Request("ns", "e"), Request("ns", "w")]


def test_complete_registers_a_controller_named_after_the_for_kind_by_default():
    manager = FakeManager()
    controller = ControllerBuilder(manager).for_(ENSEMBLES).with_workers(2).complete(NoopReconciler())
    assert manager.controllers == [controller]
    assert (controller.name, controller.workers) == ("ensemble", 2)
    assert controller.queue is manager.queues["ensemble"]


def test_builder_rejects_incomplete_or_invalid_configuration():
    manager = FakeManager()
    with pytest.raises(ValueError, match="for_"):
        ControllerBuilder(manager).owns(CONFIGMAPS).complete(NoopReconciler())
    with pytest.raises(ValueError, match="one primary type"):
        ControllerBuilder(manager).for_(ENSEMBLES).for_(CONFIGMAPS)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        ControllerBuilder(manager).with_workers(0)
    with pytest.raises(ValueError, match="name"):
        ControllerBuilder(manager).named("")
