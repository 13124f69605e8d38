"""The generated CRD: structural, defaulted, open where upstream objects need it, and committed up to date."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

from api.v1alpha1.crd import CRD_HEADER, crd, crd_yaml
from api.v1alpha1.reference import HEADER as REFERENCE_HEADER
from api.v1alpha1.reference import reference_markdown

ROOT = Path(__file__).resolve().parents[2]


def schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def at(path: str) -> dict[str, Any]:
    """The schema node at a dotted path; ``[]`` steps into array items."""
    node = schema()
    for part in path.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from nodes(child, f"{path}.{key}")
    if "items" in node:
        yield from nodes(node["items"], f"{path}[]")


def test_committed_crd_yaml_is_generator_output() -> None:
    committed = (ROOT / "manifests" / "crd.yaml").read_text()
    assert committed == crd_yaml(), "manifests/crd.yaml is stale: run make manifests"
    assert committed.startswith(CRD_HEADER) and "do not edit" in CRD_HEADER
    assert yaml.safe_load(committed) == crd()


def test_committed_api_reference_is_generator_output() -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == reference_markdown(), "docs/api-reference.md is stale: run make manifests"
    assert committed.startswith(REFERENCE_HEADER)


def test_generator_check_mode_passes_on_the_committed_tree() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "hack" / "gen_manifests.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_names_scope_and_subresources() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "ensembles.ensemble.flux-framework.org"
    assert spec["group"] == "ensemble.flux-framework.org" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "Ensemble" and spec["names"]["plural"] == "ensembles"
    assert spec["names"]["shortNames"] == ["ens"]
    assert spec["names"]["categories"]
    version = spec["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural() -> None:
    for path, node in nodes(schema()):
        assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("additionalProperties" in node and "properties" in node), path
        for forbidden in ("oneOf", "anyOf", "allOf", "not", "$ref"):
            assert forbidden not in node, path


def test_unknown_fields_are_pruned_not_rejected() -> None:
    for path, node in nodes(schema()):
        assert node.get("additionalProperties") is not False, path
    # kubectl validates strictly by default: upstream's pullAlways must be a known field.
    assert at("spec.sidecar.pullAlways")["type"] == "boolean"


def test_defaults() -> None:
    assert at("spec.sidecar")["default"] == {}
    assert at("spec.sidecar.port") == {**at("spec.sidecar.port"), "type": "string", "default": "50051"}
    assert at("spec.sidecar.workers")["default"] == 10
    assert at("spec.sidecar.image")["default"] == "ghcr.io/converged-computing/ensemble-python:latest"
    assert at("spec.heartbeat")["default"] == 10
    assert at("spec.members.[].minicluster.spec.size")["default"] == 1
    assert "default" not in at("spec.algorithm") and "default" not in at("spec.budget")


def test_embedded_minicluster_is_open_with_typed_sizes_and_containers() -> None:
    minicluster_spec = at("spec.members.[].minicluster.spec")
    assert minicluster_spec["x-kubernetes-preserve-unknown-fields"] is True
    assert at("spec.members.[].minicluster")["required"] == ["spec"]
    for key in ("size", "minSize", "maxSize"):
        assert at(f"spec.members.[].minicluster.spec.{key}")["type"] == "integer"
        assert at(f"spec.members.[].minicluster.spec.{key}")["minimum"] == 0
    containers = at("spec.members.[].minicluster.spec.containers")
    assert containers["minItems"] == 1 and containers["items"]["required"] == ["image"]
    assert containers["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert minicluster_spec["required"] == ["containers"]


def test_members_rules() -> None:
    assert schema()["required"] == ["spec"]
    assert at("spec")["required"] == ["members"]
    assert at("spec.members")["minItems"] == 1
    assert set(at("spec.members.[]")["required"]) == {"minicluster", "ensemble"}


def test_cel_rules_only_use_declared_fields_and_name_them() -> None:
    rules = at("spec.members.[].minicluster.spec")["x-kubernetes-validations"]
    assert {rule["fieldPath"] for rule in rules} == {".minSize", ".size"}
    declared = set(at("spec.members.[].minicluster.spec")["properties"])
    for rule in rules:
        referenced = set(re.findall(r"self\.(\w+)", rule["rule"]))
        assert referenced <= declared, rule
        assert "has(self." in rule["rule"], "rules must tolerate unset optional fields"
    assert at("spec.sidecar.port")["x-kubernetes-validations"][0]["rule"].startswith("int(self)")


def test_status_is_open_and_typed_for_printer_columns() -> None:
    status = at("status")
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    columns = {c["name"]: c for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert list(columns) == ["Members", "Ready", "Phase", "Age"]
    for column in columns.values():
        path = column["jsonPath"].lstrip(".")
        if path.startswith("status."):
            node = at(path)
            assert node["type"] == column["type"], column
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
    assert at("status.conditions")["x-kubernetes-list-map-keys"] == ["type"]
    assert at("status.members.[].leadBroker.ip")["type"] == "string"
    assert at("status.members.[].lastPoll")["x-kubernetes-preserve-unknown-fields"] is True


def test_every_field_is_described() -> None:
    for path, node in nodes(at("spec")):
        assert node.get("description"), path
