"""Benchmark: the operator's status poller (AsyncStatusPoller, asyncio) against the thread-pool
StatusPoller and sequential polling, same run.

Goal (issue 16): a round of 10,000 members in under 5 s with p99 call latency under 50 ms, hung
members not holding up the others. Each poller runs in its own spawned process, so its CPU per poll
and RSS per member are its alone.

The members: every member has its own port of 127.0.0.1 (its own address and channel, as in a
cluster). By default they are served by the grpc-go member stub (bench/memberstub, built by
hack/build-memberstub.sh into the cache), a real gRPC server answering RequestStatus with the
bytes the Python member servicer sends over a simulated Flux queue; ``--members-on python`` serves
them with grpc.aio servers instead. In a cluster members answer on their own nodes; here they share
the two cores with the poller, and Python servers used ~0.4-0.5 ms of CPU per poll, as much as the
poller itself, so the rounds measured the machine more than the poller. Every row states the
member side's CPU per poll next to the poller's.

The same run measures the naive baseline: sequential calls, a fresh channel each. A second round
swaps in a few hung members (they answer 100 ms after the deadline), the case that makes
sequential polling miss its heartbeat. Each pooled row states the poller's CPU per poll and the
process's RSS per member (over the RSS before the poller existed). At 10,000 members one server
process would need more file descriptors than a process may hold (a listener and a connection per
member): ``--server-processes`` spreads the members over several.

    .venv/bin/python bench/bench_poller.py [--members 1000] [--workers 64] [--async-limit 16]
        [--hung 10] [--server-processes 1] [--members-on go|python]
        # 10,000 members: --members 10000 --server-processes 4
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "hack")]

import grpc  # noqa: E402
from grpc import aio  # noqa: E402

from controller.clock import RealClock  # noqa: E402
from controller.member.jobgroups import JobGroup  # noqa: E402
from controller.member.servicer import MemberServicer  # noqa: E402
from sim.member.simulator import SimulatedFlux  # noqa: E402
from controller.proto import ensemble_service_pb2 as pb  # noqa: E402
from controller.proto import ensemble_service_pb2_grpc as pb_grpc  # noqa: E402
from controller.proto.limits import message_size_options  # noqa: E402
from controller.proto.wire import MINICLUSTER_MEMBER  # noqa: E402
from controller.reconcilers.aiopoller import AsyncStatusPoller  # noqa: E402
from controller.reconcilers.poller import PollKey, PollResult, PollTarget, StatusPoller  # noqa: E402

POLLERS: dict[str, type[StatusPoller]] = {"asyncio": AsyncStatusPoller, "threads": StatusPoller}


class PreparedMember(pb_grpc.EnsembleOperatorServicer):
    """A member endpoint on grpc.aio that answers its own name with a reply prepared once.

    The reply is the real ``MemberServicer``'s over a simulated Flux queue, bytes for bytes, so
    the poller decodes and validates what a member sends; only the per-call simulation is left
    out. In a cluster each member answers on its own node: here the members share the poller's
    two cores, so the cheaper they answer, the more of the CPU is the poller's (each row states
    the member side's CPU per poll).
    """

    def __init__(self, servicer: MemberServicer) -> None:
        self._servicer = servicer
        self._reply = servicer.RequestStatus(pb.StatusRequest(member=MINICLUSTER_MEMBER, name=MEMBER),
                                             cast(grpc.ServicerContext, None))

    async def RequestStatus(self, request: pb.StatusRequest, context: aio.ServicerContext) -> pb.Response:
        if request.name == MEMBER:
            return self._reply
        return self._servicer.RequestStatus(request, cast(grpc.ServicerContext, context))  # refused


class HungMember(pb_grpc.EnsembleOperatorServicer):
    """A lead broker that stopped answering: replies only after the caller gave up."""

    async def RequestStatus(self, request: pb.StatusRequest, context: aio.ServicerContext) -> pb.Response:
        await asyncio.sleep((context.time_remaining() or 0) + 0.1)
        return pb.Response(status=pb.Response.SUCCESS, payload="{}")


# A member endpoint answers only for its own name, and one server here stands for many members:
# each simulated member is its own Ensemble's member 0, named alike.
MEMBER = "member-0"


def serve(members: int, servers: int, hung: int, ready: Connection) -> None:
    """Child process: ``servers`` grpc.aio servers sharing ``members`` ports plus ``hung`` hung ones."""
    asyncio.run(_serve(members, servers, hung, ready))


async def _serve(members: int, servers: int, hung: int, ready: Connection) -> None:
    flux = SimulatedFlux({"sim": JobGroup("sim", "sleep 30", 200, 1, 30.0)}, nodes=4, clock=RealClock())
    flux.submit("sim", 200)
    member = PreparedMember(MemberServicer(flux, MEMBER))
    running, ports = [], []
    for index in range(servers):
        server = aio.server(options=message_size_options())
        pb_grpc.add_EnsembleOperatorServicer_to_server(member, server)
        for _ in range(index, members, servers):
            ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        running.append(server)
    hung_server = aio.server(options=message_size_options())
    pb_grpc.add_EnsembleOperatorServicer_to_server(HungMember(), hung_server)
    hung_ports = [hung_server.add_insecure_port("127.0.0.1:0") for _ in range(hung)]
    await hung_server.start()
    running.append(hung_server)
    ready.send((ports, hung_ports))
    await asyncio.get_running_loop().run_in_executor(None, ready.recv)  # until the parent is done
    for server in running:
        await server.stop(None)


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far (the member servers)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Members:
    """The member servers running: their ports, processes (for their CPU) and how to stop them."""

    ports: list[int]
    hung_ports: list[int]
    pids: list[int]
    description: str
    stop: Callable[[], None]


def shares(args: argparse.Namespace) -> list[int]:
    """Members per server process; the first process also serves the hung members."""
    processes = max(1, args.server_processes)
    return [len(range(index, args.members, processes)) for index in range(processes)]


def prepared_replies() -> tuple[bytes, bytes, bytes]:
    """The status request a member answers, the real servicer's reply to it over a simulated Flux
    queue, and its reply to a request naming another member (each serialized)."""
    flux = SimulatedFlux({"sim": JobGroup("sim", "sleep 30", 200, 1, 30.0)}, nodes=4, clock=RealClock())
    flux.submit("sim", 200)
    servicer = MemberServicer(flux, MEMBER)
    request = pb.StatusRequest(member=MINICLUSTER_MEMBER, name=MEMBER)
    other = pb.StatusRequest(member=MINICLUSTER_MEMBER, name="another-member")
    no_context = cast(grpc.ServicerContext, None)
    refusals = logging.getLogger(MemberServicer.__module__)
    level = refusals.level
    refusals.setLevel(logging.ERROR)  # the refusal prepared here is no news
    try:
        return (request.SerializeToString(), servicer.RequestStatus(request, no_context).SerializeToString(),
                servicer.RequestStatus(other, no_context).SerializeToString())
    finally:
        refusals.setLevel(level)


def start_stub_members(args: argparse.Namespace) -> Members:
    """``--server-processes`` grpc-go member stubs answering the prepared replies."""
    binary = subprocess.run([str(ROOT / "hack" / "build-memberstub.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()
    request, reply, denied = prepared_replies()
    processes = [subprocess.Popen([binary, "-ports", str(share), "-hung", str(args.hung if index == 0 else 0),
                                   "-request", request.hex(), "-reply", reply.hex(), "-denied", denied.hex()],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for index, share in enumerate(shares(args))]
    ports, hung_ports = [], []
    for process in processes:
        assert process.stdout is not None
        listening = json.loads(process.stdout.readline())
        ports += listening["ports"]
        hung_ports += listening["hung"]

    def stop() -> None:
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(10)

    return Members(ports, hung_ports, [process.pid for process in processes],
                   f"{len(processes)} grpc-go member stub processes", stop)


def start_python_members(args: argparse.Namespace) -> Members:
    """``--server-processes`` processes of ``--servers`` grpc.aio servers each (``serve``)."""
    pipes, servers = [], []
    for index, share in enumerate(shares(args)):
        parent, child = multiprocessing.Pipe()
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

    def stop() -> None:
        for parent, server in zip(pipes, servers):
            parent.send("stop")
            server.join(10)

    return Members(ports, hung_ports, [server.pid for server in servers if server.pid is not None],
                   f"{len(servers)} x {args.servers} grpc.aio servers (Python)", stop)


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


def pooled(poller: StatusPoller, targets: list[PollTarget], label: str, rss_before: int,
           member_pids: list[int]) -> dict:
    started, cpu, members_cpu = time.perf_counter(), cpu_seconds(), process_cpu_seconds(member_pids)
    results = poller.poll(targets)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    members_cpu = process_cpu_seconds(member_pids) - members_cpu
    row = summarize(label, [r.latency for r in results.values()], elapsed,
                    sum(not r.ok for r in results.values()))
    row["cpu_ms_per_poll"] = round(1000 * cpu / max(1, len(targets)), 3)
    row["member_cpu_ms_per_poll"] = round(1000 * members_cpu / max(1, len(targets)), 3)
    row["rss_kib_per_member"] = round((rss_kib() - rss_before) / max(1, len(targets)), 1)
    print(f"{'':<34} poller CPU {row['cpu_ms_per_poll']:.3f} ms per poll, "
          f"RSS {row['rss_kib_per_member']:.1f} KiB per member; "
          f"member servers' CPU {row['member_cpu_ms_per_poll']:.3f} ms per poll")
    unexpected = failure_reasons(result for key, result in results.items() if key[1].startswith("ens-"))
    if unexpected:  # a member that is not hung failed: say why (a cold call's deadline under load?)
        row["failures_not_hung"] = unexpected
        print(f"{'':<34} members not hung that failed: "
              + "; ".join(f"{count} x {reason}" for reason, count in unexpected.items()))
    others = [result.latency for key, result in results.items() if key[1].startswith("ens-")]
    if len(others) < len(results):  # hung members in the round: are the others held up?
        row["others_p99_ms"] = round(percentile(others, 0.99) * 1000, 2)
        print(f"{'':<34} the {len(others)} members not hung: p99 {row['others_p99_ms']:.2f}ms")
    return row


def failure_reasons(results: Iterable[PollResult]) -> dict[str, int]:
    """How many failed polls, by reason: the error with its address left out, and the slowest
    latency (a deadline is told from a refusal by it)."""
    reasons: dict[str, int] = {}
    slowest: dict[str, float] = {}
    for result in results:
        if not result.ok:
            reason = (result.error or "?").removeprefix(f"{result.address}: ")
            reasons[reason] = reasons.get(reason, 0) + 1
            slowest[reason] = max(slowest.get(reason, 0.0), result.latency)
    return {f"{reason} (slowest {slowest[reason] * 1000:.0f} ms)": count for reason, count in reasons.items()}


def background(poller: StatusPoller, targets: list[PollTarget], seconds: float, received: list[PollResult],
               member_pids: list[int]) -> dict:
    """Registered targets on their heartbeat (the operator's path: scheduler, calls, booking,
    callback); counts results delivered within ``seconds``."""
    received.clear()
    started, cpu, members_cpu = time.perf_counter(), cpu_seconds(), process_cpu_seconds(member_pids)
    for target in targets:
        poller.register(target)
    poller.start()
    time.sleep(seconds)  # the benchmark's measuring window, not a wait for behaviour
    snapshot = list(received)
    cpu, members_cpu = cpu_seconds() - cpu, process_cpu_seconds(member_pids) - members_cpu
    row = summarize(f"background, heartbeat {targets[0].heartbeat:g}s, {seconds:g}s",
                    [r.latency for r in snapshot], time.perf_counter() - started,
                    sum(not r.ok for r in snapshot))
    row["cpu_ms_per_poll"] = round(1000 * cpu / max(1, len(snapshot)), 3)
    row["member_cpu_ms_per_poll"] = round(1000 * members_cpu / max(1, len(snapshot)), 3)
    print(f"{'':<34} poller CPU {row['cpu_ms_per_poll']:.3f} ms per poll; "
          f"member servers' CPU {row['member_cpu_ms_per_poll']:.3f} ms per poll")
    if failed := failure_reasons(snapshot):
        row["failures_not_hung"] = failed
        print(f"{'':<34} failed: " + "; ".join(f"{count} x {reason}" for reason, count in failed.items()))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=64, help="threads of the thread-pool poller")
    parser.add_argument("--async-limit", type=int, default=16, help="calls in flight of the asyncio poller")
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--background-seconds", type=float, default=6.0)
    parser.add_argument("--hung", type=int, default=10, help="members that never answer in time")
    parser.add_argument("--server-processes", type=int, default=1,
                        help="processes serving the members (at 10,000, several: file descriptors)")
    parser.add_argument("--members-on", choices=("go", "python"), default="go",
                        help="go: the grpc-go member stub (bench/memberstub, built with Go); "
                             "python: grpc.aio servers (each with --servers servers)")
    args = parser.parse_args()

    members = (start_stub_members if args.members_on == "go" else start_python_members)(args)
    ports, hung_ports = members.ports, members.hung_ports
    targets = [PollTarget(("bench", f"ens-{i}", MEMBER), f"127.0.0.1:{port}", heartbeat=args.heartbeat)
               for i, port in enumerate(ports)]
    # the hung members replace healthy ones, so the round still has ``members`` polls
    with_hung = targets[len(hung_ports):] + [
        PollTarget(("bench", f"hung-{i}", MEMBER), f"127.0.0.1:{port}", heartbeat=args.heartbeat)
        for i, port in enumerate(hung_ports)]
    print(f"{args.members} members on {len(set(ports))} ports, {members.description}, "
          f"heartbeat {args.heartbeat:g}s; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        rows = [baseline(targets, args.timeout)]
        if hung_ports:
            rows.append(baseline(with_hung, args.timeout, f"baseline, {len(hung_ports)} hung"))
        for kind in ("asyncio", "threads"):
            workers = args.async_limit if kind == "asyncio" else args.workers
            print(f"-- {kind} poller, {workers} {'calls in flight' if kind == 'asyncio' else 'threads'} "
                  f"(own process: CPU and RSS are its alone)")
            rows += measured_apart(kind, workers, targets, with_hung, len(hung_ports), args, members.pids)
    finally:
        members.stop()

    by_mode = {row["mode"]: row for row in rows}
    new, old = by_mode["asyncio: warm channels"], by_mode["threads: warm channels"]
    new_hung = by_mode.get(f"asyncio: {len(hung_ports)} hung", new)
    verdict = {
        "goal": "round < 5 s and p99 < 50 ms",
        "asyncio_meets_goal": new["seconds"] < 5 and new["p99_ms"] < 50 and new["failures"] == 0,
        "threads_meets_goal": old["seconds"] < 5 and old["p99_ms"] < 50 and old["failures"] == 0,
        "asyncio_fits_heartbeat_with_hung": new_hung["seconds"] < args.heartbeat,
        "asyncio_others_p99_ms_with_hung": new_hung.get("others_p99_ms", new_hung["p99_ms"]),
        "heartbeat_s": args.heartbeat,
        "asyncio_speedup_vs_threads": round(new["polls_per_s"] / old["polls_per_s"], 2),
        "rows": rows,
    }
    for label, row in (("asyncio (operator)", new), ("threads (baseline)", old)):
        print(f"{label:>18}: round of {row['polls']} polls {row['seconds']:.2f}s, p50 {row['p50_ms']:.1f}ms, "
              f"p99 {row['p99_ms']:.1f}ms, CPU {row['cpu_ms_per_poll']:.3f} ms/poll, "
              f"RSS {row['rss_kib_per_member']:.1f} KiB/member; "
              f"members' CPU {row['member_cpu_ms_per_poll']:.3f} ms/poll")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps(verdict))
    met = (verdict["asyncio_meets_goal"] and verdict["asyncio_fits_heartbeat_with_hung"]
           and verdict["asyncio_others_p99_ms_with_hung"] < 50)
    print(f"goal (round < 5 s, p99 < 50 ms at this size): {'met' if met else 'MISSED'}")
    return 0  # a figure to read, like the other benches: make bench runs them all


def measure(kind: str, workers: int, targets: list[PollTarget], with_hung: list[PollTarget], hung: int,
            timeout: float, background_seconds: float, member_pids: list[int], out: Connection) -> None:
    """Child process: one poller's rounds (cold, warm, warm again, hung, background)."""
    received: list[PollResult] = []

    def on_result(key: PollKey, result: PollResult) -> None:
        received.append(result)

    rss_before = rss_kib()
    poller = POLLERS[kind](clock=RealClock(), on_result=on_result, max_workers=workers, call_timeout=timeout)
    try:
        rows = [pooled(poller, targets, f"{kind}: cold channels", rss_before, member_pids),
                pooled(poller, targets, f"{kind}: warm channels", rss_before, member_pids),
                pooled(poller, targets, f"{kind}: warm channels (again)", rss_before, member_pids)]
        if hung:
            rows.append(pooled(poller, with_hung, f"{kind}: {hung} hung", rss_before, member_pids))
        short = [PollTarget(t.key, t.address, heartbeat=background_seconds / 2) for t in targets]
        rows.append(background(poller, short, background_seconds, received, member_pids))
        rows[-1]["mode"] = f"{kind}: {rows[-1]['mode']}"
    finally:
        poller.stop()
    out.send(rows)


def measured_apart(kind: str, workers: int, targets: list[PollTarget], with_hung: list[PollTarget],
                   hung: int, args: argparse.Namespace, member_pids: list[int]) -> list[dict]:
    """Run ``measure`` in a fresh (spawned) process, so neither poller's CPU or memory counts for the other."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=measure, args=(kind, workers, targets, with_hung, hung, args.timeout,
                                                     args.background_seconds, member_pids, child))
    process.start()
    rows = parent.recv()
    process.join(30)
    return rows


if __name__ == "__main__":
    sys.exit(main())
