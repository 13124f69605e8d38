"""Benchmark: Ensemble status writes per minute caused by poll results, at 10,000 members.

The real EnsembleReconciler (its MemberObserver and PollBook) runs offline on a fake clock:
1,000 Ensembles of 10 members each (heartbeat 10 s), every member's lead broker answering
each heartbeat with a new report (a busy queue: the worst case), the members' polls spread
at random over the heartbeat as the poller's are. Each poll result enqueues its Ensemble's
reconcile at once, as the controller does, and each reconcile's ``requeue_after`` is kept
as a delaying workqueue keeps it (the earliest pending one wins). Each Ensemble has its own
in-memory API that counts status applies (one shared fake API would make every cache lookup
scan 100,000 objects; the windows are per Ensemble, so nothing is lost).

The named baseline, measured in the same run on the same polls, is the publication before
this change: each member's report refreshed on its own once an interval separated it from
the shown one, so an Ensemble whose members answer at different times wrote once per member
per heartbeat. The first poll of each member (which turns it Running: a phase change, written
at once in both modes) is made before measuring.

Full scale (1,000 x 10) drives the reconciler's publication step on the operator's PollBook
(a full reconcile costs ~10-30 ms with the test fakes: 340,000 of them would take hours);
a sample of Ensembles (``--reconciled``) goes through the real EnsembleReconciler, counting
its status applies, and must give the same writes per Ensemble.

Measured (2 cores shared with other jobs; the counts are deterministic for a seed, twice
alike): at 10,000 members 60,000 status writes/min before, 6,000 after (10x fewer; the
bound, one per Ensemble per 10 s window, is 6,000/min); the 5 x 10 real-reconciler sample
agrees, 60.00 -> 6.00 writes per Ensemble per minute, at most 1 by one Ensemble in a window.

    .venv/bin/python bench/bench_status_writes.py [--ensembles 1000] [--members 10] [--minutes 5]
"""
from __future__ import annotations

import argparse
import heapq
import json
import logging
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.kube.resources import ENSEMBLES, PODS  # noqa: E402
from controller.reconcilers.desired import DesiredSettings  # noqa: E402
from controller.reconcilers.ensemble import MIN_REQUEUE_SECONDS, EnsembleReconciler  # noqa: E402
from controller.reconcilers.members import MIN_PUBLISH_SECONDS  # noqa: E402
from controller.reconcilers.pollbook import EnsembleKey, PollBook  # noqa: E402
from controller.reconcilers.poller import PollKey, PollResult  # noqa: E402
from controller.runtime.reconcile import Request  # noqa: E402
from tests.fakes import FakeClock  # noqa: E402
from tests.unit.fakes.reconciler import (FakeApi, FakePoller, FakeRecorder, fake_caches, lead_pod,  # noqa: E402
                                         make_ensemble, member)

HEARTBEAT = 10.0
NAMESPACE = "ns"  # the fakes' lead pods live here


class PerMemberPollBook(PollBook):
    """The baseline: each member's report refreshed on its own, ``interval`` after the shown one."""

    def publish(self, ensemble: EnsembleKey, keys: Iterable[PollKey], now: float, interval: float) -> None:
        with self._lock:
            for key in keys:
                shown, newest = self._published.get(key), self._last_ok.get(key)
                if newest is not None and (shown is None or newest.time - shown.time >= interval):
                    self._published[key] = newest

    def next_publish(self, ensemble: EnsembleKey, keys: Iterable[PollKey], now: float) -> float | None:
        return None  # the baseline only came back with the heartbeat


