"""FluxBackend in a real Flux instance (hack/build-flux.sh's flux-core 0.88.0), where its unit
tests use a fake of the bindings: the counts it reports, and a BackendError (an error reply),
not an escaping OSError (a failed RPC and a traceback), from a broker whose rc1 has not loaded
its modules, as the status sidecar meets it at start (it starts once the socket exists)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim import fluxmembers
from tests.conftest import ROOT
from tests.integration.test_real_members import ensure_flux_build

pytestmark = pytest.mark.integration

# Runs as the initial program of `flux start`, with the bindings on PYTHONPATH.
COUNTS = """
import json, subprocess
from controller.member.flux_backend import FluxBackend
from controller.member.jobgroups import load_job_groups

backend = FluxBackend(load_job_groups("jobs:\\n- {name: hold, command: sleep 300, nodes: 2}\\nrules: []\\n"))
ids = backend.submit("hold", 3)
subprocess.run(["flux", "job", "wait-event", str(ids[0]), "start"], check=True)
listed = subprocess.run(["flux", "jobs", "-A", "-a", "-no", "{state}"], check=True, capture_output=True,
                        text=True).stdout.split()
status = backend.status()
subprocess.run(["flux", "cancel", "--all", "--quiet"])
print(json.dumps({"status": status, "listed": listed}))
"""
NOT_LOADED = """
import json
from controller.member.backend import BackendError
from controller.member.flux_backend import FluxBackend
try:
    print(json.dumps({"status": FluxBackend({}).status()}))
except BackendError as err:
    print(json.dumps({"error": str(err)}))
"""


def run_in_flux(build: fluxmembers.FluxBuild, tmp_path: Path, program: str, *options: str) -> dict:
    (tmp_path / "program.py").write_text(program)
    env = {"PATH": f"{build.prefix / 'bin'}:{fluxmembers.STANDARD_PATH}", "HOME": str(Path.home()),
           "PYTHONPATH": f"{ROOT}:{build.bindings()}", "LANG": "C.UTF-8"}
    done = subprocess.run([str(build.flux), "start", *options, sys.executable, str(tmp_path / "program.py")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_status_counts_what_flux_jobs_lists(tmp_path: Path) -> None:
    result = run_in_flux(ensure_flux_build(), tmp_path, COUNTS, "--test-size=2")
    status, listed = result["status"], result["listed"]
    # Each job takes a core on both nodes (sched-simple packs them by core): as many run as the
    # cores allow, the rest wait, and the counts are those `flux jobs` lists.
    assert status["queue"]["run"] == listed.count("RUN") >= 1
    assert status["queue"]["sched"] == listed.count("SCHED")
    assert status["queue"]["run"] + status["queue"]["sched"] == 3
    waiting = status["queue"]["sched"]
    assert status["waiting"] == ({"2": waiting} if waiting else {}) and len(status["nextJobs"]) == waiting
    assert status["nodes"]["node_up_count"] == 2
    assert status["nodes"]["node_cores_up"] == 2 * (os.cpu_count() or 1)


def test_a_broker_without_its_modules_gets_an_error_reply(tmp_path: Path) -> None:
    result = run_in_flux(ensure_flux_build(), tmp_path, NOT_LOADED, "-Sbroker.rc1_path=", "-Sbroker.rc3_path=")
    assert "No service matching" in result["error"]
