"""Reconciler defects found in review: each test failed before its fix."""
from __future__ import annotations

from controller.clock import FakeClock
from controller.kube.resources import (CONFIGMAPS, DEPLOYMENTS, ENSEMBLES, MINICLUSTERS, NETWORKPOLICIES, PODS,
                                       Resource)
from controller.reconcilers.desired import DesiredSettings
from controller.reconcilers.ensemble import FIELD_MANAGER, EnsembleCaches, EnsembleReconciler
from controller.reconcilers.poller import PollResult
from controller.runtime.reconcile import Request
from tests.unit.test_reconciler import (OWNED, FakeApi, FakeCache, FakePoller, FakeRecorder, make_ensemble,
                                        member, stored_ensemble)
from tests.unit.test_reconciler_algorithms import ADDRESS, EMPTY, KEY, Env, scale

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
    caches = EnsembleCaches(ensembles=FakeCache(api, ENSEMBLES),
                            owned={res: FakeCache(api, res) for res in OWNED}, pods=FakeCache(api, PODS))
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
    ensemble["spec"]["sidecar"] = {"image": "registry.example/service:1", "pullAlways": True}
    ensemble["spec"]["members"][0]["minicluster"]["spec"]["containers"][0]["workingDir"] = "/work"
    api.put(ENSEMBLES, ensemble)
    reconciler.reconcile(REQUEST)
    container = api.objects[(DEPLOYMENTS, "ns", "e1")]["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    api.writes.clear()
    reconciler.reconcile(REQUEST)
    assert api.writes == []  # converged

    del ensemble["spec"]["sidecar"]["pullAlways"]
    del ensemble["spec"]["members"][0]["minicluster"]["spec"]["containers"][0]["workingDir"]
    ensemble["metadata"]["generation"] = 2
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


def test_without_stabilization_an_idle_member_shrinks_though_the_decision_follows_the_poll() -> None:
    """The reconcile reading a poll runs a moment after it; measured from then, a
    stabilizationSeconds of 0 held no recommendation at all and the member never shrank."""
    env = Env(scale(idlePolls="1", stabilizationSeconds="0", cooldownSeconds="0"), [member(2, maxSize=4)])
    env.clock.step(7)
    env.reconciler.record_poll(KEY, PollResult(True, env.clock.wall(), ADDRESS, 0.01, 0, EMPTY))
    env.clock.step(0.05)  # the queue hands the Request to a worker
    env.reconcile()
    assert env.size() == 1
    assert env.reasons().count("ScaledDown") == 1


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
