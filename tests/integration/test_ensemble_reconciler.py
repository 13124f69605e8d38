"""The Ensemble controller on the local control plane, acting as the manifests' ServiceAccount.

Every test runs the real Manager + setup() with the token of
ensemble-operator-system/ensemble-operator, so a verb missing from
manifests/cluster_role.yaml fails here.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from controller.kube.client import KubeClient
from controller.kube.errors import is_conflict
from controller.kube.resources import (CONFIGMAPS, DEPLOYMENTS, ENSEMBLES, EVENTS, MINICLUSTERS, NETWORKPOLICIES,
                                       ROLEBINDINGS, ROLES, SERVICEACCOUNTS, SERVICES)
from controller.reconcilers.ensemble import FIELD_MANAGER
from controller.reconcilers.intents import RecordsChanged, owns_records, store_records
from controller.runtime.reconcile import Request
from tests.compat import UPSTREAM_EXAMPLES
from tests.helpers import wait_for
from tests.integration.objects import ensemble_condition, ensemble_status, get_or_none
from tests.integration.running import RunningController

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
RBAC_FILES = ("namespace.yaml", "service_account.yaml", "cluster_role.yaml", "cluster_role_binding.yaml",
              "leader_election_role.yaml", "leader_election_role_binding.yaml")
OPERATOR_NAMESPACE = "ensemble-operator-system"
SERVICE_OBJECTS = ((SERVICEACCOUNTS, ""), (ROLES, ""), (ROLEBINDINGS, ""), (SERVICES, "-grpc"), (DEPLOYMENTS, ""),
                   (NETWORKPOLICIES, "-grpc"))
MEMBER_RESOURCES = (CONFIGMAPS, MINICLUSTERS, NETWORKPOLICIES)


@pytest.fixture(scope="module")
def operator_token(kube_cluster, kube: KubeClient, ensemble_crd: str, minicluster_crd: str) -> str:
    for name in RBAC_FILES:
        kube_cluster.kubectl("apply", "--server-side", "-f", str(MANIFESTS / name))
    review = kube.request("POST", SERVICEACCOUNTS.path(OPERATOR_NAMESPACE, "ensemble-operator", "token"),
                          body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": 3600}})
    return review["status"]["token"]


@pytest.fixture
def run_controller(kube_cluster, operator_token: str) -> Iterator[Callable[[], RunningController]]:
    started: list[RunningController] = []

    def start() -> RunningController:
        client = KubeClient.with_token(kube_cluster.server, operator_token, kube_cluster.ca_file)
        started.append(RunningController(client))
        return started[-1]

    yield start
    for running in started:
        if running.manager.is_running():
            running.stop()


def upstream_example(name: str, namespace: str, ensemble_name: str = "ensemble") -> dict:
    obj = yaml.safe_load((UPSTREAM_EXAMPLES / name).read_text())
    obj["metadata"] = {"name": ensemble_name, "namespace": namespace}
    return obj


def owned_objects(kube: KubeClient, name: str, namespace: str, members: int) -> list[dict] | None:
    names = [(res, name + suffix) for res, suffix in SERVICE_OBJECTS]
    names += [(res, f"{name}-{i}") for i in range(members) for res in MEMBER_RESOURCES]
    found = [get_or_none(kube, res, obj_name, namespace) for res, obj_name in names]
    return found if all(found) else None


def update_ensemble(kube: KubeClient, name: str, namespace: str, mutate: Callable[[dict], None]) -> None:
    """Read-modify-write, retried when the controller's status write got in between."""
    for _ in range(10):
        ensemble = kube.get(ENSEMBLES, name, namespace)
        mutate(ensemble)
        try:
            kube.replace(ENSEMBLES, ensemble)
            return
        except Exception as error:
            if not is_conflict(error):
                raise
    raise AssertionError(f"could not update ensemble {namespace}/{name}: kept conflicting")


