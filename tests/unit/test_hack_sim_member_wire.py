"""ActionClient speaks the same wire as ensemble-python's EnsembleClient, and our service acts on it.

ensemble-python's stubs cannot share a process with ours (same proto file name in protobuf's
default pool), so its client runs in a child process, as it does in a lead broker.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.fakes import FakeClock
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from sim.member.action_client import MINICLUSTER_API, ActionClient
from controller.proto.server import GrpcServer
from tests.unit.served_service import serving
from tests.unit.fakes.sim_member import FakeEnsembleService
from tests.unit.fakes.kube import FakeKube, ensemble_obj, minicluster_obj

UPSTREAM_CLIENT = """
import json, sys
from ensemble.members.client import EnsembleClient
host, name, action, payload = sys.argv[1:5]
EnsembleClient(host).action_request("miniclusters", name, action, json.loads(payload))
"""


def test_action_client_sends_what_ensemble_python_sends() -> None:
    servicer = FakeEnsembleService(FakeClock())
    server = GrpcServer(servicer, "127.0.0.1", 0, 2)
    server.start()
    client = ActionClient(server.address, "ens-0", timeout=5)
    try:
        for action, amount in (("grow", 2), ("shrink", 1)):
            subprocess.run([sys.executable, "-c", UPSTREAM_CLIENT, server.address, "ens-0", action,
                            json.dumps({**MINICLUSTER_API, action: amount})],
                           check=True, capture_output=True, text=True, timeout=60)
            reply = client.scale(action, amount)
            assert reply.ok and json.loads(reply.payload) == {"size": 2}
    finally:
        client.close()
        server.stop(grace=1)
    upstream, ours = servicer.received[0::2], servicer.received[1::2]
    assert [(r.member, r.name, r.action, r.payload) for r in ours] == \
        [(r.member, r.name, r.action, r.payload) for r in upstream]
    assert ours[0].payload == {"version": "v1alpha2", "group": "flux-framework.org", "grow": 2}


@pytest.fixture
def service() -> Iterator[tuple[GrpcServer, FakeKube]]:
    kube = FakeKube()
    ensemble = kube.put(ENSEMBLES, ensemble_obj("ens"))
    kube.put(MINICLUSTERS, minicluster_obj("ens-0", ensemble, size=2, max_size=4))
    with serving(kube, workers=2) as server:
        yield server, kube


def test_our_ensemble_service_scales_the_minicluster_on_the_runs_requests(
        service: tuple[GrpcServer, FakeKube]) -> None:
    server, kube = service
    client = ActionClient(server.address, "ens-0", timeout=5)
    unknown = ActionClient(server.address, "ghost-0", timeout=5)
    try:
        assert client.scale("grow", 1).ok
        assert kube.get(MINICLUSTERS, "ens-0", "ns")["spec"]["size"] == 3
        assert client.scale("shrink", 2).ok
        assert kube.get(MINICLUSTERS, "ens-0", "ns")["spec"]["size"] == 1
        refused = unknown.scale("grow", 1)
        assert refused.status == "ERROR" and "ghost-0" in json.loads(refused.payload)["error"]
    finally:
        client.close()
        unknown.close()
