"""Golden-field checks of the objects an Ensemble owns (pure builders, no cluster)."""
from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from controller.reconcilers.desired import DesiredSettings, desired_objects
from controller.reconcilers.desired.compare import applied_hash, canonical_json, differs
from controller.reconcilers.desired.member import config_map, install_command, minicluster
from controller.reconcilers.desired.meta import member_index_of
from controller.reconcilers.desired.network import member_policy
from controller.reconcilers.desired.service import (
    deployment, grpc_service, role, role_binding, service_account)

SETTINGS = DesiredSettings(operator_image="registry.local/ensemble-operator:dev",
                           member_status_port=50099)


def make_ensemble(**spec_overrides) -> dict:
    spec = {
        "sidecar": {"port": "50051", "workers": 10},
        "members": [
            {"ensemble": "jobs: []\n",
             "minicluster": {"spec": {"size": 2, "maxSize": 4,
                                      "containers": [{"image": "app:1", "workingDir": "/w"}]}}},
            {"ensemble": "jobs: [{name: a}]\n", "branch": "dev; rm -rf /",
             "minicluster": {"spec": {"containers": [{"image": "app:2",
                                                      "commands": {"pre": "echo user"}}]}}},
        ],
    }
    spec.update(spec_overrides)
    return {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": "demo", "namespace": "ns1", "uid": "uid-1", "generation": 3},
            "spec": spec}


def test_every_object_is_owned_and_labelled() -> None:
    objects = desired_objects(make_ensemble(), SETTINGS)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [("ServiceAccount", "demo"), ("Role", "demo"), ("RoleBinding", "demo"),
                     ("Service", "demo-grpc"), ("NetworkPolicy", "demo-grpc"), ("Deployment", "demo"),
                     ("NetworkPolicy", "demo-0"), ("ConfigMap", "demo-0"), ("MiniCluster", "demo-0"),
                     ("NetworkPolicy", "demo-1"), ("ConfigMap", "demo-1"), ("MiniCluster", "demo-1")]
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "ns1"
        assert meta["ownerReferences"] == [{
            "apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "name": "demo", "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "ensemble-operator"
        assert meta["labels"]["ensemble.flux-framework.org/name"] == "demo"
    assert [member_index_of(o) for o in objects] == [None] * 6 + [0, 0, 0, 1, 1, 1]


def test_role_grants_only_what_the_service_needs() -> None:
    rules = role(make_ensemble())["rules"]
    assert rules == [
        {"apiGroups": ["flux-framework.org"], "resources": ["miniclusters"],
         "resourceNames": ["demo-0", "demo-1"], "verbs": ["get", "patch"]},
        {"apiGroups": ["ensemble.flux-framework.org"], "resources": ["ensembles"],
         "resourceNames": ["demo"], "verbs": ["get"]},
        {"apiGroups": ["ensemble.flux-framework.org"], "resources": ["ensembles/status"],
         "resourceNames": ["demo"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},   # who is calling
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch"]},  # their Jobs' UIDs
    ]
    # never an empty resourceNames list: that would grant every MiniCluster
    assert [rule["resources"] for rule in role(make_ensemble(members=[]))["rules"]] == [
        ["ensembles"], ["ensembles/status"], ["pods"], ["jobs"]]
    binding = role_binding(make_ensemble())
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "demo"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo", "namespace": "ns1"}]
    assert service_account(make_ensemble())["metadata"]["name"] == "demo"


def test_grpc_service_selects_the_service_pods_on_the_sidecar_port() -> None:
    service = grpc_service(make_ensemble(sidecar={"port": "6000"}))
    assert service["metadata"]["name"] == "demo-grpc"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"app": "demo", "operator": "ensemble-operator"}
    assert service["spec"]["ports"] == [{"name": "grpc", "port": 6000, "targetPort": 6000,
                                         "protocol": "TCP"}]


def test_deployment_runs_our_service_with_grpc_probes_as_non_root() -> None:
    dep = deployment(make_ensemble(sidecar={"port": "6000", "workers": 3}), SETTINGS)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "demo", "operator": "ensemble-operator"}
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "demo", "operator": "ensemble-operator"}
    assert pod["spec"]["serviceAccountName"] == "demo"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "ensemble-service"
    assert container["image"] == "registry.local/ensemble-operator:dev"
    assert container["command"] == [
        "ensemble-operator", "service", "--kubernetes", "--host", "0.0.0.0", "--port", "6000",
        "--workers", "3", "--ensemble", "demo", "--namespace", "ns1"]
    assert container["readinessProbe"]["grpc"] == {"port": 6000}
    assert container["livenessProbe"]["grpc"] == {"port": 6000}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "imagePullPolicy" not in container