def test_create_update_and_remove_members(kube: KubeClient, namespace: str, run_controller) -> None:
    running = run_controller()
    created = kube.create(ENSEMBLES, upstream_example("hello-world.yaml", namespace), namespace)
    objects = wait_for(lambda: owned_objects(kube, "ensemble", namespace, 1), 30, "owned objects")
    for obj in objects:
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (created["metadata"]["uid"], True, True)
        assert obj["metadata"]["labels"]["ensemble.flux-framework.org/name"] == "ensemble"
    mc = kube.get(MINICLUSTERS, "ensemble-0", namespace)
    assert mc["spec"]["size"] == 1 and mc["spec"]["maxSize"] == 16
    runner = mc["spec"]["containers"][0]
    assert f"--host ensemble-grpc.{namespace}.svc --port 50051" in runner["command"]
    deployment = kube.get(DEPLOYMENTS, "ensemble", namespace)
    # The upstream example names the ensemble-python image; ours runs the service.
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "op:test"
    wait_for(lambda: ensemble_status(kube, "ensemble", namespace).get("observedGeneration") == 1, 30, "status")
    assert ensemble_condition(kube, "ensemble", namespace, "InvalidSpec")["status"] == "False"

    update_ensemble(kube, "ensemble", namespace,
                    lambda e: e["spec"]["members"].append(copy.deepcopy(e["spec"]["members"][0])))
    wait_for(lambda: owned_objects(kube, "ensemble", namespace, 2), 30, "member 1 created")
    wait_for(lambda: ensemble_status(kube, "ensemble", namespace).get("summary", {}).get("members") == 2, 30,
             "status with two members")

    update_ensemble(kube, "ensemble", namespace, lambda e: e["spec"]["members"].pop())
    wait_for(lambda: get_or_none(kube, MINICLUSTERS, "ensemble-1", namespace) is None
             and get_or_none(kube, CONFIGMAPS, "ensemble-1", namespace) is None, 30, "member 1 deleted")
    assert get_or_none(kube, MINICLUSTERS, "ensemble-0", namespace) is not None
    running.stop()


def test_drift_is_repaired_and_a_no_op_reconcile_writes_nothing(kube: KubeClient, namespace: str,
                                                                 run_controller) -> None:
    running = run_controller()
    kube.create(ENSEMBLES, upstream_example("grow-shrink.yaml", namespace), namespace)
    wait_for(lambda: owned_objects(kube, "ensemble", namespace, 1), 30, "owned objects")
    wait_for(lambda: ensemble_status(kube, "ensemble", namespace).get("observedGeneration") == 1, 30, "status")

    applied_rules = kube.get(ROLES, "ensemble", namespace)["rules"]
    assert applied_rules, "the service Role was applied with rules"
    kube.delete(CONFIGMAPS, "ensemble-0", namespace)
    kube.patch(DEPLOYMENTS, "ensemble", {"spec": {"replicas": 3}}, namespace=namespace)
    kube.patch(ROLES, "ensemble", {"rules": []}, namespace=namespace)
    wait_for(lambda: get_or_none(kube, CONFIGMAPS, "ensemble-0", namespace), 30, "ConfigMap restored")
    wait_for(lambda: kube.get(DEPLOYMENTS, "ensemble", namespace)["spec"]["replicas"] == 1, 30, "replicas restored")
    # The emptied rules read back as null until the controller restores them.
    wait_for(lambda: kube.get(ROLES, "ensemble", namespace)["rules"] == applied_rules, 30, "Role rules restored")

    # Converged: reconciling from the (synced) caches sends no write at all.
    def settled_no_op() -> bool:
        before = running.client.write_count
        running.controller.reconciler.reconcile(Request(namespace, "ensemble"))
        return running.client.write_count == before

    wait_for(settled_no_op, 30, "a reconcile without writes")
    # The workers share the client (and reconcile other namespaces' ensembles too): stop
    # them, so that only our reconciles, over the synced caches they leave, are counted.
    running.stop()
    before = running.client.write_count
    for _ in range(3):
        running.controller.reconciler.reconcile(Request(namespace, "ensemble"))
    assert running.client.write_count == before


