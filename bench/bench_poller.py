"""Benchmark: the asyncio poller (AsyncStatusPoller) against the thread-pool StatusPoller, same run.

Goal (issue 16): a round of 10,000 members in under 5 s with p99 call latency under 50 ms.
Each poller runs in its own spawned process, so its CPU per poll and RSS per member are its alone.

A child process serves the member endpoint (controller.member over sim.member's queue) on 1,000
ports of 127.0.0.1 through a handful of gRPC servers, so every member has its own
address and channel, as in a cluster, and the servers do not share the poller's GIL.
The same run measures the naive baseline: sequential calls, a fresh channel each.
A second round adds a few hung members (they answer after the deadline), the case
that makes sequential polling miss its heartbeat.

Each pooled row states the poller's CPU per poll and the process's RSS per member (over the
RSS before the poller existed). At 10,000 members one server process would need more file
descriptors than a process may hold (a listener and a connection per member) and would be the
bottleneck itself: ``--server-processes`` spreads the members over several.

    .venv/bin/python bench/bench_poller.py [--members 1000] [--servers 4] [--workers 64] [--hung 10]
        [--server-processes 1]   # 10,000 members: --members 10000 --server-processes 4
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "hack")]

import grpc  # noqa: E402

from controller.clock import RealClock  # noqa: E402
from controller.member.jobgroups import JobGroup  # noqa: E402
from controller.member.servicer import MemberServicer  # noqa: E402
from sim.member.simulator import SimulatedFlux  # noqa: E402
from controller.proto import ensemble_service_pb2 as pb  # noqa: E402
from controller.proto import ensemble_service_pb2_grpc as pb_grpc  # noqa: E402
from controller.proto.wire import MINICLUSTER_MEMBER  # noqa: E402
from controller.reconcilers.aiopoller import AsyncStatusPoller  # noqa: E402
from controller.reconcilers.poller import PollKey, PollResult, PollTarget, StatusPoller  # noqa: E402

POLLERS: dict[str, type[StatusPoller]] = {"asyncio": AsyncStatusPoller, "threads": StatusPoller}


class HungMember(pb_grpc.EnsembleOperatorServicer):
    """A lead broker that stopped answering: replies only after the caller gave up."""

    def RequestStatus(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.Response:
        time.sleep((context.time_remaining() or 0) + 0.1)
        return pb.Response(status=pb.Response.SUCCESS, payload="{}")


# A member endpoint answers only for its own name, and one server here stands for many members:
# each simulated member is its own Ensemble's member 0, named alike.
MEMBER = "member-0"


def serve(members: int, servers: int, hung: int, ready: Connection) -> None:
    """Child process: ``servers`` gRPC servers sharing ``members`` ports plus ``hung`` hung ones."""
    flux = SimulatedFlux({"sim": JobGroup("sim", "sleep 30", 200, 1, 30.0)}, nodes=4, clock=RealClock())
    flux.submit("sim", 200)
    running, ports = [], []
    for index in range(servers):
        server = grpc.server(ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_EnsembleOperatorServicer_to_server(MemberServicer(flux, MEMBER), server)
        for _ in range(index, members, servers):
            ports.append(server.add_insecure_port("127.0.0.1:0"))
        server.start()
        running.append(server)
    hung_server = grpc.server(ThreadPoolExecutor(max_workers=max(1, hung)))
    pb_grpc.add_EnsembleOperatorServicer_to_server(HungMember(), hung_server)
    hung_ports = [hung_server.add_insecure_port("127.0.0.1:0") for _ in range(hung)]
    hung_server.start()
    running.append(hung_server)
    ready.send((ports, hung_ports))
    ready.recv()  # block until the parent is done
    for server in running:
        server.stop(None)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(label: str, latencies: list[float], elapsed: float, failures: int) -> dict:
    row = {
        "mode": label,
        "polls": len(latencies),
        "failures": failures,
        "seconds": round(elapsed, 3),
        "polls_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }
    print(f"{label:<34} {row['polls']:>6} polls {row['seconds']:>7.2f}s {row['polls_per_s']:>8.1f}/s "
          f"p50 {row['p50_ms']:>7.2f}ms p99 {row['p99_ms']:>7.2f}ms failures {failures}")
    return row


def baseline(targets: list[PollTarget], timeout: float, label: str = "baseline: sequential, fresh channel") -> dict:
    """Sequential RequestStatus with a new channel per call: what a naive reconciler does."""
    latencies, failures = [], 0
    started = time.perf_counter()
    for target in targets:
        call_started = time.perf_counter()
        with grpc.insecure_channel(target.address) as channel:
            try:
                pb_grpc.EnsembleOperatorStub(channel).RequestStatus(
                    pb.StatusRequest(member=MINICLUSTER_MEMBER, name=target.key[2]), timeout=timeout)
            except grpc.RpcError:
                failures += 1
        latencies.append(time.perf_counter() - call_started)
    return summarize(label, latencies, time.perf_counter() - started, failures)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pooled(poller: StatusPoller, targets: list[PollTarget], label: str, rss_before: int) -> dict:
    started, cpu = time.perf_counter(), cpu_seconds()
    results = poller.poll(targets)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    row = summarize(label, [r.latency for r in results.values()], elapsed,
                    sum(not r.ok for r in results.values()))
    row["cpu_ms_per_poll"] = round(1000 * cpu / max(1, len(targets)), 3)
    row["rss_kib_per_member"] = round((rss_kib() - rss_before) / max(1, len(targets)), 1)
    print(f"{'':<34} poller CPU {row['cpu_ms_per_poll']:.3f} ms per poll, "
          f"RSS {row['rss_kib_per_member']:.1f} KiB per member")
    return row


def background(poller: StatusPoller, targets: list[PollTarget], seconds: float, received: list[PollResult]) -> dict:
    """Registered targets on their heartbeat; counts results delivered within ``seconds``."""
    received.clear()
    started = time.perf_counter()
    for target in targets:
        poller.register(target)
    poller.start()
    time.sleep(seconds)  # the benchmark's measuring window, not a wait for behaviour
    snapshot = list(received)
    return summarize(f"background, heartbeat {targets[0].heartbeat:g}s, {seconds:g}s",
                     [r.latency for r in snapshot], time.perf_counter() - started,
                     sum(not r.ok for r in snapshot))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=64, help="threads of the thread-pool poller")
    parser.add_argument("--async-limit", type=int, default=256, help="calls in flight of the asyncio poller")
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--background-seconds", type=float, default=6.0)
    parser.add_argument("--hung", type=int, default=10, help="members that never answer in time")
    parser.add_argument("--server-processes", type=int, default=1,
                        help="processes serving the members (each with --servers gRPC servers)")
    args = parser.parse_args()

    processes = max(1, args.server_processes)
    pipes, servers = [], []
    for index in range(processes):
        parent, child = multiprocessing.Pipe()
        share = len(range(index, args.members, processes))
        server = multiprocessing.Process(
            target=serve, args=(share, args.servers, args.hung if index == 0 else 0, child), daemon=True)
        server.start()
        pipes.append(parent)
        servers.append(server)
    ports, hung_ports = [], []
    for parent in pipes:
        some_ports, some_hung = parent.recv()
        ports += some_ports
        hung_ports += some_hung
    targets = [PollTarget(("bench", f"ens-{i}", MEMBER), f"127.0.0.1:{port}", heartbeat=args.heartbeat)
               for i, port in enumerate(ports)]
    # the hung members replace healthy ones, so the round still has ``members`` polls
    with_hung = targets[len(hung_ports):] + [
        PollTarget(("bench", f"hung-{i}", MEMBER), f"127.0.0.1:{port}", heartbeat=args.heartbeat)
        for i, port in enumerate(hung_ports)]
    print(f"{args.members} members on {len(set(ports))} ports, {processes} x {args.servers} servers, "
          f"heartbeat {args.heartbeat:g}s")
    try:
        rows = [baseline(targets, args.timeout)]
        if hung_ports:
            rows.append(baseline(with_hung, args.timeout, f"baseline, {len(hung_ports)} hung"))
        for kind in ("asyncio", "threads"):
            workers = args.async_limit if kind == "asyncio" else args.workers
            print(f"-- {kind} poller, {workers} {'calls in flight' if kind == 'asyncio' else 'threads'} "
                  f"(own process: CPU and RSS are its alone)")
            rows += measured_apart(kind, workers, targets, with_hung, len(hung_ports), args)
    finally:
        for parent, server in zip(pipes, servers):
            parent.send("stop")
            server.join(10)

    by_mode = {row["mode"]: row for row in rows}
    new, old = by_mode["asyncio: warm channels"], by_mode["threads: warm channels"]
    new_hung = by_mode.get(f"asyncio: {len(hung_ports)} hung", new)
    verdict = {
        "goal": "round < 5 s and p99 < 50 ms",
        "asyncio_meets_goal": new["seconds"] < 5 and new["p99_ms"] < 50 and new["failures"] == 0,
        "threads_meets_goal": old["seconds"] < 5 and old["p99_ms"] < 50 and old["failures"] == 0,
        "asyncio_fits_heartbeat_with_hung": new_hung["seconds"] < args.heartbeat,
        "heartbeat_s": args.heartbeat,
        "asyncio_speedup_vs_threads": round(new["polls_per_s"] / old["polls_per_s"], 2),
        "rows": rows,
    }
    for label, row in (("asyncio", new), ("threads", old)):
        print(f"{label:>8}: round of {row['polls']} polls {row['seconds']:.2f}s, p99 {row['p99_ms']:.1f}ms, "
              f"CPU {row['cpu_ms_per_poll']:.3f} ms/poll, RSS {row['rss_kib_per_member']:.1f} KiB/member")
    print(json.dumps(verdict))
    met = verdict["asyncio_meets_goal"] and verdict["asyncio_fits_heartbeat_with_hung"]
    print(f"goal (round < 5 s, p99 < 50 ms at this size): {'met' if met else 'MISSED'}")
    return 0  # a figure to read, like the other benches: make bench runs them all


def measure(kind: str, workers: int, targets: list[PollTarget], with_hung: list[PollTarget], hung: int,
            timeout: float, background_seconds: float, out: Connection) -> None:
    """Child process: one poller's rounds (cold, warm, warm again, hung, background)."""
    received: list[PollResult] = []

    def on_result(key: PollKey, result: PollResult) -> None:
        received.append(result)

    rss_before = rss_kib()
    poller = POLLERS[kind](clock=RealClock(), on_result=on_result, max_workers=workers, call_timeout=timeout)
    try:
        rows = [pooled(poller, targets, f"{kind}: cold channels", rss_before),
                pooled(poller, targets, f"{kind}: warm channels", rss_before),
                pooled(poller, targets, f"{kind}: warm channels (again)", rss_before)]
        if hung:
            rows.append(pooled(poller, with_hung, f"{kind}: {hung} hung", rss_before))
        short = [PollTarget(t.key, t.address, heartbeat=background_seconds / 2) for t in targets]
        rows.append(background(poller, short, background_seconds, received))
        rows[-1]["mode"] = f"{kind}: {rows[-1]['mode']}"
    finally:
        poller.stop()
    out.send(rows)


def measured_apart(kind: str, workers: int, targets: list[PollTarget], with_hung: list[PollTarget],
                   hung: int, args: argparse.Namespace) -> list[dict]:
    """Run ``measure`` in a fresh (spawned) process, so neither poller's CPU or memory counts for the other."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=measure, args=(kind, workers, targets, with_hung, hung, args.timeout,
                                                     args.background_seconds, child))
    process.start()
    rows = parent.recv()
    process.join(30)
    return rows


if __name__ == "__main__":
    sys.exit(main())
