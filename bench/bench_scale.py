"""Benchmark: the operator at N Ensembles against a floor, on the local control plane.

For each N and worker count, two processes are measured in turn on one API server:

- ours: the operator (Manager + Ensemble controller, informers, queue, reconciler, Events)
  in a child process watching a namespace of its own, while N one-member Ensembles are
  created at once (8 client threads);
- the floor: a bare ``KubeClient`` (our HTTP stack, nothing else: no informer, queue or
  reconciler) in a child process that, as each Ensemble is created, sends the same writes
  ours sends for it (its owned-object applies, the status apply and as many Events as ours
  wrote per Ensemble) from the same number of threads, with bodies prepared beforehand.

Per row: seconds until every Ensemble has a status (applies come first in both),
process CPU seconds from the first create until its writes stop, CPU ms per Ensemble,
API writes per Ensemble, peak RSS and its growth per Ensemble, Events dropped, CPU
seconds and requests over an idle window after and, for ours, reconciles run per Ensemble;
under each pair, each process's CPU per Ensemble by thread role (workers, reflectors, the
Event writer...) and its CPU inside whole requests against the rest (``RequestCpu``, the same
in both: the floor's rest is little, ours' is its own work). Ratios are ours over the floor.
``--profile N`` runs ours once at N under py-spy (sampling, non-blocking) and prints the
top frames by own and by total samples. ``--upstream`` also measures upstream's Go operator
(controller-runtime, one worker; hack/build-upstream-operator.sh builds it) at each N on the
same API server: it writes no status when it creates, so its convergence is the time until
every Ensemble's MiniCluster and service Deployment exist, its CPU is counted until it has
used none for QUIET_SECONDS, and its requests are not counted (it is not our client).

    .venv/bin/python bench/bench_scale.py [--sizes 50,200,1000,2000] [--workers 1,4]
        [--idle-seconds 60] [--repeats 1] [--profile 400] [--upstream]
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "hack")]

from localcluster import LocalCluster  # noqa: E402

from api.v1alpha1 import Ensemble  # noqa: E402
from controller.kube.client import APPLY_PATCH, KubeClient  # noqa: E402
from controller.kube.resources import DEPLOYMENTS, ENSEMBLES, EVENTS, MINICLUSTERS, for_object  # noqa: E402
from controller.reconcilers.desired import DesiredSettings, desired_objects  # noqa: E402
from controller.reconcilers.desired.compare import applied_hash, with_applied_hash  # noqa: E402

FIELD_MANAGER = "ensemble-operator"
OPERATOR_IMAGE = "op:bench"
CREATE_THREADS = 8
QUIET_SECONDS = 3.0  # no request for this long: the process is done with the burst
# Each Ensemble's own text (its name in the command), as tenants' differ: a parse memoized by
# text must not turn N parses into one here.
ENSEMBLE_YAML = "jobs:\n  - name: a\n    command: echo {name}\nrules:\n  - trigger: start\n    action:\n      name: submit\n      label: a\n"
# Placeholders of the floor's prepared bodies, replaced per Ensemble (a valid DNS label and a uid).
NAME_MARK, UID_MARK, EVENT_MARK = "zqzqzq", "00000000-0000-0000-0000-00000000cafe", "qzqzqzsuffix"


def ensemble(name: str, namespace: str) -> dict:
    """One member, no NetworkPolicies: the 7 objects upstream's operator makes too."""
    return {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"networkPolicy": False,
                     "members": [{"ensemble": ENSEMBLE_YAML.format(name=name),
                                  "minicluster": {"spec": {"size": 1, "containers": [{"image": "app"}]}}}]}}


# -- process measurements ----------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds in a /proc ``stat`` file (a process's: all its threads; a task's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name, which may hold ")"
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid``."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


# Threads named per resource or per index (reflector-<resource>, ensemble-worker-3,
# ThreadPoolExecutor-0_1) are one role each.
_PER_RESOURCE_ROLES = ("reflector-", "resync-", "handler-")
_THREAD_INDEX = re.compile(r"-[0-9]+(?:_[0-9]+)?$")


def thread_role(name: str) -> str:
    """A thread's role: its name without the resource or index that tells its kind apart."""
    for prefix in _PER_RESOURCE_ROLES:
        if name.startswith(prefix):
            return prefix[:-1]
    return _THREAD_INDEX.sub("", name)


