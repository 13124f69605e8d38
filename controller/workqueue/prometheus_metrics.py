"""Work-queue metrics in a prometheus-client registry, under client-go's series names.

Keeping client-go's names and the ``name`` label lets existing controller dashboards
and alerts work unchanged against this operator.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from controller.workqueue.metrics import (
    CounterMetric,
    GaugeMetric,
    HistogramMetric,
    SettableGaugeMetric,
)

# Ten decades from 10 ns to 10 s: queue waits and reconciles span that whole range.
DURATION_BUCKETS = tuple(1e-8 * 10**exponent for exponent in range(10))


class PrometheusMetricsProvider:
    """Registers the workqueue series once in ``registry``; each queue gets its own label value."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["name"]
        self._depth = Gauge("workqueue_depth", "Items waiting in the queue.",
                            labels, registry=registry)
        self._adds = Counter("workqueue_adds_total", "Items added to the queue.",
                             labels, registry=registry)
        self._latency = Histogram("workqueue_queue_duration_seconds",
                                  "Seconds an item waited in the queue before a worker took it.",
                                  labels, buckets=DURATION_BUCKETS, registry=registry)
        self._work_duration = Histogram("workqueue_work_duration_seconds",
                                        "Seconds a worker spent on an item.",
                                        labels, buckets=DURATION_BUCKETS, registry=registry)
        self._unfinished_work = Gauge("workqueue_unfinished_work_seconds",
                                      "Sum of the ages of items being worked on and not done yet.",
                                      labels, registry=registry)
        self._longest_running = Gauge("workqueue_longest_running_processor_seconds",
                                      "Age of the longest-running item still being worked on.",
                                      labels, registry=registry)
        self._retries = Counter("workqueue_retries_total", "Delayed or rate-limited re-adds.",
                                labels, registry=registry)

    def new_depth_metric(self, name: str) -> GaugeMetric:
        return self._depth.labels(name=name)

    def new_adds_metric(self, name: str) -> CounterMetric:
        return self._adds.labels(name=name)

    def new_latency_metric(self, name: str) -> HistogramMetric:
        return self._latency.labels(name=name)

    def new_work_duration_metric(self, name: str) -> HistogramMetric:
        return self._work_duration.labels(name=name)

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return self._unfinished_work.labels(name=name)

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return self._longest_running.labels(name=name)

    def new_retries_metric(self, name: str) -> CounterMetric:
        return self._retries.labels(name=name)
