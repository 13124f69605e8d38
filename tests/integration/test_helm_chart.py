"""The Helm chart (chart/), with a real helm built from its Go module (hack/build-helm.sh):
it lints, its defaults render the objects of manifests/ (and with watchNamespaces those of
manifests-namespaced/) but for helm's labels, and it installs, upgrades and uninstalls on the
local system, where an operator holding the chart's ServiceAccount token runs an example."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Iterable

import pytest
import yaml

from gotools import HELM
from localcluster import LocalCluster
from localenv import OPERATOR_NAMESPACE
from tests.conftest import ROOT
from tests.integration.installs import (local_system, operator_identity, run_example_to_completion,
                                        service_account_user)

pytestmark = pytest.mark.integration

CHART = ROOT / "chart"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version",
               "app.kubernetes.io/managed-by")
HELM_ANNOTATIONS = ("helm.sh/resource-policy",)
# Not "ensemble-operator": the chart names its objects <release>-ensemble-operator then.
RELEASE = "ensembles"
ACCOUNT = f"{RELEASE}-ensemble-operator"


@pytest.fixture(scope="module")
def helm(tmp_path_factory) -> "Helm":
    if not HELM.binary.is_file():
        pytest.fail(HELM.not_built_message(), pytrace=False)
    return Helm(HELM.binary, tmp_path_factory.mktemp("helm-home"))


class Helm:
    """The helm binary with its config, cache and data kept in a directory of the test's own."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = dict(os.environ, HELM_CONFIG_HOME=str(home / "config"), HELM_CACHE_HOME=str(home / "cache"),
                        HELM_DATA_HOME=str(home / "data"))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=self.env, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def template(self, *values: str, release: str = "ensemble-operator") -> list[dict]:
        out = self.run("template", release, str(CHART), "--namespace", OPERATOR_NAMESPACE, *values).stdout
        return [d for d in yaml.safe_load_all(out) if d]


def without_helm_metadata(documents: Iterable[dict]) -> dict[tuple[str, str, str], dict]:
    """Objects by (kind, namespace, name), helm's labels and annotations removed everywhere,
    Namespaces left out (helm installs into one that exists, or --create-namespace)."""
    objects = {}
    for document in documents:
        if document["kind"] == "Namespace":
            continue
        for metadata in (document["metadata"], document.get("spec", {}).get("template", {}).get("metadata")):
            if not metadata:
                continue
            for field, drop in (("labels", HELM_LABELS), ("annotations", HELM_ANNOTATIONS)):
                kept = {k: v for k, v in (metadata.get(field) or {}).items() if k not in drop}
                metadata.pop(field, None)
                if kept:
                    metadata[field] = kept
        key = (document["kind"], document["metadata"].get("namespace", ""), document["metadata"]["name"])
        objects[key] = document
    return objects


def kustomized(cluster: LocalCluster, directory: str) -> dict[tuple[str, str, str], dict]:
    return without_helm_metadata(d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(ROOT / directory)))
                                 if d)


def test_the_chart_lints_with_its_defaults_and_its_options(helm) -> None:
    helm.run("lint", str(CHART), "--strict")
    helm.run("lint", str(CHART), "--strict", "--set", "watchNamespaces={a,b}", "--set",
             "metrics.serviceMonitor.enabled=true", "--set", "metrics.readers[0].name=prometheus",
             "--set", "metrics.readers[0].namespace=monitoring", "--set", "leaderElection.enabled=false")


def test_values_outside_the_schema_are_refused_naming_the_field(helm) -> None:
    done = helm.run("lint", str(CHART), "--set", "logFormat=xml", check=False)
    assert done.returncode != 0 and "logFormat" in done.stdout + done.stderr


def test_the_defaults_render_the_manifests_objects_but_for_helms_labels(helm, kube_cluster) -> None:
    assert without_helm_metadata(helm.template()) == kustomized(kube_cluster, "manifests")


def test_watch_namespaces_renders_the_namespaced_install(helm, kube_cluster) -> None:
    rendered = without_helm_metadata(helm.template("--set", "watchNamespaces={ensembles}"))
    assert rendered == kustomized(kube_cluster, "manifests-namespaced")


def test_a_service_monitor_scrapes_the_operators_pods_over_https(helm) -> None:
    documents = {d["kind"]: d for d in helm.template("--set", "metrics.serviceMonitor.enabled=true")}
    service, monitor, deployment = documents["Service"], documents["ServiceMonitor"], documents["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["scheme"]) == ("metrics", "https")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_values_reach_the_operators_flags(helm) -> None:
    (deployment,) = [d for d in helm.template(
        "--set", "workers=8", "--set", "logFormat=text", "--set", "leaderElection.enabled=false",
        "--set", "memberStatusPort=6000", "--set", "metrics.enabled=false", "--set", "image.tag=9.9.9")
        if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run", "--no-leader-elect", "--workers=8", "--metrics-bind-address=0",
                                 "--member-status-port=6000", "--log-format=text"]
    assert container["image"].endswith(":9.9.9")
    assert [p["name"] for p in container["ports"]] == ["health"]


def helm_install(helm: Helm) -> Callable[[LocalCluster], None]:
    def install(cluster: LocalCluster) -> None:
        helm.run("install", RELEASE, str(CHART), "--kubeconfig", cluster.kubeconfig, "--namespace",
                 OPERATOR_NAMESPACE, "--create-namespace", "--wait", "--timeout", "180s")
    return install


def test_helm_install_upgrade_and_uninstall_on_the_local_system(helm) -> None:
    with local_system(helm_install(helm), ACCOUNT) as env:
        cluster = env.cluster
        kubeconfig = ("--kubeconfig", cluster.kubeconfig, "--namespace", OPERATOR_NAMESPACE)
        assert operator_identity(env) == service_account_user(ACCOUNT)
        tables = run_example_to_completion(env, "helm-example")
        assert tables[-1].startswith("Ensemble helm-example/hello-world: phase Completed"), tables[-1]

        helm.run("upgrade", RELEASE, str(CHART), *kubeconfig, "--reuse-values", "--set", "workers=2",
                 "--set", "logFormat=text", "--wait", "--timeout", "180s")
        deployment = json.loads(cluster.kubectl("get", "deployment", ACCOUNT, "-n", OPERATOR_NAMESPACE, "-o", "json"))
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == \
            ["run", "--leader-elect", "--workers=2", "--log-format=text"]
        (release,) = json.loads(helm.run("list", *kubeconfig, "-o", "json").stdout)
        assert (release["name"], str(release["revision"]), release["status"]) == (RELEASE, "2", "deployed")

        for operator in env.operators:  # its token dies with the ServiceAccount
            operator.kill()
        helm.run("uninstall", RELEASE, *kubeconfig, "--wait", "--timeout", "120s")
        for kind, name in (("deployment", ACCOUNT), ("serviceaccount", ACCOUNT), ("clusterrole", ACCOUNT),
                           ("clusterrolebinding", ACCOUNT), ("role", f"{ACCOUNT}-leader-election")):
            assert cluster.kubectl("get", kind, name, "-n", OPERATOR_NAMESPACE, "--ignore-not-found",
                                   "-o", "name").strip() == "", f"{kind} {name} outlived the release"
        # The CRD stays (crds.keep), and with it the Ensemble the example left.
        assert cluster.kubectl("get", "ensemble", "hello-world", "-n", "helm-example", "-o", "name").strip() \
            == "ensemble.ensemble.flux-framework.org/hello-world"
