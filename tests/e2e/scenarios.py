"""Ensembles the scenarios apply, and small readers of what the cluster reports."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.compat import UPSTREAM_EXAMPLES
from tests.e2e.providers import FluxUnavailable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name / "ensemble.yaml").read_text())


def ensemble(name: str, members: list[dict], **spec) -> dict:
    return {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": name}, "spec": {"members": members, **spec}}


def member(ensemble_yaml: str, *, size: int = 1, min_size: int = 1, max_size: int = 4) -> dict:
    return {"minicluster": {"spec": {"size": size, "minSize": min_size, "maxSize": max_size,
                                     "containers": [{"image": "ghcr.io/converged-computing/metric-lammps:latest"}]}},
            "ensemble": ensemble_yaml}


def member_seconds(cluster, wall: float) -> int:
    """What an ensemble.yaml must say for something to take ``wall`` seconds on ``cluster``.

    Job durations, heartbeats and pending thresholds are read by the member runtime: the
    simulated one runs a clock ``member_speed`` (E2E_SPEED) times faster than the wall's,
    real Flux (local real members, kind, k3s, existing) runs at 1. Scenarios are written in
    wall seconds so both finish within the same timeouts.
    """
    return max(1, round(wall * float(getattr(cluster, "member_speed", 1.0))))


def _timed(template: str, cluster, **walls: float) -> str:
    """``template`` with each ``{name}`` replaced by ``member_seconds`` of its wall seconds."""
    return template.format(**{name: member_seconds(cluster, wall) for name, wall in walls.items()})


def quick_run(cluster) -> str:
    """Three one-second jobs, then terminate."""
    return _timed("""
logging: {{heartbeat: {beat}}}
jobs:
  - {{name: hello, command: sleep {job}, count: 3, nodes: 1}}
rules:
  - trigger: start
    action: {{name: submit, label: hello}}
  - trigger: metric
    name: count.hello.success
    when: 3
    action: {{name: terminate}}
""", cluster, beat=2, job=1)


def grow_shrink(cluster) -> str:
    """Eight jobs on one node: jobs wait, the member asks to grow; when they are done it asks
    to shrink, then runs one last job so the shrink can be seen before it ends. (A "> N" when
    is read by its first word's number, as ensemble-python reads it.)"""
    return _timed("""
logging: {{heartbeat: {beat}}}
jobs:
  - {{name: sim, command: sleep {job}, count: 8, nodes: 1}}
  - {{name: tail, command: sleep {tail}, count: 1, nodes: 1}}
rules:
  - trigger: start
    action: {{name: submit, label: sim}}
  - trigger: metric
    name: mean.sim-pending
    when: "> {pending}"
    action: {{name: grow, value: 1, repetitions: 3}}
  - trigger: metric
    name: count.sim.success
    when: 8
    action: {{name: shrink, value: 3}}
  - trigger: metric
    name: count.sim.success
    when: 8
    action: {{name: submit, label: tail}}
  - trigger: metric
    name: count.tail.success
    when: 1
    action: {{name: terminate}}
""", cluster, beat=2, job=12, tail=8, pending=1)


def queued_work(cluster) -> str:
    """Six long jobs queued on one node and no grow rule of its own: only the operator's
    scale algorithm (spec.algorithm) can make room for them."""
    return _timed("""
logging: {{heartbeat: {beat}}}
jobs:
  - {{name: batch, command: sleep {job}, count: 6, nodes: 1}}
rules:
  - trigger: start
    action: {{name: submit, label: batch}}
""", cluster, beat=2, job=1000)


def long_run(cluster) -> str:
    """Runs until the test is done with it (no terminate rule)."""
    return _timed("""
logging: {{heartbeat: {beat}}}
jobs:
  - {{name: work, command: sleep {job}, count: 1, nodes: 1}}
rules:
  - trigger: start
    action: {{name: submit, label: work}}
""", cluster, beat=2, job=10000)


def upstream_example(name: str) -> dict:
    """An upstream example Ensemble, byte for byte (tests/compat/upstream-examples)."""
    return yaml.safe_load((UPSTREAM_EXAMPLES / f"{name}.yaml").read_text())


def get(cluster, kind: str, name: str, namespace: str) -> dict | None:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else None


def items(cluster, kind: str, namespace: str, selector: str | None = None) -> list[dict]:
    args = ["get", kind, "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return json.loads(cluster.kubectl(*args))["items"]


def apply(cluster, obj: dict, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def phase(cluster, name: str, namespace: str) -> str | None:
    obj = get(cluster, "ensemble", name, namespace)
    return ((obj or {}).get("status") or {}).get("phase")


def member_statuses(cluster, name: str, namespace: str) -> list[dict]:
    obj = get(cluster, "ensemble", name, namespace) or {}
    return (obj.get("status") or {}).get("members") or []


def condition(cluster, name: str, namespace: str, type_: str) -> dict | None:
    obj = get(cluster, "ensemble", name, namespace) or {}
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def running_pods(cluster, minicluster: str, namespace: str) -> int:
    return sum(1 for p in items(cluster, "pods", namespace, f"job-name={minicluster}")
               if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


def minicluster_size(cluster, name: str, namespace: str) -> int | None:
    obj = get(cluster, "minicluster", name, namespace)
    return int(obj["spec"]["size"]) if obj else None


# ---- a real member's Flux instance (cluster.flux: its lead broker's socket) ----------------
def flux_ready(cluster, namespace: str, minicluster: str) -> bool:
    """Whether the member's instance answers (its lead broker runs and has loaded its modules)."""
    try:
        cluster.flux(namespace, minicluster, "resource", "list")
    except FluxUnavailable:
        return False
    return True


def flux_jobs(cluster, namespace: str, minicluster: str) -> list[dict]:
    """Every job of every user in the member's Flux instance, as ``flux jobs -A -a --json``
    lists them (state, ranks, result, exception)."""
    out = cluster.flux(namespace, minicluster, "jobs", "-A", "-a", "--json")
    return json.loads(out).get("jobs", []) if out.strip() else []


def idset(text: str) -> set[int]:
    """Flux's idset notation ("0", "[0-2,5]") as the set of ids."""
    ids: set[int] = set()
    for part in filter(None, text.strip().strip("[]").split(",")):
        first, _, last = part.partition("-")
        ids.update(range(int(first), int(last or first) + 1))
    return ids


def flux_ranks(cluster, namespace: str, minicluster: str, state: str = "up") -> set[int]:
    """The broker ranks of the member's instance in resource ``state`` (up, down, free...)."""
    return idset(cluster.flux(namespace, minicluster, "resource", "list", "-s", state, "-no", "{ranks}"))


def user_attributes(cluster, namespace: str, minicluster: str, jobid: int) -> dict:
    """A job's user attributes (``attributes.user`` of its jobspec), which ``flux jobs`` omits."""
    jobspec = json.loads(cluster.flux(namespace, minicluster, "job", "info", str(jobid), "jobspec"))
    return (jobspec.get("attributes") or {}).get("user") or {}


def failed_jobs(jobs: list[dict]) -> list[dict]:
    """Jobs that raised an exception (a lost rank raises one) or ended otherwise than COMPLETED."""
    return [j for j in jobs if (j.get("exception") or {}).get("occurred")
            or (j.get("state") == "INACTIVE" and j.get("result") != "COMPLETED")]
