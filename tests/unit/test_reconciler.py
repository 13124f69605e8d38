"""EnsembleReconciler against an in-memory API (caches always in sync) counting writes."""
from __future__ import annotations

import copy

import pytest

from tests.fakes import FakeClock
from api.v1alpha1.validation import validated
from controller.kube.errors import ApiError
from controller.kube.resources import (CONFIGMAPS, DEPLOYMENTS, ENSEMBLES, MINICLUSTERS, NETWORKPOLICIES, PODS,
                                       Resource)
from controller.reconcilers.desired import DesiredSettings
from controller.reconcilers import ensemble as ensemble_reconciler
from controller.reconcilers import owned_objects
from controller.reconcilers.ensemble import FIELD_MANAGER, EnsembleReconciler
from controller.reconcilers.owned_objects import CREATE_ONLY_RESOURCE_VERSION, SIZE_FIELD_MANAGER
from controller.reconcilers.poller import PollResult
from controller.runtime.predicates import allows_create
from controller.runtime.reconcile import Request, Result
from controller.runtime.writes import WrittenObjects
from tests.helpers import job_owner
from tests.unit.fakes.reconciler import (ENSEMBLE_YAML, FakeApi, FakePoller, FakeRecorder,
                                         conditions, fake_caches, lead_pod, make_ensemble, member,
                                         spec_edited, stored_ensemble)


def test_first_reconcile_creates_everything_and_a_second_writes_nothing(env) -> None:
    api, recorder, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    assert reconciler.reconcile(Request("ns", "e1")) == Result()
    assert api.kinds_written() == [
        ("ServiceAccount", "e1"), ("Role", "e1"), ("RoleBinding", "e1"), ("Service", "e1-grpc"),
        ("NetworkPolicy", "e1-grpc"), ("Deployment", "e1"), ("NetworkPolicy", "e1-0"), ("ConfigMap", "e1-0"),
        ("MiniCluster", "e1-0"), ("NetworkPolicy", "e1-1"), ("ConfigMap", "e1-1"), ("MiniCluster", "e1-1"),
        ("Ensemble", "e1")]
    assert all(w[3] == FIELD_MANAGER and w[4] is True for w in api.writes)
    assert api.writes[-1][5] == "status"
    assert api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"] == 2
    # One "Created" Event naming each object (as the recorder would join twelve)
    [(type_, reason, note)] = [e[:3] for e in recorder.events]
    assert (type_, reason) == ("Normal", "Created")
    assert note.split("; ") == [f"Created {kind} {name}" for kind, name in api.kinds_written()[:-1]]
    status = stored_ensemble(api)["status"]
    assert status["observedGeneration"] == 1
    assert status["phase"] == "Pending"
    assert status["summary"] == {"members": 2, "ready": 0}
    assert conditions(api)["Ready"]["status"] == "False"
    assert conditions(api)["InvalidSpec"]["status"] == "False"
    assert (status["serviceMode"], status["memberPolling"]) == ("operator", "Enabled")

    before = len(api.writes)
    assert reconciler.reconcile(Request("ns", "e1")) == Result()
    assert len(api.writes) == before
    assert len(recorder.events) == 1


def test_missing_ensemble_is_nothing_to_do(env) -> None:
    api, recorder, _, _, reconciler = env
    assert reconciler.reconcile(Request("ns", "gone")) == Result()
    assert api.writes == [] and recorder.events == []


def test_drift_is_repaired_with_one_write_per_drifted_object(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    del api.objects[(CONFIGMAPS, "ns", "e1-1")]
    api.objects[(DEPLOYMENTS, "ns", "e1")]["spec"]["replicas"] = 5
    api.writes.clear()
    reconciler.reconcile(Request("ns", "e1"))
    assert api.kinds_written() == [("Deployment", "e1"), ("ConfigMap", "e1-1")]
    assert api.objects[(DEPLOYMENTS, "ns", "e1")]["spec"]["replicas"] == 1


def test_an_object_found_matching_is_not_compared_again_until_its_version_or_the_desired_object_changes(
        env, monkeypatch) -> None:
    api, _, _, _, reconciler = env
    compared: list[str] = []
    real_differs = owned_objects.differs

    def counting_differs(desired: dict, cached: dict | None) -> bool:
        compared.append(desired["metadata"]["name"])
        return real_differs(desired, cached)
    monkeypatch.setattr(owned_objects, "differs", counting_differs)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))  # creates: nothing cached to compare
    reconciler.reconcile(Request("ns", "e1"))  # each object compared once, found matching
    assert len(compared) == 12
    compared.clear()
    reconciler.reconcile(Request("ns", "e1"))
    assert compared == [] and api.kinds_written()[-1] == ("Ensemble", "e1")

    writes = len(api.writes)
    deployment = api.objects[(DEPLOYMENTS, "ns", "e1")]
    deployment["spec"]["replicas"] = 5  # someone's edit: a new resourceVersion
    deployment["metadata"]["resourceVersion"] = "edited"
    reconciler.reconcile(Request("ns", "e1"))
    assert compared == ["e1"]
    assert api.kinds_written()[writes:] == [("Deployment", "e1")]
    assert api.objects[(DEPLOYMENTS, "ns", "e1")]["spec"]["replicas"] == 1

    compared.clear()
    spec_edited(api)["spec"]["members"][1]["minicluster"]["spec"]["containers"][0]["image"] = "app:2"
    reconciler.reconcile(Request("ns", "e1"))  # the desired MiniCluster changed, its cached copy did not
    assert "e1-1" in compared
    assert api.objects[(MINICLUSTERS, "ns", "e1-1")]["spec"]["containers"][0]["image"] == "app:2"


