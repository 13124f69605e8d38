"""Caller identity of the ensemble service: who may resize a member, who may read the status."""
from __future__ import annotations

import pytest

from controller.service.callers import CallerAuthorizer, Refusal, peer_ip
from controller.memberpods.labels import member_pod_selector
from controller.service.memberpods import slim_job, slim_pod
from tests.unit.service_pods import LEAD0, LEAD1, NS, WORKER0, Pods, job, pod


def authorizer(*pods: dict, synced: bool = True) -> CallerAuthorizer:
    return CallerAuthorizer(Pods(*pods, synced=synced), "ens", NS)


@pytest.mark.parametrize("peer, ip", [
    ("ipv4:10.0.0.5:43210", "10.0.0.5"),
    ("ipv6:[::ffff:10.0.0.5]:43210", "10.0.0.5"),
    ("ipv6:%5B::ffff:10.0.0.5%5D:43210", "10.0.0.5"),
    ("ipv6:[fd00::5]:43210", "fd00::5"),
    ("ipv6:[fd00:0:0::5]:1", "fd00::5"),
    ("ipv6:[fe80::1%eth0]:1", "fe80::1"),
    ("unix:/tmp/socket", None),
    ("ipv4:not-an-ip:1", None),
    ("ipv6:::1:1", None),
    ("", None),
])
def test_peer_ip_reads_grpc_peer_strings(peer: str, ip: str | None) -> None:
    assert peer_ip(peer) == ip


def test_the_members_lead_broker_may_resize_it_from_any_address_form() -> None:
    callers = authorizer(LEAD0, WORKER0, LEAD1)
    assert callers.may_act("ipv4:10.0.0.5:5000", "ens-0") is None
    assert callers.may_act("ipv6:[::ffff:10.0.0.5]:5000", "ens-0") is None


def test_a_dual_stack_lead_broker_may_call_from_either_address() -> None:
    callers = authorizer(pod("ens-0-0-abc", "10.0.0.5", extra_ips=("fd00::5",)))
    assert callers.may_act("ipv6:[fd00::5]:5000", "ens-0") is None


@pytest.mark.parametrize("peer, names", [
    ("ipv4:10.0.1.5:5000", ["10.0.1.5", "pod ns/ens-1-0-ghi", "not the lead broker of MiniCluster ns/ens-0",
                            "its lead broker: ns/ens-0-0-abc"]),   # another member's lead broker
    ("ipv4:10.0.0.6:5000", ["pod ns/ens-0-1-def"]),                    # a worker of the same member
    ("ipv4:10.9.9.9:5000", ["no pod of this Ensemble"]),                # a pod anywhere else
    ("ipv4:127.0.0.1:5000", ["127.0.0.1"]),
])
def test_no_one_but_the_lead_broker_may_resize_a_member(peer: str, names: list[str]) -> None:
    denial = authorizer(LEAD0, WORKER0, LEAD1).may_act(peer, "ens-0")
    assert denial is not None and denial.reason is Refusal.NOT_LEAD_BROKER
    for name in names:
        assert name in denial.message


@pytest.mark.parametrize("forged", [
    pod("forged", "10.0.0.66", owner=None),                     # labelled as the lead, owned by no one
    pod("forged", "10.0.0.66", owner="mine"),                   # owned by a Job of the tenant's
    pod("forged", "10.0.0.66", owner="ens-0", owner_kind="ReplicaSet"),
    pod("forged", "10.0.0.66", owner="ens-0", owner_uid="uid-another-job"),  # names the member's Job, not its UID
    pod("forged", "10.0.0.66", namespace="elsewhere"),          # the member's name, in another namespace
])
def test_a_forged_lead_broker_pod_may_not_resize(forged: dict) -> None:
    callers = authorizer(LEAD0, forged)
    denial = callers.may_act("ipv4:10.0.0.66:5000", "ens-0")
    assert denial is not None and denial.reason is Refusal.NOT_LEAD_BROKER
    assert callers.may_act("ipv4:10.0.0.5:5000", "ens-0") is None


@pytest.mark.parametrize("lead", [pod("ens-0-0-abc", "10.0.0.5", phase="Pending"),
                                  pod("ens-0-0-abc", "10.0.0.5", phase="Succeeded"),
                                  pod("ens-0-0-abc", "10.0.0.5", deleting=True)])
def test_a_lead_broker_that_is_not_serving_may_not_resize(lead: dict) -> None:
    denial = authorizer(lead).may_act("ipv4:10.0.0.5:5000", "ens-0")
    assert denial is not None and "none running" in denial.message


