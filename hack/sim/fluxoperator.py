"""A Flux Operator simulator, for the local cluster where the real one cannot be built.

The Flux Operator's Go module is not served by the module proxy here, so the local e2e
cluster and the demo run this stand-in instead. It does what the Flux Operator does
with a MiniCluster that this project depends on, and nothing else:

- an Indexed Job ``<mc>`` with ``completions == parallelism == spec.size`` whose pods
  carry ``hpa-selector=<mc>`` (the Job controller adds ``job-name`` and the completion
  index), resized in place when ``spec.size`` changes (elastic Indexed Job);
- the headless Service ``spec.network.headlessName`` the pods share;
- ``status.size``, ``status.maximumSize`` and ``status.selector`` for the scale
  subresource, and a ``JobFinished`` condition once the Job completed.

It runs on this project's own controller runtime, so it also exercises that runtime.
"""
from __future__ import annotations

import logging

from controller.kube import errors
from controller.kube.resources import JOBS, MINICLUSTERS, SERVICES
from controller.runtime import ControllerBuilder, Manager, Request, Result

log = logging.getLogger(__name__)

FIELD_MANAGER = "flux-operator-simulator"
FINISHED = "JobFinished"


def owner_reference(mc: dict) -> dict:
    return {"apiVersion": MINICLUSTERS.api_version, "kind": MINICLUSTERS.kind,
            "name": mc["metadata"]["name"], "uid": mc["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def desired_size(mc: dict) -> int:
    return int((mc.get("spec") or {}).get("size") or 1)


def desired_job(mc: dict) -> dict:
    spec = mc.get("spec") or {}
    name = mc["metadata"]["name"]
    size = desired_size(mc)
    pod_labels = {**((spec.get("pod") or {}).get("labels") or {}),
                  "hpa-selector": name, "app.kubernetes.io/name": name}
    containers = [{"name": c.get("name") or (name if i == 0 else f"{name}-{i}"),
                   "image": c.get("image", "unknown"), "command": ["/bin/sh", "-c", str(c.get("command", ""))]}
                  for i, c in enumerate(spec.get("containers") or [{}])]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": mc["metadata"]["namespace"],
                     "labels": {"app.kubernetes.io/name": name},
                     "ownerReferences": [owner_reference(mc)]},
        "spec": {
            "completionMode": "Indexed", "completions": size, "parallelism": size,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "subdomain": (spec.get("network") or {}).get("headlessName", "flux-service"),
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists",
                                     "effect": "NoSchedule"}],
                    "containers": containers,
                },
            },
        },
    }


def desired_service(mc: dict) -> dict:
    spec = mc.get("spec") or {}
    headless = (spec.get("network") or {}).get("headlessName", "flux-service")
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": headless, "namespace": mc["metadata"]["namespace"],
                     "ownerReferences": [owner_reference(mc)]},
        "spec": {"clusterIP": "None", "selector": {"hpa-selector": mc["metadata"]["name"]}},
    }


def job_finished(job: dict | None) -> bool:
    conditions = ((job or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


class FluxOperatorSimulator:
    """Reconciles one MiniCluster into its Job, Service and status."""

    def __init__(self, manager: Manager) -> None:
        self.client = manager.client
        self.miniclusters = manager.cache(MINICLUSTERS)
        self.jobs = manager.cache(JOBS)
        self.services = manager.cache(SERVICES)

    def reconcile(self, request: Request) -> Result:
        mc = self.miniclusters.get(request.name, request.namespace)
        if mc is None or (mc.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        self._ensure_service(mc)
        job = self._ensure_job(mc)
        self._update_status(mc, job)
        return Result()

    def _ensure_service(self, mc: dict) -> None:
        service = desired_service(mc)
        if self.services.get(service["metadata"]["name"], request_ns(mc)) is None:
            try:
                self.client.create(SERVICES, service)
            except errors.ApiError as err:
                if not errors.is_already_exists(err):
                    raise

    def _ensure_job(self, mc: dict) -> dict | None:
        name, namespace, size = mc["metadata"]["name"], request_ns(mc), desired_size(mc)
        job = self.jobs.get(name, namespace)
        if job is None:
            try:
                return self.client.create(JOBS, desired_job(mc))
            except errors.ApiError as err:
                if not errors.is_already_exists(err):
                    raise
                return None
        if job_finished(job):
            return job
        if job["spec"].get("parallelism") != size or job["spec"].get("completions") != size:
            log.info("resizing job %s/%s to %d", namespace, name, size)
            return self.client.patch(JOBS, name, {"spec": {"parallelism": size, "completions": size}},
                                     namespace=namespace)
        return job

    def _update_status(self, mc: dict, job: dict | None) -> None:
        spec = mc.get("spec") or {}
        status = dict(mc.get("status") or {})
        size = desired_size(mc)
        wanted = {"size": size, "maximumSize": int(spec.get("maxSize") or size),
                  "selector": f"hpa-selector={mc['metadata']['name']}"}
        if job_finished(job):
            wanted["conditions"] = [{"type": FINISHED, "status": "True", "reason": "JobFinished",
                                     "message": "the MiniCluster's job finished",
                                     "lastTransitionTime": job_completion_time(job)}]
        if all(status.get(k) == v for k, v in wanted.items()):
            return
        self.client.patch(MINICLUSTERS, mc["metadata"]["name"], {"status": wanted},
                          namespace=request_ns(mc), subresource="status")


def request_ns(obj: dict) -> str:
    return obj["metadata"]["namespace"]


def job_completion_time(job: dict | None) -> str:
    status = (job or {}).get("status") or {}
    return status.get("completionTime") or status.get("startTime") or "1970-01-01T00:00:00Z"


def setup(manager: Manager, workers: int = 2) -> None:
    simulator = FluxOperatorSimulator(manager)
    (ControllerBuilder(manager).named("flux-operator-simulator")
     .for_(MINICLUSTERS).owns(JOBS).owns(SERVICES)
     .with_workers(workers).complete(simulator))