def test_the_desired_objects_of_an_unchanged_spec_are_built_again_only_once_the_caches_show_a_change(
        env, monkeypatch) -> None:
    api, _, _, _, reconciler = env
    built: list[str] = []
    real_desired_objects = ensemble_reconciler.desired_objects

    def counting_desired_objects(ensemble: dict, settings: DesiredSettings) -> list[dict]:
        built.append(ensemble["metadata"]["name"])
        return real_desired_objects(ensemble, settings)
    monkeypatch.setattr(ensemble_reconciler, "desired_objects", counting_desired_objects)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))  # creates
    reconciler.reconcile(Request("ns", "e1"))  # finds each created object matching
    assert len(built) == 2
    writes = len(api.writes)
    for _ in range(3):
        reconciler.reconcile(Request("ns", "e1"))
    assert len(built) == 2 and api.kinds_written()[writes:] == []

    del api.objects[(CONFIGMAPS, "ns", "e1-1")]  # someone deleted one
    reconciler.reconcile(Request("ns", "e1"))
    assert len(built) == 3 and api.kinds_written()[writes:] == [("ConfigMap", "e1-1")]
    reconciler.reconcile(Request("ns", "e1"))  # finds the re-created one matching
    reconciler.reconcile(Request("ns", "e1"))
    assert len(built) == 4

    # Someone else's change to the Ensemble (a new resourceVersion, not a new generation): it is
    # decoded again (known_valid.py), and what the new decoding desires is built once.
    stored_ensemble(api)["metadata"]["labels"] = {"team": "a"}
    stored_ensemble(api)["metadata"]["resourceVersion"] = "relabelled"
    reconciler.reconcile(Request("ns", "e1"))
    reconciler.reconcile(Request("ns", "e1"))
    assert len(built) == 5
    spec_edited(api)["spec"]["members"][0]["minicluster"]["spec"]["containers"][0]["image"] = "app:3"
    reconciler.reconcile(Request("ns", "e1"))
    assert len(built) == 6
    assert api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["containers"][0]["image"] == "app:3"


def test_a_missing_object_is_created_with_one_create_only_apply_and_no_read(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    assert api.reads == []
    applies = [w for w in api.writes if w[5] is None]
    assert len(applies) == 12
    assert all(w[6]["metadata"]["resourceVersion"] == CREATE_ONLY_RESOURCE_VERSION for w in applies)
    assert all(obj["metadata"]["resourceVersion"] != CREATE_ONLY_RESOURCE_VERSION for obj in api.objects.values())


def test_the_objects_a_reconcile_creates_are_logged_in_one_line(env, caplog) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    with caplog.at_level("INFO", logger="controller.reconcilers.owned_objects"):
        reconciler.reconcile(Request("ns", "e1"))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "controller.reconcilers.owned_objects"]
    assert line.startswith("created ServiceAccount ns/e1, Role ns/e1, ") and line.endswith(", MiniCluster ns/e1-1")
    assert line.count(", ") == 11


def test_a_lagging_cache_costs_a_refused_create_and_a_read_not_a_second_apply(env) -> None:
    api, recorder, _, clock, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"] = 5  # grown before the cache caught up
    reconciler._caches.owned[MINICLUSTERS].hidden.add("e1-0")
    api.writes.clear()
    api.reads.clear()
    reconciler.reconcile(Request("ns", "e1"))
    (refused,) = api.writes
    assert refused[:3] == ("apply", "MiniCluster", "e1-0")
    assert refused[6]["metadata"]["resourceVersion"] == CREATE_ONLY_RESOURCE_VERSION
    assert api.reads == [("MiniCluster", "e1-0")]
    assert api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"] == 5
    assert len(recorder.events) == 1  # the first reconcile's one Created Event: no second

    del api.objects[(MINICLUSTERS, "ns", "e1-0")]  # deleted before the cache ever showed it
    api.writes.clear()
    reconciler.reconcile(Request("ns", "e1"))
    assert api.kinds_written() == [("MiniCluster", "e1-0")]
    assert api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"] == 2