def test_the_services_rate_limit_is_passed_on_only_when_the_operator_sets_one() -> None:
    def command(settings: DesiredSettings) -> list[str]:
        return deployment(make_ensemble(), settings)["spec"]["template"]["spec"]["containers"][0]["command"]

    assert "--rate-limit-qps" not in command(SETTINGS) and "--rate-limit-burst" not in command(SETTINGS)
    limited = command(DesiredSettings(service_rate_limit_qps=2.5, service_rate_limit_burst=20))
    assert limited[-4:] == ["--rate-limit-qps", "2.5", "--rate-limit-burst", "20"]


@pytest.mark.parametrize("sidecar, image, policy", [
    ({}, "registry.local/ensemble-operator:dev", None),
    ({"image": "me/custom:1", "imagePullPolicy": "Always"}, "me/custom:1", "Always"),
    # Upstream examples name the ensemble-python image, which cannot run our service.
    ({"image": "ghcr.io/converged-computing/ensemble-python:latest", "imagePullPolicy": "Never"},
     "registry.local/ensemble-operator:dev", None),
    # ... and upstream's CRD defaults it to its API image, which an exported Ensemble carries.
    ({"image": "ghcr.io/converged-computing/ensemble-operator-api:rockylinux9"},
     "registry.local/ensemble-operator:dev", None),
])
def test_service_image_defaults_to_the_operator_image(sidecar, image, policy) -> None:
    (container,) = deployment(make_ensemble(sidecar=sidecar), SETTINGS)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image
    assert container.get("imagePullPolicy") == policy
    assert container["command"][container["command"].index("--port") + 1] == "50051"


def test_config_map_carries_the_member_ensemble_yaml() -> None:
    cm = config_map(make_ensemble(), 1)
    assert cm["metadata"]["name"] == "demo-1"
    assert cm["metadata"]["labels"]["ensemble.flux-framework.org/member"] == "1"
    assert cm["data"] == {"ensemble.yaml": "jobs: [{name: a}]\n"}


