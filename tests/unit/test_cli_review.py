"""`ensemble-operator run` on a cluster missing a CRD it watches (the Flux Operator's MiniCluster
not installed): one error line naming the CRD and what installs it, exit 1 at once, instead of
informers retrying silently until "caches did not sync" 120 s later, in a crash loop."""
from __future__ import annotations

import json
import sys
import types

import pytest

from controller import cli
from controller.kube.errors import ApiError
from controller.kube.resources import CONFIGMAPS, ENSEMBLES, MINICLUSTERS, PODS


# cli.main configures root logging: undone after each test (tests/unit/conftest.py)
pytestmark = pytest.mark.usefixtures("restore_root_logger")


class Discovery:
    """Answers discovery for the group versions it serves, 404 for the others."""

    def __init__(self, served: dict[str, list[str]], failing: dict[str, ApiError] | None = None) -> None:
        self.served, self.failing, self.asked = served, failing or {}, []

    def request(self, method: str, path: str, **_: object) -> dict:
        self.asked.append((method, path))
        if path in self.failing:
            raise self.failing[path]
        if path not in self.served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "resources": [{"name": name} for name in self.served[path]]}


def test_unserved_resources_asks_discovery_once_per_group_version() -> None:
    client = Discovery({"/api/v1": ["pods", "configmaps"],
                        "/apis/ensemble.flux-framework.org/v1alpha1": ["ensembles", "ensembles/status"]})
    assert cli.unserved_resources(client, [PODS, CONFIGMAPS, ENSEMBLES, MINICLUSTERS, PODS]) == [MINICLUSTERS]
    assert sorted(path for _, path in client.asked) == [
        "/api/v1", "/apis/ensemble.flux-framework.org/v1alpha1", "/apis/flux-framework.org/v1alpha2"]


def test_a_discovery_failure_other_than_404_is_left_to_the_informers() -> None:
    client = Discovery({}, failing={"/apis/flux-framework.org/v1alpha2": ApiError(403, "Forbidden", "no")})
    assert cli.unserved_resources(client, [MINICLUSTERS]) == []


def run_with(monkeypatch, client, watched) -> list[str]:
    from controller.kube.client import KubeClient
    from controller.runtime.manager import Manager

    started: list[bool] = []

    def setup(manager, args) -> None:
        for resource in watched:
            manager.informers.informer_for(resource)

    module = types.ModuleType("controller.reconcilers")
    module.setup = setup
    monkeypatch.setitem(sys.modules, "controller.reconcilers", module)
    monkeypatch.setattr(KubeClient, "load", classmethod(lambda cls, path=None: client))
    monkeypatch.setattr(Manager, "start", lambda self: started.append(True))
    monkeypatch.setattr(cli, "stop_on_signals", lambda stop: None)
    status = cli.main(["run", "--no-leader-elect", "--metrics-bind-address", "0",
                       "--health-probe-bind-address", "0"])
    return [status, started]


def test_run_without_the_minicluster_crd_names_it_and_exits_1(monkeypatch, capsys) -> None:
    client = Discovery({"/apis/ensemble.flux-framework.org/v1alpha1": ["ensembles"]})
    status, started = run_with(monkeypatch, client, [ENSEMBLES, MINICLUSTERS])
    assert (status, started) == (1, [])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    errors = [line["msg"] for line in lines if line["level"] == "error"]
    assert errors == ["MiniCluster (miniclusters.flux-framework.org/v1alpha2) is not served by the API "
                      "server: install the Flux Operator first, whose CRD defines MiniCluster"]


def test_run_with_every_crd_served_starts_the_manager(monkeypatch) -> None:
    client = Discovery({"/apis/ensemble.flux-framework.org/v1alpha1": ["ensembles"],
                        "/apis/flux-framework.org/v1alpha2": ["miniclusters"]})
    assert run_with(monkeypatch, client, [ENSEMBLES, MINICLUSTERS]) == [0, [True]]
