"""A Flux Operator simulator: the fallback where the real one (hack/fluxoperator.py) is not
built (no Go). It copies what the real manager (commit 0d75cef8) does with a MiniCluster that
this project can observe, so the local system behaves the same with either:

- an Indexed Job ``<mc>`` (completions == parallelism == spec.size, backoffLimit 100, pods
  ``restartPolicy: OnFailure``); the ``runFlux`` container is named ``<mc>`` and runs
  ``/bin/bash /flux_operator/wait-<i>.sh``, other containers ``start-<i>.sh``; pod labels are
  ``spec.pod.labels`` plus ``namespace``, ``app: flux-operator``, ``app.kubernetes.io/name`` and
  ``hpa-selector`` (the Job controller adds ``job-name`` and the completion index);
- the headless Service ``spec.network.headlessName`` selecting ``job-name=<mc>`` (the first
  MiniCluster to create it owns it);
- its refusals: a size of 0, above ``spec.maxSize`` or below ``spec.minSize`` is left in
  the spec and changes nothing; one above ``status.maximumSize`` is patched back to it;
  any other size change resizes the Job in place;
- its status: ``size`` (0 until the first resize), ``maximumSize`` (fixed at the first
  reconcile), ``selector``, an empty ``jobid`` (the CRD requires all four) and its five
  conditions, of which only ``JobMiniClusterReady`` turns True: ``JobFinished`` never does.

Not copied: the ``<mc>-entrypoint`` ConfigMap of scripts, the Flux view init container and
the ``job-index`` pod label (the Job controller's completion-index label says the same).
It runs on this project's own controller runtime, so it also exercises that runtime.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from controller.kube import errors
from controller.kube.resources import JOBS, MINICLUSTERS, SERVICES
from controller.runtime import ControllerBuilder, Manager, Request, Result

log = logging.getLogger(__name__)

FIELD_MANAGER = "flux-operator-simulator"
BACKOFF_LIMIT = 100
CONDITIONS = ("JobRequested", "JobWaitingForResources", "JobRunning", "JobMiniClusterReady", "JobFinished")
READY = "JobMiniClusterReady"


def owner_reference(mc: dict) -> dict:
    return {"apiVersion": MINICLUSTERS.api_version, "kind": MINICLUSTERS.kind,
            "name": mc["metadata"]["name"], "uid": mc["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def spec_size(mc: dict) -> int:
    return int((mc.get("spec") or {}).get("size") or 0)


def headless_name(mc: dict) -> str:
    return ((mc.get("spec") or {}).get("network") or {}).get("headlessName") or mc["metadata"]["name"]


def run_flux(spec: dict, index: int) -> bool:
    containers = spec.get("containers") or []
    return len(containers) == 1 or bool(containers[index].get("runFlux"))


def desired_containers(mc: dict) -> list[dict]:
    spec = mc.get("spec") or {}
    containers = []
    for i, c in enumerate(spec.get("containers") or []):
        container = {"name": c.get("name") or "", "image": c.get("image", "unknown")}
        if run_flux(spec, i):
            container.update(name=mc["metadata"]["name"], command=["/bin/bash", f"/flux_operator/wait-{i}.sh"])
        elif not c.get("noWrapEntrypoint"):
            container["command"] = ["/bin/bash", f"/flux_operator/start-{i}.sh"]
        containers.append(container)
    return containers


def desired_job(mc: dict) -> dict:
    spec = mc.get("spec") or {}
    name, namespace = mc["metadata"]["name"], mc["metadata"]["namespace"]
    size = spec_size(mc)
    pod = spec.get("pod") or {}
    pod_labels = {**(pod.get("labels") or {}), "namespace": namespace, "app": "flux-operator",
                  "app.kubernetes.io/name": name, "hpa-selector": name}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(spec.get("jobLabels") or {}),
                     "ownerReferences": [owner_reference(mc)]},
        "spec": {
            "completionMode": "Indexed", "completions": size, "parallelism": size,
            "backoffLimit": int(spec.get("backoffLimit") or BACKOFF_LIMIT),
            "template": {
                "metadata": {"labels": pod_labels, "annotations": dict(pod.get("annotations") or {})},
                "spec": {
                    "subdomain": headless_name(mc),
                    "restartPolicy": pod.get("restartPolicy") or "OnFailure",
                    "automountServiceAccountToken": bool(pod.get("automountServiceAccountToken")),
                    "tolerations": list(pod.get("tolerations") or []),
                    "containers": desired_containers(mc),
                },
            },
        },
    }


def desired_service(mc: dict) -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": headless_name(mc), "namespace": mc["metadata"]["namespace"],
                     "ownerReferences": [owner_reference(mc)]},
        "spec": {"clusterIP": "None", "selector": {"job-name": mc["metadata"]["name"]}},
    }


def spec_refusal(mc: dict) -> str | None:
    """Why the real manager stops before touching anything (its size-0 check and Validate())."""
    spec = mc.get("spec") or {}
    size, max_size = spec_size(mc), int(spec.get("maxSize") or 0)
    if size == 0:
        return "size 0"
    if max_size and size > max_size:
        return f"size {size} > maxSize {max_size}"
    if int(spec.get("minSize") or 0) > size:
        return f"minSize {spec.get('minSize')} > size {size}"
    return None


def maximum_size(mc: dict) -> int:
    """``status.maximumSize`` once recorded, else what the first reconcile records."""
    recorded = int((mc.get("status") or {}).get("maximumSize") or 0)
    return recorded or max(spec_size(mc), int((mc.get("spec") or {}).get("maxSize") or 0))


def conditions(previous: list[dict] | None) -> list[dict]:
    """The five conditions, Ready True; transition times kept from ``previous``."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    times = {c.get("type"): c.get("lastTransitionTime") for c in previous or []}
    return [{"type": kind, "status": "True" if kind == READY else "False", "reason": kind, "message": kind,
             "lastTransitionTime": times.get(kind) or now} for kind in CONDITIONS]


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
        refused = spec_refusal(mc)
        if refused is not None:
            log.info("MiniCluster %s/%s refused (%s): left as it is, as the Flux Operator does",
                     request.namespace, request.name, refused)
            return Result()
        self._ensure_service(mc)
        status_size = int((mc.get("status") or {}).get("size") or 0)
        job = self.jobs.get(request.name, request.namespace)
        if job is None:
            self._create(JOBS, desired_job(mc))
        elif job["spec"].get("parallelism") != spec_size(mc):
            status_size = self._resize(mc)
        self._update_status(mc, status_size)
        return Result()

    def _create(self, resource, obj: dict) -> None:
        try:
            self.client.create(resource, obj)
        except errors.ApiError as err:
            if not errors.is_already_exists(err):
                raise

    def _ensure_service(self, mc: dict) -> None:
        if self.services.get(headless_name(mc), mc["metadata"]["namespace"]) is None:
            self._create(SERVICES, desired_service(mc))

    def _resize(self, mc: dict) -> int:
        """The Job's new size, or the spec patched back to ``maximumSize``; the new status.size."""
        name, namespace, size = mc["metadata"]["name"], mc["metadata"]["namespace"], spec_size(mc)
        ceiling = maximum_size(mc)
        if size > ceiling:
            log.info("MiniCluster %s/%s: size %d above maximumSize %d denied", namespace, name, size, ceiling)
            self.client.patch(MINICLUSTERS, name, {"spec": {"size": ceiling}}, namespace=namespace)
            return ceiling
        log.info("resizing job %s/%s to %d", namespace, name, size)
        try:
            self.client.patch(JOBS, name, {"spec": {"parallelism": size, "completions": size}},
                              namespace=namespace)
        except errors.ApiError as err:  # e.g. a finished Job; the real manager logs it too
            log.warning("could not resize job %s/%s to %d: %s", namespace, name, size, err)
            return int((mc.get("status") or {}).get("size") or 0)
        return size

    def _update_status(self, mc: dict, size: int) -> None:
        status = mc.get("status") or {}
        wanted = {"size": size, "maximumSize": maximum_size(mc), "jobid": status.get("jobid", ""),
                  "selector": f"hpa-selector={mc['metadata']['name']}",
                  "conditions": conditions(status.get("conditions"))}
        if all(status.get(k) == v for k, v in wanted.items()):
            return
        self.client.patch(MINICLUSTERS, mc["metadata"]["name"], {"status": wanted},
                          namespace=mc["metadata"]["namespace"], subresource="status")


def setup(manager: Manager, workers: int = 2) -> None:
    simulator = FluxOperatorSimulator(manager)
    (ControllerBuilder(manager).named("flux-operator-simulator")
     .for_(MINICLUSTERS).owns(JOBS).owns(SERVICES)
     .with_workers(workers).complete(simulator))
