"""Our CRD on a real kube-apiserver: upstream and our examples apply unchanged and read back
defaulted; invalid Ensembles are rejected early with messages naming the field."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from api.v1alpha1 import validate
from controller.kube.errors import ApiError
from controller.kube.resources import CRDS, ENSEMBLES
from tests.compat import UPSTREAM_EXAMPLES
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "manifests" / "crd.yaml"
UPSTREAM = sorted(UPSTREAM_EXAMPLES.glob("*.yaml"))
OURS = sorted((ROOT / "examples").glob("*/ensemble.yaml"))


def established(crd: dict) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def crd_installed(kube) -> str:
    """manifests/crd.yaml, installed by server-side apply and waited on until Established and served."""
    manifest = yaml.safe_load(CRD_PATH.read_text())
    name = manifest["metadata"]["name"]
    kube.apply(CRDS, manifest, field_manager="test-crd-apply")

    def served() -> bool:
        if not established(kube.get(CRDS, name)):
            return False
        try:
            kube.list(ENSEMBLES, "default")
            return True
        except ApiError as err:
            if err.status not in (404, 429):  # not yet served / storage (re)initializing
                raise
            return False

    wait_for(served, 30, f"CRD {name} to be Established and served")
    return name


def create(kube, namespace: str, obj: dict) -> dict:
    return kube.create(ENSEMBLES, obj, namespace)


def test_crd_is_accepted_with_our_names(kube, crd_installed: str) -> None:
    stored = kube.get(CRDS, crd_installed)
    assert stored["status"]["acceptedNames"]["shortNames"] == ["ens"]
    assert stored["spec"]["versions"][0]["subresources"] == {"status": {}}


@pytest.mark.parametrize("path", UPSTREAM, ids=lambda p: p.stem)
def test_upstream_examples_apply_unchanged(kube, crd_installed: str, namespace: str, path: Path) -> None:
    original = yaml.safe_load(path.read_text())
    created = create(kube, namespace, copy.deepcopy(original))
    stored = kube.get(ENSEMBLES, created["metadata"]["name"], namespace)
    sidecar = stored["spec"]["sidecar"]
    assert sidecar.get("pullAlways") == original["spec"]["sidecar"].get("pullAlways")
    assert sidecar["port"] == "50051" and sidecar["workers"] == 10
    assert sidecar["image"] == original["spec"]["sidecar"]["image"]
    assert stored["spec"]["heartbeat"] == 10
    member = stored["spec"]["members"][0]
    assert member["ensemble"] == original["spec"]["members"][0]["ensemble"]
    assert member["minicluster"] == original["spec"]["members"][0]["minicluster"], \
        "the embedded MiniCluster keeps fields the schema does not list"


@pytest.mark.parametrize("path", UPSTREAM, ids=lambda p: p.stem)
def test_upstream_examples_pass_kubectls_strict_field_validation(kube_cluster, crd_installed: str,
                                                                namespace: str, path: Path) -> None:
    """kubectl apply validates fields strictly by default: no field of upstream's may be unknown."""
    out = kube_cluster.kubectl("apply", "--validate=strict", "-n", namespace, "-f", str(path))
    assert "created" in out


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.parent.name)
def test_our_examples_apply(kube, crd_installed: str, namespace: str, path: Path) -> None:
    original = yaml.safe_load(path.read_text())
    stored = create(kube, namespace, copy.deepcopy(original))
    assert stored["spec"]["members"] == [
        {**m, "minicluster": {"spec": {"size": 1, **m["minicluster"]["spec"]}}}
        for m in original["spec"]["members"]]
    if "algorithm" in original["spec"]:
        assert stored["spec"]["algorithm"] == original["spec"]["algorithm"]


def test_defaults_fill_an_empty_sidecar_and_member_size(kube, crd_installed: str, namespace: str) -> None:
    stored = create(kube, namespace, ensemble("defaults", {"containers": [{"image": "app:1"}]}))
    assert stored["spec"]["sidecar"] == {"image": "ghcr.io/converged-computing/ensemble-python:latest",
                                         "port": "50051", "workers": 10}
    assert stored["spec"]["members"][0]["minicluster"]["spec"]["size"] == 1


def ensemble(name: str, minicluster_spec: dict, **spec: object) -> dict:
    return {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": name},
            "spec": {"members": [{"minicluster": {"spec": minicluster_spec},
                                  "ensemble": "jobs: []\nrules: []\n"}], **spec}}


def rejection(kube, namespace: str, obj: dict) -> str:
    with pytest.raises(ApiError) as caught:
        create(kube, namespace, obj)
    assert caught.value.status == 422, caught.value
    return caught.value.message


