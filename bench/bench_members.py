"""Benchmark: the cost of a real member (Flux brokers + ensemble-python) against a simulated one.

On one local system (``hack/localenv.py``: control plane, kwok, the Flux Operator, the
operator as a process, the pod process runner), each member runtime in turn, members of
each size are applied as one-member Ensembles, one at a time, and measured:

- seconds from the Ensemble's create to the lead pod Running (what the operator reports as
  the member's phase Running, the same in both runtimes: kwok runs the pods), to the lead's
  status sidecar answering a status poll, and to the member up (every node up, its job
  running), polled directly every 0.1 s;
- memory of the member's pods: the process trees the pod runner started for them (brokers,
  ``ensemble run`` and its jobs, the status sidecar; the one simulated process), as RSS (what
  the kernel reports per process, shared pages counted in each) and PSS (shared pages split);
- how many real members would fit: MemAvailable divided by a member's RSS (computed, not
  run), and with ``--confirm N``, N real members of size 1 started at once, measured together.

The simulated runtime is the baseline, measured in the same run. Its member is one Python
process whatever the size (it plays every broker), so the ratios grow with the size.

    .venv/bin/python bench/bench_members.py [--sizes 1,4] [--repeats 1] [--confirm 3]
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "hack")]

import grpc  # noqa: E402

from localenv import LocalEnvironment  # noqa: E402
from sim import fluxmembers  # noqa: E402

from controller.algorithms.status import parse_status  # noqa: E402
from controller.clock import Clock, RealClock  # noqa: E402
from controller.kube.client import KubeClient  # noqa: E402
from controller.kube.resources import ENSEMBLES, PODS  # noqa: E402
from controller.proto import ensemble_service_pb2 as pb  # noqa: E402
from controller.proto import ensemble_service_pb2_grpc as pb_grpc  # noqa: E402
from controller.memberpods.leadbroker import pod_index  # noqa: E402
from controller.proto.wire import MINICLUSTER_MEMBER  # noqa: E402

STATUS_PORT = 50052
POLL_SECONDS = 0.1
# One job held for the whole measurement: a member doing work, not one already finishing.
HOLD = """
jobs:
- name: hold
  command: sleep 600
rules:
- trigger: start
  action: {name: submit, label: hold}
"""


# ---- memory of process trees ---------------------------------------------------------------
def children_map() -> dict[int, list[int]]:
    """Every process's children, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # the command name may hold spaces and parentheses: the ppid follows the last ')'
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(roots: Iterable[int], children: dict[int, list[int]]) -> set[int]:
    found: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def meminfo_kib(field_name: str) -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    raise KeyError(field_name)


@dataclass
class Memory:
    processes: int
    rss_kib: int
    pss_kib: int
    commands: dict[str, int] = field(default_factory=dict)  # command name -> RSS KiB


def measure_memory(roots: list[int]) -> Memory:
    pids = tree(roots, children_map())
    memory = Memory(0, 0, 0)
    for pid in pids:
        rss, pss = memory_kib(pid)
        if not rss:
            continue
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        memory.processes += 1
        memory.rss_kib += rss
        memory.pss_kib += pss
        memory.commands[name] = memory.commands.get(name, 0) + rss
    return memory


# ---- one member ------------------------------------------------------------------------------
@dataclass
class Sample:
    runtime: str
    size: int
    pod_running_s: float
    status_answer_s: float
    member_up_s: float
    memory: Memory
    service_rss_kib: int


def ensemble(name: str, namespace: str, sizes: list[int]) -> dict:
    return {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"members": [{"ensemble": HOLD, "minicluster": {"spec": {
                "size": size, "maxSize": size, "containers": [{"image": "busybox"}]}}} for size in sizes]}}


LAST_FAILURE: dict[str, str] = {}  # address -> why its last status poll failed (for a timeout's message)


def status_reply(address: str, minicluster: str) -> dict | None:
    """The lead's status reply, or None while it does not answer one. Each poll has its own
    subchannel (gRPC shares them between channels, reconnect backoff included): one run's polls
    all failed for 4 minutes while the member answered another process; not seen since."""
    try:
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            reply = pb_grpc.EnsembleOperatorStub(channel).RequestStatus(
                pb.StatusRequest(member=MINICLUSTER_MEMBER, name=minicluster), timeout=2)
    except grpc.RpcError as err:
        LAST_FAILURE[address] = f"{err.code().name}: {err.details()}"
        return None
    if reply.status != pb.Response.SUCCESS:
        LAST_FAILURE[address] = f"answered {reply.status}: {reply.payload[:200]}"
        return None  # e.g. a real broker before rc1 loaded its modules
    return parse_status(reply.payload)


def pods_of(kube: KubeClient, namespace: str, minicluster: str) -> list[dict]:
    return kube.list(PODS, namespace, label_selector=f"job-name={minicluster}")["items"]


