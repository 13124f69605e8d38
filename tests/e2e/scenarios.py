"""Ensembles the scenarios apply, and small readers of what the cluster reports."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

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


QUICK_RUN = """
logging: {heartbeat: 2}
jobs:
  - {name: hello, command: sleep 5, count: 3, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: hello}
  - trigger: metric
    name: count.hello.success
    when: 3
    action: {name: terminate}
"""

# Eight 30 s jobs on one node: jobs wait, the member asks to grow; when they are done
# it asks to shrink, then runs one last job so the shrink can be seen before it ends.
GROW_SHRINK = """
logging: {heartbeat: 5}
jobs:
  - {name: sim, command: sleep 30, count: 8, nodes: 1}
  - {name: tail, command: sleep 60, count: 1, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: sim}
  - trigger: metric
    name: mean.sim-pending
    when: "> 5"
    action: {name: grow, value: 1, repetitions: 3}
  - trigger: metric
    name: count.sim.success
    when: 8
    action: {name: shrink, value: 3}
  - trigger: metric
    name: count.sim.success
    when: 8
    action: {name: submit, label: tail}
  - trigger: metric
    name: count.tail.success
    when: 1
    action: {name: terminate}
"""

# Six long jobs queued on one node and no grow rule of its own: only the operator's
# scale algorithm (spec.algorithm) can make room for them.
QUEUED_WORK = """
logging: {heartbeat: 5}
jobs:
  - {name: batch, command: sleep 1000, count: 6, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: batch}
"""

# Runs until the test is done with it (no terminate rule).
LONG_RUN = """
logging: {heartbeat: 5}
jobs:
  - {name: work, command: sleep 100000, count: 1, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: work}
"""


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
