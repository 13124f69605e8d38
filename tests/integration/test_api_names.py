"""The CRD's rules on an Ensemble's name, on a real kube-apiserver: a name that cannot make the
ensemble service's Service `<name>-grpc` is refused at apply, with a message naming the field,
and the longest accepted name makes a Service the API server accepts."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from api.v1alpha1.names import MAX_ENSEMBLE_NAME_LENGTH
from controller.kube.errors import ApiError
from controller.kube.resources import ENSEMBLES, SERVICES

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
