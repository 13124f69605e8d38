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

from controller.statusview.table import render, view_of  # noqa: E402  (`ensemble-operator status`'s table)

NAMESPACE = "demo"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def watch(cluster, name: str, timeout: float) -> bool:
    """Print the table whenever it changes; True once the ensemble completed, False once it
    failed, was found invalid, or the timeout passed."""
    interactive = sys.stdout.isatty()
    shown = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "ensemble", name, "-n", NAMESPACE, "-o", "json", check=False)
        if out.strip():
            view = view_of(json.loads(out))
            table = render([view])
            if table != shown:
                print(("\033[H\033[J" if interactive else "\n") + table, flush=True)
                shown = table
            if view.phase == "Invalid":  # nothing runs until the spec is fixed: the table says why
                print("\nThe operator refused the Ensemble: the Invalid line above names every bad field.",
                      flush=True)
                return False
            if view.phase in ("Completed", "Failed"):
                return view.phase == "Completed"
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