def test_scaled_size_survives_a_spec_update(kube: KubeClient, namespace: str, run_controller) -> None:
    run_controller()
    kube.create(ENSEMBLES, upstream_example("grow-shrink.yaml", namespace), namespace)
    wait_for(lambda: get_or_none(kube, MINICLUSTERS, "ensemble-0", namespace), 30, "MiniCluster")
    kube.patch(MINICLUSTERS, "ensemble-0", {"spec": {"replicas": 4}}, namespace=namespace, subresource="scale",
               field_manager="ensemble-service")
    update_ensemble(kube, "ensemble", namespace, lambda e: e["spec"]["members"][0]["minicluster"]["spec"]
                    ["containers"][0].update(workingDir="/tmp"))
    wait_for(lambda: kube.get(MINICLUSTERS, "ensemble-0", namespace)["spec"]["containers"][0]
             .get("workingDir") == "/tmp", 30, "spec change applied")
    assert kube.get(MINICLUSTERS, "ensemble-0", namespace)["spec"]["size"] == 4


def test_invalid_spec_reports_and_creates_nothing_until_fixed(kube: KubeClient, namespace: str,
                                                               run_controller) -> None:
    run_controller()
    bad = upstream_example("grow-shrink.yaml", namespace, "bad")
    good_yaml = bad["spec"]["members"][0]["ensemble"]
    bad["spec"]["members"][0]["ensemble"] = "jobs: []\nrules: not-a-list\n"
    kube.create(ENSEMBLES, bad, namespace)
    kube.create(ENSEMBLES, upstream_example("grow-shrink.yaml", namespace, "fine"), namespace)
    ready = wait_for(lambda: ensemble_condition(kube, "bad", namespace, "Ready"), 30, "Ready condition")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.members[0].ensemble" in ready["message"]
    wait_for(lambda: any(e.get("reason") == "InvalidSpec" and e["regarding"]["name"] == "bad"
                         for e in kube.list(EVENTS, namespace)["items"]), 30, "Warning event")
    wait_for(lambda: owned_objects(kube, "fine", namespace, 1), 30, "the valid ensemble's objects")
    for res, suffix in SERVICE_OBJECTS:
        assert get_or_none(kube, res, "bad" + suffix, namespace) is None
    assert get_or_none(kube, MINICLUSTERS, "bad-0", namespace) is None

    update_ensemble(kube, "bad", namespace, lambda e: e["spec"]["members"][0].update(ensemble=good_yaml))
    wait_for(lambda: owned_objects(kube, "bad", namespace, 1), 30, "objects once fixed")
    wait_for(lambda: ensemble_condition(kube, "bad", namespace, "InvalidSpec")["status"] == "False", 30, "recovered")


def test_two_namespaces_and_a_restart_converge_without_duplicates(kube_cluster, kube: KubeClient,
                                                                   namespace: str, run_controller) -> None:
    other = f"{namespace}-b"
    kube_cluster.kubectl("create", "namespace", other)
    try:
        first = run_controller()
        kube.create(ENSEMBLES, upstream_example("grow-shrink.yaml", namespace, "a"), namespace)
        kube.create(ENSEMBLES, upstream_example("grow-shrink.yaml", namespace, "b"), namespace)
        wait_for(lambda: get_or_none(kube, SERVICEACCOUNTS, "a", namespace), 30, "first objects")
        first.stop()  # mid-way: the other ensembles are created while no controller runs
        kube.create(ENSEMBLES, upstream_example("hello-world.yaml", other, "a"), other)
        run_controller()
        for ns, name in ((namespace, "a"), (namespace, "b"), (other, "a")):
            wait_for(lambda: owned_objects(kube, name, ns, 1), 30, f"{ns}/{name} objects")
        for ns, count in ((namespace, 2), (other, 1)):
            listed = kube.list(MINICLUSTERS, ns, label_selector="app.kubernetes.io/managed-by=ensemble-operator")
            assert len(listed["items"]) == count
    finally:
        kube_cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_deleting_the_ensemble_garbage_collects_its_objects(controller_manager, kube: KubeClient,
                                                            namespace: str, run_controller) -> None:
    run_controller()
    kube.create(ENSEMBLES, upstream_example("grow-shrink.yaml", namespace), namespace)
    wait_for(lambda: owned_objects(kube, "ensemble", namespace, 1), 30, "owned objects")
    kube.delete(ENSEMBLES, "ensemble", namespace)
    wait_for(lambda: all(get_or_none(kube, res, "ensemble" + suffix, namespace) is None
                         for res, suffix in SERVICE_OBJECTS)
             and all(get_or_none(kube, res, "ensemble-0", namespace) is None for res in MEMBER_RESOURCES),
             60, "garbage collected")


