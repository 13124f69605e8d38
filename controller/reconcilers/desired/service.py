"""The ensemble service of one Ensemble: ServiceAccount, Role, RoleBinding, Service, Deployment.

Members reach the service over gRPC to ask for grow/shrink; the service patches their
MiniClusters, so its account gets exactly those rights on its own members, by name.
"""
from __future__ import annotations

from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.reconcilers.desired.meta import (
    ensemble_name, ensemble_namespace, grpc_service_name, member_name, object_meta, service_selector)
from api.v1alpha1.service_mode import UPSTREAM, is_upstream_default_image, service_mode
from controller.reconcilers.desired.settings import DEFAULT_SERVICE_PORT, DEFAULT_SERVICE_WORKERS, DesiredSettings

SERVICE_CONTAINER = "ensemble-service"
SERVICE_USER_ID = 65532


def service_port(ensemble: dict) -> int:
    """``spec.sidecar.port`` is a string upstream (default "50051"); Kubernetes wants an int."""
    value = ((ensemble.get("spec") or {}).get("sidecar") or {}).get("port")
    return int(value) if value not in (None, "") else DEFAULT_SERVICE_PORT


def service_workers(ensemble: dict) -> int:
    value = ((ensemble.get("spec") or {}).get("sidecar") or {}).get("workers")
    return int(value) if value not in (None, "") else DEFAULT_SERVICE_WORKERS


def _sidecar(ensemble: dict) -> dict:
    return (ensemble.get("spec") or {}).get("sidecar") or {}


def upstream_mode(ensemble: dict) -> bool:
    return service_mode(_sidecar(ensemble)) == UPSTREAM


def service_image(ensemble: dict, settings: DesiredSettings) -> tuple[str, str | None]:
    """(image, pull policy) of the service container.

    In mode operator the default is our operator image, and an upstream ensemble-python image is
    replaced by ours, pull policy included, because it has no ``ensemble-operator`` command. In
    mode upstream the image is the spec's, its pull policy IfNotPresent unless set (as upstream).
    """
    sidecar = _sidecar(ensemble)
    image = sidecar.get("image") or ""
    upstream = upstream_mode(ensemble)
    if not upstream and is_upstream_default_image(image):
        return settings.operator_image, None
    pull_policy = sidecar.get("imagePullPolicy") or ("Always" if sidecar.get("pullAlways") else None)
    return image, pull_policy or ("IfNotPresent" if upstream else None)


def service_account(ensemble: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": object_meta(ensemble, ensemble_name(ensemble))}


def role(ensemble: dict) -> dict:
    """Least privilege for the ensemble service: read and patch its own members' MiniClusters
    (their size), read its own Ensemble (budget, status) and patch its status (the budget
    ledger, ``status.budgetGrants``, and its record of served resizes, ``status.serviceActions``;
    the Ensemble's spec stays out of reach), each by name; and
    list/watch pods and Jobs in its namespace, for the cache that tells who is calling (its lead
    brokers' pod IPs, and the member Jobs' UIDs that tell a member's pods from forgeries; RBAC
    cannot narrow a list by label, and nothing more is granted on either).
    Exactly the calls controller/service makes; the API server, not only the service, refuses
    the rest. In service mode upstream, exactly ensemble-server's calls: it lists the namespace's
    MiniClusters to find a member (RBAC cannot narrow a list by name) and patches it by name."""
    count = len((ensemble.get("spec") or {}).get("members") or [])
    members = [member_name(ensemble, index) for index in range(count)]
    upstream = upstream_mode(ensemble)
    rules = [] if upstream else [
        {"apiGroups": [ENSEMBLES.group], "resources": [ENSEMBLES.plural],
         "resourceNames": [ensemble_name(ensemble)], "verbs": ["get"]},
        {"apiGroups": [ENSEMBLES.group], "resources": [f"{ENSEMBLES.plural}/status"],
         "resourceNames": [ensemble_name(ensemble)], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch"]}]
    if count:  # an empty resourceNames list would grant every name
        rules.insert(0, {"apiGroups": [MINICLUSTERS.group], "resources": [MINICLUSTERS.plural],
                         "resourceNames": members, "verbs": ["patch"] if upstream else ["get", "patch"]})
    if upstream:
        rules.append({"apiGroups": [MINICLUSTERS.group], "resources": [MINICLUSTERS.plural], "verbs": ["list"]})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_meta(ensemble, ensemble_name(ensemble)),
        "rules": rules,
    }


def role_binding(ensemble: dict) -> dict:
    name = ensemble_name(ensemble)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(ensemble, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name,
                      "namespace": ensemble_namespace(ensemble)}],
    }


