"""The pod process runner on a real API server: a killed ensemble service comes back on its
pod IP, and the pod's status counts the restart as a kubelet's would."""
from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from controller.kube.resources import PODS
from controller.runtime import Manager
from localcluster import free_port
from sim import podrunner
from sim.restarts import BackoffPolicy
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

POD_IP = "127.0.0.1"
SCALED_BACKOFF = BackoffPolicy(initial=0.2, cap=1.0, reset_after=60.0)


@pytest.fixture
def runner(kube_cluster, kube, tmp_path: Path) -> Iterator[podrunner.PodProcessRunner]:
    manager = Manager(kube, metrics_port=None, health_port=None)
    runner = podrunner.setup(manager, server=kube_cluster.server, ca_file=kube_cluster.ca_file,
                             workdir=tmp_path, backoff=SCALED_BACKOFF)
    thread = threading.Thread(target=manager.start, name="pod-runner", daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        manager.stop()
        thread.join(30)
        runner.stop()


def running_service_pod(kube, namespace: str, port: int, ip: str = POD_IP) -> str:
    """A Deployment-like pod (restartPolicy defaults to Always), Running on ``ip`` as kwok makes it."""
    command = ["ensemble-operator", "service", "--kubernetes", "--host", "0.0.0.0", "--port", str(port),
               "--ensemble", "e", "--namespace", namespace, "--metrics-port", "0"]
    kube.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "e-service"},
                       "spec": {"containers": [{"name": podrunner.SERVICE_CONTAINER, "image": "img",
                                                "command": command}]}}, namespace)
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "containerStatuses": [{"name": podrunner.SERVICE_CONTAINER, "image": "img", "imageID": "",
                                     "ready": True, "started": True, "restartCount": 0,
                                     "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    kube.patch(PODS, "e-service", {"status": status}, namespace=namespace, subresource="status")
    return "e-service"


def listening(port: int, ip: str = POD_IP) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((ip, port)) == 0


def test_a_killed_service_comes_back_with_restart_count_1(runner, kube, namespace: str) -> None:
    port = free_port()
    name = running_service_pod(kube, namespace, port)
    key = f"{namespace}/{name}"
    first = wait_for(lambda: runner.processes.get(key), 30, "the service process to start")
    wait_for(lambda: listening(port), 30, "the service to listen on its pod IP")
    killed = first.proc.pid
    first.proc.send_signal(signal.SIGKILL)

    def restarted_status() -> dict | None:
        statuses = kube.get(PODS, name, namespace)["status"]["containerStatuses"]
        return statuses[0] if statuses[0]["restartCount"] == 1 and "running" in statuses[0]["state"] else None

    status = wait_for(restarted_status, 30, "the pod status to count one restart")
    assert status["lastState"]["terminated"]["exitCode"] == 137 and status["ready"] is True
    assert first.proc.pid != killed
    wait_for(lambda: listening(port), 30, "the restarted service to listen on the same pod IP")


def test_a_pod_given_another_ip_gets_its_process_restarted_there(runner, kube, namespace: str) -> None:
    # kwok renders a new pod's IP once per pod-running stage it applies; two racing events of
    # one pod give it a second IP after its process started on the first.
    port, moved_to = free_port(), "127.0.0.2"
    name = running_service_pod(kube, namespace, port)
    key = f"{namespace}/{name}"
    first = wait_for(lambda: runner.processes.get(key), 30, "the service process to start")
    wait_for(lambda: listening(port), 30, "the service to listen on its first pod IP")
    kube.patch(PODS, name, {"status": {"podIP": moved_to, "podIPs": [{"ip": moved_to}]}}, namespace=namespace,
               subresource="status")
    second = wait_for(lambda: (p := runner.processes.get(key)) is not None and p is not first and p, 30,
                      "the service process to start again")
    assert second.pod_ip == moved_to and first.proc.poll() is not None
    wait_for(lambda: listening(port, moved_to), 30, "the service to listen on the new pod IP")
    assert not listening(port)
