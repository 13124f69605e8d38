"""A kubelet's container restarts: whether, after how long, and how the pod status shows them.

The pod process runner plays kubelet on the local cluster. A container that exits under
``restartPolicy: Always`` must come back as it would on a node, after a backoff that
grows with each crash so a container failing at start does not spin, and with the
``restartCount`` and last exit that ``kubectl get pods`` and tests read.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from controller.backoff import exponential


@dataclass(frozen=True)
class BackoffPolicy:
    """A kubelet's crash-loop backoff: ``initial`` doubling up to ``cap``; a container that ran
    ``reset_after`` seconds before exiting starts again from ``initial``."""

    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0


class CrashLoopBackoff:
    """The waits before the successive restarts of one container: none after its first crash (a
    kubelet restarts it at once, as after a crash that follows a ``reset_after`` run), then the
    policy's backoff."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self._crashes = 0  # since the last reset

    def delay_after(self, ran_for: float) -> float:
        """The wait before restarting a container that exited after running ``ran_for`` seconds."""
        if ran_for >= self.policy.reset_after:
            self._crashes = 0
        delay = 0.0 if self._crashes == 0 else exponential(self.policy.initial, self._crashes - 1, self.policy.cap)
        self._crashes += 1
        return delay


def restarts_after(restart_policy: str, exit_code: int) -> bool:
    """Whether a kubelet starts the container again; ``Never`` (a pod's end) keeps it exited."""
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


def container_exit_code(returncode: int) -> int:
    """A process killed by signal N exits as 128 + N in a container, as its runtime reports it."""
    return 128 - returncode if returncode < 0 else returncode


def timestamp(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def terminated(exit_code: int, started_at: str, finished_at: str) -> dict[str, Any]:
    return {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                           "startedAt": started_at, "finishedAt": finished_at}}


def waiting_to_restart(base: dict[str, Any], *, restart_count: int, last_exit: dict[str, Any],
                       delay: float) -> dict[str, Any]:
    """``base`` (a containerStatuses entry) while the container waits out its backoff."""
    return {**base, "ready": False, "started": False, "restartCount": restart_count,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": f"back-off {delay:g}s restarting failed container"}},
            "lastState": last_exit}


def exited_to_restart(base: dict[str, Any], *, restart_count: int, last_exit: dict[str, Any],
                      previous_exit: dict[str, Any]) -> dict[str, Any]:
    """``base`` between an exit and its immediate restart: the exit is the state (``Error`` or
    ``Completed`` in kubectl), ``lastState`` the exit before."""
    return {**base, "ready": False, "started": False, "restartCount": restart_count,
            "state": last_exit, "lastState": previous_exit}


def running_again(base: dict[str, Any], *, restart_count: int, last_exit: dict[str, Any],
                  started_at: str) -> dict[str, Any]:
    """``base`` once the container runs again; ``lastState`` keeps the exit before."""
    return {**base, "ready": True, "started": True, "restartCount": restart_count,
            "state": {"running": {"startedAt": started_at}}, "lastState": last_exit}