def test_existing_minicluster_is_updated_without_touching_its_size(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"] = 3  # grown by the service
    ensemble = stored_ensemble(api)
    ensemble["spec"]["members"][0]["minicluster"]["spec"]["containers"][0]["image"] = "app:2"
    ensemble["metadata"]["generation"] = 2
    api.writes.clear()
    reconciler.reconcile(Request("ns", "e1"))
    mc_writes = [w for w in api.writes if w[1] == "MiniCluster"]
    pin, main = mc_writes
    assert (pin[3], pin[4], pin[6]["spec"]) == (SIZE_FIELD_MANAGER, False, {"size": 3})
    assert main[3] == FIELD_MANAGER and "size" not in main[6]["spec"]
    assert main[6]["spec"]["containers"][0]["image"] == "app:2"
    assert api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"] == 3


def test_a_size_conflict_means_the_scaler_owns_it_and_the_apply_proceeds(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["network"] = {}  # drift
    api.size_owner_conflict = True
    api.writes.clear()
    reconciler.reconcile(Request("ns", "e1"))
    assert [(w[1], w[3]) for w in api.writes] == [("MiniCluster", SIZE_FIELD_MANAGER),
                                                  ("MiniCluster", FIELD_MANAGER)]


def test_removed_member_objects_are_deleted(env) -> None:
    api, recorder, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    ensemble = spec_edited(api)
    ensemble["spec"]["members"] = ensemble["spec"]["members"][:1]
    api.writes.clear()
    recorder.events.clear()
    reconciler.reconcile(Request("ns", "e1"))
    deletes = sorted(w[1:] for w in api.writes if w[0] == "delete")
    assert deletes == [("ConfigMap", "e1-1"), ("MiniCluster", "e1-1"), ("NetworkPolicy", "e1-1")]
    assert [e[1] for e in recorder.events] == ["Deleted"] * 3
    assert (MINICLUSTERS, "ns", "e1-0") in api.objects and (NETWORKPOLICIES, "ns", "e1-0") in api.objects
    assert stored_ensemble(api)["status"]["summary"]["members"] == 1


def test_a_validator_that_raises_makes_the_ensemble_invalid_naming_the_cause_not_a_retried_error(env) -> None:
    api, recorder, poller, clock, _ = env
    caches = fake_caches(api)

    def exhausted(obj: dict) -> tuple:
        raise MemoryError("a custom rule asked for 10**12 items")

    reconciler = EnsembleReconciler(client=api, caches=caches, events=recorder, clock=clock,
                                    settings=DesiredSettings(), poller=poller, validator=exhausted)
    api.put(ENSEMBLES, make_ensemble())
    assert reconciler.reconcile(Request("ns", "e1")) == Result()
    assert api.kinds_written() == [("Ensemble", "e1")]
    invalid = conditions(api)["InvalidSpec"]
    assert invalid["status"] == "True"
    assert "spec: could not be validated: MemoryError: a custom rule asked for 10**12 items" in invalid["message"]
    assert stored_ensemble(api)["status"]["phase"] == "Invalid"


def test_a_validator_that_decodes_nothing_leaves_decoding_to_the_reconciler(env) -> None:
    api, recorder, poller, clock, _ = env

    def errors_only(obj: dict) -> tuple:
        return [], None

    reconciler = EnsembleReconciler(client=api, caches=fake_caches(api), events=recorder, clock=clock,
                                    settings=DesiredSettings(), poller=poller, validator=errors_only)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    assert ("MiniCluster", "e1-1") in api.kinds_written()
    bad = make_ensemble([{"ensemble": ENSEMBLE_YAML, "minicluster": {"spec": {"containers": []}}}], name="e2")
    api.put(ENSEMBLES, bad)  # one the validator let through, and decoding refuses
    reconciler.reconcile(Request("ns", "e2"))
    invalid = conditions(api, "e2")["InvalidSpec"]
    assert invalid["status"] == "True" and "spec: could not be read: InvalidObjectError" in invalid["message"]


def test_an_ensemble_is_validated_again_only_when_its_spec_or_someone_elses_status_changed(env) -> None:
    """The spec moves the generation; the status is the operator's record (a member's last poll
    each), and the answer to our status write was checked by the API server. Someone else's
    change at a new resourceVersion is walked whole, and a status the schema refuses still
    makes the Ensemble Invalid."""
    api, recorder, poller, clock, _ = env
    given: list[bool] = []  # per validation: whether the status was in what was walked

    def validator(obj: dict) -> tuple:
        given.append("status" in obj)
        return validated(obj)

    reconciler = EnsembleReconciler(client=api, caches=fake_caches(api), events=recorder, clock=clock,
                                    settings=DesiredSettings(), poller=poller, validator=validator)
    stored = api.put(ENSEMBLES, {**make_ensemble(), "status": {"phase": "Pending"}})
    stored["metadata"]["resourceVersion"] = "10"
    reconciler.reconcile(Request("ns", "e1"))  # writes its status
    reconciler.reconcile(Request("ns", "e1"))
    reconciler.reconcile(Request("ns", "e1"))
    assert given == [True]

    stored = stored_ensemble(api)
    stored["metadata"]["labels"] = {"team": "a"}  # someone's change: a new version, walked whole once
    stored["metadata"]["resourceVersion"] = "edited"
    reconciler.reconcile(Request("ns", "e1"))
    reconciler.reconcile(Request("ns", "e1"))
    assert given == [True, True]

    spec_edited(api)["spec"]["heartbeat"] = 9  # a spec edit: a new generation, walked again
    reconciler.reconcile(Request("ns", "e1"))
    assert given == [True, True, True]
    assert len(api.writes) and stored_ensemble(api)["status"]["observedGeneration"] == 2

    stored = stored_ensemble(api)
    stored["status"]["phase"] = 5  # a status the schema refuses, at a new version
    stored["metadata"]["resourceVersion"] = "12"
    reconciler.reconcile(Request("ns", "e1"))
    assert given[-1] is True
    assert "status.phase: must be a string, got integer 5" in conditions(api)["InvalidSpec"]["message"]


def test_invalid_spec_creates_nothing_reports_once_and_recovers(env) -> None:
    api, recorder, _, clock, reconciler = env
    bad = make_ensemble([{"ensemble": ENSEMBLE_YAML, "minicluster": {"spec": {"containers": []}}}])
    api.put(ENSEMBLES, bad)
    api.put(ENSEMBLES, make_ensemble(name="other"))
    assert reconciler.reconcile(Request("ns", "e1")) == Result()
    assert api.kinds_written() == [("Ensemble", "e1")]
    ready = conditions(api)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.members[0].minicluster.spec.containers" in ready["message"]
    assert conditions(api)["InvalidSpec"]["status"] == "True"
    assert stored_ensemble(api)["status"]["phase"] == "Invalid"
    (warning,) = recorder.events
    assert warning[:2] == ("Warning", "InvalidSpec") and "containers" in warning[2]

    reconciler.reconcile(Request("ns", "e1"))
    assert len(api.writes) == 1 and len(recorder.events) == 1

    reconciler.reconcile(Request("ns", "other"))  # other ensembles are unaffected
    assert ("MiniCluster", "other-0") in api.kinds_written()

    clock.step(30)
    stored_ensemble(api)["spec"]["members"][0]["minicluster"]["spec"]["containers"] = [{"image": "a"}]
    reconciler.reconcile(Request("ns", "e1"))
    assert ("MiniCluster", "e1-0") in api.kinds_written()
    assert conditions(api)["InvalidSpec"]["status"] == "False"
    assert conditions(api)["Ready"]["reason"] == "NotReady"


def test_a_pod_naming_the_members_job_with_another_uid_is_neither_polled_nor_its_lead_broker(env) -> None:
    api, _, poller, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    forged = lead_pod("e1-0")
    forged["metadata"]["ownerReferences"] = [{**job_owner("e1-0"), "uid": "uid-another-job"}]
    api.put(PODS, forged)
    reconciler.reconcile(Request("ns", "e1"))
    assert poller.targets == {}
    assert "leadBroker" not in stored_ensemble(api)["status"]["members"][0]
    api.put(PODS, {**lead_pod("e1-0"), "metadata": {**lead_pod("e1-0")["metadata"], "name": "e1-0-0-real"}})
    reconciler.reconcile(Request("ns", "e1"))
    assert stored_ensemble(api)["status"]["members"][0]["leadBroker"]["pod"] == "e1-0-0-real"


def test_members_with_a_serving_lead_broker_are_polled_each_heartbeat(env) -> None:
    api, _, poller, clock, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    api.put(PODS, lead_pod("e1-0"))
    assert reconciler.reconcile(Request("ns", "e1")) == Result(requeue_after=7.0)
    (target,) = poller.targets.values()
    assert (target.key, target.address, target.heartbeat) == (("ns", "e1", "e1-0"), "10.0.0.5:7000", 7.0)
    members = stored_ensemble(api)["status"]["members"]
    assert members[0]["leadBroker"] == {"pod": "e1-0-0-abcde", "ip": "10.0.0.5"}
    assert members[0]["phase"] == "Running" and members[0]["currentSize"] == 1
    assert members[1]["phase"] == "Pending"

    report = {"nodes": {"node_up_count": 2}, "queue": {"run": 1}}
    request = reconciler.record_poll(target.key, PollResult(True, clock.wall(), target.address, 0.01, 0, report))
    assert request == Request("ns", "e1")
    reconciler.reconcile(request)
    status = stored_ensemble(api)["status"]
    assert status["members"][0]["lastPoll"] == report
    assert status["members"][0]["lastPollTime"] == "2023-11-14T22:30:00Z"
    assert status["summary"]["ready"] == 1

    writes = len(api.writes)
    clock.step(7)  # same report, later: only the timestamp changed, so no status write
    reconciler.record_poll(target.key, PollResult(True, clock.wall(), target.address, 0.01, 0, report))
    reconciler.reconcile(request)
    assert len(api.writes) == writes

    del api.objects[(PODS, "ns", "e1-0-0-abcde")]
    assert reconciler.reconcile(request) == Result()
    assert poller.targets == {}


def test_finished_members_stop_the_heartbeat(env) -> None:
    api, _, poller, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble([member()]))
    reconciler.reconcile(Request("ns", "e1"))
    api.put(PODS, lead_pod("e1-0", phase="Succeeded"))
    assert reconciler.reconcile(Request("ns", "e1")) == Result()
    assert stored_ensemble(api)["status"]["phase"] == "Completed"
    assert poller.targets == {}


def test_write_errors_raise_for_a_rate_limited_retry(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())

    def failing_apply(*args, **kwargs):
        raise ApiError(500, "InternalError", "etcd down")

    api.apply = failing_apply
    with pytest.raises(ApiError):
        reconciler.reconcile(Request("ns", "e1"))


def test_member_status_shows_the_sizes_the_flux_operator_runs_not_ones_it_refused(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble([member(2, maxSize=6)]))
    reconciler.reconcile(Request("ns", "e1"))
    minicluster = api.objects[(MINICLUSTERS, "ns", "e1-0")]
    # The Flux Operator recorded maximumSize 4 (maxSize was 4 when it first saw it) and has
    # not resized yet; a size of 9 left in the spec is one it refuses.
    minicluster["status"] = {"size": 0, "maximumSize": 4, "selector": "hpa-selector=e1-0", "jobid": ""}
    minicluster["spec"]["size"] = 9
    reconciler.reconcile(Request("ns", "e1"))
    (shown,) = stored_ensemble(api)["status"]["members"]
    assert (shown["desiredSize"], shown["maxSize"]) == (2, 4)


@pytest.mark.parametrize("in_cache, owner", [
    (False, None),                                                        # a tenant's, without our labels
    (True, {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble", "name": "e1",
            "uid": "uid-of-a-deleted-e1", "controller": True}),            # what a deleted e1 left for GC
])
def test_an_object_not_controlled_by_the_ensemble_is_left_alone_and_named_until_it_is_gone(
        env, in_cache: bool, owner: dict | None) -> None:
    api, recorder, _, _, reconciler = env
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"keep": "me"},
              "metadata": {"name": "e1-0", "namespace": "ns", "uid": "uid-theirs",
                           "ownerReferences": [owner] if owner else []}}
    api.put(CONFIGMAPS, copy.deepcopy(theirs))
    if not in_cache:
        reconciler._caches.owned[CONFIGMAPS].hidden.add("e1-0")
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    assert api.objects[(CONFIGMAPS, "ns", "e1-0")] == theirs               # not applied over, not adopted
    attempts = [w for w in api.writes if w[1:3] == ("ConfigMap", "e1-0")]  # at most a create, refused
    assert len(attempts) == (0 if in_cache else 1)
    assert all(w[6]["metadata"]["resourceVersion"] == CREATE_ONLY_RESOURCE_VERSION for w in attempts)
    assert ("MiniCluster", "e1-0") in api.kinds_written()                  # the rest goes on
    message = ("ConfigMap ns/e1-0 exists and is not controlled by this Ensemble; it is left alone "
               "(delete or rename it, and the Ensemble creates its own)")
    conflict = conditions(api)["Conflict"]
    assert (conflict["status"], conflict["reason"], conflict["message"]) == ("True", "ObjectNotOwned", message)
    assert ("Warning", "Conflict", message) in recorder.events

    del api.objects[(CONFIGMAPS, "ns", "e1-0")]
    reconciler._caches.owned[CONFIGMAPS].hidden.clear()
    reconciler.reconcile(Request("ns", "e1"))
    (ref,) = api.objects[(CONFIGMAPS, "ns", "e1-0")]["metadata"]["ownerReferences"]
    assert ref["uid"] == stored_ensemble(api)["metadata"]["uid"]
    assert (conditions(api)["Conflict"]["status"], conditions(api)["Conflict"]["reason"]) == ("False", "NoConflict")


