"""Our MiniClusters under the real Flux Operator (the manager hack/build-flux-operator.sh builds,
run by hack/fluxoperator.py), on the local control plane with kube-controller-manager's Job
controller: every MiniCluster built from the upstream examples and ours gets its Job and
pods, and the sizes the Flux Operator refuses are the ones controller/scaling/minicluster_sizes.py
says it refuses. A simulator accepted a Job the real one could not create (the volume key of
commit 7aaef6f); this is the test that sees such a bug.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, TypeVar

import pytest
import yaml

from controller.kube.errors import ApiError, is_not_found
from controller.kube.resources import ENSEMBLES, JOBS, MINICLUSTERS, PODS, SERVICES
from controller.memberpods.leadbroker import lead_broker_pods, member_job_uid, pod_index
from controller.scaling.minicluster_sizes import refusal
from controller.reconcilers.desired.member import ENTRYPOINT_DIR, STATUS_CONTAINER, minicluster
from controller.reconcilers.desired.settings import DesiredSettings
from fluxoperator import FluxOperatorProcess
from tests.compat import UPSTREAM_EXAMPLES
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(UPSTREAM_EXAMPLES.glob("*.yaml")) + sorted((ROOT / "examples").glob("*/ensemble.yaml"))
T = TypeVar("T")


def waiting(manager: FluxOperatorProcess, predicate: Callable[[], T], timeout: float, what: str) -> T:
    """wait_for, with the Flux Operator's last log lines when it times out (they say why)."""
    try:
        return wait_for(predicate, timeout, what, interval=0.2)
    except AssertionError as err:
        raise AssertionError(f"{err}\n--- Flux Operator log (last lines):\n{manager.logs(25)}") from None


def get(kube, resource, name: str, namespace: str) -> dict | None:
    try:
        return kube.get(resource, name, namespace)
    except ApiError as err:
        if is_not_found(err):
            return None
        raise


def our_miniclusters(kube, namespace: str, path: Path) -> list[dict]:
    """The members' MiniClusters of an example, as the reconciler builds them (from the
    Ensemble as the API server defaulted it), created in ``namespace``."""
    ensemble = kube.create(ENSEMBLES, yaml.safe_load(path.read_text()), namespace)
    return [kube.create(MINICLUSTERS, minicluster(ensemble, index, DesiredSettings()), namespace)
            for index in range(len(ensemble["spec"]["members"]))]


def job_pods(kube, name: str, namespace: str) -> list[dict]:
    return kube.list(PODS, namespace, label_selector=f"job-name={name}")["items"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"upstream-{p.stem}" if p.parent == UPSTREAM_EXAMPLES
                         else p.parent.name)
def test_every_minicluster_we_build_gets_its_job_and_pods_from_the_flux_operator(
        kube, flux_operator: FluxOperatorProcess, ensemble_crd: str, namespace: str, path: Path) -> None:
    for mc in our_miniclusters(kube, namespace, path):
        name, size = mc["metadata"]["name"], mc["spec"]["size"]
        job = waiting(flux_operator, lambda: get(kube, JOBS, name, namespace), 60,
                      f"the Flux Operator to create Job {namespace}/{name}")
        assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (size, size)
        template = job["spec"]["template"]["spec"]
        runner, status = template["containers"]
        assert (runner["name"], runner["command"]) == (name, ["/bin/bash", "/flux_operator/wait-0.sh"])
        assert (status["name"], status["command"]) == (STATUS_CONTAINER, ["/bin/bash", "/flux_operator/start-1.sh"])
        # The member's ensemble.yaml reaches both containers at /ensemble-entrypoint.
        volume = next(v for v in template["volumes"] if (v.get("configMap") or {}).get("name") == name)
        for container in (runner, status):
            assert {"name": volume["name"], "mountPath": ENTRYPOINT_DIR} in [
                {k: m[k] for k in ("name", "mountPath")} for m in container["volumeMounts"]]
        pods = waiting(flux_operator, lambda: len(job_pods(kube, name, namespace)) == size and
                       job_pods(kube, name, namespace), 60, f"{size} pods of Job {namespace}/{name}")
        assert sorted(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods) == \
            [str(i) for i in range(size)]
        # What lead brokers are told by (controller/memberpods/leadbroker.py): the Job carries its
        # pods' labels, ours among them, so the member-Job caches select it; the MiniCluster controls
        # it by UID; and its index-0 pod, controlled by it, is the one lead broker.
        assert mc["spec"]["pod"]["labels"].items() <= job["metadata"]["labels"].items()
        job_uid = member_job_uid(job, name, minicluster_uid=mc["metadata"]["uid"])
        assert job_uid == job["metadata"]["uid"]
        assert [p["metadata"]["name"] for p in lead_broker_pods(pods, job_uids={name: job_uid}, minicluster=name)] \
            == [p["metadata"]["name"] for p in pods if pod_index(p) == 0]
        headless = mc["spec"]["network"]["headlessName"]
        assert waiting(flux_operator, lambda: get(kube, SERVICES, headless, namespace), 30,
                       f"the headless Service {headless}")["spec"]["clusterIP"] == "None"
        stored = waiting(flux_operator, lambda: (get(kube, MINICLUSTERS, name, namespace) or {}).get("status"),
                         30, f"the status of MiniCluster {name}")
        assert (stored["selector"], stored["jobid"], stored["maximumSize"]) == \
            (f"hpa-selector={name}", "", max(size, mc["spec"].get("maxSize") or 0))


