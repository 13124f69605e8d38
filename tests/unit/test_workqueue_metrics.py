"""Work-queue metrics: values recorded through the provider hooks and in Prometheus."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.workqueue import DelayingQueue, PrometheusMetricsProvider, Queue
from tests.helpers import wait_for_value, wait_for_waiters


class Recorder:
    """One metric of any kind, keeping its value and every observation."""

    def __init__(self) -> None:
        self.value = 0.0
        self.observations: list[float] = []

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def set(self, value: float) -> None:
        self.value = value

    def observe(self, value: float) -> None:
        self.observations.append(value)


class RecordingProvider:
    """A MetricsProvider handing out Recorders, keyed by (series, queue name)."""

    def __init__(self) -> None:
        self.metrics: dict[tuple[str, str], Recorder] = {}

    def _new(self, series: str, name: str) -> Recorder:
        return self.metrics.setdefault((series, name), Recorder())

    def new_depth_metric(self, name: str) -> Recorder:
        return self._new("depth", name)

    def new_adds_metric(self, name: str) -> Recorder:
        return self._new("adds", name)

    def new_latency_metric(self, name: str) -> Recorder:
        return self._new("latency", name)

    def new_work_duration_metric(self, name: str) -> Recorder:
        return self._new("work_duration", name)

    def new_unfinished_work_seconds_metric(self, name: str) -> Recorder:
        return self._new("unfinished", name)

    def new_longest_running_processor_seconds_metric(self, name: str) -> Recorder:
        return self._new("longest", name)

    def new_retries_metric(self, name: str) -> Recorder:
        return self._new("retries", name)


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


def test_adds_and_depth_count_distinct_waiting_items(clock: FakeClock, provider: RecordingProvider) -> None:
    queue: Queue = Queue("q", clock=clock, metrics=provider)
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert provider.metrics["adds", "q"].value == 2
    assert provider.metrics["depth", "q"].value == 2
    queue.get()
    assert provider.metrics["depth", "q"].value == 1


def test_queue_and_work_durations_are_measured_on_the_clock(clock: FakeClock,
                                                            provider: RecordingProvider) -> None:
    queue: Queue = Queue("q", clock=clock, metrics=provider)
    queue.add("a")
    clock.step(2)
    queue.add("a")  # merged: the wait counts from the first add
    clock.step(1)
    queue.get()
    clock.step(4)
    queue.done("a")
    assert provider.metrics["latency", "q"].observations == [3.0]
    assert provider.metrics["work_duration", "q"].observations == [4.0]


def test_unfinished_work_sums_ages_and_longest_is_the_oldest(clock: FakeClock,
                                                             provider: RecordingProvider) -> None:
    queue: Queue = Queue("q", clock=clock, metrics=provider)
    queue.add("a")
    queue.add("b")
    queue.get()
    clock.step(3)
    queue.get()
    clock.step(1)
    queue.update_unfinished_work()
    assert provider.metrics["unfinished", "q"].value == 5.0
    assert provider.metrics["longest", "q"].value == 4.0
    queue.done("a")
    queue.done("b")
    queue.update_unfinished_work()
    assert provider.metrics["unfinished", "q"].value == 0.0
    assert provider.metrics["longest", "q"].value == 0.0


def test_timer_thread_updates_unfinished_work_every_half_second(clock: FakeClock,
                                                                provider: RecordingProvider) -> None:
    queue: DelayingQueue = DelayingQueue("q", clock=clock, metrics=provider)
    queue.start()
    try:
        wait_for_waiters(clock, 1)
        queue.add("a")
        queue.get()
        clock.step(0.5)
        wait_for_value(lambda: provider.metrics["unfinished", "q"].value, 0.5, 2, "unfinished work seconds")
        clock.step(0.5)
        wait_for_value(lambda: provider.metrics["longest", "q"].value, 1.0, 2, "longest running work seconds")
    finally:
        queue.shutdown()


def test_every_add_after_counts_as_a_retry(clock: FakeClock, provider: RecordingProvider) -> None:
    queue: DelayingQueue = DelayingQueue("q", clock=clock, metrics=provider)
    try:
        queue.add_after("a", 0)
        queue.add_after("b", 5)
        queue.add("c")
        assert provider.metrics["retries", "q"].value == 2
    finally:
        queue.shutdown()


def test_unnamed_queue_records_nothing(clock: FakeClock, provider: RecordingProvider) -> None:
    queue: Queue = Queue(clock=clock, metrics=provider)
    queue.add("a")
    assert provider.metrics == {}


def test_prometheus_provider_exports_client_go_series_per_queue_name(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    provider = PrometheusMetricsProvider(registry)
    ensembles: DelayingQueue = DelayingQueue("ensemble", clock=clock, metrics=provider)
    other: Queue = Queue("other", clock=clock, metrics=provider)

    def sample(series: str, name: str = "ensemble") -> float | None:
        return registry.get_sample_value(series, {"name": name})

    try:
        ensembles.add("a")
        ensembles.add("b")
        other.add("x")
        clock.step(0.25)
        ensembles.get()
        clock.step(2)
        ensembles.update_unfinished_work()
        assert sample("workqueue_unfinished_work_seconds") == 2.0
        assert sample("workqueue_longest_running_processor_seconds") == 2.0
        ensembles.done("a")
        ensembles.add_after("a", 0)
        assert sample("workqueue_adds_total") == 3
        assert sample("workqueue_adds_total", "other") == 1
        assert sample("workqueue_depth") == 2
        assert sample("workqueue_queue_duration_seconds_count") == 1
        assert sample("workqueue_queue_duration_seconds_sum") == 0.25
        assert sample("workqueue_work_duration_seconds_sum") == 2.0
        assert sample("workqueue_retries_total") == 1
    finally:
        ensembles.shutdown()