def test_an_ensemble_that_never_had_a_conflict_has_no_conflict_condition(env) -> None:
    api, _, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    assert "Conflict" not in conditions(api)


def test_network_policy_false_deletes_the_policies_the_ensemble_made_once_and_then_writes_nothing(env) -> None:
    api, recorder, _, _, reconciler = env
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    ensemble = stored_ensemble(api)
    ensemble["spec"]["networkPolicy"] = False
    ensemble["metadata"]["generation"] = 2
    api.writes.clear()
    recorder.events.clear()
    reconciler.reconcile(Request("ns", "e1"))
    deleted = sorted(w[1:] for w in api.writes if w[0] == "delete")
    assert deleted == [("NetworkPolicy", "e1-0"), ("NetworkPolicy", "e1-1"), ("NetworkPolicy", "e1-grpc")]
    assert [m for _, r, m in recorder.events if r == "Deleted"][0].endswith("(spec.networkPolicy is false)")
    assert not [key for key in api.objects if key[0] == NETWORKPOLICIES]
    api.writes.clear()
    reconciler.reconcile(Request("ns", "e1"))
    assert api.writes == []


def test_a_network_policy_the_ensemble_does_not_control_is_neither_adopted_nor_deleted(env) -> None:
    api, _, _, _, reconciler = env
    theirs = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": {"podSelector": {}},
              "metadata": {"name": "e1-grpc", "namespace": "ns", "uid": "uid-theirs"}}
    api.put(NETWORKPOLICIES, copy.deepcopy(theirs))
    reconciler._caches.owned[NETWORKPOLICIES].hidden.add("e1-grpc")  # without our labels: not cached
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    assert api.objects[(NETWORKPOLICIES, "ns", "e1-grpc")] == theirs
    assert "NetworkPolicy ns/e1-grpc exists and is not controlled" in conditions(api)["Conflict"]["message"]
    stored_ensemble(api)["spec"]["networkPolicy"] = False
    reconciler.reconcile(Request("ns", "e1"))
    assert api.objects[(NETWORKPOLICIES, "ns", "e1-grpc")] == theirs