# How the Flux Operator logs each kind of refusal (controllers/flux/minicluster_controller.go, scale.go).
REFUSAL_LOGS = {"size 0": "A MiniCluster without nodes?", "spec.maxSize": "did not validate",
                "spec.minSize": "did not validate", "status.maximumSize": '"Status":"Denied"'}


def refusal_log(reason: str) -> str:
    return next(line for key, line in REFUSAL_LOGS.items() if key in reason)


def logged(manager: FluxOperatorProcess, text: str) -> int:
    return sum(1 for line in manager.logs(100_000).splitlines() if text in line)


def test_the_sizes_the_flux_operator_refuses_are_the_ones_we_never_write(
        kube, flux_operator: FluxOperatorProcess, namespace: str) -> None:
    """Each size change is judged by controller.scaling.minicluster_sizes.refusal first; the real Flux
    Operator then resizes the Job (accepted) or logs that refusal and leaves the Job as it was.
    (It handles one MiniCluster's events in order, so a refusal line of one kind after the
    patch is its answer to it: the steps never repeat a kind back to back.)"""
    spec = {"size": 2, "minSize": 2, "maxSize": 4, "containers": [{"image": "app:1"}]}
    kube.create(MINICLUSTERS, {"apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster",
                               "metadata": {"name": "sized"}, "spec": spec}, namespace)
    waiting(flux_operator, lambda: (get(kube, MINICLUSTERS, "sized", namespace) or {}).get("status", {})
            .get("maximumSize") == 4 and get(kube, JOBS, "sized", namespace), 60, "the Job of MiniCluster sized")
    job_size = 2
    # maxSize raised to 6 after the Flux Operator recorded maximumSize 4: 5 is still refused.
    for change in ({"size": 3}, {"size": 5}, {"size": 0}, {"size": 1}, {"size": 4},
                   {"maxSize": 6, "size": 5}, {"size": 2}):
        current = kube.get(MINICLUSTERS, "sized", namespace)
        reason = refusal({**current, "spec": {**current["spec"], **change}}, change["size"])
        before = logged(flux_operator, refusal_log(reason)) if reason else 0
        kube.patch(MINICLUSTERS, "sized", {"spec": change}, namespace=namespace)
        if reason is None:
            job_size = change["size"]
            waiting(flux_operator, lambda: kube.get(JOBS, "sized", namespace)["spec"]["parallelism"] == job_size,
                    60, f"the Job resized to {job_size} after {json.dumps(change)}")
            continue
        waiting(flux_operator, lambda: logged(flux_operator, refusal_log(reason)) > before, 60,
                f"the Flux Operator to refuse {json.dumps(change)} ({reason})")
        assert kube.get(JOBS, "sized", namespace)["spec"]["parallelism"] == job_size, reason
        if "status.maximumSize" in reason:  # patched back to the maximum, which the Job has
            waiting(flux_operator, lambda: kube.get(MINICLUSTERS, "sized", namespace)["spec"]["size"] == job_size,
                    30, "the Flux Operator to patch spec.size back to status.maximumSize")
        else:  # left in the spec: put the running size back before the next change
            assert kube.get(MINICLUSTERS, "sized", namespace)["spec"]["size"] == change["size"], reason
            kube.patch(MINICLUSTERS, "sized", {"spec": {"size": job_size}}, namespace=namespace)
