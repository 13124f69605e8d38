"""The manager's side of leader election: who it is, where its Lease lives, and the elector's thread.

The Lease protocol itself (acquire, renew, release) is ``leader.py``'s.
"""
from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class LeaderElectionLost(RuntimeError):
    """The lease could not be renewed; the process must exit so another replica leads."""


class Elector(Protocol):
    """What the manager needs of ``leader.LeaderElector`` (a fake one in unit tests)."""

    @property
    def is_leader(self) -> bool: ...

    def run(self, on_started_leading: Callable[[], None]) -> bool: ...

    def stop(self) -> None: ...

    def release(self) -> bool: ...


def default_leader_election_namespace() -> str:
    """$POD_NAMESPACE, else the ServiceAccount's namespace in a pod, else "default"."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


def default_identity() -> str:
    """Hostname plus a random suffix, so two processes on one host never share an identity."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class ElectionThread:
    """Runs an elector on a thread of its own; ``on_lost`` is called there if the lease is lost."""

    def __init__(self, elector: Elector) -> None:
        self.elector = elector
        self.lost = False
        self._thread: threading.Thread | None = None

    def start(self, on_started_leading: Callable[[], None], on_lost: Callable[[], None]) -> None:
        def run() -> None:
            if self.elector.run(on_started_leading):
                self.lost = True
                on_lost()

        self._thread = threading.Thread(target=run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease stays held until ``release``) and wait for the thread."""
        self.elector.stop()
        if self._thread is not None:
            self._thread.join()
