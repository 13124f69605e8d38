"""The objects of one ensemble member ``i``: ConfigMap ``<e>-<i>`` and MiniCluster ``<e>-<i>``.

The MiniCluster is the member's embedded spec plus what makes it an ensemble member:
ensemble-python installed and run by the lead broker against the ensemble service,
its ensemble.yaml mounted from the ConfigMap, and a status endpoint sidecar the
operator polls (see docs/member-status.md for why a sidecar).
"""
from __future__ import annotations

import shlex

from controller.kube.resources import MINICLUSTERS
from api.v1alpha1.jsoncopy import copy_json
from api.v1alpha1.types import DEFAULT_ENSEMBLE_PYTHON, LATEST
from controller.reconcilers.desired.meta import (
    grpc_service_host, member_name, object_meta, ownership_labels)
from controller.reconcilers.desired.service import SERVICE_USER_ID, service_port
from controller.reconcilers.desired.settings import DesiredSettings

ENSEMBLE_YAML = "ensemble.yaml"
ENTRYPOINT_DIR = "/ensemble-entrypoint"
STATUS_CONTAINER = "ensemble-member-status"
DEFAULT_FLUX_MOUNT = "/mnt/flux"  # the Flux Operator's spec.flux.container.mountPath default
# The release installed when a member names none: the one the operator is tested against and
# whose ensemble.yaml rules it checks (tests install the same pin).
ENSEMBLE_PYTHON_VERSION = DEFAULT_ENSEMBLE_PYTHON
ENSEMBLE_PYTHON_REPO = "https://github.com/converged-computing/ensemble-python"

# Restricted (Pod Security Standards): the sidecar only reads the Flux view and the ConfigMap
# and connects to the broker's socket, all on volumes, and listens on an unprivileged port;
# as the image's user it needs no capability and no writable root (docs/member-status.md).
STATUS_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": SERVICE_USER_ID,
    "runAsGroup": SERVICE_USER_ID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def members(ensemble: dict) -> list[dict]:
    return list((ensemble.get("spec") or {}).get("members") or [])


def config_map(ensemble: dict, index: int) -> dict:
    member = members(ensemble)[index]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(ensemble, member_name(ensemble, index), member_index=index),
        "data": {ENSEMBLE_YAML: member.get("ensemble") or ""},
    }


# Upstream's commands.pre, step by step: flux-core's Python bindings need cffi for the image's
# own python3 (the Flux view's may differ), from whichever package manager the image has; git
# only to install from a branch; then pip. A failed install does not stop the pod (upstream
# echoes instead), so `ensemble run` reports what is missing.
# Two steps upstream lacks, without which pip never ran on a Debian image built with apt-get
# alone (hack/verify-bootstrap.sh, Debian bookworm): python3-pip when `python3 -m pip` is
# missing ("No module named pip"; apt's python3 comes without it), and PEP 668's opt-out,
# since Debian 12's and Ubuntu 24.04's python3 refuse `pip install` as
# "externally-managed-environment" (pips before 23.0.1 ignore the variable). Recommends are
# left out: python3-pip's are a compiler and python3-dev (132 packages, 122 MB, instead of 12
# and 6 MB), which no ensemble-python release needs.
PACKAGES = "python3-cffi"
PIP_PACKAGE = "python3-pip"
PACKAGES_VAR = "ensemble_packages"


def _system_packages(packages: str) -> str:
    """Install ``packages``, plus python3-pip when python3 has no pip, by apt-get or yum."""
    var = f"${PACKAGES_VAR}"
    return (f'{PACKAGES_VAR}="{packages}"; python3 -m pip --version >/dev/null 2>&1 || '
            f'{PACKAGES_VAR}="{var} {PIP_PACKAGE}"\n'
            f"if command -v apt-get >/dev/null 2>&1; then apt-get update && "
            f"apt-get install -y --no-install-recommends {var}; "
            f"elif command -v yum >/dev/null 2>&1; then yum install -y {var}; "
            f'else echo "no apt-get or yum: install {var} in the image"; fi')


def _pip_install(requirement: str) -> str:
    return f'PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install {requirement} || echo "please install ensemble-python"'


def install_command(branch: str | None, version: str | None = None) -> str:
    """Shell for ``commands.pre``: ensemble-python from PyPI (``version``: a release, ``latest`` for
    unpinned as upstream, unset for ENSEMBLE_PYTHON_VERSION), or from a git branch."""
    if not branch:
        spec = "ensemble-python" if version == LATEST else f"ensemble-python=={version or ENSEMBLE_PYTHON_VERSION}"
        return "\n".join([_system_packages(PACKAGES), _pip_install(spec)])
    checkout = "/tmp/ensemble-python"
    return "\n".join([_system_packages(f"{PACKAGES} git"),
                      f"git clone -b {shlex.quote(branch)} --depth 1 {ENSEMBLE_PYTHON_REPO}.git {checkout}",
                      _pip_install(checkout)])


def run_command(ensemble: dict, index: int) -> str:
    """The lead broker's command: ensemble-python talking to the service by DNS name."""
    return " ".join([
        "ensemble run --kubernetes --executor minicluster",
        "--host", grpc_service_host(ensemble),
        "--port", str(service_port(ensemble)),
        "--name", member_name(ensemble, index),
        f"{ENTRYPOINT_DIR}/{ENSEMBLE_YAML}",
    ])


