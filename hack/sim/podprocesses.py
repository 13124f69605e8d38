"""The pod process runner's processes: at most one per pod, restarted as a kubelet would.

Kept apart from the runner's reconcile so that starting, restarting and stopping can be
tested with a fake clock, and so that one lock decides between a restart and a stop: a
pod stopped while its process waits out a backoff (or while the runner shuts down) is
never started again, and no process is left behind.
"""
from __future__ import annotations

import logging
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controller.clock import Clock
from localcluster import dying_with_parent, stop_process
from sim.podnetwork import PodNetwork
from sim.restarts import BackoffPolicy, CrashLoopBackoff, restarts_after

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10.0


@dataclass
class RunningProcess:
    role: str
    pod_ip: str
    proc: subprocess.Popen
    log_path: Path
    argv: list[str]
    backoff: CrashLoopBackoff
    started_at: float
    restart_policy: str = "Never"
    container: str = ""
    restarts: int = 0
    last_exit: dict[str, Any] = field(default_factory=dict)
    minicluster: str = ""
    nodes: int = 0
    exited: threading.Event = field(default_factory=threading.Event)


class ProcessEvents(Protocol):
    def exited(self, key: str, running: RunningProcess, returncode: int, restart_in: float | None) -> None:
        """``running`` ended (``returncode`` as Popen gives it); it starts again in
        ``restart_in`` seconds, or never when None. Not called for a stopped pod."""

    def restarted(self, key: str, running: RunningProcess) -> None:
        """``running`` runs again (a new ``proc``, ``restarts`` counted)."""


class PodProcesses:
    def __init__(self, workdir: Path, events: ProcessEvents, *, clock: Clock,
                 backoff: BackoffPolicy = BackoffPolicy(), network: PodNetwork | None = None) -> None:
        self.workdir = workdir
        self.network = network  # None: processes connect from whatever address the kernel picks
        self.events = events
        self.clock = clock
        self.backoff = backoff
        self._processes: dict[str, RunningProcess] = {}
        self._changed = threading.Condition()   # guards _processes and _stopped; notified on stops
        self._stopped = False
        # Every process is started on this one thread, which lives until stop_all: PR_SET_PDEATHSIG
        # kills a process when the thread that started it ends, and reconcile workers end first.
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pod-process-launcher")

    def get(self, key: str) -> RunningProcess | None:
        with self._changed:
            return self._processes.get(key)

    def start(self, key: str, role: str, ip: str, argv: list[str], *, restart_policy: str = "Never",
              **extra: Any) -> RunningProcess | None:
        """Start the process of pod ``key``; None once the runner is stopped."""
        log_path = self.workdir / f"{key.replace('/', '_')}.log"
        with self._changed:
            if self._stopped:
                return None
            running = RunningProcess(role=role, pod_ip=ip, proc=self._launch(argv, ip, log_path), log_path=log_path,
                                     argv=argv, backoff=CrashLoopBackoff(self.backoff),
                                     started_at=self.clock.now(), restart_policy=restart_policy, **extra)
            self._processes[key] = running
        threading.Thread(target=self._supervise, args=(key, running), name=f"wait-{key}", daemon=True).start()
        log.info("started %s for pod %s on %s: %s", role, key, ip, " ".join(argv))
        return running

    def stop(self, key: str) -> None:
        """End pod ``key``'s process; a restart it was waiting for is called off."""
        with self._changed:
            running = self._processes.pop(key, None)
            self._changed.notify_all()
        # Out of the map, nothing starts it again, so this proc is the last one.
        if running is not None:
            stop_process(running.proc, STOP_TIMEOUT_SECONDS)

    def stop_all(self) -> None:
        with self._changed:
            self._stopped = True
            keys = list(self._processes)
        for key in keys:
            self.stop(key)
        self._launcher.shutdown()

    def environment(self, ip: str) -> dict[str, str]:
        """The pod network's variables for a process of the pod at ``ip`` (none without one);
        a runtime that clears the environment (``env -i``) passes them on itself."""
        return self.network.environment(ip) if self.network is not None else {}

    def _launch(self, argv: list[str], ip: str, log_path: Path) -> subprocess.Popen:
        return self._launcher.submit(self._popen, argv, {**os.environ, **self.environment(ip)}, log_path).result()

    @staticmethod
    def _popen(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as out:
            # Gone with the runner even when it is killed, and only then: the launcher thread
            # outlives every process it starts.
            return subprocess.Popen(dying_with_parent(argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, process_group=0, env=env)

    def _current(self, key: str, running: RunningProcess) -> bool:
        return self._processes.get(key) is running and not self._stopped

    def _supervise(self, key: str, running: RunningProcess) -> None:
        while True:
            returncode = running.proc.wait()
            ran_for = self.clock.now() - running.started_at
            running.exited.set()
            log.info("%s of pod %s exited with %d", running.role, key, returncode)
            with self._changed:
                if not self._current(key, running):
                    return
            restart_in = (running.backoff.delay_after(ran_for)
                          if restarts_after(running.restart_policy, returncode) else None)
            try:
                self.events.exited(key, running, returncode, restart_in)
            except Exception:  # a failed report must not cost the restart
                log.exception("reporting the exit of pod %s failed", key)
            if restart_in is None or not self._restart_after(key, running, restart_in):
                return
            try:
                self.events.restarted(key, running)
            except Exception:
                log.exception("reporting the restart of pod %s failed", key)

    def _restart_after(self, key: str, running: RunningProcess, delay: float) -> bool:
        """Start ``running`` again ``delay`` seconds from now, unless its pod or the runner is
        stopped first; the start happens under the lock a stop takes, so they cannot cross."""
        deadline = self.clock.now() + delay
        with self._changed:
            while self._current(key, running):
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    running.proc = self._launch(running.argv, running.pod_ip, running.log_path)
                    running.restarts += 1
                    running.started_at = self.clock.now()
                    running.exited.clear()
                    log.info("restarted %s of pod %s (restart %d)", running.role, key, running.restarts)
                    return True
                self.clock.wait(self._changed, remaining)
        return False