def thread_cpu_by_role(task_dir: Path = Path("/proc/self/task"),
                       names: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds of this process's live threads summed per role, so a run can say where its CPU
    went (the workers' requests and reconciles, the reflectors' watch events, the Event writer).
    Threads Python did not start (grpc's) are named by the kernel: ``native:<comm>``."""
    if names is None:
        names = {thread.native_id: thread.name for thread in threading.enumerate() if thread.native_id}
    by_role: dict[str, float] = {}
    for task in task_dir.iterdir():
        try:
            seconds = stat_cpu_seconds(task / "stat")
            name = names.get(int(task.name)) or f"native:{(task / 'comm').read_text().strip()}"
        except (OSError, ValueError):
            continue  # the thread ended while it was read
        role = thread_role(name)
        by_role[role] = by_role.get(role, 0.0) + seconds
    return by_role


def cpu_ms_per_ensemble_by_role(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """Each role's CPU between two readings, in ms per Ensemble, largest first (roles that used none left out)."""
    spent = {role: 1000 * (seconds - before.get(role, 0.0)) / count for role, seconds in after.items()}
    return {role: round(ms, 2) for role, ms in sorted(spent.items(), key=lambda item: -item[1]) if ms > 0}


def process_memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


# -- child processes ---------------------------------------------------------------------

class RequestCpu:
    """Thread CPU spent inside a client's requests, summed over threads. Installed alike in ours
    and the floor, it splits each one's CPU into what its requests cost (the same HTTP stack)
    and everything else: for the floor little, for ours its own work (reconciles, watches)."""

    def __init__(self, clock: Callable[[], float] = time.thread_time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._inside = threading.local()
        self.seconds = 0.0

    def wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` timed; a call made inside another timed one is part of it, not counted twice."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._inside, "active", False):
                return call(*args, **kwargs)
            self._inside.active = True
            started = self._clock()
            try:
                return call(*args, **kwargs)
            finally:
                spent = self._clock() - started
                self._inside.active = False
                with self._lock:
                    self.seconds += spent
        return timed

    def install(self, client: KubeClient) -> None:
        """Time every request ``client`` answers whole (not its watches, which stream)."""
        client.request = self.wrap(client.request)  # type: ignore[method-assign]
        client.list = self.wrap(client.list)  # type: ignore[method-assign]


def _counts(client: KubeClient, request_cpu: RequestCpu) -> dict[str, Any]:
    return {"requests": client.request_count, "writes": client.write_count, "threads": thread_cpu_by_role(),
            "request_cpu": request_cpu.seconds}


class DropCounter(logging.Handler):
    """Counts the Event recorder's "dropping event" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("dropping event"):
            self.count += 1


def reconciles(registry: Any) -> float:
    """Reconciles run so far, whatever their result."""
    return sum(sample.value for metric in registry.collect() if metric.name == "controller_runtime_reconcile"
               for sample in metric.samples if sample.name == "controller_runtime_reconcile_total")


def operator_child(kubeconfig: str, namespace: str, workers: int, log_path: str, conn: Connection) -> None:
    """The operator as ``ensemble-operator run`` wires it (JSON logs at info, to a file)."""
    from controller import logs
    from controller.reconcilers import setup
    from controller.runtime.gc_tuning import tune_garbage_collector
    from controller.runtime.manager import Manager

    stream = open(log_path, "a")
    logs.configure("json", "info", stream=stream)
    dropped = DropCounter()
    logging.getLogger("controller.runtime.events").addHandler(dropped)
    client = KubeClient.from_kubeconfig(kubeconfig)
    request_cpu = RequestCpu()
    request_cpu.install(client)
    manager = Manager(client, namespaces=[namespace], metrics_port=None, health_port=None)
    setup(manager, argparse.Namespace(operator_image=OPERATOR_IMAGE, workers=workers))
    tune_garbage_collector()
    runner = threading.Thread(target=manager.start, daemon=True)
    runner.start()
    while not manager.is_ready():
        time.sleep(0.05)
    conn.send("ready")
    while (command := conn.recv()) != "stop":
        assert command == "counts", command
        conn.send({**_counts(client, request_cpu), "events_dropped": dropped.count, "reconciles": reconciles(manager.registry)})
    manager.stop()
    runner.join(30)
    conn.send("stopped")


@dataclass(frozen=True)
class FloorBodies:
    """Bodies prepared before the run: (resource path template, JSON bytes) with placeholders."""

    applies: list[tuple[str, bytes]]
    status: bytes
    event: bytes
    events_per_ensemble: int


def floor_bodies(namespace: str, status: dict, events_per_ensemble: int) -> FloorBodies:
    template = ensemble(NAME_MARK, namespace)
    template["metadata"]["uid"] = UID_MARK
    typed = Ensemble.from_dict(template).to_dict()
    applies = []
    for obj in desired_objects(typed, DesiredSettings(operator_image=OPERATOR_IMAGE)):
        res = for_object(obj)
        body = with_applied_hash(obj, applied_hash(obj))
        applies.append((res.path(namespace, obj["metadata"]["name"]), json.dumps(body).encode()))
    status_body = {"apiVersion": ENSEMBLES.api_version, "kind": ENSEMBLES.kind,
                   "metadata": {"name": NAME_MARK, "namespace": namespace}, "status": status}
    event = {"apiVersion": EVENTS.api_version, "kind": EVENTS.kind,
             "metadata": {"name": f"{NAME_MARK}.{EVENT_MARK}", "namespace": namespace},
             "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": FIELD_MANAGER,
             "reportingInstance": "floor", "action": "Created", "reason": "Created",
             "note": f"Created MiniCluster {NAME_MARK}-0", "type": "Normal",
             "regarding": {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble", "name": NAME_MARK,
                           "namespace": namespace, "uid": UID_MARK}}
    return FloorBodies(applies, json.dumps(status_body).encode(), json.dumps(event).encode(),
                       events_per_ensemble)


def floor_child(kubeconfig: str, namespace: str, workers: int, bodies: FloorBodies,
                work: Any, conn: Connection) -> None:
    """Receives (name, uid) per created Ensemble; sends its writes from ``workers`` threads."""
    client = KubeClient.from_kubeconfig(kubeconfig)
    request_cpu = RequestCpu()
    request_cpu.install(client)
    params = {"fieldManager": FIELD_MANAGER, "force": True}
    status_path = ENSEMBLES.path(namespace, NAME_MARK, "status")
    events_path = EVENTS.path(namespace)
    done = [0]
    event_numbers = itertools.count(1)
    errors: list[str] = []
    lock = threading.Lock()

    def write_or_record(name: str, uid: str) -> None:
        try:
            write(name, uid)
        except Exception as error:  # reported to the parent, which stops the run
            with lock:
                errors.append(f"{name}: {type(error).__name__}: {error}")

    def write(name: str, uid: str) -> None:
        def fill(data: bytes) -> bytes:
            return data.replace(NAME_MARK.encode(), name.encode()).replace(UID_MARK.encode(), uid.encode())
        for path, body in bodies.applies:
            client.request("PATCH", path.replace(NAME_MARK, name), params=params, body=fill(body),
                           content_type=APPLY_PATCH)
        client.request("PATCH", status_path.replace(NAME_MARK, name), params=params, body=fill(bodies.status),
                       content_type=APPLY_PATCH)
        for _ in range(bodies.events_per_ensemble):
            suffix = f"{next(event_numbers):x}".encode()
            client.request("POST", events_path, body=fill(bodies.event).replace(EVENT_MARK.encode(), suffix))
        with lock:
            done[0] += 1

    pool = ThreadPoolExecutor(workers)
    receiver = threading.Thread(target=lambda: [pool.submit(write_or_record, *item) for item in iter(work.get, None)],
                                daemon=True)
    receiver.start()
    conn.send("ready")
    while conn.recv() != "stop":
        conn.send({**_counts(client, request_cpu), "done": done[0], "events_dropped": 0, "errors": errors[:3]})
    work.put(None)
    receiver.join(10)
    pool.shutdown(wait=True)
    conn.send("stopped")


class Child:
    """A measured child process and its command pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding gRPC threads
        self._conn, child_conn = context.Pipe()
        self.process = context.Process(target=target, args=(*args, child_conn), daemon=True)
        self.process.start()
        if not self._conn.poll(120):
            raise SystemExit(f"{target.__name__} did not become ready")
        assert self._conn.recv() == "ready"

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def counts(self) -> dict[str, Any]:
        self._conn.send("counts")
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        if self._conn.poll(60):
            self._conn.recv()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# -- one measured run ---------------------------------------------------------------------

@dataclass
class Row:
    kind: str
    ensembles: int
    workers: int
    converge_s: float
    cpu_s: float
    cpu_ms_per_ensemble: float
    writes_per_ensemble: float | None  # None: not counted (upstream's operator is not our client)
    requests_per_ensemble: float | None
    peak_rss_mib: float
    rss_growth_kib_per_ensemble: float
    events_dropped: int | None
    idle_cpu_s: float
    idle_requests: int | None
    # CPU ms per Ensemble per thread role (``thread_role``); None: not our process to read.
    cpu_ms_by_thread: dict[str, float] | None = None
    # Reconciles run per Ensemble (controller_runtime_reconcile_total); None: not ours.
    reconciles_per_ensemble: float | None = None
    # CPU ms per Ensemble inside whole requests (``RequestCpu``); None: not our client.
    request_cpu_ms_per_ensemble: float | None = None


def create_all(admin: KubeClient, namespace: str, count: int,
               created: Callable[[dict], None] = lambda obj: None) -> None:
    def create(index: int) -> None:
        created(admin.create(ENSEMBLES, ensemble(f"e{index}", namespace), namespace))
    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(pool.map(create, range(count)))


def wait_for_statuses(admin: KubeClient, namespace: str, count: int, started: float, timeout: float) -> float:
    """Seconds from ``started`` until every Ensemble in ``namespace`` has a status."""
    while True:
        items = admin.list(ENSEMBLES, namespace)["items"]
        if sum(1 for item in items if item.get("status")) >= count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{namespace}: timed out with {sum(1 for i in items if i.get('status'))}/{count} "
                             f"statuses")
        time.sleep(0.25)


def wait_quiet(child: Child, done: Callable[[dict], bool] = lambda counts: True) -> dict:
    """The child's counts once it has sent no request for QUIET_SECONDS (and ``done`` holds);
    the returned CPU is read at the last change, not after the quiet wait."""
    last = child.counts()
    cpu, changed = process_cpu(child.pid), time.monotonic()
    while True:
        time.sleep(0.25)
        now = child.counts()
        if now.get("errors"):
            raise SystemExit(f"the floor's writes failed: {now['errors']}")
        if now["requests"] != last["requests"] or not done(now):
            last, cpu, changed = now, process_cpu(child.pid), time.monotonic()
        elif time.monotonic() - changed >= QUIET_SECONDS:
            return {**last, "cpu": cpu}


def measure(kind: str, child: Child, count: int, workers: int, create: Callable[[], float],
            converge: Callable[[float], float], idle_seconds: float,
            done: Callable[[dict], bool] = lambda counts: True) -> Row:
    cpu_before, counts_before = process_cpu(child.pid), child.counts()
    rss_before, _ = process_memory_kib(child.pid)
    started = create()
    converge_s = converge(started)
    quiet = wait_quiet(child, done)
    rss, peak = process_memory_kib(child.pid)
    idle_cpu = process_cpu(child.pid)
    time.sleep(idle_seconds)  # the idle window being measured
    idle_cpu = process_cpu(child.pid) - idle_cpu
    idle_requests = child.counts()["requests"] - quiet["requests"]
    cpu = quiet["cpu"] - cpu_before
    return Row(kind, count, workers, round(converge_s, 2), round(cpu, 2), round(1000 * cpu / count, 2),
               round((quiet["writes"] - counts_before["writes"]) / count, 2),
               round((quiet["requests"] - counts_before["requests"]) / count, 2),
               round(peak / 1024, 1), round(max(0, peak - rss_before) / count, 1),
               quiet["events_dropped"], round(idle_cpu, 3), idle_requests,
               cpu_ms_per_ensemble_by_role(counts_before["threads"], quiet["threads"], count),
               None if "reconciles" not in quiet else round((quiet["reconciles"] - counts_before["reconciles"]) / count, 2),
               round(1000 * (quiet["request_cpu"] - counts_before["request_cpu"]) / count, 2))


def run_ours(cluster: LocalCluster, admin: KubeClient, namespace: str, count: int, workers: int,
             idle_seconds: float, timeout: float, log_path: str,
             profile: Callable[[int], Callable[[], None]] | None = None) -> tuple[Row, dict, int]:
    """Ours at ``count``; also returns one Ensemble's status and the Events ours created."""
    cluster.kubectl("create", "namespace", namespace)
    child = Child(operator_child, cluster.kubeconfig, namespace, workers, log_path)
    stop_profile = profile(child.pid) if profile else None
    try:
        def create() -> float:
            started = time.monotonic()
            create_all(admin, namespace, count)
            return started
        row = measure("ours", child, count, workers, create,
                      lambda started: wait_for_statuses(admin, namespace, count, started, timeout), idle_seconds)
    finally:
        if stop_profile:
            stop_profile()
        child.stop()
    status = admin.get(ENSEMBLES, "e0", namespace)["status"]
    events = len(admin.list(EVENTS, namespace)["items"])
    return row, status, events


def run_floor(cluster: LocalCluster, admin: KubeClient, namespace: str, count: int, workers: int,
              idle_seconds: float, timeout: float, status: dict, events_per_ensemble: int) -> Row:
    cluster.kubectl("create", "namespace", namespace)
    context = multiprocessing.get_context("spawn")
    work = context.Queue()
    child = Child(floor_child, cluster.kubeconfig, namespace, workers,
                  floor_bodies(namespace, status, events_per_ensemble), work)
    try:
        def create() -> float:
            started = time.monotonic()
            create_all(admin, namespace, count,
                       lambda obj: work.put((obj["metadata"]["name"], obj["metadata"]["uid"])))
            return started
        return measure("floor", child, count, workers, create,
                       lambda started: wait_for_statuses(admin, namespace, count, started, timeout),
                       idle_seconds, done=lambda counts: counts["done"] >= count)
    finally:
        child.stop()


# -- upstream's Go operator -----------------------------------------------------------

UPSTREAM_ARGS = ("--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0")


def build_upstream() -> str:
    """The path of upstream's manager, built by hack/build-upstream-operator.sh if not cached."""
    return subprocess.run([str(ROOT / "hack" / "build-upstream-operator.sh")], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


def wait_cpu_quiet(pid: int, alive: Callable[[], bool]) -> float:
    """``pid``'s CPU seconds once it has used none for QUIET_SECONDS (read at the last change)."""
    cpu, changed = process_cpu(pid), time.monotonic()
    while True:
        time.sleep(0.25)
        if not alive():
            raise SystemExit(f"process {pid} exited")
        now = process_cpu(pid)
        if now != cpu:
            cpu, changed = now, time.monotonic()
        elif time.monotonic() - changed >= QUIET_SECONDS:
            return cpu


def wait_for_objects(admin: KubeClient, namespace: str, count: int, started: float, timeout: float) -> float:
    """Seconds from ``started`` until ``namespace`` holds ``count`` MiniClusters and Deployments."""
    while True:
        made = min(len(admin.list(res, namespace)["items"]) for res in (MINICLUSTERS, DEPLOYMENTS))
        if made >= count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{namespace}: timed out with {made}/{count} Ensembles' objects")
        time.sleep(0.25)


def run_upstream(cluster: LocalCluster, admin: KubeClient, namespace: str, count: int, idle_seconds: float,
                 timeout: float, binary: str, log_path: str) -> Row:
    """Upstream's operator (it watches every namespace) while ``count`` Ensembles are created."""
    cluster.kubectl("create", "namespace", namespace)
    with open(log_path, "a") as log:
        process = subprocess.Popen([binary, *UPSTREAM_ARGS], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "KUBECONFIG": cluster.kubeconfig})
    alive = lambda: process.poll() is None  # noqa: E731
    try:
        cpu_before = wait_cpu_quiet(process.pid, alive)  # started, caches synced
        rss_before, _ = process_memory_kib(process.pid)
        started = time.monotonic()
        create_all(admin, namespace, count)
        converge_s = wait_for_objects(admin, namespace, count, started, timeout)
        cpu = wait_cpu_quiet(process.pid, alive) - cpu_before
        _, peak = process_memory_kib(process.pid)
        idle_cpu = process_cpu(process.pid)
        time.sleep(idle_seconds)
        idle_cpu = process_cpu(process.pid) - idle_cpu
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return Row("upstream-go", count, 1, round(converge_s, 2), round(cpu, 2), round(1000 * cpu / count, 2),
               None, None, round(peak / 1024, 1), round(max(0, peak - rss_before) / count, 1), None,
               round(idle_cpu, 3), None)


# -- profile -----------------------------------------------------------------------------

def py_spy(output: Path, rate: int = 100) -> Callable[[int], Callable[[], None]]:
    """Attach py-spy to a pid: raw collapsed stacks, ``rate`` Hz, without pausing the process, only
    samples of the thread holding the GIL (CPU in Python, not threads waiting on sockets)."""
    exe = Path(sys.executable).with_name("py-spy")

    def attach(pid: int) -> Callable[[], None]:
        proc = subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--gil",
                                 "--format", "raw", "--output", str(output)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop() -> None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        time.sleep(1.0)  # py-spy attaches before the creates start
        return stop
    return attach


def top_frames(collapsed: Path, limit: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(own, total) percentages of samples per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [name for frame in stack.split(";") if (name := _function(frame)) is not None]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def percent(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / max(1, samples), 1)) for name, n in counter.most_common(limit)]
    return percent(own), percent(total)


def _function(frame: str) -> str | None:
    """``function (path:line)`` -> ``function (path relative to the venv or repo)``; threads dropped."""
    if frame.startswith(("thread (", "process ")):
        return None
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


# -- main --------------------------------------------------------------------------------

def ratio(ours: float, floor: float) -> float | None:
    return round(ours / floor, 2) if floor > 0 else None


def print_table(rows: list[Row]) -> None:
    columns = ("kind", "ensembles", "workers", "converge_s", "cpu_s", "cpu_ms_per_ensemble", "writes_per_ensemble",
               "requests_per_ensemble", "peak_rss_mib", "rss_growth_kib_per_ensemble", "events_dropped",
               "idle_cpu_s", "idle_requests", "reconciles_per_ensemble")
    print("  ".join(f"{c:>10.10}" for c in columns))
    for row in rows:
        print("  ".join(f"{'-' if getattr(row, c) is None else str(getattr(row, c)):>10.10}" for c in columns))


def parse_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_list, default=[50, 200, 1000, 2000],
                        help="Ensemble counts, comma-separated (default 50,200,1000,2000)")
    parser.add_argument("--workers", type=parse_list, default=[1, 4], help="reconcile workers (default 1,4)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--profile", type=int, metavar="N", help="only profile ours at N Ensembles (4 workers)")
    parser.add_argument("--top", type=int, default=25, help="frames printed by --profile")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second (default 100)")
    parser.add_argument("--upstream", action="store_true",
                        help="also measure upstream's Go operator at each N (hack/build-upstream-operator.sh: Go)")
    args = parser.parse_args(argv)
    upstream_binary = build_upstream() if args.upstream else None
    upstream_rows: list[tuple[Row, Row]] = []
    logging.basicConfig(level=logging.WARNING)
    rows: list[Row] = []
    with LocalCluster.start() as cluster, tempfile.TemporaryDirectory() as tmp:
        for crd, name in (("manifests/crd.yaml", "ensembles.ensemble.flux-framework.org"),
                          ("hack/crds/minicluster.yaml", "miniclusters.flux-framework.org")):
            cluster.kubectl("apply", "--server-side", "-f", str(ROOT / crd))
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        admin = cluster.admin_client()
        log_path = str(Path(tmp) / "operator.log")
        if args.profile:
            output = Path(tmp) / "profile.txt"
            row, _, _ = run_ours(cluster, admin, "profile", args.profile, 4, 0.0, args.timeout, log_path,
                                 profile=py_spy(output, args.profile_rate))
            print_table([row])
            print_cpu_by_thread([row])
            own, total = top_frames(output, args.top)
            print(f"\ntop frames by own samples (ours, N={args.profile}, 4 workers, py-spy {args.profile_rate} Hz):")
            for name, percent in own:
                print(f"{percent:6.1f}%  {name}")
            print("\ntop frames by total samples:")
            for name, percent in total:
                print(f"{percent:6.1f}%  {name}")
            return 0
        seen: dict[tuple[int, int], tuple[dict, int]] = {}  # per (N, workers): ours' status, Events each
        for repeat in range(args.repeats):
            for count in args.sizes:
                for workers in args.workers:
                    suffix = f"{count}-w{workers}-r{repeat}"
                    floor_first = floor_goes_first(repeat, seen.get((count, workers)))

                    def floor_run(status: dict, events_each: int) -> Row:
                        return run_floor(cluster, admin, f"floor-{suffix}", count, workers, args.idle_seconds,
                                         args.timeout, status, events_each)
                    if floor_first is not None:
                        floor = floor_run(*floor_first)
                    ours, status, events = run_ours(cluster, admin, f"ours-{suffix}", count, workers,
                                                    args.idle_seconds, args.timeout, log_path)
                    seen[(count, workers)] = (status, round(events / count))
                    if floor_first is None:
                        floor = floor_run(*seen[(count, workers)])
                    rows += [ours, floor]
                    print(f"N={count} workers={workers} repeat {repeat}: "
                          f"{'the floor ran first' if floor_first is not None else 'ours ran first'}")
                    print_table([ours, floor])
                    print_ratios("ratios ours/floor", ours, floor)
                    print_cpu_by_thread([ours, floor])
                if upstream_binary:
                    upstream = run_upstream(cluster, admin, f"upstream-{count}-r{repeat}", count,
                                            args.idle_seconds, args.timeout, upstream_binary,
                                            str(Path(tmp) / "upstream.log"))
                    upstream_rows.append((ours, upstream))
                    print_table([upstream])
                    print_ratios(f"N={count} ours ({ours.workers} workers)/upstream", ours, upstream)
    every_row = rows + [upstream for _, upstream in upstream_rows]
    print("\nall rows:")
    print_table(every_row)
    if args.repeats > 1:
        print_medians(rows)
    if upstream_rows:
        print("\nours (the last worker count of each N) against upstream's operator:")
        for ours, upstream in upstream_rows:
            print_ratios(f"N={ours.ensembles} ours ({ours.workers} workers)/upstream", ours, upstream)
    print(json.dumps([asdict(row) for row in every_row]))
    return 0


def floor_goes_first(repeat: int, seen: tuple[dict, int] | None) -> tuple[dict, int] | None:
    """What the floor runs with when it goes first in this repeat (None: ours goes first).

    The floor sends what ours sent, so it needs ours' status and Event count; once a repeat has
    shown them, odd repeats run the floor first, so that neither side is always the one that
    meets the API server after the other's burst (its heap grown, its caches full)."""
    return seen if repeat % 2 == 1 else None


def print_ratios(label: str, ours: Row, other: Row) -> None:
    print(f"{label}: converge {ratio(ours.converge_s, other.converge_s)}, cpu per ensemble "
          f"{ratio(ours.cpu_ms_per_ensemble, other.cpu_ms_per_ensemble)} ({ours.cpu_ms_per_ensemble} / "
          f"{other.cpu_ms_per_ensemble} ms), peak rss {ratio(ours.peak_rss_mib, other.peak_rss_mib)}", flush=True)


def print_cpu_by_thread(rows: list[Row]) -> None:
    for row in rows:
        if row.cpu_ms_by_thread:
            roles = ", ".join(f"{role} {ms}" for role, ms in row.cpu_ms_by_thread.items())
            alive = round(sum(row.cpu_ms_by_thread.values()), 2)
            print(f"  {row.kind} CPU by thread, ms per Ensemble ({alive} of {row.cpu_ms_per_ensemble} in threads "
                  f"alive at the end, in 1/{CLOCK_TICKS} s ticks): {roles}")
        if row.request_cpu_ms_per_ensemble is not None:
            print(f"  {row.kind} CPU split, ms per Ensemble: {request_split(row)}")


def request_split(row: Row) -> str:
    """What a row's requests cost (in all, and each) and what its CPU beyond them was."""
    requests = row.request_cpu_ms_per_ensemble or 0.0
    each = f" ({requests / row.requests_per_ensemble:.3f} each)" if row.requests_per_ensemble else ""
    return f"in requests {requests}{each}, the rest {round(row.cpu_ms_per_ensemble - requests, 2)}"


def print_medians(rows: list[Row]) -> None:
    """Per N and workers, the median over repeats of each run's ours/floor ratio: on shared cores
    one run's floor moves by a third (3.7-6.0 ms at N=400), more than most changes measured."""
    print("\nmedian over repeats (each run's ours/floor ratio):")
    pairs: dict[tuple[int, int], list[tuple[Row, Row]]] = {}
    for ours, floor in zip(rows[0::2], rows[1::2]):
        pairs.setdefault((ours.ensembles, ours.workers), []).append((ours, floor))
    for (count, workers), runs in pairs.items():
        cpu = [r for o, f in runs if (r := ratio(o.cpu_ms_per_ensemble, f.cpu_ms_per_ensemble)) is not None]
        converge = [r for o, f in runs if (r := ratio(o.converge_s, f.converge_s)) is not None]
        print(f"N={count} workers={workers} runs={len(runs)}: cpu per ensemble {statistics.median(cpu) if cpu else None} "
              f"(runs {' '.join(map(str, cpu))}), converge {statistics.median(converge) if converge else None}")


if __name__ == "__main__":
    raise SystemExit(main())
