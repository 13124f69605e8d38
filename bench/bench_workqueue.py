"""Benchmark: work-queue throughput (add -> get -> done) and queue latency.

One producer adds as fast as it can while four workers take and finish items, once
with every add distinct and once with heavy de-duplication (many adds over few
keys). The same run measures a plain ``queue.Queue`` with the same producer and
workers as the baseline; ratio = ours / baseline. Throughput counts *adds* per
second until every worker has finished, so de-duplication shows up as a gain.
Each figure is from the median-throughput run of ``--repeats`` (threads are noisy).
Latency is add-to-get: ours through the ``workqueue_queue_duration_seconds`` hook
(metrics on, as in the controller), the baseline by timestamping each put.

    .venv/bin/python bench/bench_workqueue.py [--adds 100000] [--keys 100] [--workers 4] [--repeats 5]
"""
from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.workqueue import Queue  # noqa: E402
from controller.workqueue.metrics import NoopMetricsProvider  # noqa: E402


@dataclass(frozen=True)
class Measurement:
    adds: int
    processed: int
    seconds: float
    latencies: list[float]

    @property
    def adds_per_second(self) -> float:
        return self.adds / self.seconds

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[round(quantile * (len(ordered) - 1))]


class LatencyRecorder:
    """Keeps every observation; used as the queue-duration histogram."""

    def __init__(self) -> None:
        self.observations: list[float] = []

    def observe(self, value: float) -> None:
        self.observations.append(value)


class LatencyOnlyProvider(NoopMetricsProvider):
    """Records queue latency; every other series stays a no-op."""

    def __init__(self) -> None:
        self.latency = LatencyRecorder()

    def new_latency_metric(self, name: str) -> LatencyRecorder:
        return self.latency


def run_threads(producer: Callable[[], None], workers: list[Callable[[], None]],
                after_producer: Callable[[], None]) -> float:
    """Start the workers and the producer; seconds until every worker has exited."""
    threads = [threading.Thread(target=worker) for worker in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    producer()
    after_producer()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def measure_workqueue(keys: Sequence[int], workers: int) -> Measurement:
    provider = LatencyOnlyProvider()
    work_queue: Queue[int] = Queue("bench", metrics=provider)
    processed = [0] * workers

    def produce() -> None:
        for key in keys:
            work_queue.add(key)

    def make_worker(index: int) -> Callable[[], None]:
        def work() -> None:
            while True:
                item, _ = work_queue.get()
                if item is None:  # shut down and drained (no timeout was asked for)
                    return
                processed[index] += 1
                work_queue.done(item)
        return work

    seconds = run_threads(produce, [make_worker(index) for index in range(workers)],
                          work_queue.shutdown)
    return Measurement(len(keys), sum(processed), seconds, provider.latency.observations)


def measure_baseline(keys: Sequence[int], workers: int) -> Measurement:
    plain: queue.Queue[tuple[int, float] | None] = queue.Queue()
    latencies: list[list[float]] = [[] for _ in range(workers)]

    def produce() -> None:
        for key in keys:
            plain.put((key, time.monotonic()))

    def stop_workers() -> None:
        for _ in range(workers):
            plain.put(None)

    def make_worker(index: int) -> Callable[[], None]:
        def work() -> None:
            while True:
                entry = plain.get()
                if entry is None:
                    plain.task_done()
                    return
                latencies[index].append(time.monotonic() - entry[1])
                plain.task_done()
        return work

    seconds = run_threads(produce, [make_worker(index) for index in range(workers)], stop_workers)
    observed = [latency for per_worker in latencies for latency in per_worker]
    return Measurement(len(keys), len(observed), seconds, observed)


def median_runs(keys: Sequence[int], workers: int, repeats: int) -> tuple[Measurement, Measurement]:
    """Alternate baseline and workqueue runs so both see the same background load."""
    baseline_runs: list[Measurement] = []
    workqueue_runs: list[Measurement] = []
    for _ in range(repeats):
        baseline_runs.append(measure_baseline(keys, workers))
        workqueue_runs.append(measure_workqueue(keys, workers))
    return median_by_seconds(baseline_runs), median_by_seconds(workqueue_runs)


def median_by_seconds(runs: list[Measurement]) -> Measurement:
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def report(scenario: str, name: str, measured: Measurement, baseline: Measurement | None) -> None:
    ratio = f"{measured.adds_per_second / baseline.adds_per_second:6.2f}" if baseline else "     -"
    print(f"{scenario:<10} {name:<12} {measured.adds:>8} {measured.processed:>10} "
          f"{measured.seconds:>8.3f} {measured.adds_per_second:>10.0f} "
          f"{measured.latency_ms(0.5):>8.3f} {measured.latency_ms(0.99):>8.3f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=100, help="distinct keys in the de-duplication run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if min(args.adds, args.keys, args.workers, args.repeats) < 1:
        parser.error("--adds, --keys, --workers and --repeats must be at least 1")

    scenarios = {
        "distinct": list(range(args.adds)),
        "dedup": [index % args.keys for index in range(args.adds)],
    }
    print(f"1 producer, {args.workers} workers; ratio = workqueue adds/s / queue.Queue adds/s")
    print(f"{'scenario':<10} {'queue':<12} {'adds':>8} {'processed':>10} {'seconds':>8} "
          f"{'adds/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}")
    for scenario, keys in scenarios.items():
        baseline, ours = median_runs(keys, args.workers, args.repeats)
        report(scenario, "queue.Queue", baseline, None)
        report(scenario, "workqueue", ours, baseline)


if __name__ == "__main__":
    main()