class ReconciledEnsemble:
    """One Ensemble, its own counting API and the real reconciler: status applies counted."""

    def __init__(self, name: str, members: int, clock: FakeClock, baseline: bool) -> None:
        self.request = Request(NAMESPACE, name)
        self.api = FakeApi()
        self.reconciler = EnsembleReconciler(client=self.api, caches=fake_caches(self.api), events=FakeRecorder(),
                                             clock=clock, settings=DesiredSettings(member_status_port=7000),
                                             poller=FakePoller())
        if baseline:
            self.reconciler.members.polls = PerMemberPollBook()
        self.clock = clock
        self.write_times: list[float] = []
        ensemble = make_ensemble([member(1) for _ in range(members)], name=name)
        ensemble["spec"]["heartbeat"] = int(HEARTBEAT)
        self.api.put(ENSEMBLES, ensemble)
        self.reconcile()
        for index in range(members):
            self.api.put(PODS, lead_pod(f"{name}-{index}", ip=address(index).partition(":")[0]))
        self.reconcile()

    def reconcile(self) -> float | None:
        requeue = self.reconciler.reconcile(self.request).requeue_after
        writes = sum(1 for w in self.api.writes if w[0] == "apply" and w[5] == "status")
        self.write_times.extend([self.clock.now()] * writes)
        self.api.writes.clear()
        return requeue

    def poll(self, index: int, number: int) -> float | None:
        """Member ``index`` answers its ``number``th poll with a new report; its reconcile runs."""
        self.reconciler.record_poll((NAMESPACE, self.request.name, f"{self.request.name}-{index}"),
                                    report(self.clock, index, number))
        return self.reconcile()


class PublishedEnsemble:
    """One Ensemble as the reconciler drives the operator's one PollBook (shared by all):
    each reconcile publishes (``PollBook.publish``) and requeues as ``EnsembleReconciler``
    does, and a write is counted when a shown report changed (each report is new, so the
    status differs exactly then). Fast enough for 10,000 members; ``ReconciledEnsemble``
    checks it against the real reconciler's applies."""

    def __init__(self, name: str, members: int, clock: FakeClock, book: PollBook) -> None:
        self.ensemble: EnsembleKey = (NAMESPACE, name)
        self.keys = [(NAMESPACE, name, f"{name}-{index}") for index in range(members)]
        self.clock, self.book = clock, book
        self.shown: list[float | None] = [None] * members
        self.write_times: list[float] = []

    def reconcile(self) -> float | None:
        now = self.clock.now()
        self.book.publish(self.ensemble, self.keys, now, max(HEARTBEAT, MIN_PUBLISH_SECONDS))
        shown = [None if result is None else result.time for result in map(self.book.published, self.keys)]
        if shown != self.shown:
            self.shown = shown
            self.write_times.append(now)
        wait = self.book.next_publish(self.ensemble, self.keys, now)
        return HEARTBEAT if wait is None else max(min(wait, HEARTBEAT), MIN_REQUEUE_SECONDS)

    def poll(self, index: int, number: int) -> float | None:
        self.book.record(self.keys[index], report(self.clock, index, number))
        return self.reconcile()


def address(index: int) -> str:
    return f"10.0.{index // 250}.{index % 250 + 1}:7000"


def report(clock: FakeClock, index: int, number: int) -> PollResult:
    """A successful poll whose report is new (the queue keeps changing)."""
    return PollResult(True, clock.wall(), address(index), 0.01, 0,
                      {"queue": {"run": number}, "nodes": {"node_up_count": 1}})


