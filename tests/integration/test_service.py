"""The ensemble service against a real API server: concurrency and ownership."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import grpc
import pytest

from controller.kube.client import KubeClient
from controller.kube.resources import MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from tests.helpers import run_together
from tests.integration.objects import make_ensemble, make_minicluster
from tests.integration.running import ensemble_service

pytestmark = pytest.mark.integration

PAYLOAD = json.dumps({"version": "v1alpha2", "group": "flux-framework.org", "grow": 1})


@pytest.fixture
def service(kube: KubeClient, namespace: str, minicluster_crd: str,
            ensemble_crd: str) -> Iterator[pb2_grpc.EnsembleOperatorStub]:
    with ensemble_service(kube, "ens", namespace) as address, grpc.insecure_channel(address) as channel:
        yield pb2_grpc.EnsembleOperatorStub(channel)


def grow(stub: pb2_grpc.EnsembleOperatorStub, name: str) -> pb2.Response:
    return stub.RequestAction(pb2.ActionRequest(member="miniclusters", name=name, action="grow",
                                                payload=PAYLOAD), timeout=30)


def test_ten_concurrent_grows_from_one_end_at_eleven(kube: KubeClient, namespace: str,
                                                     service: pb2_grpc.EnsembleOperatorStub) -> None:
    make_minicluster(kube, namespace, "ens-0", make_ensemble(kube, namespace, "ens"))
    statuses = run_together(lambda: grow(service, "ens-0").status, 10, timeout=60)
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


SERVICE_PROCESS = """
import argparse, logging, sys
from controller.service import main
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
parser = argparse.ArgumentParser()
main.add_arguments(parser)
sys.exit(main.run(parser.parse_args(sys.argv[1:])))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_service_command_serves_counts_and_stops_on_sigterm(kube: KubeClient, kube_cluster, namespace: str,
                                                            minicluster_crd: str, ensemble_crd: str) -> None:
    make_minicluster(kube, namespace, "ens-0", make_ensemble(kube, namespace, "ens"))
    metrics_port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", SERVICE_PROCESS, "--host", "127.0.0.1", "--port", "0", "--workers", "2",
         "--ensemble", "ens", "--namespace", namespace, "--kubeconfig", str(kube_cluster.kubeconfig),
         "--metrics-port", str(metrics_port)], stderr=subprocess.PIPE, text=True)
    try:
        address = ""
        while not address:
            line = child.stderr.readline()
            assert line, "service exited before listening"
            if line.startswith("gRPC server listening on "):
                address = line.rsplit(" ", 1)[-1].strip()
        with grpc.insecure_channel(address) as channel:
            assert grow(pb2_grpc.EnsembleOperatorStub(channel), "ens-0").status == pb2.Response.SUCCESS
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'ensemble_service_actions_total{action="grow",result="SUCCESS"} 1.0' in metrics
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert kube.get(MINICLUSTERS, "ens-0", namespace)["spec"]["size"] == 2

