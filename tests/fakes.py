"""Fakes shared by unit and integration tests (and benchmarks): what tests drive instead
of real time, an Event recorder that keeps what it is told, and for the hack/build-*.sh
tests a Go toolchain and a source archive of a given commit. Fakes of one component's
collaborators live in ``tests/unit/fakes/``."""
from __future__ import annotations

import subprocess
import threading
from pathlib import Path


class FakeClock:
    """A clock that only moves when a test calls ``step``.

    Threads blocked in ``sleep`` or ``wait`` wake when the fake time passes their
    deadline, so code under test runs exactly as with real time, minus the waiting.
    """

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._lock = threading.Condition()
        self._waiters: list[threading.Condition] = []
        self._waits_begun = 0

    def now(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        return self.now() + self._wall_offset

    def step(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters)
            self._lock.notify_all()
        for condition in waiters:
            with condition:
                condition.notify_all()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            deadline = self._now + seconds
            while self._now < deadline:
                self._lock.wait(0.05)

    def wait(self, condition: threading.Condition, timeout: float | None) -> bool:
        """Wait on ``condition`` until notified or fake ``timeout`` elapsed.

        Returns False when the fake deadline passed, True when notified.
        """
        deadline = None if timeout is None else self.now() + timeout
        with self._lock:
            self._waiters.append(condition)
            self._waits_begun += 1
        try:
            if deadline is not None and self.now() >= deadline:
                return False
            notified = condition.wait()
            return notified and (deadline is None or self.now() < deadline)
        finally:
            with self._lock:
                self._waiters.remove(condition)

    @property
    def waiter_count(self) -> int:
        """Threads parked in ``wait``, so a test can step time only once they are all parked."""
        with self._lock:
            return len(self._waiters)

    @property
    def waits_begun(self) -> int:
        """``wait`` calls so far: after a step, a waiter that woke and parked again is told
        apart from one not woken yet (``waiter_count`` shows both as one)."""
        with self._lock:
            return self._waits_begun


class SteppingClock(FakeClock):
    """A FakeClock the run itself moves forward: waiting ``timeout`` means that time passes at once."""

    def wait(self, condition: threading.Condition, timeout: float | None) -> bool:
        assert timeout is not None and timeout > 0, "the run must always know when to look again"
        self.step(timeout)
        return False


class FakeRecorder:
    """``controller.runtime.events.Recorder`` keeping (type, reason, message) in ``events``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def fake_go(bin_dir: Path, log: Path) -> None:
    """Go 1.26 whose `go build -o OUT .` records the call and its directory, says it downloads a
    module (on stderr, as go does), then writes OUT, or fails with $FAKE_GO_BUILD_ERROR."""
    bin_dir.mkdir(exist_ok=True)
    go = bin_dir / "go"
    go.write_text(f"""#!/bin/sh
echo "$PWD: go $*" >> {log}
if [ "$1 $2" = "env GOVERSION" ]; then echo go1.26.0; exit 0; fi
if [ "$1" = build ]; then
  echo "go: downloading example.com/dep v1.0.0" >&2
  if [ -n "$FAKE_GO_BUILD_ERROR" ]; then echo "$FAKE_GO_BUILD_ERROR" >&2; exit 1; fi
  while [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done
  echo built > "$out"; chmod +x "$out"; exit 0
fi
exit 1
""")
    go.chmod(0o755)


def archive_of_a_new_commit(tree: Path, tarball: Path, prefix: str) -> str:
    """Commit ``tree`` to a new git repository and write its GitHub-style archive (which records
    the commit, as git get-tar-commit-id reads) to ``tarball``; the commit's hash."""
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    subprocess.run([*git, "archive", "--format=tar.gz", f"--prefix={prefix}/", "-o", str(tarball), "HEAD"],
                   check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
