#!/usr/bin/env python3
"""`make run`: an ensemble running end to end on the embedded local cluster.

Starts the local control plane (building it the first time), installs the CRDs and
the RBAC from ``manifests/``, runs the operator with the manifests' ServiceAccount,
the Flux Operator (real where built, else its simulator) and the pod process runner
(real Flux members where built, else simulated ones; see ``hack/localenv.py``), says which,
applies ``examples/hello-world``, and shows a live table of its members until the
ensemble completes. The cluster stays up afterwards; ``make cluster-down`` stops it.

The terminal gets only what a user can act on: the table, the summary, next steps, and
warnings and errors. The whole log (the local system's, at debug level) goes to
``demo.log`` beside the cluster's state, whose path the demo prints.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

import localcluster  # noqa: E402
from localenv import LocalEnvironment  # noqa: E402

NAMESPACE = "demo"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
COLUMNS = ("MEMBER", "PHASE", "SIZE", "PODS", "QUEUE new/sched/run/done", "NODES up/free", "LEAD BROKER")


def member_rows(ensemble: dict, pods_by_member: dict[str, int]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for member in (ensemble.get("status") or {}).get("members") or []:
        poll = member.get("lastPoll") or {}
        queue, nodes = poll.get("queue") or {}, poll.get("nodes") or {}
        queue_text = (f"{queue.get('new', 0)}/{queue.get('sched', 0)}/{queue.get('run', 0)}/"
                      f"{queue.get('inactive', 0)}" if queue else "-")
        nodes_text = f"{nodes.get('node_up_count', 0)}/{nodes.get('node_free_count', 0)}" if nodes else "-"
        lead = member.get("leadBroker") or {}
        rows.append((member["name"], member.get("phase", "-"),
                     f"{member.get('desiredSize', '-')}", str(pods_by_member.get(member["name"], 0)),
                     queue_text, nodes_text, lead.get("ip", "-")))
    return rows


def render(ensemble: dict, rows: list[tuple[str, ...]]) -> str:
    status = ensemble.get("status") or {}
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    lines = [f"Ensemble {NAMESPACE}/{ensemble['metadata']['name']}: phase {status.get('phase', 'Pending')}",
             "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def running_pods(cluster, namespace: str) -> dict[str, int]:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    counts: dict[str, int] = {}
    for pod in pods:
        job = (pod["metadata"].get("labels") or {}).get("job-name")
        if job and pod["status"].get("phase") == "Running":
            counts[job] = counts.get(job, 0) + 1
    return counts


def invalid_reason(ensemble: dict) -> str:
    """The InvalidSpec condition's message: every bad field with its path."""
    for condition in (ensemble.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "InvalidSpec":
            return condition.get("message") or "(no message)"
    return "(no InvalidSpec condition)"


def watch(cluster, name: str, timeout: float) -> bool:
    """Print the table whenever it changes; True once the ensemble completed, False once it
    failed, was found invalid, or the timeout passed."""
    interactive = sys.stdout.isatty()
    shown = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "ensemble", name, "-n", NAMESPACE, "-o", "json", check=False)
        if out.strip():
            ensemble = json.loads(out)
            table = render(ensemble, member_rows(ensemble, running_pods(cluster, NAMESPACE)))
            if table != shown:
                print(("\033[H\033[J" if interactive else "\n") + table, flush=True)
                shown = table
            phase = (ensemble.get("status") or {}).get("phase")
            if phase == "Invalid":  # nothing runs until the spec is fixed: say why and stop
                print(f"\nThe operator refused the Ensemble: {invalid_reason(ensemble)}", flush=True)
                return False
            if phase in ("Completed", "Failed"):
                return phase == "Completed"
        time.sleep(0.5)
    return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default=str(ROOT / "examples" / "hello-world" / "ensemble.yaml"))
    parser.add_argument("--speed", type=float, default=5.0,
                        help="simulated Flux seconds per wall second (default 5)")
    parser.add_argument("--timeout", type=float, default=600)
    return parser.parse_args(argv)


def log_to_file(path: Path) -> None:
    """Every log record into ``path`` (debug and up; urllib3's per-request lines from info),
    and to the terminal only warnings and errors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, mode="w")
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setFormatter(logging.Formatter(LOG_FORMAT))
    to_terminal.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.handlers[:] = [to_file, to_terminal]
    logging.getLogger("urllib3").setLevel(logging.INFO)


def stop_earlier_cluster() -> str:
    """``localcluster down``; returns what it said, which goes to the terminal only if it failed."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        failed = localcluster.main(["down"]) != 0
    if failed:
        print(said.getvalue(), end="", file=sys.stderr)
    return said.getvalue().strip()


def next_steps(cluster, log_path: Path, workdir: Path) -> str:
    """What a user can do once the demo ended: the cluster stays up, the operator does not."""
    kubectl = cluster.bin_dir / "kubectl"
    lines = [
        "Next steps (the control plane is still up; the operator, the Flux Operator and the pods have stopped):",
        f"  Use the cluster:    export KUBECONFIG={cluster.kubeconfig}",
        f"                      {kubectl} get ensembles,miniclusters,pods -n {NAMESPACE}",
        "  Another example:    make run EXAMPLE=examples/grow-shrink/ensemble.yaml",
        "                      (any of examples/*/ensemble.yaml, or upstream's unchanged: "
        "tests/compat/upstream-examples/*.yaml)",
        "  Watch it run:       from another terminal while make run runs, with that KUBECONFIG:",
        f"                      .venv/bin/ensemble-operator status -n {NAMESPACE} --watch   "
        f"(or: kubectl get ensembles -n {NAMESPACE} -w)",
        f"  Logs:               this run's: {log_path}",
        f"                      the operator's, the Flux Operator's, each pod's: {workdir}",
        "  Stop everything:    make cluster-down",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stopped = stop_earlier_cluster()
    log_path = localcluster.STATE_DIR / "demo.log"  # beside the cluster's state, until make cluster-down
    log_to_file(log_path)
    logging.getLogger("demo").info("stopping an earlier local cluster: %s", stopped)
    print(f"Starting the local cluster, the Flux Operator, the operator and the pod runner "
          f"(full log: {log_path})...", flush=True)
    started = time.monotonic()
    env = LocalEnvironment.start(detached=True, speed=args.speed)
    cluster = env.cluster
    print(f"Flux Operator: {env.flux_operator_runtime}; members: {env.member_runtime}", flush=True)
    try:
        cluster.kubectl("create", "namespace", NAMESPACE)
        cluster.kubectl("create", "serviceaccount", "default", "-n", NAMESPACE, check=False)
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", args.example)
        name = json.loads(cluster.kubectl("get", "-f", args.example, "-n", NAMESPACE, "-o", "json"))["metadata"]["name"]
        completed = watch(cluster, name, args.timeout)
    finally:
        env.stop(cluster_too=False)
    print(f"\nThe ensemble {'completed' if completed else 'did NOT complete'} "
          f"({time.monotonic() - started:.0f} s with the system's start).\n", flush=True)
    print(next_steps(cluster, log_path, env.workdir), flush=True)
    return 0 if completed else 1


if __name__ == "__main__":
    sys.exit(main())