def test_minicluster_runs_ensemble_python_against_the_service_dns_name() -> None:
    ensemble = make_ensemble()
    mc = minicluster(ensemble, 0, SETTINGS)
    assert mc["apiVersion"] == "flux-framework.org/v1alpha2"
    assert mc["metadata"]["name"] == "demo-0"
    spec = mc["spec"]
    assert spec["size"] == 2 and spec["maxSize"] == 4
    assert spec["network"] == {"headlessName": "demo-0"}
    runner, sidecar = spec["containers"]
    assert runner["image"] == "app:1" and runner["workingDir"] == "/w"
    assert runner["runFlux"] is True and runner["launcher"] is True
    # Keyed by the ConfigMap's name: the Flux Operator names the pod volume after
    # configMapName and mounts it by this key, so any other key leaves the Job invalid.
    assert runner["volumes"] == {"demo-0": {
        "configMapName": "demo-0", "path": "/ensemble-entrypoint",
        "items": {"ensemble.yaml": "ensemble.yaml"}}}
    assert runner["command"] == ("ensemble run --kubernetes --executor minicluster "
                                 "--host demo-grpc.ns1.svc --port 50051 --name demo-0 "
                                 "/ensemble-entrypoint/ensemble.yaml")
    assert runner["commands"]["pre"].splitlines() == [
        'ensemble_packages="python3-cffi"; python3 -m pip --version >/dev/null 2>&1 || '
        'ensemble_packages="$ensemble_packages python3-pip"',
        "if command -v apt-get >/dev/null 2>&1; then apt-get update && "
        "apt-get install -y --no-install-recommends $ensemble_packages; "
        "elif command -v yum >/dev/null 2>&1; then yum install -y $ensemble_packages; "
        'else echo "no apt-get or yum: install $ensemble_packages in the image"; fi',
        'PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install ensemble-python==0.0.16 || echo "please install ensemble-python"']
    assert sidecar["name"] == "ensemble-member-status"
    assert sidecar["image"] == "registry.local/ensemble-operator:dev"
    assert sidecar["runFlux"] is False
    assert "--port 50099" in sidecar["command"]
    # The status endpoint reads the same ensemble.yaml, so it knows the job groups to submit.
    assert sidecar["volumes"] == runner["volumes"]
    assert "--ensemble-yaml /ensemble-entrypoint/ensemble.yaml" in sidecar["command"]
    # It answers only for its own member: the name the poller and the member client send.
    # The broker's socket as wait.sh starts it, not start.sh's $fluxsocket (the view's path,
    # where no socket ever appears); start.sh must not wait for that path either.
    assert spec["flux"]["noWaitSocket"] is True
    assert sidecar["command"] == ("FLUX_URI=local:///mnt/flux/config/run/flux/local"
                                  " ensemble-operator member-status --host 0.0.0.0"
                                  " --port 50099 --ensemble-yaml /ensemble-entrypoint/ensemble.yaml"
                                  " --name demo-0")
    assert sidecar["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"}}
    # The builder must not mutate the Ensemble it reads.
    assert ensemble == make_ensemble()


def test_status_sidecar_follows_the_flux_view_mount_path_and_keeps_other_flux_settings() -> None:
    ensemble = make_ensemble()
    ensemble["spec"]["members"][0]["minicluster"]["spec"]["flux"] = {
        "container": {"mountPath": "/opt/fluxview/"}, "completeWorkers": True}
    spec = minicluster(ensemble, 0, SETTINGS)["spec"]
    assert spec["containers"][-1]["command"].startswith(
        "FLUX_URI=local:///opt/fluxview/config/run/flux/local ensemble-operator member-status ")
    assert spec["flux"] == {"container": {"mountPath": "/opt/fluxview/"}, "completeWorkers": True,
                            "noWaitSocket": True}


def test_each_member_gets_a_headless_service_of_its_own() -> None:
    ensemble = make_ensemble()
    names = [minicluster(ensemble, i, SETTINGS)["spec"]["network"]["headlessName"] for i in (0, 1)]
    assert names == ["demo-0", "demo-1"]


def test_a_members_own_job_labels_carry_the_ownership_labels_as_its_pods_do() -> None:
    """The member Jobs are cached by these labels: without jobLabels the API server copies the
    pods' labels onto the Job, and with them it does not."""
    plain = minicluster(make_ensemble(), 0, SETTINGS)
    assert "jobLabels" not in plain["spec"]
    ensemble = make_ensemble()
    ensemble["spec"]["members"][0]["minicluster"]["spec"]["jobLabels"] = {"team": "a"}
    labels = minicluster(ensemble, 0, SETTINGS)["spec"]["jobLabels"]
    assert labels == {"team": "a", **{key: value for key, value in plain["spec"]["pod"]["labels"].items()
                                      if key.startswith(("app.kubernetes.io/", "ensemble.flux-framework.org/"))}}
    assert labels["ensemble.flux-framework.org/member"] == "0"


def test_minicluster_defaults_size_and_keeps_user_pre_after_the_install() -> None:
    mc = minicluster(make_ensemble(), 1, SETTINGS)
    assert mc["spec"]["size"] == 1
    pre = mc["spec"]["containers"][0]["commands"]["pre"]
    assert pre.splitlines()[-1] == "echo user"
    # The branch is shell-quoted: a branch name cannot inject commands.
    assert "-b 'dev; rm -rf /'" in pre


