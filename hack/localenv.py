"""The whole system on the local control plane: what `make run` and the local e2e suite use.

- the control plane from ``localcluster`` with kube-controller-manager, kube-scheduler
  and kwok nodes (pod IPs in 127.64.0.0/16);
- the Ensemble CRD, the MiniCluster CRD and ``manifests/`` (RBAC), as a user installs them
  (or another install of the operator: ``operator_install``, e.g. the Helm chart);
- the operator (``ensemble-operator run``) as processes authenticated with a token of the
  install's ServiceAccount, so the RBAC they run under is the one we ship;
- the Flux Operator: its real manager (``hack/fluxoperator.py``) where
  ``hack/build-flux-operator.sh`` built it, else its simulator (``ENSEMBLE_FLUX_OPERATOR``
  chooses; ``flux_operator_runtime`` says which ran);
- on this project's own runtime, the pod process runner (the ensemble service and the
  members on their pod IPs) and, where the real one is not built, the Flux Operator simulator.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

HACK = Path(__file__).resolve().parent
ROOT = HACK.parent
sys.path.insert(0, str(HACK))

from credentials import write_token_kubeconfig  # noqa: E402
from fluxoperator import REAL, SWITCH, FluxOperatorProcess, choose_runtime  # noqa: E402
from localcluster import (STATE_DIR, ClusterError, LocalCluster, dying_with_parent, free_port,  # noqa: E402
                          log_tail, stop_process)

if TYPE_CHECKING:  # imported for real in start_simulators
    from controller.runtime import Manager
    from sim.podrunner import PodProcessRunner

log = logging.getLogger("localenv")

OPERATOR_NAMESPACE = "ensemble-operator-system"
OPERATOR_SERVICE_ACCOUNT = "ensemble-operator"
MANIFESTS = ("namespace.yaml", "crd.yaml", "service_account.yaml", "cluster_role.yaml",
             "cluster_role_binding.yaml", "leader_election_role.yaml", "leader_election_role_binding.yaml")


@dataclass
class OperatorProcess:
    identity: str
    proc: subprocess.Popen
    health_port: int
    metrics_port: int
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Send ``sig``; a process still running after ``timeout`` is killed (a hung shutdown
        must not leave it behind, nor stop the teardown of everything after it)."""
        stop_process(self.proc, timeout, sig)

    def logs(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


@dataclass
class LocalEnvironment:
    cluster: LocalCluster
    workdir: Path
    speed: float = 10.0
    operators: list[OperatorProcess] = field(default_factory=list)
    flux_operator_runtime: str | None = None
    """``real`` or ``simulated``: which Flux Operator runs (None before start)."""
    members: str | None = None
    """The member runtime asked for (``real``/``simulated``); None: ``$ENSEMBLE_MEMBERS``, else
    what can run here (``member_runtime`` says which runs)."""
    operator_install: Callable[[LocalCluster], None] | None = None
    """Installs the operator (CRD, namespace, RBAC...) instead of ``manifests/``' RBAC files."""
    operator_account: str = OPERATOR_SERVICE_ACCOUNT
    """The ServiceAccount (in ``OPERATOR_NAMESPACE``) whose token the operator processes hold."""
    _flux_operator: FluxOperatorProcess | None = None
    _sim_manager: Manager | None = None
    _sim_thread: threading.Thread | None = None
    _runner: PodProcessRunner | None = None

    @classmethod
    def start(cls, *, detached: bool = False, speed: float = 10.0, members: str | None = None,
              operator_install: Callable[[LocalCluster], None] | None = None,
              operator_account: str = OPERATOR_SERVICE_ACCOUNT) -> "LocalEnvironment":
        """Everything, on a new cluster; ``detached`` keeps the cluster after this process
        (``make cluster-down`` stops it), as ``make run`` does; the others as the fields."""
        cluster = LocalCluster.launch(controller_manager=True, kwok=True, detached=detached,
                                      data_dir=STATE_DIR / "data" if detached else None)
        if detached:
            cluster.save_state(STATE_DIR)
        env = cls(cluster=cluster, workdir=cluster.data_dir / "localenv", speed=speed, members=members,
                  operator_install=operator_install, operator_account=operator_account)
        env.workdir.mkdir(parents=True, exist_ok=True)
        try:
            env.install()
            env.start_flux_operator()
            env.start_simulators()
            env.start_operator()
        except BaseException:
            env.stop(cluster_too=not detached)
            raise
        return env

    # ---- install ----------------------------------------------------------------------
    def install(self) -> None:
        self.cluster.kubectl("apply", "--server-side", "-f", str(HACK / "crds" / "minicluster.yaml"))
        if self.operator_install is not None:
            self.operator_install(self.cluster)
        for name in MANIFESTS if self.operator_install is None else ():
            self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "manifests" / name))
        for crd in ("miniclusters.flux-framework.org", "ensembles.ensemble.flux-framework.org"):
            self.cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")

    # ---- the Flux Operator ----------------------------------------------------------------
    def start_flux_operator(self) -> None:
        """The real manager, or (``simulated``) nothing here: start_simulators then runs the
        simulator. ``$ENSEMBLE_FLUX_OPERATOR`` decides, by default real when it is built."""
        runtime, why = choose_runtime(os.environ.get(SWITCH))
        log.info("Flux Operator: %s (%s)", runtime, why)
        if runtime == REAL:
            self._flux_operator = FluxOperatorProcess.start(self.cluster, self.workdir / "flux-operator.log")
        self.flux_operator_runtime = runtime

    def _stop_flux_operator(self) -> None:
        if self._flux_operator is not None:
            self._flux_operator.stop()

    # ---- simulators ---------------------------------------------------------------------
    def start_simulators(self) -> None:
        from controller.runtime import Manager
        from sim import fluxmembers, fluxoperator, podrunner
        manager = Manager(self.cluster.admin_client(), metrics_port=None, health_port=None)
        if self.flux_operator_runtime != REAL:
            fluxoperator.setup(manager)
        self._runner = podrunner.setup(manager, server=self.cluster.server, ca_file=self.cluster.ca_file,
                                       workdir=self.workdir / "pods", speed=self.speed,
                                       members=self.members or fluxmembers.default_member_runtime())
        log.info("member runtime: %s", self._runner.members)
        self._sim_manager = manager
        self._sim_thread = threading.Thread(target=manager.start, name="simulators", daemon=True)
        self._sim_thread.start()

    def restart_simulators(self, members: str | None = None) -> None:
        """Stop the simulators and the pod processes, then start them with the member runtime
        ``members``: one cluster serves both runtimes (bench/bench_members.py compares them)."""
        self._stop_simulators()
        if self._runner is not None:
            self._runner.stop()
        self.members = members
        self.start_simulators()

    @property
    def member_runtime(self) -> str | None:
        """``real`` or ``simulated``: how the pod process runner runs members (None before start)."""
        return self._runner.members if self._runner is not None else None

    def member_flux_uri(self, namespace: str, minicluster: str) -> str | None:
        """The URI of a real member's running lead broker, reachable from this machine (tests
        query its Flux instance with it); None with simulated members or no running lead."""
        real = self._runner.real if self._runner is not None else None
        return real.lead_uri(namespace, minicluster) if real is not None else None

    def pod_pids(self, namespace: str, pod: str) -> list[int]:
        """The PIDs of the live processes the pod runner started for a pod's containers (a real
        member's broker and status sidecar, a simulated member, a service), each the root of
        its process tree: what a benchmark adds up as the pod's memory."""
        if self._runner is None:
            return []
        from sim.realmembers import status_key
        key = f"{namespace}/{pod}"
        running = (self._runner.processes.get(k) for k in (key, status_key(key)))
        return [r.proc.pid for r in running if r is not None and r.proc.poll() is None]

    # ---- the operator -------------------------------------------------------------------
    def operator_kubeconfig(self) -> Path:
        path = self.workdir / "operator.kubeconfig"
        if path.exists():
            return path
        token = self.cluster.kubectl("create", "token", self.operator_account, "-n", OPERATOR_NAMESPACE,
                                     "--duration=12h").strip()
        write_token_kubeconfig(path, self.cluster.server, self.cluster.ca_file, token, "operator")
        return path

    def start_operator(self, *, leader_elect: bool = True, identity: str | None = None) -> OperatorProcess:
        identity = identity or f"operator-{len(self.operators)}"
        health, metrics = free_port(), free_port()
        log_path = self.workdir / f"{identity}.log"
        env = dict(os.environ, POD_NAME=identity, POD_NAMESPACE=OPERATOR_NAMESPACE)
        argv = [sys.executable, "-m", "controller", "run", "--kubeconfig", str(self.operator_kubeconfig()),
                "--metrics-bind-address", f"127.0.0.1:{metrics}",
                "--health-probe-bind-address", f"127.0.0.1:{health}",
                "--leader-election-namespace", OPERATOR_NAMESPACE,
                "--leader-elect" if leader_elect else "--no-leader-elect"]
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(dying_with_parent(argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=ROOT, process_group=0)
        operator = OperatorProcess(identity, proc, health, metrics, log_path)
        self.operators.append(operator)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not operator.alive():
                raise ClusterError(f"operator {identity} exited with {proc.returncode}:\n{operator.logs()}")
            if _http_ok(f"http://127.0.0.1:{health}/readyz"):
                return operator
            time.sleep(0.2)
        raise ClusterError(f"operator {identity} not ready after 60s:\n{operator.logs()}")

    # ---- teardown -------------------------------------------------------------------------
    def stop(self, cluster_too: bool = True) -> None:
        """Stop everything, each step even when an earlier one failed (the first error is raised)."""
        steps: list[Callable[[], None]] = [partial(op.kill, signal.SIGTERM) for op in self.operators]
        steps.append(self._stop_flux_operator)
        steps.append(self._stop_simulators)
        if self._runner is not None:
            steps.append(self._runner.stop)
        if cluster_too:
            steps.append(self.cluster.stop)
        first: BaseException | None = None
        for step in steps:
            try:
                step()
            except BaseException as err:  # keep stopping; raise the first at the end
                first = first or err
        if first is not None:
            raise first

    def _stop_simulators(self) -> None:
        if self._sim_manager is not None:
            self._sim_manager.stop()
            if self._sim_thread is not None:
                self._sim_thread.join(30)


def _http_ok(url: str) -> bool:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
