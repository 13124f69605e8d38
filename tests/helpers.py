"""Waiting and racing helpers shared by unit and integration tests.

Tests wait for states that other threads, processes or the API server reach. A timeout
must say which state never came and what was last seen, so the failure explains itself.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:  # the stdlib-only tests import this module too
    from tests.fakes import FakeClock

T = TypeVar("T")

LAST_VALUE_CHARS = 500
CHECKS_PER_TIMEOUT = 200
MAX_DEFAULT_INTERVAL = 0.1


def wait_for(predicate: Callable[[], T], timeout: float, what: str, *, interval: float | None = None) -> T:
    """Return the first truthy value of ``predicate()``, checked every ``interval`` seconds.

    Fails with an AssertionError naming ``what`` and the last value seen once ``timeout``
    seconds have passed (the predicate is checked once more after the deadline). The
    default interval is ``timeout / 200``, at most 0.1 s: a wait allowed long is for something
    slow, often checked by an API request, so its checks can be sparse.
    """
    return _poll(predicate, bool, timeout, what, interval)


def wait_for_value(read: Callable[[], T], expected: T, timeout: float, what: str, *,
                   interval: float | None = None) -> None:
    """Wait until ``read()`` equals ``expected``; a timeout reports the last value read."""
    _poll(read, lambda value: value == expected, timeout, f"{what} to be {expected!r}", interval)


def wait_for_waiters(clock: FakeClock, count: int, timeout: float = 2.0) -> None:
    """Wait until ``count`` threads sleep on ``clock``: stepping it earlier would wake nobody."""
    wait_for_value(lambda: clock.waiter_count, count, timeout, "the threads waiting on the fake clock")


def blocked_in_read(thread: threading.Thread) -> bool:
    """True while ``thread`` waits in a socket read: a close that only drops the file cannot end it."""
    frame = sys._current_frames().get(thread.ident or 0)
    return frame is not None and frame.f_code.co_name == "readinto" \
        and frame.f_code.co_filename.endswith("socket.py")


def run_together(action: Callable[[], T], count: int, timeout: float) -> list[T]:
    """Call ``action`` from ``count`` threads released at once, so the calls race.

    Returns the results in the order the calls finished; a call still running after
    ``timeout`` seconds (per thread) leaves its result out, which the caller's check sees.
    """
    barrier = threading.Barrier(count)
    results: list[T] = []

    def one() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def _poll(read: Callable[[], T], accept: Callable[[T], bool], timeout: float, what: str,
          interval: float | None) -> T:
    pause = min(MAX_DEFAULT_INTERVAL, timeout / CHECKS_PER_TIMEOUT) if interval is None else interval
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            seen = repr(value)
            if len(seen) > LAST_VALUE_CHARS:
                seen = seen[:LAST_VALUE_CHARS] + "..."
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value seen: {seen}")
        time.sleep(pause)


def job_owner(job: str) -> dict:
    """The controller owner reference the Job controller puts on the pods of Job ``job``: a pod
    counts as a member's lead broker only with it (controller/memberpods/leadbroker.py)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": f"uid-job-{job}",
            "controller": True, "blockOwnerDeletion": True}


def member_job(minicluster: str, minicluster_uid: str, namespace: str = "ns") -> dict:
    """The Job the Flux Operator keeps for a MiniCluster: named as it, controlled by it, with
    the UID ``job_owner`` gives its pods' owner reference."""
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": minicluster, "namespace": namespace, "uid": job_owner(minicluster)["uid"],
                         "ownerReferences": [{"apiVersion": "flux-framework.org/v1alpha2", "kind": "MiniCluster",
                                              "name": minicluster, "uid": minicluster_uid, "controller": True,
                                              "blockOwnerDeletion": True}]}}


def https_get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET to 127.0.0.1 over TLS, trusting any certificate (a self-signed
    one), sending ``token`` as a bearer token when given."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