def nested_ensemble(namespace: str, name: str, levels: int) -> bytes:
    """An Ensemble whose spec.algorithm.options nests ``levels`` deep: past every JSON decoder's
    recursion limit here, while the API server stores it. Written by hand: json.dumps recurses too."""
    example = upstream_example("hello-world.yaml", namespace, name)
    example["spec"]["algorithm"] = {"name": "scale", "options": {"deep": "NESTED"}}
    return json.dumps(example).replace('"NESTED"', '{"a":' * levels + "1" + "}" * levels).encode()


def undecodable(running: RunningController) -> float:
    return running.manager.registry.get_sample_value("informer_undecodable_objects_total",
                                                     {"resource": str(ENSEMBLES)}) or 0.0


def test_an_ensemble_nested_1000_levels_does_not_stop_an_ordinary_one_created_after_it(
        kube_cluster, kube: KubeClient, namespace: str, run_controller, tmp_path: Path) -> None:
    running = run_controller()
    deep = tmp_path / "deep.json"
    deep.write_bytes(nested_ensemble(namespace, "deep", 1000))
    kube_cluster.kubectl("create", "-f", str(deep))                 # watched: skipped, the informer goes on
    kube.create(ENSEMBLES, upstream_example("hello-world.yaml", namespace, "plain"), namespace)
    wait_for(lambda: owned_objects(kube, "plain", namespace, 1), 30, "the ordinary Ensemble's objects")
    wait_for(lambda: ensemble_status(kube, "plain", namespace).get("phase"), 30, "the ordinary Ensemble's phase")
    assert undecodable(running) == 1
    assert get_or_none(kube, MINICLUSTERS, "deep-0", namespace) is None
    running.stop()
    # A controller starting now lists the nested one: it syncs all the same, and goes on reconciling.
    again = run_controller()
    assert undecodable(again) == 1
    kube.create(ENSEMBLES, upstream_example("hello-world.yaml", namespace, "after"), namespace)
    wait_for(lambda: owned_objects(kube, "after", namespace, 1), 30, "an Ensemble created after the restart")


def test_a_configmap_that_existed_before_is_not_adopted_and_the_ensemble_names_the_conflict(
        kube: KubeClient, namespace: str, run_controller) -> None:
    kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "data": {"tenant": "data"},
                             "metadata": {"name": "ensemble-0", "namespace": namespace}}, namespace)
    run_controller()
    kube.create(ENSEMBLES, upstream_example("hello-world.yaml", namespace), namespace)
    conflict = wait_for(lambda: (c := ensemble_condition(kube, "ensemble", namespace, "Conflict")) and c, 30,
                        "the Conflict condition")
    assert conflict["status"] == "True" and f"ConfigMap {namespace}/ensemble-0 exists" in conflict["message"]
    wait_for(lambda: get_or_none(kube, MINICLUSTERS, "ensemble-0", namespace), 30, "the rest created")
    kept = kube.get(CONFIGMAPS, "ensemble-0", namespace)
    assert kept["data"] == {"tenant": "data"} and not kept["metadata"].get("ownerReferences")
    assert not kept["metadata"].get("labels")
    warnings = wait_for(lambda: [e for e in kube.list(EVENTS, namespace)["items"]
                                 if e.get("reason") == "Conflict" and e.get("type") == "Warning"], 30,
                        "a Warning Event")
    assert "ensemble-0" in warnings[0]["note"]


