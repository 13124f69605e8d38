"""The one-file install (dist/ensemble-operator.yaml) and the chart's CRD template: generated
from manifests/ by `make manifests`, and a stale copy fails here."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import gen_manifests
import install_files
from api.v1alpha1.crd import crd

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist" / "ensemble-operator.yaml"
CHART_CRD = ROOT / "chart" / "templates" / "crd.yaml"


def test_the_committed_one_file_install_is_the_generators_output() -> None:
    assert DIST.read_text() == install_files.dist_yaml(), "dist/ensemble-operator.yaml is stale: run make manifests"


def test_the_committed_chart_crd_is_the_generators_output() -> None:
    assert CHART_CRD.read_text() == install_files.chart_crd_yaml(), \
        "chart/templates/crd.yaml is stale: run make manifests"


def test_the_one_file_install_holds_every_manifest_in_kustomization_order() -> None:
    listed = yaml.safe_load((ROOT / "manifests" / "kustomization.yaml").read_text())["resources"]
    expected = [crd() if name == "crd.yaml" else yaml.safe_load((ROOT / "manifests" / name).read_text())
                for name in listed]
    assert [d for d in yaml.safe_load_all(DIST.read_text()) if d] == expected


def test_the_chart_crd_is_the_crd_with_helms_keep_annotation_inside_the_install_switch() -> None:
    text = CHART_CRD.read_text()
    assert text.startswith("{{- if .Values.crds.install }}\n") and text.endswith("{{- end }}\n")
    without_template = "\n".join(line for line in text.splitlines() if "{{" not in line)
    document = yaml.safe_load(without_template)
    document["metadata"].pop("annotations")
    document["metadata"].pop("labels")
    assert document == crd()
    assert "helm.sh/resource-policy: keep" in text


def test_a_stale_install_file_fails_the_generators_check(tmp_path: Path, monkeypatch, capsys) -> None:
    for relative in gen_manifests.OUTPUTS:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    stale = tmp_path / "dist" / "ensemble-operator.yaml"
    stale.write_text(stale.read_text().replace("replicas: 1", "replicas: 2"))
    monkeypatch.setattr(gen_manifests, "ROOT", tmp_path)
    assert gen_manifests.main(["--check"]) == 1
    assert "dist/ensemble-operator.yaml is out of date: run make manifests" in capsys.readouterr().err
    assert gen_manifests.main([]) == 0
    assert stale.read_text() == install_files.dist_yaml()


def test_a_manifest_of_several_documents_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [two.yaml]\n")
    (tmp_path / "two.yaml").write_text("kind: A\n---\nkind: B\n")
    monkeypatch.setattr(install_files, "MANIFESTS", tmp_path)
    with pytest.raises(ValueError, match="manifests/two.yaml: one document per file"):
        install_files.dist_yaml()
