"""The Flux Operator simulator (hack/sim/fluxoperator.py, the fallback without Go) against the
real Flux Operator: the same MiniCluster and the same size changes give the same Job, pods'
shape, Service and MiniCluster status under both, so the local system (and our operator)
sees the same thing whichever runs. And the simulator's status writes are accepted by the
Flux Operator's CRD (they were refused once: ``status.jobid: Required value``)."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterator

import pytest
import yaml

from controller.kube.resources import ENSEMBLES, JOBS, MINICLUSTERS, SERVICES
from controller.reconcilers.desired.member import minicluster
from controller.reconcilers.desired.settings import DesiredSettings
from controller.runtime import Manager
from fluxoperator import FluxOperatorProcess
from sim import fluxoperator as simulator
from tests.helpers import wait_for
from tests.integration.test_flux_operator import EXAMPLES, get
from tests.namespaces import scratch_namespace

pytestmark = pytest.mark.integration

HELLO_WORLD = next(p for p in EXAMPLES if p.parent.name == "hello-world")
# (patch, how the Flux Operator answers): resized, left in the spec, or patched back.
SCRIPT = [({"size": 3}, "resized"), ({"size": 0}, "refused"), ({"size": 1}, "resized"),
          ({"size": 5}, "refused"), ({"maxSize": 6, "size": 5}, "patched back")]


def shape(kube, name: str, namespace: str) -> dict:
    """What our operator can observe of a MiniCluster's Flux Operator: its status, the Job
    and the pods' template, the headless Service (namespace names and Job uids left out)."""
    mc = kube.get(MINICLUSTERS, name, namespace)
    job = kube.get(JOBS, name, namespace)
    template = job["spec"]["template"]
    headless = mc["spec"]["network"]["headlessName"]
    service = kube.get(SERVICES, headless, namespace)
    status = mc["status"]
    return {
        "spec.size": mc["spec"]["size"],
        "status": {**{k: v for k, v in status.items() if k != "conditions"},
                   "conditions": [(c["type"], c["status"]) for c in status.get("conditions") or []]},
        "job": {k: job["spec"].get(k) for k in ("completions", "parallelism", "completionMode", "backoffLimit")},
        "pod labels": {k: ("<ns>" if v == namespace else v) for k, v in template["metadata"]["labels"].items()
                       if not k.endswith("controller-uid")},  # the Job's own uid
        "restartPolicy": template["spec"]["restartPolicy"],
        "subdomain": template["spec"]["subdomain"],
        "containers": [(c["name"], c.get("command")) for c in template["spec"]["containers"]],
        "service": (service["metadata"]["name"], service["spec"]["selector"], service["spec"]["clusterIP"]),
    }


def run_script(kube, namespace: str, refused: Callable[[int], Callable[[], object]]) -> list[dict]:
    """Create hello-world's member MiniCluster (size 2, maxSize 4), apply SCRIPT, and return
    the shape after creation and after each step. ``refused(size)`` is a predicate factory
    called before a refused patch: true once the operator has answered it."""
    ensemble = yaml.safe_load(HELLO_WORLD.read_text())
    ensemble["spec"]["members"][0]["minicluster"]["spec"].update(size=2, maxSize=4)
    ensemble = kube.create(ENSEMBLES, ensemble, namespace)
    name = kube.create(MINICLUSTERS, minicluster(ensemble, 0, DesiredSettings()), namespace)["metadata"]["name"]

    def settled(size: int, status_size: int | None = None) -> Callable[[], object]:
        """The Job at ``size`` and the status complete: ``status.size`` (``size`` unless given;
        0 until the first resize) and the conditions (the real one writes the selector with
        JobRequested True first, then flags JobMiniClusterReady; it patches the Job before
        the status)."""
        def check() -> object:
            mc = get(kube, MINICLUSTERS, name, namespace) or {}
            job = get(kube, JOBS, name, namespace) or {"spec": {}}
            status = mc.get("status") or {}
            ready = any(c.get("type") == "JobMiniClusterReady" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
            return ready and job["spec"].get("parallelism") == size and mc["spec"]["size"] == size \
                and status.get("size") == (size if status_size is None else status_size)
        return check

    wait_for(settled(2, status_size=0), 60, f"MiniCluster {namespace}/{name}: its Job and status")
    shapes = [shape(kube, name, namespace)]
    job_size = 2
    for patch, answer in SCRIPT:
        answered = refused(patch["size"]) if answer == "refused" else None
        kube.patch(MINICLUSTERS, name, {"spec": patch}, namespace=namespace)
        if answered is not None:
            wait_for(answered, 60, f"the refusal of {patch}")
        else:
            job_size = patch["size"] if answer == "resized" else 4  # patched back to maximumSize
            wait_for(settled(job_size), 60, f"{namespace}/{name} after {patch}: {answer} to {job_size}")
        shapes.append(shape(kube, name, namespace))
        if answer == "refused":
            kube.patch(MINICLUSTERS, name, {"spec": {"size": job_size}}, namespace=namespace)
            wait_for(settled(job_size), 60, f"{namespace}/{name} back at {job_size}")
    return shapes


@pytest.fixture
def other_namespace(kube_cluster) -> Iterator[str]:
    with scratch_namespace(kube_cluster, "t", suffix_chars=10) as name:
        yield name


def test_the_simulator_shows_what_the_real_flux_operator_shows(
        kube, flux_operator: FluxOperatorProcess, ensemble_crd: str, namespace: str, other_namespace: str,
        caplog: pytest.LogCaptureFixture) -> None:
    def real_refused(size: int) -> Callable[[], object]:
        text = "A MiniCluster without nodes?" if size == 0 else "did not validate"
        before = flux_operator.logs(100_000).count(text)
        return lambda: flux_operator.logs(100_000).count(text) > before

    real = run_script(kube, namespace, real_refused)
    flux_operator.stop()  # it acts on every namespace: the simulator takes over alone

    caplog.set_level(logging.INFO, logger=simulator.__name__)

    def simulated_refused(size: int) -> Callable[[], object]:
        text = "size 0" if size == 0 else f"size {size} > maxSize"
        before = sum(text in r.getMessage() for r in caplog.records)
        return lambda: sum(text in r.getMessage() for r in caplog.records) > before

    manager = Manager(kube, namespaces=[other_namespace], metrics_port=None, health_port=None)
    simulator.setup(manager)
    thread = threading.Thread(target=manager.start, name="flux-operator-simulator", daemon=True)
    thread.start()
    try:
        simulated = run_script(kube, other_namespace, simulated_refused)
    finally:
        manager.stop()
        thread.join(30)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], "the simulator's writes must all be accepted"
    for step, (want, got) in enumerate(zip(real, simulated)):
        assert got == want, f"after step {step} ({(['created'] + SCRIPT)[step]})"
