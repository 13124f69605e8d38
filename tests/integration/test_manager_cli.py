"""`ensemble-operator run` end to end: flags -> Manager -> reconcilers.setup -> clean exit."""
from __future__ import annotations

import signal
import sys
import threading
import types

import pytest

from controller import cli
from controller.kube.resources import CONFIGMAPS
from controller.runtime import ControllerBuilder, Request, Result

pytestmark = pytest.mark.integration


@pytest.fixture
def restore_process_state():
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_run_builds_the_manager_from_flags_and_exits_zero_on_stop(
        kube_cluster, kube, namespace, monkeypatch, restore_process_state):
    kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "hello", "namespace": namespace}}, namespace)
    seen: dict = {}
    reconciled = threading.Event()

    class Once:
        def reconcile(self, request: Request) -> Result:
            if request == Request(namespace, "hello"):
                reconciled.set()
            return Result()

    def setup(manager, args) -> None:
        seen.update(namespaces=manager.namespaces, workers=args.workers,
                    leader=manager.elector is not None)
        ControllerBuilder(manager).for_(CONFIGMAPS).with_workers(args.workers).complete(Once())

        def stop_after_first_reconcile() -> None:
            reconciled.wait(30)
            manager.stop()

        threading.Thread(target=stop_after_first_reconcile, daemon=True).start()

    module = types.ModuleType("controller.reconcilers")
    module.setup = setup
    monkeypatch.setitem(sys.modules, "controller.reconcilers", module)
    status = cli.main(["run", "--kubeconfig", kube_cluster.kubeconfig, "--namespaces", namespace,
                       "--workers", "2", "--no-leader-elect", "--metrics-bind-address", "0",
                       "--health-probe-bind-address", "127.0.0.1:0", "--log-level", "error"])
    assert status == 0 and reconciled.is_set()
    assert seen == {"namespaces": [namespace], "workers": 2, "leader": False}