def test_install_command_from_a_branch_installs_git_and_cffi_then_clones_and_installs_it() -> None:
    packages, manager, clone, install = install_command("main").splitlines()
    assert packages.startswith('ensemble_packages="python3-cffi git";')
    assert "apt-get install -y --no-install-recommends $ensemble_packages" in manager
    assert "yum install -y $ensemble_packages" in manager
    assert clone == "git clone -b main --depth 1 https://github.com/converged-computing/ensemble-python.git " \
                    "/tmp/ensemble-python"
    assert install == 'PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install /tmp/ensemble-python ' \
                      '|| echo "please install ensemble-python"'


@pytest.mark.parametrize("version, requirement", [
    (None, "ensemble-python==0.0.16"), ("0.0.15", "ensemble-python==0.0.15"), ("latest", "ensemble-python")])
def test_install_command_installs_the_chosen_release_unpinned_for_latest(version: str | None,
                                                                        requirement: str) -> None:
    packages, manager, install = install_command(None, version).splitlines()
    assert packages.startswith('ensemble_packages="python3-cffi";') and "git" not in packages + manager
    assert install == f'PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install {requirement} ' \
                      '|| echo "please install ensemble-python"'


def test_a_members_ensemble_python_release_reaches_its_bootstrap() -> None:
    ensemble = make_ensemble()
    ensemble["spec"]["members"][0]["ensemblePython"] = "latest"
    pre = minicluster(ensemble, 0, SETTINGS)["spec"]["containers"][0]["commands"]["pre"]
    assert 'PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install ensemble-python || echo "please install ensemble-python"' \
        in pre.splitlines()


def _run_bootstrap(tmp_path: Path, pre: str, *, pip: bool, manager: str = "apt-get") -> list[str]:
    """Run ``pre`` in bash with only stand-ins on PATH: ``manager``, git, and a python3 whose
    ``-m pip --version`` succeeds when ``pip``; returns the calls they recorded."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fakes = {manager: f'echo "{manager} $*" >> {calls}', "git": f'echo "git $*" >> {calls}',
             "python3": f'if [ "$*" = "-m pip --version" ]; then exit {0 if pip else 1}; fi\n'
                        f'echo "python3 $* PIP_BREAK_SYSTEM_PACKAGES=$PIP_BREAK_SYSTEM_PACKAGES" >> {calls}'}
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    subprocess.run(["/bin/bash", "-c", pre], env={"PATH": str(bin_dir)}, check=True, timeout=30)
    return calls.read_text().splitlines()


def test_the_bootstrap_installs_pip_only_where_python3_lacks_it_and_opts_out_of_pep_668(tmp_path: Path) -> None:
    """On Debian 12 apt's python3 has no pip and refuses `pip install` as externally managed:
    upstream's bootstrap never installed ensemble-python there (hack/verify-bootstrap.sh)."""
    assert _run_bootstrap(tmp_path, install_command(None), pip=False) == [
        "apt-get update", "apt-get install -y --no-install-recommends python3-cffi python3-pip",
        "python3 -m pip install ensemble-python==0.0.16 PIP_BREAK_SYSTEM_PACKAGES=1"]


@pytest.mark.parametrize("manager, expected", [
    ("apt-get", ["apt-get update", "apt-get install -y --no-install-recommends python3-cffi git"]),
    ("yum", ["yum install -y python3-cffi git"])])
def test_the_bootstrap_leaves_an_existing_pip_alone(tmp_path: Path, manager: str, expected: list[str]) -> None:
    calls = _run_bootstrap(tmp_path, install_command("main"), pip=True, manager=manager)
    assert calls == [*expected, "git clone -b main --depth 1 "
                     "https://github.com/converged-computing/ensemble-python.git /tmp/ensemble-python",
                     "python3 -m pip install /tmp/ensemble-python PIP_BREAK_SYSTEM_PACKAGES=1"]


def _as_stored(obj: dict) -> dict:
    """What the API server returns: our fields plus defaults, status and bookkeeping."""
    stored = copy.deepcopy(obj)
    stored["metadata"].update(resourceVersion="7", uid="x", creationTimestamp="t",
                              managedFields=[{"manager": "ensemble-operator"}])
    stored["metadata"]["labels"]["extra"] = "added-by-someone"
    stored.setdefault("spec", {})["defaulted"] = True
    stored["status"] = {"observed": 1}
    return stored


