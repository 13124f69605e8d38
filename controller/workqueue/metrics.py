"""Metrics hooks for work queues.

A queue never talks to a metrics library directly: it asks a ``MetricsProvider``
for one metric per series (the same seven series client-go exposes), so the
controller can plug in Prometheus while unit tests plug in plain recorders.
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from controller.clock import Clock


class CounterMetric(Protocol):
    def inc(self) -> None: ...


class GaugeMetric(Protocol):
    def inc(self) -> None: ...

    def dec(self) -> None: ...


class SettableGaugeMetric(Protocol):
    def set(self, value: float) -> None: ...


class HistogramMetric(Protocol):
    def observe(self, value: float) -> None: ...


class MetricsProvider(Protocol):
    """Creates the metrics of one named queue."""

    def new_depth_metric(self, name: str) -> GaugeMetric: ...

    def new_adds_metric(self, name: str) -> CounterMetric: ...

    def new_latency_metric(self, name: str) -> HistogramMetric: ...

    def new_work_duration_metric(self, name: str) -> HistogramMetric: ...

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric: ...

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric: ...

    def new_retries_metric(self, name: str) -> CounterMetric: ...


class _NoopMetric:
    def inc(self) -> None:
        pass

    def dec(self) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


class NoopMetricsProvider:
    """Metrics that record nothing; a base for providers that want only some series."""

    def new_depth_metric(self, name: str) -> GaugeMetric:
        return _NoopMetric()

    def new_adds_metric(self, name: str) -> CounterMetric:
        return _NoopMetric()

    def new_latency_metric(self, name: str) -> HistogramMetric:
        return _NoopMetric()

    def new_work_duration_metric(self, name: str) -> HistogramMetric:
        return _NoopMetric()

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return _NoopMetric()

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return _NoopMetric()

    def new_retries_metric(self, name: str) -> CounterMetric:
        return _NoopMetric()


class QueueMetrics:
    """Turns queue events into metric updates, remembering when each item was added and taken.

    Not thread-safe by itself: the queue calls it while holding its own lock.
    """

    def __init__(self, name: str, provider: MetricsProvider, clock: Clock) -> None:
        self._clock = clock
        self._depth = provider.new_depth_metric(name)
        self._adds = provider.new_adds_metric(name)
        self._latency = provider.new_latency_metric(name)
        self._work_duration = provider.new_work_duration_metric(name)
        self._unfinished_work = provider.new_unfinished_work_seconds_metric(name)
        self._longest_running = provider.new_longest_running_processor_seconds_metric(name)
        self._added_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}

    def add(self, item: Hashable) -> None:
        self._adds.inc()
        self._depth.inc()
        self._added_at.setdefault(item, self._clock.now())

    def get(self, item: Hashable) -> None:
        now = self._clock.now()
        self._depth.dec()
        self._started_at[item] = now
        added_at = self._added_at.pop(item, None)
        if added_at is not None:
            self._latency.observe(now - added_at)

    def done(self, item: Hashable) -> None:
        started_at = self._started_at.pop(item, None)
        if started_at is not None:
            self._work_duration.observe(self._clock.now() - started_at)

    def update_unfinished_work(self) -> None:
        """Publish how long in-flight items have run, so stuck workers show before they finish."""
        now = self._clock.now()
        total = 0.0
        longest = 0.0
        for started_at in self._started_at.values():
            age = now - started_at
            total += age
            longest = max(longest, age)
        self._unfinished_work.set(total)
        self._longest_running.set(longest)


class NoopQueueMetrics:
    """Skips the per-item bookkeeping entirely when nobody collects metrics."""

    def add(self, item: Hashable) -> None:
        pass

    def get(self, item: Hashable) -> None:
        pass

    def done(self, item: Hashable) -> None:
        pass

    def update_unfinished_work(self) -> None:
        pass


def retry_metric(name: str, provider: MetricsProvider | None) -> CounterMetric:
    """The retries counter of a delaying queue; as for the others, unnamed or no provider: none."""
    if not name or provider is None:
        return _NoopMetric()
    return provider.new_retries_metric(name)


def queue_metrics(name: str, provider: MetricsProvider | None,
                  clock: Clock) -> QueueMetrics | NoopQueueMetrics:
    """Metrics for one queue; like client-go, an unnamed queue or no provider records nothing."""
    if not name or provider is None:
        return NoopQueueMetrics()
    return QueueMetrics(name, provider, clock)
