"""Benchmark: the Ensemble reconciler's own CPU per Ensemble, with no API server.

bench_scale.py's ratio to its floor moves by a third between runs on shared cores, and the
floor sends whatever writes ours sends, so only ours' own work (everything but its requests)
can move that ratio. This measures that work alone: the real ``EnsembleReconciler``, wired as
``controller.reconcilers.setup`` wires it (informer stores with their indexes, the written
objects' read-through views, JSON logs at info, the collector tuned), over an in-memory writer
that answers each apply at once and shows it in the stores as an informer would. One thread,
thread CPU time, no sockets: what a change to the reconcile path saves shows here first. The
writer's own answering (a dict copy and a store update per write) is in the figures: ~5% of a
new Ensemble's under cProfile.

Rows, per Ensemble (bench_scale.py's Ensembles, one member unless ``--members``, each member with
its own ensemble.yaml):
- new (the baseline, same run): the first reconcile of a new Ensemble (its 7 creates, the
  status, the Event), what bench_scale.py's ratio measures;
- next: the reconcile after it, nothing to write, its status new since the last reconcile
  (as after our status write);
- unchanged: one more, nothing changed at all (as a resync, or the poll results that arrive
  within one publication window).
``--profile`` prints cProfile's top functions of the new reconciles by cumulative time.

    .venv/bin/python bench/bench_reconcile_cpu.py [--ensembles 400] [--members 1] [--repeats 5] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import os
import pstats
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_scale import ENSEMBLE_YAML, OPERATOR_IMAGE, ensemble  # noqa: E402

from controller.clock import RealClock  # noqa: E402
from controller.informers import Indexer  # noqa: E402
from controller.informers.store import IndexFunc  # noqa: E402
from controller.kube.resources import ENSEMBLES, JOBS, PODS, Resource, for_object  # noqa: E402
from controller.logs import configure  # noqa: E402
from controller.reconcilers import OWNED_RESOURCES, ensemble_caches  # noqa: E402
from controller.reconcilers.clients import Cache  # noqa: E402
from controller.reconcilers.desired import DesiredSettings  # noqa: E402
from controller.reconcilers.ensemble import EnsembleReconciler  # noqa: E402
from controller.runtime.cache import ObjectCache  # noqa: E402
from controller.runtime.gc_tuning import tune_garbage_collector  # noqa: E402
from controller.runtime.reconcile import Request  # noqa: E402
from controller.runtime.writes import WrittenObjects  # noqa: E402

NAMESPACE = "bench"


class _Store:
    """An informer as ObjectCache reads it: only its store."""

    def __init__(self) -> None:
        self.indexer = Indexer()

    def get_indexer(self) -> Indexer:
        return self.indexer

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def has_synced(self) -> bool:
        return True


class InstantWriter:
    """Answers each apply at once, with a resourceVersion (and a uid when it creates), and puts
    the answer in the resource's store as its informer would; counts the writes."""

    def __init__(self, stores: dict[Resource, _Store]) -> None:
        self._stores = stores
        self._versions = itertools.count(1)
        self.writes = 0

    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict:
        self.writes += 1
        meta = obj["metadata"]
        indexer = self._stores[res].indexer
        stored = indexer.get_by_key(f"{meta['namespace']}/{meta['name']}")
        version = str(next(self._versions))
        if subresource == "status":
            assert stored is not None, f"status of {meta['name']}, which is not stored"
            answer = {**stored, "status": obj["status"],
                      "metadata": {**stored["metadata"], "resourceVersion": version}}
        else:
            answer = {**obj, "metadata": {**meta, "resourceVersion": version, "uid": f"uid-{version}"}}
        indexer.upsert(answer)
        return answer

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        raise AssertionError("a new Ensemble's objects are created without a read")

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None:
        raise AssertionError("a new Ensemble's objects are created without a read")

    def delete(self, res: Resource, name: str, namespace: str | None = None, **options: Any) -> dict | None:
        raise AssertionError("nothing is deleted here")


class CountingRecorder:
    def __init__(self) -> None:
        self.events = 0

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        self.events += 1


@dataclass(frozen=True)
class Pass:
    """One pass of reconciles over every Ensemble."""
    cpu_ms_per_ensemble: float
    writes_per_ensemble: float
    events_per_ensemble: float