def test_compare_ignores_server_additions_and_sees_drift() -> None:
    for obj in desired_objects(make_ensemble(), SETTINGS):
        assert not differs(obj, _as_stored(obj)), obj["kind"]
    assert differs(role(make_ensemble()), None)
    dep = deployment(make_ensemble(), SETTINGS)
    edited = _as_stored(dep)
    edited["spec"]["replicas"] = 3
    assert differs(dep, edited)
    relabelled = _as_stored(dep)
    del relabelled["metadata"]["labels"]["ensemble.flux-framework.org/name"]
    assert differs(dep, relabelled)
    extra_container = _as_stored(dep)
    extra_container["spec"]["template"]["spec"]["containers"].append({"name": "x"})
    assert differs(dep, extra_container)


def test_compare_accepts_int_or_string_forms_but_not_bool_for_int() -> None:
    cm = {"metadata": {}, "spec": {"port": 80, "flag": True}}
    assert not differs(cm, {"metadata": {}, "spec": {"port": "80", "flag": True}})
    assert differs(cm, {"metadata": {}, "spec": {"port": 80, "flag": 1}})


def test_upstream_pull_always_means_pull_policy_always_unless_a_policy_is_set():
    from controller.reconcilers.desired.service import service_image
    from controller.reconcilers.desired.settings import DesiredSettings

    def ensemble(sidecar: dict) -> dict:
        return {"metadata": {"name": "e", "namespace": "ns"}, "spec": {"sidecar": sidecar}}

    settings = DesiredSettings()
    assert service_image(ensemble({"image": "example.org/svc:1", "pullAlways": True}), settings) == \
        ("example.org/svc:1", "Always")
    assert service_image(ensemble({"image": "example.org/svc:1", "pullAlways": True,
                                   "imagePullPolicy": "Never"}), settings) == ("example.org/svc:1", "Never")
    # unset: IfNotPresent in mode upstream (what any image but upstream's own selects), as upstream's
    # operator sets it; the Kubernetes default in mode operator
    assert service_image(ensemble({"image": "example.org/svc:1"}), settings) == ("example.org/svc:1", "IfNotPresent")
    assert service_image(ensemble({"image": "example.org/svc:1", "mode": "operator"}), settings) == \
        ("example.org/svc:1", None)


@pytest.mark.parametrize("sidecar, mode", [
    ({}, "operator"),
    ({"image": "ghcr.io/converged-computing/ensemble-python:latest"}, "operator"),
    ({"image": "ghcr.io/converged-computing/ensemble-operator-api:rockylinux9"}, "operator"),
    ({"image": "registry.example:5000/me/ensemble-python:mine"}, "upstream"),
    ({"image": "registry.example/me/service:1", "mode": "operator"}, "operator"),
    ({"image": "ghcr.io/converged-computing/ensemble-python:latest", "mode": "upstream"}, "upstream"),
])
def test_the_service_mode_is_the_specs_or_what_the_image_selects(sidecar: dict, mode: str) -> None:
    from api.v1alpha1.service_mode import service_mode
    assert service_mode(sidecar) == mode


def test_upstream_mode_runs_the_image_with_upstreams_command_exactly_as_upstream_creates_it() -> None:
    ensemble = make_ensemble()
    ensemble["spec"]["sidecar"] = {"image": "ghcr.io/converged-computing/ensemble-python:latest",
                                   "mode": "upstream", "port": "50051", "workers": 10}
    pod = deployment(ensemble, SETTINGS)["spec"]["template"]["spec"]
    assert pod == {
        "serviceAccountName": "demo", "subdomain": "demo-grpc",
        "containers": [{"name": "ensemble-service", "image": "ghcr.io/converged-computing/ensemble-python:latest",
                        "imagePullPolicy": "IfNotPresent", "tty": True,
                        "command": ["ensemble-server", "start", "--kubernetes", "--host", "0.0.0.0",
                                    "--port", "50051", "--workers", "10"],
                        "ports": [{"name": "http", "containerPort": 50051, "protocol": "TCP"}]}]}
    # exactly ensemble-server's calls: list the namespace's MiniClusters to find a member, patch it by name
    assert role(ensemble)["rules"] == [
        {"apiGroups": ["flux-framework.org"], "resources": ["miniclusters"], "resourceNames": ["demo-0", "demo-1"],
         "verbs": ["patch"]},
        {"apiGroups": ["flux-framework.org"], "resources": ["miniclusters"], "verbs": ["list"]}]
    operator_rules = role(make_ensemble())["rules"]
    assert not any("list" in rule["verbs"] and rule["resources"] == ["miniclusters"] for rule in operator_rules)