def test_written_objects_are_read_back_before_the_informer_shows_them_and_their_echoes_wake_nothing() -> None:
    api, clock, woken = FakeApi(), FakeClock(), []
    written = WrittenObjects(clock, wake=woken.append)
    caches = fake_caches(api)
    for cache in caches.owned.values():
        cache.hidden.update({"e1", "e1-grpc", "e1-0", "e1-1"})  # the informers lag every create
    caches.owned = {res: written.cache(res, cache) for res, cache in caches.owned.items()}
    reconciler = EnsembleReconciler(client=api, caches=caches, events=FakeRecorder(), clock=clock,
                                    settings=DesiredSettings(operator_image="op:dev", member_status_port=7000),
                                    poller=FakePoller(), written=written)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(Request("ns", "e1"))
    api.writes.clear()
    reconciler.reconcile(Request("ns", "e1"))  # woken by something else before the informers caught up
    assert api.writes == [] and api.reads == []  # no refused create, no read: the answers were kept
    owned = [(res, obj) for (res, _, _), obj in api.objects.items() if res != ENSEMBLES]
    assert len(owned) == 12 and len(written) == 12
    assert not any(allows_create([written.not_echo(res)], obj) for res, obj in owned)  # the echoes
    assert len(written) == 0 and woken == []