@dataclass
class Harness:
    reconciler: EnsembleReconciler
    writer: InstantWriter
    recorder: CountingRecorder
    requests: list[Request]
    ensembles: Cache

    def stored(self, request: Request) -> dict | None:
        """The Ensemble as its store shows it now."""
        return self.ensembles.get(request.name, request.namespace)


def build(count: int, members: int = 1) -> Harness:
    """The reconciler wired as setup() wires it (its caches from ensemble_caches), over ``count`` new Ensembles of ``members``
    members each (each member with its own ensemble.yaml) in its cache."""
    stores = {res: _Store() for res in (ENSEMBLES, PODS, JOBS, *OWNED_RESOURCES)}
    clock = RealClock()
    written = WrittenObjects(clock, wake=lambda request: None)
    caches = ensemble_caches(lambda res: ObjectCache(res, {None: stores[res]}), written)
    writer = InstantWriter(stores)
    recorder = CountingRecorder()
    reconciler = EnsembleReconciler(client=writer, caches=caches, events=recorder, clock=clock,
                                    settings=DesiredSettings(operator_image=OPERATOR_IMAGE), written=written)
    requests = []
    for index in range(count):
        body = ensemble(f"e{index}", NAMESPACE)
        first = body["spec"]["members"][0]
        body["spec"]["members"] = [{**first, "ensemble": ENSEMBLE_YAML.format(name=f"e{index}-{member}")}
                                   for member in range(members)]
        body["metadata"].update(uid=f"7d3c{index:08d}-4e5f-4a1b-9c2d-0242ac1200{index % 100:02d}",
                                generation=1, resourceVersion=str(index + 1))
        stores[for_object(body)].indexer.upsert(body)
        requests.append(Request(NAMESPACE, body["metadata"]["name"]))
    return Harness(reconciler, writer, recorder, requests, caches.ensembles)


def run_pass(harness: Harness, profiler: cProfile.Profile | None = None) -> Pass:
    """Reconcile every Ensemble once; thread CPU, writes and Events per Ensemble."""
    writes, events = harness.writer.writes, harness.recorder.events
    reconcile = harness.reconciler.reconcile
    started = time.thread_time()
    if profiler is not None:
        profiler.enable()
    for request in harness.requests:
        reconcile(request)
    if profiler is not None:
        profiler.disable()
    count = len(harness.requests)
    return Pass(round(1000 * (time.thread_time() - started) / count, 4),
                (harness.writer.writes - writes) / count, (harness.recorder.events - events) / count)


ROWS = ("new (baseline)", "next", "unchanged")


def measure(count: int, members: int = 1) -> tuple[Pass, ...]:
    """A pass per row of ROWS: the first three reconciles of ``count`` new Ensembles."""
    harness = build(count, members)
    return tuple(run_pass(harness) for _ in ROWS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ensembles", type=int, default=400)
    parser.add_argument("--members", type=int, default=1, help="members per Ensemble (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions of one pass of new reconciles")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    # The operator logs JSON at info; here the lines go nowhere, their formatting still costs.
    configure("json", "info", stream=open(os.devnull, "w"))
    tune_garbage_collector()
    measure(min(args.ensembles, 50))  # warm-up: first-use caches (compiled schemas, class hints)
    if args.profile:
        profiler = cProfile.Profile()
        run_pass(build(args.ensembles, args.members), profiler)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        return 0
    runs = [measure(args.ensembles, args.members) for _ in range(args.repeats)]
    print(f"reconciler's own CPU, no API server: {args.ensembles} new Ensembles of {args.members} member(s), "
          f"{args.repeats} runs (median, runs; ratio: median of each run's ratio to the baseline)")
    for row, name in enumerate(ROWS):
        passes = [run[row] for run in runs]
        cpu = [p.cpu_ms_per_ensemble for p in passes]
        ratio = statistics.median(run[row].cpu_ms_per_ensemble / run[0].cpu_ms_per_ensemble for run in runs)
        print(f"  {name:15s} {statistics.median(cpu):.3f} ms per Ensemble ({' '.join(f'{c:.3f}' for c in cpu)}), "
              f"{ratio:.2f}x; writes {passes[0].writes_per_ensemble:g}, Events {passes[0].events_per_ensemble:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
