"""The ensemble service under its own Role (controller/reconcilers/desired/service.py) on a real API server.

The other service tests run it as the cluster admin, which hides a call the Role does not grant.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from controller.clock import RealClock
from controller.kube.client import KubeClient
from controller.kube.errors import ApiError, KubeError
from controller.kube.resources import ENSEMBLES, JOBS, MINICLUSTERS, PODS
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.reconcilers.desired.service import role, role_binding, service_account
from controller.service.callers import CallerAuthorizer
from controller.service.memberpods import MemberPods
from tests.helpers import wait_for, wait_for_value
from tests.integration.objects import JOBS_ONLY, make_minicluster, start_member_pod
from tests.integration.running import ensemble_service

pytestmark = pytest.mark.integration


def readable(client: KubeClient, namespace: str) -> bool:
    try:
        return bool(client.get(ENSEMBLES, "ens", namespace))
    except KubeError:
        return False


@pytest.fixture
def as_service_account(kube_cluster, kube: KubeClient, namespace: str, minicluster_crd: str,
                       ensemble_crd: str) -> Iterator[tuple[dict, pb2_grpc.EnsembleOperatorStub, KubeClient]]:
    """Ensemble ens (2 members, budget 6), its ServiceAccount, Role and RoleBinding, and the
    service running with that ServiceAccount's token (yielded too)."""
    member = {"minicluster": {"spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}]}},
              "ensemble": JOBS_ONLY}
    ensemble = kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                       "metadata": {"name": "ens", "namespace": namespace},
                                       "spec": {"members": [member, member], "budget": 6}}, namespace)
    for obj in (service_account(ensemble), role(ensemble), role_binding(ensemble)):
        kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    token = kube_cluster.kubectl("create", "token", "ens", "-n", namespace).strip()
    client = KubeClient.with_token(kube_cluster.server, token, kube_cluster.ca_file)
    wait_for(lambda: readable(client, namespace), 30, "the service's RoleBinding to take effect")
    with ensemble_service(client, "ens", namespace) as address, grpc.insecure_channel(address) as channel:
        yield ensemble, pb2_grpc.EnsembleOperatorStub(channel), client


def test_budget_grow_and_status_under_the_services_own_role(kube: KubeClient, namespace: str,
                                                            as_service_account) -> None:
    ensemble, stub, _ = as_service_account
    make_minicluster(kube, namespace, "ens-0", ensemble)
    make_minicluster(kube, namespace, "ens-1", ensemble)
    payload = json.dumps({"version": "v1alpha2", "group": "flux-framework.org", "grow": 5})
    response = stub.RequestAction(pb2.ActionRequest(member="miniclusters", name="ens-0", action="grow",
                                                    payload=payload), timeout=30)
    assert response.status == pb2.Response.SUCCESS, response.payload
    assert json.loads(response.payload)["to"] == 3                 # an equal share of the budget of 6
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 3
    status = stub.RequestStatus(pb2.StatusRequest(), timeout=30)
    assert status.status == pb2.Response.SUCCESS, status.payload
    assert [(m["name"], m["size"]) for m in json.loads(status.payload)["members"]] == [("ens-0", 3), ("ens-1", 1)]
    # The grow was recorded in its ledger write; the shrink by the service's background apply of
    # status.serviceActions: both under the Role.
    shrink = stub.RequestAction(pb2.ActionRequest(member="miniclusters", name="ens-0", action="shrink",
                                                  payload="{}"), timeout=30)
    assert shrink.status == pb2.Response.SUCCESS, shrink.payload

    def recorded() -> tuple | None:
        entries = (kube.get(ENSEMBLES, "ens", namespace).get("status") or {}).get("serviceActions") or []
        return tuple((e["kind"], e["from"], e["to"], e["grows"], e["shrinks"]) for e in entries) or None

    wait_for_value(recorded, (("shrink", 3, 2, 1, 1),), 10, "the recorded serviceActions")


def test_the_services_pod_cache_lists_and_watches_under_its_own_role(kube: KubeClient, namespace: str,
                                                                       as_service_account) -> None:
    """Caller identity reads the Ensemble's member pods and their Jobs through informers: the
    Role's pods and Jobs list/watch is enough for it, and gives nothing more on either. The
    Jobs, created without labels as the Flux Operator does, are selected by the labels the API
    server copied from their pods."""
    ensemble, _, client = as_service_account
    for index in (0, 1):
        make_minicluster(kube, namespace, f"ens-{index}", ensemble)
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-lead", "127.13.0.20")
    start_member_pod(kube, namespace, ensemble, 0, "ens-0-0-tenant", "127.13.0.22", owner_job="tenant-job")
    pods = MemberPods(client, "ens", namespace, clock=RealClock())
    pods.start()
    try:
        assert pods.wait_for_sync(30)
        assert sorted(p["metadata"]["name"] for p in pods.list()) == ["ens-0-0-lead", "ens-0-0-tenant"]
        assert [j["metadata"]["name"] for j in pods.jobs()] == ["ens-0"]    # not the tenant's unlabelled Job
        start_member_pod(kube, namespace, ensemble, 1, "ens-1-0-lead", "127.13.0.21")   # the watches
        wait_for(lambda: len(pods.list()) == 3 and len(pods.jobs()) == 2, 30,
                 "the watches to show the second member's lead broker and Job")
        authorizer = CallerAuthorizer(pods, "ens", namespace)
        wait_for(lambda: authorizer.may_act("ipv4:127.13.0.21:1", "ens-1") is None, 30,
                 "member 1's lead broker, Running, to be let resize it")
        assert authorizer.may_act("ipv4:127.13.0.22:1", "ens-0") is not None  # a pod of the tenant's Job
    finally:
        pods.stop()
    for res, name in ((PODS, "ens-0-0-lead"), (JOBS, "ens-0")):
        with pytest.raises(ApiError) as denied:
            client.get(res, name, namespace)
        assert denied.value.status == 403