class WrittenLog(WrittenObjects):
    """WrittenObjects that logs what it hears into the API's own log of writes."""

    def __init__(self, api: FakeApi) -> None:
        super().__init__(FakeClock(), wake=lambda owner: None)
        self.api = api

    def begin(self, resource, namespace, name, owner_uid) -> None:
        self.api.writes.append(("begin", resource.kind, name))
        super().begin(resource, namespace, name, owner_uid)

    def end(self, resource, namespace, name, before, answer, owner) -> None:
        self.api.writes.append(("end", resource.kind, name, None if answer is None else answer["metadata"]["uid"]))
        super().end(resource, namespace, name, before, answer, owner)


def written_log_env(api: FakeApi) -> tuple[EnsembleReconciler, FakeRecorder]:
    written = WrittenLog(api)
    caches = fake_caches(api)
    caches.owned = {res: written.cache(res, cache) for res, cache in caches.owned.items()}
    recorder = FakeRecorder()
    return EnsembleReconciler(client=api, caches=caches, events=recorder, clock=FakeClock(),
                              settings=DesiredSettings(operator_image="op:dev", member_status_port=7000),
                              poller=FakePoller(), written=written), recorder


def test_every_answer_is_told_to_written_objects_once_the_last_owned_object_write_is_answered() -> None:
    api = FakeApi()
    reconciler, _ = written_log_env(api)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(REQUEST)
    owned_writes = [w for w in api.writes if w[1] != "Ensemble"]
    steps = [w[0] for w in owned_writes]
    count = steps.count("apply")
    assert count > 1 and steps == ["begin", "apply"] * count + ["end"] * count
    applied = [w[1:3] for w in owned_writes if w[0] == "apply"]
    ended = [w[1:3] for w in owned_writes if w[0] == "end"]
    assert ended == applied  # each write ended, in the order sent
    uids = {(key[0].kind, key[2]): obj["metadata"]["uid"] for key, obj in api.objects.items()}
    assert [w[3] for w in owned_writes if w[0] == "end"] == [uids[kind_name] for kind_name in applied]  # the answers


def test_a_failed_owned_object_write_ends_every_write_begun_and_sends_none_after_it() -> None:
    api = FakeApi()
    reconciler, recorder = written_log_env(api)
    api.put(ENSEMBLES, make_ensemble())
    failing_at = 3
    real_apply = api.apply

    def apply(res, obj, **kwargs):
        if len([w for w in api.writes if w[0] == "apply"]) == failing_at - 1:
            api.writes.append(("apply", res.kind, obj["metadata"]["name"]))
            raise ApiError(500, "InternalError", "etcd is down")
        return real_apply(res, obj, **kwargs)
    api.apply = apply

    with pytest.raises(ApiError):
        reconciler.reconcile(REQUEST)
    steps = [w[0] for w in api.writes]
    assert steps == ["begin", "apply"] * failing_at + ["end"] * failing_at
    assert [w[3] is None for w in api.writes if w[0] == "end"] == [False, False, True]
    created = [e for e in recorder.events if e[1] == "Created"]
    applied = [w[1:3] for w in api.writes if w[0] == "apply"]
    assert created == [("Normal", "Created", "; ".join(f"Created {kind} {name}" for kind, name in applied[:2]))]


REQUEST = Request("ns", "e1")