def test_min_size_above_max_size_is_rejected(kube, crd_installed: str, namespace: str) -> None:
    message = rejection(kube, namespace, ensemble(
        "min-max", {"size": 2, "minSize": 4, "maxSize": 3, "containers": [{"image": "app:1"}]}))
    assert "spec.members[0].minicluster.spec.minSize" in message
    assert "minSize must not exceed maxSize" in message


def test_size_outside_bounds_is_rejected(kube, crd_installed: str, namespace: str) -> None:
    message = rejection(kube, namespace, ensemble(
        "too-big", {"size": 5, "maxSize": 3, "containers": [{"image": "app:1"}]}))
    assert "spec.members[0].minicluster.spec.size" in message and "size must not exceed maxSize" in message
    message = rejection(kube, namespace, ensemble(
        "too-small", {"size": 1, "minSize": 2, "containers": [{"image": "app:1"}]}))
    assert "size must be at least minSize" in message


def test_zero_max_size_means_unset_as_upstream(kube, crd_installed: str, namespace: str) -> None:
    stored = create(kube, namespace, ensemble("zero-max", {"size": 3, "maxSize": 0,
                                                           "containers": [{"image": "app:1"}]}))
    assert stored["spec"]["members"][0]["minicluster"]["spec"]["maxSize"] == 0


def test_no_members_is_rejected(kube, crd_installed: str, namespace: str) -> None:
    obj = ensemble("empty", {"containers": [{"image": "app:1"}]})
    obj["spec"]["members"] = []
    assert "spec.members" in rejection(kube, namespace, obj)
    del obj["spec"]["members"]
    assert "spec.members: Required value" in rejection(kube, namespace, obj)


def test_container_without_image_is_rejected(kube, crd_installed: str, namespace: str) -> None:
    message = rejection(kube, namespace, ensemble("no-image", {"containers": [{"workingDir": "/"}]}))
    assert "spec.members[0].minicluster.spec.containers[0].image: Required value" in message


def test_member_without_ensemble_is_rejected(kube, crd_installed: str, namespace: str) -> None:
    obj = ensemble("no-yaml", {"containers": [{"image": "app:1"}]})
    del obj["spec"]["members"][0]["ensemble"]
    assert "spec.members[0].ensemble: Required value" in rejection(kube, namespace, obj)


def test_bad_sidecar_port_is_rejected(kube, crd_installed: str, namespace: str) -> None:
    message = rejection(kube, namespace, ensemble("bad-port", {"containers": [{"image": "app:1"}]},
                                                  sidecar={"port": "70000"}))
    assert "spec.sidecar.port" in message and "between 1 and 65535" in message


def test_status_subresource_keeps_our_status(kube, crd_installed: str, namespace: str) -> None:
    created = create(kube, namespace, ensemble("with-status", {"containers": [{"image": "app:1"}]}))
    status = {"observedGeneration": 1, "phase": "Running", "summary": {"members": 1, "ready": 1},
              "members": [{"name": "with-status-0", "leadBroker": {"pod": "p", "ip": "10.0.0.1"},
                           "lastPoll": {"queue": {"run": 2}}}],
              "conditions": [{"type": "Ready", "status": "True", "reason": "Polled", "message": "ok",
                              "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    updated = kube.patch(ENSEMBLES, created["metadata"]["name"], {"status": status}, namespace=namespace,
                         subresource="status")
    assert updated["status"] == status


SIZE_CASES = [
    {"size": 2, "minSize": 1, "maxSize": 4},
    {"size": 4, "minSize": 4, "maxSize": 4},
    {"size": 0, "minSize": 1},
    {"size": 0, "minSize": 2},
    {"minSize": 2},
    {"size": 3, "minSize": 0, "maxSize": 0},
    {"size": 5, "maxSize": 4},
    {"size": 2, "minSize": 3, "maxSize": 2},
    {"size": 1, "minSize": 0, "maxSize": 1},
]


@pytest.mark.parametrize("sizes", SIZE_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_server_and_validate_agree_on_sizes(kube, crd_installed: str, namespace: str, sizes: dict) -> None:
    """The CEL rules and validate() are two spellings of one rule; they must agree."""
    obj = ensemble("sizes", {**sizes, "containers": [{"image": "app:1"}]})
    local = sorted({error.path for error in validate(obj)})
    try:
        create(kube, namespace, copy.deepcopy(obj))
        server: list[str] = []
    except ApiError as err:
        assert err.status == 422, err
        server = sorted({cause["field"] for cause in err.body["details"]["causes"]})
    assert server == local
