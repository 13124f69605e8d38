"""`ensemble-operator status` and `kubectl ensemble` on a real API server: the table and JSON of
what an Ensemble's status says, and --watch following its changes.

The status is written through the status subresource as the operator writes it; the
operator's own progress is followed by the same command in tests/integration/test_install.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from controller.kube.resources import ENSEMBLES
from controller.statusview import command
from tests.conftest import ROOT
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ENSEMBLE = {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": "watched"},
            "spec": {"members": [{"minicluster": {"spec": {"size": 1, "containers": [{"image": "busybox:1"}]}},
                                  "ensemble": "jobs: [{name: a, command: 'true'}]\nrules: []\n"}]}}


def member_status(phase: str, run: int, done: int) -> dict:
    return {"phase": phase, "members": [{
        "name": "watched-0", "phase": phase, "desiredSize": 2, "currentSize": 2,
        "leadBroker": {"pod": "watched-0-0", "ip": "127.64.0.9"},
        "lastPoll": {"queue": {"new": 0, "sched": 0, "run": run, "inactive": done},
                     "nodes": {"node_up_count": 2, "node_free_count": 2 - run}}}],
        "memberActions": [{"name": "watched-0", "actionCounts": {"grow": 1}, "lastActionTimes": {},
                           "lastAction": {"time": "2026-12-07T02:15:04Z", "kind": "grow", "amount": 1,
                                          "reason": "jobs waiting"}}]}


def set_status(kube, namespace: str, status: dict) -> None:
    kube.patch(ENSEMBLES, "watched", {"status": status}, namespace=namespace, subresource="status")


@pytest.fixture
def watched(kube, ensemble_crd, namespace) -> str:
    kube.create(ENSEMBLES, ENSEMBLE, namespace)
    set_status(kube, namespace, member_status("Running", 1, 3))
    return namespace


def status_command(kube_cluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "controller", "status", "--kubeconfig", kube_cluster.kubeconfig, *args]


def test_status_prints_the_members_table_of_an_ensemble(kube_cluster, watched) -> None:
    done = subprocess.run(status_command(kube_cluster, "-n", watched, "watched"), capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    heading, header, row = done.stdout.splitlines()
    assert heading == f"Ensemble {watched}/watched: phase Running"
    assert header.split()[:2] == ["MEMBER", "PHASE"]
    assert row.split() == ["watched-0", "Running", "2", "2", "0/0/1/3", "2/1", "127.64.0.9", "grow", "+1",
                           "02:15:04"]


def test_status_lists_a_namespace_or_says_it_is_empty_and_names_a_missing_ensemble(
        kube_cluster, watched, namespace) -> None:
    listed = subprocess.run(status_command(kube_cluster, "-A", "-o", "json"), capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert listed.returncode == 0, listed.stderr
    names = {(e["namespace"], e["name"]) for e in json.loads(listed.stdout)["ensembles"]}
    assert (watched, "watched") in names
    kube_cluster.kubectl("create", "namespace", f"{namespace}-empty")
    try:
        empty = subprocess.run(status_command(kube_cluster, "-n", f"{namespace}-empty"), capture_output=True,
                               text=True, cwd=ROOT, timeout=60)
        assert (empty.returncode, empty.stdout.strip()) == (0, f"No Ensembles found in namespace {namespace}-empty.")
    finally:
        kube_cluster.kubectl("delete", "namespace", f"{namespace}-empty", "--wait=false", check=False)
    missing = subprocess.run(status_command(kube_cluster, "-n", watched, "nope"), capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
    assert missing.returncode == 1 and f"Ensemble {watched}/nope not found" in missing.stderr


def test_kubectl_finds_the_plugin_and_it_prints_the_same_json(kube_cluster, watched) -> None:
    plugin = Path(sys.executable).parent / "kubectl-ensemble"
    assert plugin.is_file(), "pip install -e . installs the kubectl-ensemble console script"
    env = dict(os.environ, PATH=f"{plugin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               KUBECONFIG=kube_cluster.kubeconfig)
    through_kubectl = subprocess.run([str(kube_cluster.bin_dir / "kubectl"), "ensemble", "status", "watched",
                                      "-n", watched, "-o", "json"], capture_output=True, text=True, env=env,
                                     timeout=60)
    assert through_kubectl.returncode == 0, through_kubectl.stderr
    direct = subprocess.run(status_command(kube_cluster, "watched", "-n", watched, "-o", "json"),
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert json.loads(through_kubectl.stdout) == json.loads(direct.stdout)
    (member,) = json.loads(direct.stdout)["ensembles"][0]["members"]
    assert member["queue"] == {"new": 0, "sched": 0, "run": 1, "done": 3}


def test_watch_prints_each_change_until_interrupted(kube_cluster, kube, watched) -> None:
    proc = subprocess.Popen(status_command(kube_cluster, "-n", watched, "watched", "--watch", "-o", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    phases: list[str] = []
    reader = threading.Thread(target=lambda: [phases.append(json.loads(line)["ensembles"][0]["phase"])
                                              for line in proc.stdout or ()], daemon=True)
    reader.start()
    try:
        wait_for(lambda: phases == ["Running"], 60, "the first view")
        set_status(kube, watched, member_status("Running", 0, 4))
        wait_for(lambda: len(phases) == 2, 30, "the view after the queue changed")
        set_status(kube, watched, member_status("Completed", 0, 4))
        wait_for(lambda: phases[-1:] == ["Completed"], 30, "the Completed view")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert phases == ["Running", "Running", "Completed"]


def test_watch_ends_when_asked_and_relists_nothing_it_already_showed(kube, watched) -> None:
    shown: list[list] = []
    stop = threading.Event()

    def show(views, namespace, name) -> None:
        shown.append(views)
        if len(shown) == 1:
            kube.patch(ENSEMBLES, "watched", {"metadata": {"labels": {"touched": "yes"}}}, namespace=watched)
            set_status(kube, watched, member_status("Failed", 0, 4))

    try:
        views = command.watch(kube, watched, "watched", show, stop=stop,
                              until=lambda views: views[0].phase in ("Completed", "Failed"))
    finally:
        stop.set()
    assert [v[0].phase for v in shown] == ["Running", "Failed"]  # the label change alters no view
    assert views == shown[-1]