class LaggingApi(FakeApi):
    """DELETE answers like the API server, but the caches (reading ``objects``) still show
    what was deleted until ``catch_up``: the informer has not delivered the delete yet."""

    def __init__(self) -> None:
        super().__init__()
        self.gone: set[tuple[Resource, str, str]] = set()

    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = "Background", preconditions: dict | None = None):
        self.writes.append(("delete", res.kind, name))
        key = (res, namespace or "", name)
        if key in self.gone or key not in self.objects:
            return None  # KubeClient.delete: 404 -> None
        self.gone.add(key)
        return {"kind": "Status", "status": "Success"}

    def catch_up(self) -> None:
        for key in self.gone:
            self.objects.pop(key, None)
        self.gone.clear()


def new_env(api: FakeApi) -> tuple[FakeRecorder, FakeClock, EnsembleReconciler]:
    recorder, clock = FakeRecorder(), FakeClock()
    caches = fake_caches(api)
    reconciler = EnsembleReconciler(client=api, caches=caches, events=recorder, clock=clock,
                                    settings=DesiredSettings(operator_image="op:dev", member_status_port=7000),
                                    poller=FakePoller())
    return recorder, clock, reconciler


def drop_last_member(api: FakeApi) -> None:
    ensemble = stored_ensemble(api)
    ensemble["spec"]["members"].pop()
    ensemble["metadata"]["generation"] += 1


def deletes(api: FakeApi) -> list[tuple]:
    return sorted(w[1:] for w in api.writes if w[0] == "delete")


def test_a_removed_member_is_deleted_and_reported_once_while_the_cache_lags() -> None:
    api = LaggingApi()
    recorder, _, reconciler = new_env(api)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(REQUEST)
    drop_last_member(api)
    api.writes.clear()
    recorder.events.clear()
    reconciler.reconcile(REQUEST)
    assert deletes(api) == [("ConfigMap", "e1-1"), ("MiniCluster", "e1-1"), ("NetworkPolicy", "e1-1")]
    assert [e[1] for e in recorder.events] == ["Deleted"] * 3

    # Woken again (by the ConfigMap's delete event, say) before the MiniCluster's arrives.
    api.writes.clear()
    reconciler.reconcile(REQUEST)
    reconciler.reconcile(REQUEST)
    assert api.writes == []
    assert [e[1] for e in recorder.events] == ["Deleted"] * 3
    api.catch_up()
    reconciler.reconcile(REQUEST)
    assert api.writes == []


def test_a_member_object_already_being_deleted_is_left_alone() -> None:
    api = LaggingApi()
    recorder, _, reconciler = new_env(api)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(REQUEST)
    for res in (CONFIGMAPS, MINICLUSTERS, NETWORKPOLICIES):  # a finalizer holds them (deleted by someone else)
        api.objects[(res, "ns", "e1-1")]["metadata"].update(
            deletionTimestamp="2024-01-01T00:00:00Z", finalizers=["example.com/hold"])
    drop_last_member(api)
    api.writes.clear()
    recorder.events.clear()
    for _ in range(3):
        reconciler.reconcile(REQUEST)
    assert deletes(api) == []
    assert [e for e in recorder.events if e[1] == "Deleted"] == []


def test_a_member_gone_before_our_delete_is_not_reported_as_deleted_by_us() -> None:
    api = LaggingApi()
    recorder, _, reconciler = new_env(api)
    api.put(ENSEMBLES, make_ensemble())
    reconciler.reconcile(REQUEST)
    api.gone.update({(res, "ns", "e1-1") for res in (CONFIGMAPS, MINICLUSTERS, NETWORKPOLICIES)})  # by someone else
    drop_last_member(api)
    recorder.events.clear()
    reconciler.reconcile(REQUEST)
    assert [e for e in recorder.events if e[1] == "Deleted"] == []


