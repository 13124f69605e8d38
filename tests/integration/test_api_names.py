"""The CRD's rules on an Ensemble's name, on a real kube-apiserver: a name that cannot make the
ensemble service's Service `<name>-grpc` is refused at apply, with a message naming the field,
and the longest accepted name makes a Service the API server accepts."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from api.v1alpha1.crd import crd
from api.v1alpha1.names import MAX_ENSEMBLE_NAME_LENGTH
from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, SERVICES, Resource
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world" / "ensemble.yaml"


def ensemble(name: str) -> dict:
    obj = yaml.safe_load(EXAMPLE.read_text())
    obj["metadata"] = {"name": name}
    return obj


@pytest.mark.parametrize("name, message", [
    ("e" * (MAX_ENSEMBLE_NAME_LENGTH + 1), f"metadata.name must be at most {MAX_ENSEMBLE_NAME_LENGTH}"),
    ("my.ensemble", "metadata.name must not contain dots")])
def test_names_no_service_could_carry_are_refused(kube, ensemble_crd, namespace, name, message) -> None:
    with pytest.raises(ApiError) as caught:
        kube.create(ENSEMBLES, ensemble(name), namespace)
    assert caught.value.status == 422 and message in caught.value.message, caught.value


def test_the_longest_accepted_name_makes_a_valid_service_name(kube, ensemble_crd, namespace) -> None:
    name = "e" * MAX_ENSEMBLE_NAME_LENGTH
    kube.create(ENSEMBLES, ensemble(name), namespace)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-grpc"},
               "spec": {"ports": [{"port": 50051}]}}
    kube.create(SERVICES, service, namespace)


def test_an_ensemble_stored_before_the_rules_can_still_be_written(kube_cluster, kube, namespace) -> None:
    """An Ensemble named before the CRD had these rules must stay writable, or the reconciler
    could never report its InvalidSpec (a 422 on every status write, retried forever) and no
    label, annotation or finalizer could change. The rules are checked at create only (names are
    immutable). Run on a copy of the CRD under its own group, not to disturb the session's."""
    group = "names-review.ensemble.flux-framework.org"
    resource = Resource(group, ENSEMBLES.version, ENSEMBLES.plural, ENSEMBLES.kind)
    with_rules = crd()
    with_rules["metadata"]["name"] = f"{resource.plural}.{group}"
    with_rules["spec"]["group"] = group
    for shared in ("shortNames", "categories"):  # kubectl must not resolve `ens` to this copy
        del with_rules["spec"]["names"][shared]
    without_rules = copy.deepcopy(with_rules)
    del without_rules["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    old, late = "e" * (MAX_ENSEMBLE_NAME_LENGTH + 1), "f" * (MAX_ENSEMBLE_NAME_LENGTH + 1)

    def create(name: str) -> dict:
        return kube.create(resource, {**ensemble(name), "apiVersion": resource.api_version}, namespace)

    def refused(name: str) -> bool:
        try:
            create(name)
        except ApiError as err:
            return err.status == 422
        kube.delete(resource, name, namespace)
        return False

    try:
        install_crd(kube_cluster, without_rules)
        wait_for(lambda: not refused(old), 30, "the CRD without the name rules to serve")
        create(old)
        install_crd(kube_cluster, with_rules)
        wait_for(lambda: refused(late), 30, "the CRD's name rules to apply")
        kube.patch(resource, old, {"status": {"phase": "Invalid"}}, namespace=namespace, subresource="status")
        kube.patch(resource, old, {"metadata": {"labels": {"seen": "yes"}}}, namespace=namespace)
    finally:
        kube_cluster.kubectl("delete", "crd", with_rules["metadata"]["name"], "--ignore-not-found", "--wait=false")


def install_crd(kube_cluster, obj: dict) -> None:
    kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(obj))
    kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{obj['metadata']['name']}", "--timeout=30s")