def lead_ip(kube: KubeClient, namespace: str, minicluster: str) -> str | None:
    for pod in pods_of(kube, namespace, minicluster):
        status = pod.get("status") or {}
        if pod_index(pod) == 0 and status.get("phase") == "Running" and status.get("podIP"):
            return status["podIP"]
    return None


def lead_status(kube: KubeClient, namespace: str, minicluster: str) -> dict | None:
    """The status reply of the lead's sidecar at the lead pod's current IP (kwok now and then
    gives a running pod another one; the runner then restarts its processes there)."""
    ip = lead_ip(kube, namespace, minicluster)
    return status_reply(f"{ip}:{STATUS_PORT}", minicluster) if ip else None


def wait(until: Callable[[], object], clock: Clock, timeout: float, what: str) -> object:
    deadline = clock.now() + timeout
    while clock.now() < deadline:
        value = until()
        if value:
            return value
        clock.sleep(POLL_SECONDS)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what} (last status poll failures: {LAST_FAILURE})")


def member_processes(env: LocalEnvironment, namespace: str, minicluster: str) -> list[int]:
    return [pid for pod in pods_of(env.cluster.admin_client(), namespace, minicluster)
            for pid in env.pod_pids(namespace, pod["metadata"]["name"])]


def service_processes(env: LocalEnvironment, namespace: str, name: str) -> list[int]:
    kube = env.cluster.admin_client()
    return [pid for pod in kube.list(PODS, namespace)["items"]
            if not (pod["metadata"].get("labels") or {}).get("job-name") and pod["metadata"]["name"].startswith(name)
            for pid in env.pod_pids(namespace, pod["metadata"]["name"])]


def run_member(env: LocalEnvironment, kube: KubeClient, clock: Clock, runtime: str, size: int, index: int,
               settle: float, timeout: float) -> Sample:
    """Apply one Ensemble of one member of ``size``; time it up, measure it, delete it."""
    namespace, name = f"bench-{runtime[:4]}-{size}-{index}", "bench"
    minicluster = f"{name}-0"
    env.cluster.kubectl("create", "namespace", namespace)
    env.cluster.kubectl("create", "serviceaccount", "default", "-n", namespace, check=False)
    started = clock.now()
    kube.create(ENSEMBLES, ensemble(name, namespace, [size]), namespace)
    wait(lambda: lead_ip(kube, namespace, minicluster), clock, timeout, f"{minicluster}'s lead pod Running")
    pod_running = clock.now() - started
    wait(lambda: lead_status(kube, namespace, minicluster), clock, timeout, f"{minicluster}'s status sidecar")
    answer = clock.now() - started

    def up() -> bool:
        status = lead_status(kube, namespace, minicluster) or {}
        return ((status.get("nodes") or {}).get("node_up_count", 0) >= size
                and (status.get("queue") or {}).get("run", 0) >= 1)

    wait(up, clock, timeout, f"{minicluster}'s {size} nodes up and its job running")
    member_up = clock.now() - started
    clock.sleep(settle)  # ensemble run finishes importing; the job's shell and sleep are in place
    samples = []
    for _ in range(3):
        samples.append(measure_memory(member_processes(env, namespace, minicluster)))
        clock.sleep(0.5)
    memory = sorted(samples, key=lambda m: m.rss_kib)[1]  # the median sample
    service = measure_memory(service_processes(env, namespace, name))
    roots = member_processes(env, namespace, minicluster)
    env.cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    # The next member starts on a quiet machine: its pods' processes are gone first.
    wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in tree(roots, children_map())),
         clock, timeout, f"{minicluster}'s processes to stop")
    return Sample(runtime, size, pod_running, answer, member_up, memory, service.rss_kib)


def confirm(env: LocalEnvironment, kube: KubeClient, clock: Clock, count: int, timeout: float,
            settle: float) -> dict:
    """``count`` real members of size 1 in one Ensemble, all up at once: their memory together."""
    namespace, name = "bench-confirm", "many"
    env.cluster.kubectl("create", "namespace", namespace)
    env.cluster.kubectl("create", "serviceaccount", "default", "-n", namespace, check=False)
    available_before = meminfo_kib("MemAvailable")
    started = clock.now()
    kube.create(ENSEMBLES, ensemble(name, namespace, [1] * count), namespace)
    for i in range(count):
        mc = f"{name}-{i}"
        wait(lambda: ((lead_status(kube, namespace, mc) or {}).get("queue") or {}).get("run", 0) >= 1,
             clock, timeout, f"{mc}'s job running")
    all_up = clock.now() - started
    clock.sleep(settle)
    memory = measure_memory([pid for i in range(count) for pid in member_processes(env, namespace, f"{name}-{i}")])
    available_after = meminfo_kib("MemAvailable")
    env.cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    return {"members": count, "seconds_until_all_up": round(all_up, 1),
            "rss_mib_total": round(memory.rss_kib / 1024, 1), "pss_mib_total": round(memory.pss_kib / 1024, 1),
            "memavailable_drop_mib": round((available_before - available_after) / 1024, 1)}