def test_the_replacement_lead_broker_may_resize_once_running() -> None:
    old = pod("ens-0-0-old", "10.0.0.5", deleting=True)
    new = pod("ens-0-0-new", "10.0.0.7")
    callers = authorizer(old, new)
    assert callers.may_act("ipv4:10.0.0.7:1", "ens-0") is None
    assert callers.may_act("ipv4:10.0.0.5:1", "ens-0") is not None


def test_nothing_is_allowed_before_the_pod_cache_synced() -> None:
    callers = authorizer(LEAD0, synced=False)
    for denial in (callers.may_act("ipv4:10.0.0.5:1", "ens-0"), callers.may_read("ipv4:10.0.0.5:1")):
        assert denial is not None and denial.reason is Refusal.NOT_SYNCED


def test_an_unreadable_peer_is_refused() -> None:
    denial = authorizer(LEAD0).may_act("unix:/run/x.sock", "ens-0")
    assert denial is not None and denial.reason is Refusal.UNKNOWN_PEER and "unix:/run/x.sock" in denial.message


def test_any_pod_of_the_ensembles_members_may_read_the_status() -> None:
    callers = authorizer(LEAD0, WORKER0, LEAD1)
    for ip in ("10.0.0.5", "10.0.0.6", "10.0.1.5"):
        assert callers.may_read(f"ipv4:{ip}:1") is None


@pytest.mark.parametrize("caller", [
    pod("forged", "10.0.0.66", owner="mine"),
    pod("forged", "10.0.0.66", job="ens-1", owner="ens-1"),             # member label 0, Job of member 1
    pod("forged", "10.0.0.66", member=999999999, job="ens-0"),
    pod("forged", "10.0.0.66", owner="ens-0", owner_uid="uid-another-job"),  # the member's Job by name only
    pod("gone", "10.0.0.66", deleting=True),
])
def test_only_serving_pods_of_the_members_jobs_may_read_the_status(caller: dict) -> None:
    denial = authorizer(LEAD0, caller).may_read("ipv4:10.0.0.66:1")
    assert denial is not None and denial.reason is Refusal.NOT_ENSEMBLE_POD
    assert "not a pod of Ensemble ns/ens" in denial.message


@pytest.mark.parametrize("jobs", [
    [],                                                                       # the Job not seen yet
    [{**job("ens-0"), "metadata": {**job("ens-0")["metadata"], "ownerReferences": []}}],  # no MiniCluster's
    [{**job("ens-0"), "metadata": {**job("ens-0")["metadata"], "uid": "uid-recreated"}}],  # a newer Job
])
def test_without_the_members_job_in_the_cache_its_pods_may_neither_resize_nor_read(jobs: list[dict]) -> None:
    callers = CallerAuthorizer(Pods(LEAD0, jobs=jobs), "ens", NS)
    denial = callers.may_act("ipv4:10.0.0.5:1", "ens-0")
    assert denial is not None and denial.reason is Refusal.NOT_LEAD_BROKER
    denial = callers.may_read("ipv4:10.0.0.5:1")
    assert denial is not None and denial.reason is Refusal.NOT_ENSEMBLE_POD


def test_the_job_cache_is_slimmed_to_what_identifies_a_job_and_its_owner() -> None:
    full = {**job("ens-0"), "spec": {"template": {"spec": {"containers": [{"name": "x" * 10_000}]}}},
            "status": {"active": 3}}
    full["metadata"] = {**full["metadata"], "managedFields": [{}], "annotations": {"big": "x" * 10_000}}
    assert slim_job(full) == {"metadata": job("ens-0")["metadata"]}
    assert CallerAuthorizer(Pods(LEAD0, jobs=[slim_job(full)]), "ens", NS).may_act("ipv4:10.0.0.5:1", "ens-0") is None


def test_the_pod_cache_is_selected_on_the_ensembles_member_pods_and_slimmed() -> None:
    assert member_pod_selector("ens") == ("app.kubernetes.io/managed-by=ensemble-operator,"
                                          "ensemble.flux-framework.org/name=ens,ensemble.flux-framework.org/member")
    full = {**LEAD0, "spec": {"containers": [{"name": "flux", "env": [{"name": "SECRET", "value": "x"}]}]}}
    full["metadata"] = {**LEAD0["metadata"], "annotations": {"big": "x" * 10_000}, "managedFields": [{}]}
    slim = slim_pod(full)
    assert "spec" not in slim and "annotations" not in slim["metadata"] and "managedFields" not in slim["metadata"]
    assert authorizer(slim).may_act("ipv4:10.0.0.5:1", "ens-0") is None
