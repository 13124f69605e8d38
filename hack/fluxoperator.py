"""The real Flux Operator's manager as a local process, for the local system and its tests.

The MiniClusters our operator writes must work with the Flux Operator itself: a simulator
written beside our code shares its misunderstandings (it accepted a Job the real one could
not create). ``hack/build-flux-operator.sh`` builds the manager of the commit whose CRD
``hack/crds/`` vendors; this module starts it against a :class:`LocalCluster` with the
cluster's admin kubeconfig (a real install grants it about as much), its probes on a loopback
port, no metrics and no leader election, and stops it. ``choose_runtime`` decides between it
and the simulator (``hack/sim/fluxoperator.py``), which stays for machines without Go.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from localcluster import CACHE_ROOT, ClusterError, LocalCluster, dying_with_parent, free_port, log_tail, stop_process

log = logging.getLogger("fluxoperator")

HACK = Path(__file__).resolve().parent
BUILD_SCRIPT = HACK / "build-flux-operator.sh"
COMMIT = os.environ.get("FLUX_OPERATOR_COMMIT", "0d75cef855dee5351d68e32ec139a70e892b5268")
MANAGER = CACHE_ROOT / "flux-operator" / COMMIT[:8] / "bin" / "manager"

SWITCH = "ENSEMBLE_FLUX_OPERATOR"
REAL, SIMULATED = "real", "simulated"


class FluxOperatorNotBuilt(ClusterError):
    """The manager binary is missing; the message says how to build it."""


def not_built_message(binary: Path = MANAGER) -> str:
    return (f"the Flux Operator's manager is not built ({binary} is missing): run "
            f"`bash hack/build-flux-operator.sh` (needs Go; `make flux-build` runs it)")


def choose_runtime(requested: str | None, binary: Path = MANAGER) -> tuple[str, str]:
    """``(runtime, why)`` from the ``ENSEMBLE_FLUX_OPERATOR`` value and whether the manager is
    built: unset means real when built, else simulated. Asking for ``real`` without the build
    fails (a silent fallback would let a run claim what it never ran)."""
    value = (requested or "").strip().lower()
    if value not in ("", REAL, SIMULATED):
        raise ClusterError(f"{SWITCH}={requested!r}: expected {REAL!r} or {SIMULATED!r}")
    if value == SIMULATED:
        return SIMULATED, f"{SWITCH}={SIMULATED}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return REAL, f"{binary}" + (f" ({SWITCH}={REAL})" if value else "")
    if value == REAL:
        raise FluxOperatorNotBuilt(f"{SWITCH}={REAL}, but {not_built_message(binary)}")
    return SIMULATED, not_built_message(binary) + "; using the simulator (hack/sim/fluxoperator.py)"


@dataclass
class FluxOperatorProcess:
    """A running manager; :meth:`start` returns it once its readiness probe answers."""

    proc: subprocess.Popen
    health_port: int
    log_path: Path

    @classmethod
    def start(cls, cluster: LocalCluster, log_path: Path, *, binary: Path = MANAGER,
              timeout: float = 60) -> "FluxOperatorProcess":
        if not binary.is_file():
            raise FluxOperatorNotBuilt(not_built_message(binary))
        health = free_port()
        argv = [str(binary), f"--kubeconfig={cluster.kubeconfig}", "--metrics-bind-address=0",
                f"--health-probe-bind-address=127.0.0.1:{health}", "--leader-elect=false",
                "--zap-devel=false", "--zap-time-encoding=iso8601"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(dying_with_parent(argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, process_group=0)
        operator = cls(proc, health, log_path)
        try:
            operator._wait_ready(timeout)
        except BaseException:
            operator.stop()
            raise
        log.info("Flux Operator manager ready in %.1fs (log %s)", time.monotonic() - started, log_path)
        return operator

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ClusterError(f"the Flux Operator exited with {self.proc.returncode}:\n{self.logs()}")
            if _http_ok(f"http://127.0.0.1:{self.health_port}/readyz"):
                return
            time.sleep(0.2)
        raise ClusterError(f"the Flux Operator was not ready after {timeout:.0f}s:\n{self.logs()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (the manager shuts down its controllers), SIGKILL after ``timeout``."""
        stop_process(self.proc, timeout)

    def logs(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> "FluxOperatorProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