def simulate(*, ensembles: int, members: int, minutes: float, baseline: bool, reconciled: bool,
             seed: int) -> dict:
    """Status writes during ``minutes`` of steady polling (after every member's first answer)."""
    clock = FakeClock()
    rng = random.Random(seed)
    book = PerMemberPollBook() if baseline else PollBook()
    fleet: list[ReconciledEnsemble] | list[PublishedEnsemble] = (
        [ReconciledEnsemble(f"e{number}", members, clock, baseline) for number in range(ensembles)] if reconciled
        else [PublishedEnsemble(f"e{number}", members, clock, book) for number in range(ensembles)])
    events: list[tuple[float, int, int, int]] = []  # (time, ensemble, member or -1 for a requeue, poll number)
    pending: dict[int, float] = {}                   # each Ensemble's earliest delayed reconcile

    def requeue(number: int, after: float | None) -> None:
        if after is None:
            return
        due = clock.now() + after
        if number not in pending or due < pending[number]:
            pending[number] = due
            heapq.heappush(events, (due, number, -1, 0))

    start = clock.now()
    for number in range(ensembles):
        for index in range(members):
            heapq.heappush(events, (start + rng.uniform(0, HEARTBEAT), number, index, 1))
    end = start + HEARTBEAT + minutes * 60
    measured_from = start + HEARTBEAT   # every member answered once: all Running
    reconciles = 0
    started = time.perf_counter()
    while events and events[0][0] < end:
        due, number, index, poll = heapq.heappop(events)
        clock.step(due - clock.now())
        ensemble = fleet[number]
        if index < 0:
            if pending.get(number) != due:
                continue                             # superseded by an earlier requeue
            del pending[number]
            requeue(number, ensemble.reconcile())
        else:
            requeue(number, ensemble.poll(index, poll))
            heapq.heappush(events, (due + HEARTBEAT, number, index, poll + 1))
        reconciles += 1
    measured = [[t for t in ensemble.write_times if t >= measured_from] for ensemble in fleet]
    total = sum(len(times) for times in measured)
    return {"status_writes": total, "per_minute": total / minutes,
            "max_per_ensemble_per_window": max(most_within(times, max(HEARTBEAT, 10.0)) for times in measured),
            "reconciles": reconciles,
            "seconds": round(time.perf_counter() - started, 1)}


def most_within(times: list[float], span: float) -> int:
    """The most of ``times`` (sorted) inside any ``span`` seconds (a poll ``span`` after
    another, give or take float rounding, is in the next window)."""
    most, first = 0, 0
    for last, time_ in enumerate(times):
        while time_ - times[first] >= span - 1e-6:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ensembles", type=int, default=1000)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--reconciled", type=int, default=5,
                        help="Ensembles driven through the real reconciler to check the full-scale figures")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    runs = {(mode, reconciled): simulate(ensembles=args.reconciled if reconciled else args.ensembles,
                                         members=args.members, minutes=args.minutes, baseline=mode == "baseline",
                                         reconciled=reconciled, seed=args.seed)
            for reconciled in (False, True) for mode in ("baseline", "windowed")}
    total = args.ensembles * args.members
    print(f"heartbeat {HEARTBEAT:g} s, {args.minutes:g} simulated minutes, a new report on every poll")
    for (mode, reconciled), result in runs.items():
        ensembles = args.reconciled if reconciled else args.ensembles
        label = (f"{'baseline: per-member' if mode == 'baseline' else 'per-Ensemble window'}, "
                 f"{ensembles} x {args.members} {'real reconciler' if reconciled else 'PollBook'}")
        print(f"{label:<52} {result['per_minute']:9.0f} status writes/min "
              f"({result['per_minute'] / ensembles:5.2f} per Ensemble; at most "
              f"{result['max_per_ensemble_per_window']} by one Ensemble in a window; "
              f"{result['reconciles']} reconciles in {result['seconds']} s)")
    before, after = runs[("baseline", False)]["per_minute"], runs[("windowed", False)]["per_minute"]
    print(f"at {total} members: {before:.0f} -> {after:.0f} status writes/min ({before / max(1.0, after):.1f}x "
          f"fewer); the bound is {args.ensembles * 60 / max(HEARTBEAT, MIN_PUBLISH_SECONDS):.0f}/min "
          f"(one per Ensemble per window)")
    print(json.dumps({"ensembles": args.ensembles, "members": args.members, "minutes": args.minutes,
                      "heartbeat": HEARTBEAT, "reconciled_ensembles": args.reconciled,
                      "runs": {f"{mode}{'_reconciled' if reconciled else ''}": result
                               for (mode, reconciled), result in runs.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
