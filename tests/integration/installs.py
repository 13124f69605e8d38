"""An install of the operator on the local system (kwok nodes, the Flux Operator, members),
with the operator as a process holding the install's ServiceAccount token, running an example
Ensemble to completion while ``ensemble-operator status --watch`` follows it."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from controller.statusview import command
from controller.statusview.table import EnsembleView, render
from localcluster import LocalCluster
from localenv import OPERATOR_NAMESPACE, LocalEnvironment
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "hello-world" / "ensemble.yaml"
DONE = ("Completed", "Failed", "Invalid")
EXAMPLE_TIMEOUT = 420.0  # hello-world takes about a minute; a loaded 2-core machine, several


@contextmanager
def local_system(install: Callable[[LocalCluster], None], account: str) -> Iterator[LocalEnvironment]:
    env = LocalEnvironment.start(operator_install=install, operator_account=account)
    print(f"\n[local system] Flux Operator {env.flux_operator_runtime}, members {env.member_runtime}")
    try:
        yield env
    finally:
        env.stop()


def operator_identity(env: LocalEnvironment) -> str:
    """Who the operator processes are to the API server."""
    out = env.cluster.kubectl("--kubeconfig", str(env.operator_kubeconfig()), "auth", "whoami", "-o", "json")
    return json.loads(out)["status"]["userInfo"]["username"]


def service_account_user(account: str) -> str:
    return f"system:serviceaccount:{OPERATOR_NAMESPACE}:{account}"


def run_example_to_completion(env: LocalEnvironment, namespace: str) -> list[str]:
    """Apply the example in ``namespace`` and follow it with the status command's watch until it
    is done; returns the tables shown. Fails with the last tables and the operator's log."""
    cluster = env.cluster
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("create", "serviceaccount", "default", "-n", namespace, check=False)
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    tables: list[str] = []
    stop = threading.Event()
    timer = threading.Timer(EXAMPLE_TIMEOUT, stop.set)
    timer.start()
    try:
        views = command.watch(cluster.admin_client(), namespace, "hello-world",
                              lambda shown, *_: tables.append(render(shown)), stop=stop, until=finished)
    finally:
        timer.cancel()
        stop.set()  # ends the watch's stop thread
    if not views or views[0].phase != "Completed":
        logs = "\n".join(op.logs(60) for op in env.operators)
        raise AssertionError(f"the example did not complete within {EXAMPLE_TIMEOUT:.0f} s:\n"
                             + "\n\n".join(tables[-3:]) + f"\n--- operator log\n{logs}")
    return tables


def finished(views: list[EnsembleView]) -> bool:
    return bool(views) and views[0].phase in DONE