def entrypoint_volume(ensemble: dict, index: int) -> dict[str, dict]:
    """The member's ConfigMap as the Flux Operator mounts it: ensemble.yaml in /ensemble-entrypoint.

    The key is the ConfigMap's name because the Flux Operator names a ConfigMap's pod volume
    after ``configMapName`` while each container mounts the volume by its key: any other
    key makes the Job invalid (``volumeMounts[...].name: Not found``) and no pod starts.
    """
    name = member_name(ensemble, index)
    return {name: {"configMapName": name, "path": ENTRYPOINT_DIR, "items": {ENSEMBLE_YAML: ENSEMBLE_YAML}}}


def broker_uri(minicluster_spec: dict) -> str:
    """The lead broker's local socket as the Flux Operator's wait.sh starts it:
    ``-Slocal-uri=local://<mountPath>/config/run/flux/local``."""
    mount = (((minicluster_spec.get("flux") or {}).get("container") or {}).get("mountPath")
             or DEFAULT_FLUX_MOUNT).rstrip("/")
    return f"local://{mount}/config/run/flux/local"


def status_container(ensemble: dict, index: int, settings: DesiredSettings, flux_uri: str) -> dict:
    """The lead-broker status endpoint, next to the broker and sharing its Flux view.

    The Flux Operator wraps a non-Flux container's command in start.sh, whose ``$fluxsocket``
    is ``<mountPath>/view/run/flux/local``: not where wait.sh's broker puts its socket
    (``<mountPath>/config/run/flux/local``), so start.sh's wait for it would never end. The
    MiniCluster sets ``flux.noWaitSocket`` and the endpoint gets the broker's real URI and
    waits for it itself (``member-status`` retries until the broker answers).
    It reads the member's ensemble.yaml too, so it can submit the job groups named there,
    and knows its member's name, so it refuses requests meant for another member.
    """
    return {
        "name": STATUS_CONTAINER,
        "image": settings.operator_image,
        "runFlux": False,
        "volumes": entrypoint_volume(ensemble, index),
        "command": (f"FLUX_URI={flux_uri} ensemble-operator member-status --host 0.0.0.0"
                    f" --port {settings.member_status_port}"
                    f" --ensemble-yaml {ENTRYPOINT_DIR}/{ENSEMBLE_YAML}"
                    f" --name {member_name(ensemble, index)}"),
        "securityContext": copy_json(STATUS_SECURITY_CONTEXT),
    }


def _runner_container(ensemble: dict, index: int, container: dict, member: dict) -> dict:
    runner = copy_json(container)
    volumes = {**(runner.get("volumes") or {}), **entrypoint_volume(ensemble, index)}
    commands = dict(runner.get("commands") or {})
    user_pre = commands.get("pre")
    commands["pre"] = install_command(member.get("branch"), member.get("ensemblePython")) + \
        (f"\n{user_pre}" if user_pre else "")
    runner.update(volumes=volumes, commands=commands, runFlux=True, launcher=True,
                  command=run_command(ensemble, index))
    return runner


def minicluster(ensemble: dict, index: int, settings: DesiredSettings) -> dict:
    """The member's MiniCluster; ``spec.size`` is only for creation (see the reconciler)."""
    member = members(ensemble)[index]
    spec = copy_json((member.get("minicluster") or {}).get("spec") or {})
    spec.setdefault("size", 1)
    # One headless Service per member: the Flux Operator creates it selecting only its own
    # MiniCluster's pods (job-name=<mc>) and leaves an existing one alone, so a name shared by
    # the members (ours was <e>, upstream's default is flux-service) gave the pods of every
    # member but the first no DNS names, and their brokers could never find their lead.
    spec["network"] = {**(spec.get("network") or {}), "headlessName": member_name(ensemble, index)}
    # Labelled pods let the operator watch only its members' pods and map them back.
    pod = spec.get("pod") or {}
    spec["pod"] = {**pod, "labels": {**(pod.get("labels") or {}), **ownership_labels(ensemble, index)}}
    # Without jobLabels the API server gives the Job its pods' labels, ours among them, which the
    # operator and the service cache member Jobs by; a member's own jobLabels must carry them too.
    if spec.get("jobLabels"):
        spec["jobLabels"] = {**spec["jobLabels"], **ownership_labels(ensemble, index)}
    containers = list(spec.get("containers") or [])
    containers[0] = _runner_container(ensemble, index, containers[0], member)
    if (ensemble.get("spec") or {}).get("statusSidecar") is False:   # members as upstream runs them
        spec["containers"] = containers
    else:
        spec["containers"] = containers + [status_container(ensemble, index, settings, broker_uri(spec))]
        # start.sh's socket wait watches the wrong path (see status_container): the sidecar waits itself.
        spec["flux"] = {**(spec.get("flux") or {}), "noWaitSocket": True}
    return {
        "apiVersion": MINICLUSTERS.api_version,
        "kind": MINICLUSTERS.kind,
        "metadata": object_meta(ensemble, member_name(ensemble, index), member_index=index),
        "spec": spec,
    }