# -- NetworkPolicies ------------------------------------------------------------------------

OPERATOR_PODS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ensemble-operator-system"}},
                 "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ensemble-operator"}}}


def _selects(selector: dict, labels: dict) -> bool:
    """What a label selector matches (matchLabels and Exists are all the builders use)."""
    return (all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
            and all(e["operator"] == "Exists" and e["key"] in labels for e in selector.get("matchExpressions", [])))


def _pod_labels(obj: dict) -> dict:
    if obj["kind"] == "Deployment":
        return obj["spec"]["template"]["metadata"]["labels"]
    return obj["spec"]["pod"]["labels"]


def test_the_service_is_reached_only_on_its_port_from_the_ensembles_member_pods_and_the_operator() -> None:
    ensemble = make_ensemble()
    (policy,) = [o for o in desired_objects(ensemble, SETTINGS) if o["kind"] == "NetworkPolicy"
                 and o["metadata"]["name"] == "demo-grpc"]
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert _selects(spec["podSelector"], _pod_labels(deployment(ensemble, SETTINGS)))
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": grpc_service(ensemble)["spec"]["ports"][0]["targetPort"]}]
    members_from, operator_from = rule["from"]
    assert operator_from == OPERATOR_PODS
    for index in (0, 1):
        assert _selects(members_from["podSelector"], _pod_labels(minicluster(ensemble, index, SETTINGS)))
    other = make_ensemble()
    other["metadata"]["name"] = "other"
    assert not _selects(members_from["podSelector"], _pod_labels(minicluster(other, 0, SETTINGS)))
    assert not _selects(members_from["podSelector"], _pod_labels(deployment(ensemble, SETTINGS)))


def test_a_members_status_port_is_reached_only_from_the_operator_and_its_other_traffic_is_untouched() -> None:
    ensemble = make_ensemble()
    policy = next(o for o in desired_objects(ensemble, SETTINGS) if o["kind"] == "NetworkPolicy"
                  and o["metadata"]["name"] == "demo-1")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert _selects(spec["podSelector"], _pod_labels(minicluster(ensemble, 1, SETTINGS)))
    assert not _selects(spec["podSelector"], _pod_labels(minicluster(ensemble, 0, SETTINGS)))
    same_minicluster, operator, everyone = spec["ingress"]
    assert same_minicluster == {"from": [{"podSelector": spec["podSelector"]}]}  # every port, 50099 too
    assert operator == {"from": [OPERATOR_PODS], "ports": [{"protocol": "TCP", "port": 50099}]}
    assert everyone == {"ports": [{"protocol": "TCP", "port": 1, "endPort": 50098},
                                  {"protocol": "TCP", "port": 50100, "endPort": 65535},
                                  {"protocol": "UDP", "port": 1, "endPort": 65535},
                                  {"protocol": "SCTP", "port": 1, "endPort": 65535}]}


@pytest.mark.parametrize("port, tcp", [
    (1, [{"protocol": "TCP", "port": 2, "endPort": 65535}]),
    (2, [{"protocol": "TCP", "port": 1}, {"protocol": "TCP", "port": 3, "endPort": 65535}]),
    (65535, [{"protocol": "TCP", "port": 1, "endPort": 65534}]),
])
def test_a_status_port_at_either_end_leaves_every_other_tcp_port_open(port: int, tcp: list[dict]) -> None:
    settings = DesiredSettings(member_status_port=port)
    (_, _, everyone) = member_policy(make_ensemble(), 0, settings)["spec"]["ingress"]
    assert [p for p in everyone["ports"] if p["protocol"] == "TCP"] == tcp