# ---- report ----------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(samples: list[Sample], runtime: str, size: int) -> dict[str, float]:
    chosen = [s for s in samples if s.runtime == runtime and s.size == size]
    return {"pod_running_s": median([s.pod_running_s for s in chosen]),
            "status_answer_s": median([s.status_answer_s for s in chosen]),
            "member_up_s": median([s.member_up_s for s in chosen]),
            "processes": median([s.memory.processes for s in chosen]),
            "rss_mib": median([s.memory.rss_kib / 1024 for s in chosen]),
            "pss_mib": median([s.memory.pss_kib / 1024 for s in chosen]),
            "service_rss_mib": median([s.service_rss_kib / 1024 for s in chosen])}


def table(samples: list[Sample], sizes: list[int]) -> str:
    keys = ("pod_running_s", "status_answer_s", "member_up_s", "processes", "rss_mib", "pss_mib")
    header = ("size", "runtime", "pod Running s", "status answers s", "all up s", "procs", "RSS MiB", "PSS MiB")
    rows = []
    for size in sizes:
        real, sim = summarize(samples, "real", size), summarize(samples, "simulated", size)
        for runtime, figures in (("simulated", sim), ("real", real)):
            rows.append((str(size), runtime, *(f"{figures[k]:.1f}" if k != "processes" else f"{figures[k]:.0f}"
                                                for k in keys)))
        rows.append((str(size), "real/simulated", *(f"{real[k] / sim[k]:.1f}x" if sim[k] else "-" for k in keys)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4", help="member sizes (pods), comma-separated (default 1,4)")
    parser.add_argument("--repeats", type=int, default=1, help="members measured per runtime and size (median)")
    parser.add_argument("--confirm", type=int, default=3,
                        help="then start this many real members of size 1 at once and measure them together "
                             "(default 3; 0: none)")
    parser.add_argument("--settle", type=float, default=4.0,
                        help="seconds between a member up and its memory sample (ensemble run's imports)")
    parser.add_argument("--timeout", type=float, default=240.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    problem = fluxmembers.real_runtime_problem(fluxmembers.flux_build())
    if problem is not None:
        print(f"bench_members: skipped: {problem}")
        return 0
    clock = RealClock()
    bench_started = clock.now()
    env = LocalEnvironment.start(members="simulated")
    samples: list[Sample] = []
    try:
        kube = env.cluster.admin_client()
        available = meminfo_kib("MemAvailable")  # with the control plane and operator up, no member
        for runtime in ("simulated", "real"):
            if env.member_runtime != runtime:
                env.restart_simulators(runtime)
            for size in sizes:
                for i in range(args.repeats):
                    samples.append(run_member(env, kube, clock, runtime, size, i, args.settle, args.timeout))
        confirmed = confirm(env, kube, clock, args.confirm, args.timeout, args.settle) if args.confirm else None
    finally:
        env.stop()
    print(f"Member cost, real vs simulated, on {os.cpu_count()} cores (Flux Operator: {env.flux_operator_runtime}; "
          f"median of {args.repeats}; a shared machine: expect noise in the seconds)")
    print(table(samples, sizes))
    real_by_size = {size: summarize(samples, "real", size) for size in sizes}
    print("\nWhat a real member runs (RSS MiB by command, last sample of each size):")
    for size in sizes:
        last = [s for s in samples if s.runtime == "real" and s.size == size][-1]
        parts = ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in sorted(last.memory.commands.items(),
                                                                            key=lambda kv: -kv[1]))
        print(f"  size {size}: {parts}")
    service = median([s.service_rss_kib / 1024 for s in samples])
    fits = {size: int(available / 1024 // figures["rss_mib"]) for size, figures in real_by_size.items()}
    print(f"\nFit (computed, not run): MemAvailable {available / 1024:.0f} MiB with the local system up and no member,"
          f" divided by a real member's RSS: " + ", ".join(f"{fits[s]} members of size {s}" for s in sizes)
          + f". Each Ensemble adds its service ({service:.0f} MiB RSS); RSS counts shared pages"
          " (libraries, the member virtualenv) in every process, so PSS-based figures are higher: "
          + ", ".join(f"{int(available / 1024 // real_by_size[s]['pss_mib'])} of size {s} by PSS" for s in sizes)
          + ".")
    if confirmed is not None:
        count = confirmed["members"]
        print(f"Run, to confirm: {count} real members of size 1 in one Ensemble, all up in "
              f"{confirmed['seconds_until_all_up']}s: RSS {confirmed['rss_mib_total']} MiB together "
              f"({confirmed['rss_mib_total'] / count:.0f} per member; {real_by_size.get(1, {}).get('rss_mib', 0):.0f}"
              f" measured alone), PSS {confirmed['pss_mib_total']} MiB, MemAvailable fell "
              f"{confirmed['memavailable_drop_mib']} MiB (other processes on the machine move it too)")
    print(f"\nbench_members took {clock.now() - bench_started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