def test_a_field_removed_from_the_spec_is_removed_from_the_owned_object() -> None:
    """Compared as a subset, a desired object that lost a field still 'matches' the cached one
    that has it, so the removal was never applied."""
    api = FakeApi()
    _, _, reconciler = new_env(api)
    ensemble = make_ensemble([member(2, maxSize=4)])
    ensemble["spec"]["sidecar"] = {"image": "registry.example/service:1", "pullAlways": True, "mode": "operator"}
    ensemble["spec"]["members"][0]["minicluster"]["spec"]["containers"][0]["workingDir"] = "/work"
    api.put(ENSEMBLES, ensemble)
    reconciler.reconcile(REQUEST)
    container = api.objects[(DEPLOYMENTS, "ns", "e1")]["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    api.writes.clear()
    reconciler.reconcile(REQUEST)
    assert api.writes == []  # converged

    ensemble = spec_edited(api)
    del ensemble["spec"]["sidecar"]["pullAlways"]
    del ensemble["spec"]["members"][0]["minicluster"]["spec"]["containers"][0]["workingDir"]
    reconciler.reconcile(REQUEST)
    applied = {(w[1], w[3]): w[6] for w in api.writes if w[0] == "apply"}
    assert "imagePullPolicy" not in applied[("Deployment", FIELD_MANAGER)]["spec"]["template"]["spec"][
        "containers"][0]
    assert "workingDir" not in applied[("MiniCluster", FIELD_MANAGER)]["spec"]["containers"][0]
    assert "size" not in applied[("MiniCluster", FIELD_MANAGER)]["spec"]

    api.writes.clear()
    reconciler.reconcile(REQUEST)
    assert api.writes == []  # converged again (the fake merges, so the fields linger: no matter)


def test_the_applied_hash_ignores_the_minicluster_size() -> None:
    """After creation spec.size belongs to grow/shrink: it is no reason to apply again."""
    api = FakeApi()
    _, _, reconciler = new_env(api)
    api.put(ENSEMBLES, make_ensemble([member(2, maxSize=4)]))
    reconciler.reconcile(REQUEST)
    stored_ensemble(api)["spec"]["members"][0]["minicluster"]["spec"]["size"] = 3
    stored_ensemble(api)["metadata"]["generation"] = 2
    reconciler.reconcile(REQUEST)  # the status' observedGeneration moves
    api.writes.clear()
    reconciler.reconcile(REQUEST)
    assert api.writes == []


def test_an_owner_reference_added_by_someone_else_is_no_reason_to_apply() -> None:
    """ownerReferences merge by uid under server-side apply, so another owner's entry stays
    after our apply; compared as a whole list it differed forever: a write every reconcile."""
    api = FakeApi()
    _, _, reconciler = new_env(api)
    api.put(ENSEMBLES, make_ensemble([member()]))
    reconciler.reconcile(REQUEST)
    api.objects[(CONFIGMAPS, "ns", "e1-0")]["metadata"]["ownerReferences"].append(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "keeper", "uid": "uid-keeper"})
    api.writes.clear()
    reconciler.reconcile(REQUEST)
    assert api.writes == []
    api.objects[(CONFIGMAPS, "ns", "e1-0")]["metadata"]["ownerReferences"].pop(0)  # ours removed: orphaned
    reconciler.reconcile(REQUEST)
    assert ("ConfigMap", "e1-0") not in api.kinds_written()  # no longer ours: left alone, not adopted again


WARNED_YAML = """
jobs:
  - {name: a, command: sleep 1, gpus: 1}
rules:
  - {trigger: metric, name: count.b.success, when: 1, action: {name: terminate}}
"""


def test_spec_warnings_are_a_condition_and_one_warning_event_never_invalid(env) -> None:
    api, recorder, _, clock, reconciler = env
    api.put(ENSEMBLES, make_ensemble([{**member(), "ensemble": WARNED_YAML}]))
    reconciler.reconcile(Request("ns", "e1"))
    assert ("MiniCluster", "e1-0") in api.kinds_written()           # it runs
    assert stored_ensemble(api)["status"]["phase"] != "Invalid"
    assert conditions(api)["InvalidSpec"]["status"] == "False"
    warned = conditions(api)["SpecWarnings"]
    assert (warned["status"], warned["reason"]) == ("True", "SpecWarnings")
    assert "spec.members[0].ensemble.jobs[0].gpus" in warned["message"]
    assert "spec.members[0].ensemble.rules[0].name: this rule can never fire: no job group 'b'" in warned["message"]
    assert [e for e in recorder.events if e[0] == "Warning"] == [("Warning", "SpecWarnings", warned["message"])]

    writes = len(api.writes)
    reconciler.reconcile(Request("ns", "e1"))                      # nothing new: no write, no second Event
    assert len(api.writes) == writes
    assert len([e for e in recorder.events if e[1] == "SpecWarnings"]) == 1

    clock.step(5)
    stored_ensemble(api)["spec"]["members"][0]["ensemble"] = ENSEMBLE_YAML
    reconciler.reconcile(Request("ns", "e1"))
    assert (conditions(api)["SpecWarnings"]["status"], conditions(api)["SpecWarnings"]["reason"]) == \
        ("False", "NoSpecWarnings")
    assert len([e for e in recorder.events if e[1] == "SpecWarnings"]) == 1


def test_without_the_status_sidecar_members_run_unpolled_and_no_algorithm_runs(env) -> None:
    api, recorder, poller, _, reconciler = env
    ensemble = make_ensemble()
    ensemble["spec"].update(statusSidecar=False, algorithm={"name": "scale"})
    api.put(ENSEMBLES, ensemble)
    reconciler.reconcile(Request("ns", "e1"))
    api.put(PODS, lead_pod("e1-0"))
    assert reconciler.reconcile(Request("ns", "e1")) == Result()       # no heartbeat: nothing to poll
    assert poller.targets == {}
    containers = api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["containers"]
    assert [c.get("name") for c in containers] == [None]                # the app container alone
    assert "noWaitSocket" not in (api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"].get("flux") or {})
    status = stored_ensemble(api)["status"]
    assert status["memberPolling"] == "Disabled"
    assert status["members"][0]["phase"] == "Running"                   # pods still tell the phase
    assert "spec.algorithm: does not run" in conditions(api)["SpecWarnings"]["message"]
    assert "memberActions" not in stored_ensemble(api)["status"]