def grpc_service(ensemble: dict) -> dict:
    port = service_port(ensemble)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(ensemble, grpc_service_name(ensemble)),
        "spec": {
            "type": "ClusterIP",
            "selector": service_selector(ensemble),
            "ports": [{"name": "grpc", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def upstream_service_command(ensemble: dict) -> list[str]:
    """Upstream's command for its service image (its operator's newEnsembleDeployment)."""
    return ["ensemble-server", "start", "--kubernetes", "--host", "0.0.0.0",
            "--port", str(service_port(ensemble)), "--workers", str(service_workers(ensemble))]


def service_command(ensemble: dict, settings: DesiredSettings) -> list[str]:
    command = ["ensemble-operator", "service", "--kubernetes",
               "--host", "0.0.0.0", "--port", str(service_port(ensemble)),
               "--workers", str(service_workers(ensemble)),
               "--ensemble", ensemble_name(ensemble),
               "--namespace", ensemble_namespace(ensemble)]
    if settings.service_rate_limit_qps is not None:
        command += ["--rate-limit-qps", f"{settings.service_rate_limit_qps:g}"]
    if settings.service_rate_limit_burst is not None:
        command += ["--rate-limit-burst", str(settings.service_rate_limit_burst)]
    return command


def _grpc_probe(port: int, *, period: int, failures: int) -> dict:
    return {"grpc": {"port": port}, "periodSeconds": period, "failureThreshold": failures,
            "timeoutSeconds": 1}


def _upstream_container(ensemble: dict, settings: DesiredSettings) -> dict:
    """The service container as upstream's operator creates it: the image's own server, a TTY, the
    port named http, and no probes or security context (its images run as root and serve no gRPC
    health service)."""
    image, pull_policy = service_image(ensemble, settings)
    return {"name": SERVICE_CONTAINER, "image": image, "imagePullPolicy": pull_policy,
            "command": upstream_service_command(ensemble), "tty": True,
            "ports": [{"name": "http", "containerPort": service_port(ensemble), "protocol": "TCP"}]}


def _container(ensemble: dict, settings: DesiredSettings) -> dict:
    port = service_port(ensemble)
    image, pull_policy = service_image(ensemble, settings)
    container = {
        "name": SERVICE_CONTAINER,
        "image": image,
        "command": service_command(ensemble, settings),
        "ports": [{"name": "grpc", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": _grpc_probe(port, period=5, failures=3),
        "livenessProbe": _grpc_probe(port, period=10, failures=6),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    return container


def deployment(ensemble: dict, settings: DesiredSettings) -> dict:
    selector = service_selector(ensemble)
    pod_spec: dict = {"serviceAccountName": ensemble_name(ensemble)}
    if upstream_mode(ensemble):
        pod_spec.update(subdomain=grpc_service_name(ensemble), containers=[_upstream_container(ensemble, settings)])
    else:
        pod_spec.update(securityContext={"runAsNonRoot": True, "runAsUser": SERVICE_USER_ID,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                        containers=[_container(ensemble, settings)])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(ensemble, ensemble_name(ensemble), extra_labels=selector),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(selector)},
            "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec},
        },
    }