def test_network_policy_false_builds_no_policies() -> None:
    kinds = {o["kind"] for o in desired_objects(make_ensemble(networkPolicy=False), SETTINGS)}
    assert "NetworkPolicy" not in kinds and "MiniCluster" in kinds


def test_the_operator_source_is_where_and_how_the_manifests_install_it() -> None:
    root = Path(__file__).resolve().parents[2] / "manifests"
    deployment_manifest = yaml.safe_load((root / "deployment.yaml").read_text())
    namespace = yaml.safe_load((root / "namespace.yaml").read_text())["metadata"]["name"]
    labels = deployment_manifest["spec"]["template"]["metadata"]["labels"]
    assert DesiredSettings().operator_namespace == namespace == deployment_manifest["metadata"]["namespace"]
    assert _selects({"matchLabels": dict(DesiredSettings().operator_pod_labels)}, labels)


@pytest.mark.parametrize("value", [
    {"b": [1, {"z": "x", "a": True, "m": None}], "a": "quote \" backslash \\ slash / <tag> &", "c": {}},
    {"float": 1.5, "exp": 1e16, "small": 1.5e-7},        # exponents: json writes 1e+16
    {"text": "caf\u00e9 \u2603 \x7f \x01 tab\t line\n"},  # json escapes non-ASCII and controls
    {"string that looks like a number": "image1e5", "n": -0.0, "big": 2 ** 60},
    {"list": [1e16, -2.5e-7, 3], "nested": {"x": [[-1e300]]}, "tail": 1e100},  # exponents after [ , :
    1e16,                                                                  # a bare number starts the text
    {"small": [1e-05, -9.93e-05, 0.0001]},     # json writes 1e-05, msgspec 0.00001
    {"in a string": "a:1e5,[2E8", "uid": "0e1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"},
    {"quoted \" 1e5 \\": "\\\" 2e8 \\\\\"", "n": [1, 2.5, True, False, None]},  # escaped quotes and backslashes
    {"after an escaped quote": "\\\"", "x": 1e16},      # the number after it is still seen
])
def test_the_applied_hash_text_is_json_dumps_sorted_and_compact(value) -> None:
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def test_a_hex_uid_that_looks_like_an_exponent_keeps_the_fast_encoder(monkeypatch) -> None:
    """A uid such as 0e1b...-4e5f-... (about half of random uids) is no float exponent."""
    obj = desired_objects(make_ensemble(), DesiredSettings())[0]
    obj["metadata"]["ownerReferences"][0]["uid"] = "0e1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    expected = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    def refused(*args, **kwargs):
        raise AssertionError("json.dumps used")

    monkeypatch.setattr("controller.reconcilers.desired.compare.json.dumps", refused)
    assert canonical_json(obj) == expected


def test_text_holding_no_float_is_not_searched_for_exponents(monkeypatch) -> None:
    """The exponent regex reads only objects that may hold a float; one that does still gets it."""
    searched: list[bytes] = []

    class Recording:
        def search(self, data: bytes) -> None:
            searched.append(data)

    monkeypatch.setattr("controller.reconcilers.desired.compare._EXPONENT", Recording())
    for obj in desired_objects(make_ensemble(), DesiredSettings()):
        canonical_json(obj)
    assert searched == []
    canonical_json({"nested": [{"deep": [0.5]}]})
    assert searched == [b'{"nested":[{"deep":[0.5]}]}']


@pytest.mark.parametrize("value", [0.0, -0.0, 1.5, 1e16, 1e-05, 5e-324, 1.7976931348623157e308])
def test_a_float_anywhere_is_seen_by_the_float_check(value: float) -> None:
    for obj in ({"x": value}, {"a": [{"b": [1, "s", value]}]}, [value], {"k": {"l": [None, True, value]}}):
        assert canonical_json(obj) == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def test_the_applied_hash_of_every_desired_object_is_unchanged_by_the_fast_encoder() -> None:
    for obj in desired_objects(make_ensemble(), DesiredSettings()):
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        assert applied_hash(obj) == hashlib.sha256(text.encode()).hexdigest()[:16]
