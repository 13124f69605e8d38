"""A release is one version: pyproject.toml's. The operator image everywhere it is named (manifests/,
the one-file install, the chart, the operator's default for what it creates) carries that tag,
never :latest, which nothing publishes and every node would pull again."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from controller.reconcilers.desired.settings import DEFAULT_OPERATOR_IMAGE

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
REPOSITORY = "ghcr.io/converged-computing/ensemble-operator-python"
# `...:latest` anywhere, or an image (not a repository) named without a tag, which means latest.
UNTAGGED_OR_LATEST = re.compile(r"ensemble-operator-python:latest\b|(?:image|value|IMAGE =):? *[\"']?\S*"
                                r"ensemble-operator-python[\"']? *$", re.MULTILINE)


def operator_images(documents: list[dict]) -> list[str]:
    """The manager's image and ENSEMBLE_OPERATOR_IMAGE of the operator Deployment."""
    (deployment,) = [d for d in documents if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return [container["image"], env["ENSEMBLE_OPERATOR_IMAGE"]]


def test_the_version_is_a_release_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[-.]?(?:rc|a|b)\d+)?", VERSION), VERSION


def test_the_manifests_and_the_one_file_install_run_the_release_image() -> None:
    expected = [f"{REPOSITORY}:{VERSION}"] * 2
    assert operator_images([yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())]) == expected
    assert operator_images(list(yaml.safe_load_all((ROOT / "dist" / "ensemble-operator.yaml").read_text()))) \
        == expected


def test_the_operators_default_image_is_the_release_image() -> None:
    assert DEFAULT_OPERATOR_IMAGE == f"{REPOSITORY}:{VERSION}"


def test_the_chart_is_versioned_with_the_release_and_defaults_to_its_image() -> None:
    chart = yaml.safe_load((ROOT / "chart" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "chart" / "values.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)
    assert values["image"]["repository"] == REPOSITORY
    assert values["image"]["tag"] in ("", VERSION), "empty: the chart's appVersion"


def test_nothing_shipped_names_a_latest_operator_image() -> None:
    shipped = [ROOT / "controller" / "reconcilers" / "desired" / "settings.py", ROOT / "dist" / "ensemble-operator.yaml",
               *(ROOT / "manifests").rglob("*.yaml"), *(ROOT / "manifests-namespaced").rglob("*.yaml"),
               *(ROOT / "chart").rglob("*.yaml")]
    latest = [str(path.relative_to(ROOT)) for path in shipped
              if UNTAGGED_OR_LATEST.search(path.read_text())]
    assert latest == []


WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    loaded["on"] = loaded.pop(True, loaded.get("on"))  # YAML 1.1 reads the key `on` as true
    return loaded


def steps_running(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("with", "")) for step in job["steps"])


def test_every_push_runs_the_ci_script() -> None:
    ci = workflow("ci.yml")
    assert "push" in ci["on"]
    assert any(".ci/run" in steps_running(job) for job in ci["jobs"].values())


def test_a_version_tag_releases_the_multi_arch_image_the_install_files_name() -> None:
    release = workflow("release.yml")
    assert release["on"]["push"]["tags"] == ["v*"]
    assert release["env"]["IMAGE"] == REPOSITORY
    (build,) = [step for step in release["jobs"]["image"]["steps"]
                if str(step.get("uses", "")).startswith("docker/build-push-action@")]
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True
    assert build["with"]["tags"] == "${{ env.IMAGE }}:${{ needs.version.outputs.version }}"
    version_check = steps_running(release["jobs"]["version"])
    assert 'pyproject.toml' in version_check and '"v$version"' in version_check


def test_the_release_carries_the_one_file_install_and_the_packaged_chart() -> None:
    job = workflow("release.yml")["jobs"]["release"]
    commands = steps_running(job)
    assert "helm package chart" in commands and "cp dist/ensemble-operator.yaml release-assets/" in commands
    assert "gh release create" in commands and "release-assets/*" in commands
    assert set(job["needs"]) == {"version", "image"}, "no release without its image"
