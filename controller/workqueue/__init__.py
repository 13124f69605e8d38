"""Work queues with client-go ``util/workqueue`` semantics (see docs/internal-interfaces.md).

Owns the queue, the delaying and rate-limited queues, the rate limiters, their metrics and
the keyed deadline heap (``deadlines``) the delaying queue and the poller schedule with.

May import: ``controller.clock``, ``controller.backoff``. Nothing of Kubernetes.
"""
from controller.workqueue.delaying import DelayingQueue
from controller.workqueue.metrics import MetricsProvider, NoopMetricsProvider
from controller.workqueue.prometheus_metrics import PrometheusMetricsProvider
from controller.workqueue.queue import Queue
from controller.workqueue.rate_limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from controller.workqueue.rate_limiting import RateLimitingQueue, new_rate_limiting_queue

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "MetricsProvider",
    "NoopMetricsProvider",
    "PrometheusMetricsProvider",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "default_controller_rate_limiter",
    "new_rate_limiting_queue",
]
