"""Benchmark: operator memory with 1,000 hostile members sending maximal status replies.

Members are tenants: a process in a member's pod can answer the operator's polls with
whatever it likes. A child process serves 1,000 such members on their own ports of
127.0.0.1; each reply is the largest status the operator accepts (16 KiB: every count at
its maximum, more `waiting` entries and `nextJobs` than are kept, the rest unknown fields),
new on every poll, and every tenth member sends 60 KiB (over the status limit, under the
gRPC one). The real StatusPoller polls them over gRPC, round after round, and the results
go into a PollBook as the reconciler keeps them (latest, published report, the `scale`
algorithm's history window), until that window is full.

The figure is the Python memory that remains (tracemalloc, after a collection), per member.
The named baseline, measured in the same run on the same replies (regenerated locally, not
polled), is the code before the limits: every reply decoded whole, unknown fields included,
and up to 512 kept per member even without an algorithm.

    .venv/bin/python bench/bench_poll_memory.py [--members 1000] [--rounds 30] [--servers 4]
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402

from controller.algorithms import MemberSample, get_algorithm  # noqa: E402
from controller.algorithms.status import MAX_STATUS_BYTES, NODE_FIELDS, QUEUE_FIELDS  # noqa: E402
from tests.fakes import FakeClock  # noqa: E402
from controller.proto import ensemble_service_pb2 as pb  # noqa: E402
from controller.proto import ensemble_service_pb2_grpc as pb_grpc  # noqa: E402
from controller.reconcilers.algorithm import history_seconds  # noqa: E402
from controller.reconcilers.pollbook import PollBook  # noqa: E402
from controller.reconcilers.poller import PollKey, PollTarget, StatusPoller  # noqa: E402

HEARTBEAT = 10.0
OVERSIZED_EVERY = 10
BEFORE_MAX_SAMPLES = 512  # the history cap before this change, kept with or without an algorithm


def hostile_reply(member: int, poll: int) -> str:
    """The largest status the operator accepts (or, for every tenth member, 60 KiB)."""
    top = 2**63 - 1
    status: dict[str, object] = {
        "nodes": dict.fromkeys(NODE_FIELDS, top),
        "queue": dict.fromkeys(QUEUE_FIELDS, top),
        "waiting": {str(999_999 - i): top for i in range(150)},
        "nextJobs": [2**64 - 1 - i for i in range(250)],
        "poll": poll,
    }
    size = 60 * 1024 if member % OVERSIZED_EVERY == OVERSIZED_EVERY - 1 else MAX_STATUS_BYTES
    status["pad"] = ""
    status["pad"] = f"{member}-{poll}-".ljust(size - len(json.dumps(status)), "x")
    return json.dumps(status)


class HostileMember(pb_grpc.EnsembleOperatorServicer):
    def __init__(self) -> None:
        self.polls: dict[str, int] = {}

    def RequestStatus(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.Response:
        poll = self.polls[request.name] = self.polls.get(request.name, 0) + 1
        return pb.Response(status=pb.Response.SUCCESS, payload=hostile_reply(member_number(request.name), poll))


def member_number(name: str) -> int:
    return int(name.removeprefix("e").partition("-")[0])


def serve(members: int, servers: int, ready: Connection) -> None:
    """Child process: ``servers`` gRPC servers (no message limit of ours) sharing the members' ports."""
    running, ports = [], [0] * members
    for index in range(servers):
        server = grpc.server(ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_EnsembleOperatorServicer_to_server(HostileMember(), server)
        for member in range(index, members, servers):
            ports[member] = server.add_insecure_port("127.0.0.1:0")
        server.start()
        running.append(server)
    ready.send(ports)
    ready.recv()
    for server in running:
        server.stop(None)


class BeforePollBook:
    """The poll book before the limits: whole replies, a 512-sample history for every member."""

    def __init__(self) -> None:
        self.latest: dict[PollKey, dict] = {}
        self.history: dict[PollKey, deque[MemberSample]] = {}

    def record(self, key: PollKey, time_: float, status: dict) -> None:
        self.latest[key] = status
        self.history.setdefault(key, deque(maxlen=BEFORE_MAX_SAMPLES)).append(MemberSample(time_, status))


def retained(run: Callable[[], object]) -> tuple[int, object]:
    """Bytes of Python memory still allocated by what ``run`` returns (tracemalloc, after gc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    kept = run()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30,
                        help="polls per member (default 30: fills the scale algorithm's default window)")
    parser.add_argument("--servers", type=int, default=4)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args.members, args.servers, child), daemon=True)
    server.start()
    ports = parent.recv()
    keys: list[PollKey] = [("bench", f"e{i}", f"e{i}-0") for i in range(args.members)]
    targets = [PollTarget(key, f"127.0.0.1:{port}", heartbeat=HEARTBEAT) for key, port in zip(keys, ports)]
    scale = get_algorithm("scale")
    window = history_seconds(scale.parse_options({}), HEARTBEAT)
    clock = FakeClock(start=1_700_000_000.0)
    poller = StatusPoller(clock=clock, max_workers=64, call_timeout=10.0)
    outcomes: dict[bool, dict[str, int]] = {True: {}, False: {}}
    try:
        poller.poll(targets)  # channels dialled before measuring: their cost is grpc's, in C

        def operator(history: bool) -> PollBook:
            book = PollBook()
            for key in keys:
                book.keep_history(key, window if history else None)
            for _ in range(args.rounds):
                clock.step(HEARTBEAT)
                for key, result in poller.poll(targets).items():
                    counts, outcome = outcomes[history], "ok" if result.ok else "refused"
                    counts[outcome] = counts.get(outcome, 0) + 1
                    book.record(key, result)
                    book.publish(key[:2], [key], clock.now(), HEARTBEAT)
                    book.take_history(key, since=clock.wall() - window)
            return book

        started = time.perf_counter()
        with_algorithm, book = retained(lambda: operator(True))
        polled_seconds = time.perf_counter() - started
        without_algorithm, _ = retained(lambda: operator(False))
    finally:
        poller.stop()
        parent.send("done")
        server.join(timeout=10)

    def before() -> BeforePollBook:
        kept = BeforePollBook()
        for poll in range(2, args.rounds + 2):
            for number, key in enumerate(keys):
                payload = hostile_reply(number, poll)
                if len(payload) <= 4 * 1024 * 1024:  # grpcio's default limit, the only one then
                    kept.record(key, float(poll), json.loads(payload))
        return kept

    baseline, _ = retained(before)
    assert isinstance(book, PollBook)
    per_member = {name: value / args.members for name, value in
                  (("with", with_algorithm), ("without", without_algorithm), ("before", baseline))}
    print(f"{args.members} hostile members ({args.members // OVERSIZED_EVERY} sending 60 KiB), "
          f"{args.rounds} polls each over gRPC in {polled_seconds:.1f}s; polls {outcomes[True]}; "
          f"scale window {window:g}s ({book.history_size()} samples kept)")
    print(f"{'operator, scale algorithm':<46} {with_algorithm / 2**20:9.1f} MiB  "
          f"{per_member['with'] / 1024:8.1f} KiB/member")
    print(f"{'operator, no algorithm':<46} {without_algorithm / 2**20:9.1f} MiB  "
          f"{per_member['without'] / 1024:8.1f} KiB/member")
    print(f"{'baseline: before the limits (whole replies)':<46} {baseline / 2**20:9.1f} MiB  "
          f"{per_member['before'] / 1024:8.1f} KiB/member")
    print(f"operator with the scale algorithm keeps {baseline / max(1, with_algorithm):.0f}x less than the "
          f"baseline after {args.rounds} polls; the baseline grows to {BEFORE_MAX_SAMPLES} polls per member, "
          f"the operator stays at its window")
    print(json.dumps({"members": args.members, "rounds": args.rounds, "polls": outcomes[True],
                      "bytes": {"scale_algorithm": with_algorithm, "no_algorithm": without_algorithm,
                                "baseline_before_limits": baseline},
                      "kib_per_member": {k: round(v / 1024, 2) for k, v in per_member.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