def test_action_records_on_a_stale_copy_are_refused_and_no_status_write_erases_them(
        kube_cluster, kube: KubeClient, namespace: str, operator_token: str) -> None:
    """What makes an algorithm's action happen at most once across operators, on the real API
    server: records guarded by resourceVersion, under their own field manager."""
    operator = KubeClient.with_token(kube_cluster.server, operator_token, kube_cluster.ca_file)
    stale = kube.create(ENSEMBLES, upstream_example("hello-world.yaml", namespace), namespace)
    refill = [{"name": "ensemble-0", "actionCounts": {"submit": 1}, "lastActionTimes": {}}]
    first = store_records(operator, stale, refill)
    assert first["status"]["memberActions"] == refill

    # Another operator, its copy from before the refill, records a refill too: refused, it gets ours.
    with pytest.raises(RecordsChanged) as changed:
        store_records(operator, stale, [{**refill[0], "pendingActions": [{"kind": "submit"}]}])
    assert changed.value.live["status"]["memberActions"] == refill

    # Its status apply (not guarded) from that copy keeps them.
    operator.apply(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                               "metadata": {"name": "ensemble", "namespace": namespace},
                               "status": {"phase": "Running", "observedGeneration": 1}},
                   field_manager=FIELD_MANAGER, subresource="status")
    assert kube.get(ENSEMBLES, "ensemble", namespace)["status"]["memberActions"] == refill

    # Records unchanged since our copy (only the status write above came between): written on the live copy.
    grown = [{"name": "ensemble-0", "actionCounts": {"grow": 1, "submit": 1}, "lastActionTimes": {}}]
    assert store_records(operator, first, grown)["status"]["memberActions"] == grown
    assert owns_records(kube.get(ENSEMBLES, "ensemble", namespace))
    assert store_records(operator, kube.get(ENSEMBLES, "ensemble", namespace), [])["status"].get(
        "memberActions") is None

    # Records an older operator wrote with its status apply: not ours until written again.
    status = {"phase": "Running", "observedGeneration": 1, "memberActions": refill}
    body = {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
            "metadata": {"name": "ensemble", "namespace": namespace}, "status": status}
    legacy = operator.apply(ENSEMBLES, body, field_manager=FIELD_MANAGER, subresource="status")
    assert not owns_records(kube.get(ENSEMBLES, "ensemble", namespace))
    store_records(operator, legacy, refill, force=True)
    operator.apply(ENSEMBLES, {**body, "status": {"phase": "Running", "observedGeneration": 1}},
                   field_manager=FIELD_MANAGER, subresource="status")
    assert kube.get(ENSEMBLES, "ensemble", namespace)["status"]["memberActions"] == refill


def test_network_policies_follow_spec_network_policy_and_the_members(kube: KubeClient, namespace: str,
                                                                     run_controller) -> None:
    """Stored as built (the API server accepts endPort ranges and the selectors), deleted when
    opted out or when their member goes, created again when opted back in."""
    run_controller()
    example = upstream_example("hello-world.yaml", namespace)
    example["spec"]["members"].append(copy.deepcopy(example["spec"]["members"][0]))
    kube.create(ENSEMBLES, example, namespace)
    wait_for(lambda: owned_objects(kube, "ensemble", namespace, 2), 30, "owned objects with NetworkPolicies")
    member = kube.get(NETWORKPOLICIES, "ensemble-1", namespace)["spec"]
    assert member["podSelector"]["matchLabels"]["ensemble.flux-framework.org/member"] == "1"
    assert {"protocol": "TCP", "port": 50053, "endPort": 65535} in member["ingress"][2]["ports"]

    def names() -> set[str]:
        return {p["metadata"]["name"] for p in kube.list(NETWORKPOLICIES, namespace)["items"]}

    update_ensemble(kube, "ensemble", namespace, lambda e: e["spec"]["members"].pop())
    wait_for(lambda: names() == {"ensemble-grpc", "ensemble-0"}, 30, "the removed member's NetworkPolicy deleted")
    update_ensemble(kube, "ensemble", namespace, lambda e: e["spec"].update(networkPolicy=False))
    wait_for(lambda: names() == set(), 30, "NetworkPolicies deleted once spec.networkPolicy is false")
    assert get_or_none(kube, MINICLUSTERS, "ensemble-0", namespace) is not None
    update_ensemble(kube, "ensemble", namespace, lambda e: e["spec"].pop("networkPolicy"))
    wait_for(lambda: names() == {"ensemble-grpc", "ensemble-0"}, 30, "NetworkPolicies back (on by default)")
