"""The ensemble service against a real API server: concurrency and ownership."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from controller.clock import RealClock
from controller.kube.client import KubeClient
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service.scaler import EnsembleScaler
from controller.service.server import GrpcServer
from controller.service.servicer import EnsembleServicer, actions_counter

pytestmark = pytest.mark.integration

PAYLOAD = json.dumps({"version": "v1alpha2", "group": "flux-framework.org", "grow": 1})


def make_ensemble(kube: KubeClient, namespace: str, name: str) -> dict:
    member = {"minicluster": {"spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}]}},
              "ensemble": "jobs:\n- name: a\n  command: sleep 1\n"}
    return kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                   "metadata": {"name": name, "namespace": namespace},
                                   "spec": {"members": [member]}}, namespace)


def make_minicluster(kube: KubeClient, namespace: str, name: str, owner: dict) -> dict:
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True}
    return kube.create(MINICLUSTERS, {
        "apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [ref]},
        "spec": {"size": 1, "maxSize": 16, "containers": [{"image": "busybox"}]}}, namespace)


@pytest.fixture
def service(kube: KubeClient, namespace: str, minicluster_crd: str,
            ensemble_crd: str) -> Iterator[pb2_grpc.EnsembleOperatorStub]:
    scaler = EnsembleScaler(kube, "ens", namespace, clock=RealClock())
    server = GrpcServer(EnsembleServicer(scaler, actions_counter(CollectorRegistry())), "127.0.0.1", 0, 10)
    server.start()
    with grpc.insecure_channel(server.address) as channel:
        yield pb2_grpc.EnsembleOperatorStub(channel)
    server.stop(grace=2)


def grow(stub: pb2_grpc.EnsembleOperatorStub, name: str) -> pb2.Response:
    return stub.RequestAction(pb2.ActionRequest(member="miniclusters", name=name, action="grow",
                                                payload=PAYLOAD), timeout=30)


def test_ten_concurrent_grows_from_one_end_at_eleven(kube: KubeClient, namespace: str,
                                                     service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_minicluster(kube, namespace, "ens-0", make_ensemble(kube, namespace, "ens"))
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def one_grow() -> None:
        barrier.wait()
        statuses.append(grow(service, "ens-0").status)

    threads = [threading.Thread(target=one_grow) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [pb2.Response.SUCCESS] * 10
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 11


def test_minicluster_of_another_ensemble_is_denied(kube: KubeClient, namespace: str,
                                                   service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_ensemble(kube, namespace, "ens")
    make_minicluster(kube, namespace, "other-0", make_ensemble(kube, namespace, "other"))
    response = grow(service, "other-0")
    assert response.status == pb2.Response.DENIED
    assert "not a member of Ensemble 'ens'" in json.loads(response.payload)["error"]
    assert kube.get(MINICLUSTERS, "other-0", namespace)["spec"]["size"] == 1


def test_missing_minicluster_is_an_error(kube: KubeClient, namespace: str,
                                         service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_ensemble(kube, namespace, "ens")
    response = grow(service, "ghost")
    assert response.status == pb2.Response.ERROR
    assert f"MiniCluster {namespace}/ghost" in json.loads(response.payload)["error"]
