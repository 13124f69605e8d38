"""Admission of each ensemble-service request: caller identity, then the Ensemble's rate limit.

Identity comes first, so only the Ensemble's own pods draw on its rate limit: an outsider's
flood is refused from the pod cache and cannot use up the tokens its members need. The limit
then bounds what even a member's own lead broker can make the service write (a rule firing in
a loop): one token bucket per Ensemble (the service serves one), refusing what is over it.

Every refusal is counted by reason (``ensemble_service_refusals_total``) and logged as a
WARNING, at most once per reason every ``LOG_INTERVAL_SECONDS`` with the count since, so a
flood of refused requests cannot flood the logs too.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from controller.clock import Clock
from controller.service.callers import CallerAuthorizer, Denial, Refusal
from controller.workqueue.rate_limiters import BucketRateLimiter

log = logging.getLogger(__name__)

LOG_INTERVAL_SECONDS = 10.0
# A real member's rules fire on its jobs' events: a group of 100 jobs ending together may ask
# 100 times at once, and nothing real asks more than a few times a second for long.
DEFAULT_RATE_LIMIT_QPS = 10.0
DEFAULT_RATE_LIMIT_BURST = 100


def refusals_counter(registry: CollectorRegistry) -> Counter:
    counter = Counter("ensemble_service_refusals_total",
                      "Requests refused before they were served, by reason", ["reason"], registry=registry)
    for reason in Refusal:  # every series from the start, so a rate over it is defined
        counter.labels(reason=reason.value)
    return counter


@dataclass(frozen=True)
class RateLimit:
    qps: float = DEFAULT_RATE_LIMIT_QPS
    burst: int = DEFAULT_RATE_LIMIT_BURST

    def __post_init__(self) -> None:
        if not self.qps > 0:
            raise ValueError(f"--rate-limit-qps: must be > 0, got {self.qps}")
        if self.burst < 1:
            raise ValueError(f"--rate-limit-burst: must be >= 1, got {self.burst}")


class RequestAdmission:
    """Admits or refuses each request before the servicer serves it (see the module)."""

    def __init__(self, callers: CallerAuthorizer, limit: RateLimit, refusals: Counter, *, clock: Clock) -> None:
        self._callers = callers
        self._limit = limit
        self._bucket = BucketRateLimiter(limit.qps, limit.burst, clock)
        self._refusals = {reason: refusals.labels(reason=reason.value) for reason in Refusal}
        self._clock = clock
        self._lock = threading.Lock()
        self._logged_at: dict[Refusal, float] = {}
        self._unlogged: dict[Refusal, int] = {}

    def admit_action(self, peer: str, minicluster: str) -> Denial | None:
        """None when the request may be served; else the refusal, counted and logged."""
        return self._refused(self._callers.may_act(peer, minicluster) or self._over_limit(), peer)

    def admit_status(self, peer: str) -> Denial | None:
        return self._refused(self._callers.may_read(peer) or self._over_limit(), peer)

    def _over_limit(self) -> Denial | None:
        if self._bucket.try_take():
            return None
        return Denial(Refusal.RATE_LIMITED,
                      f"rate limited: Ensemble {self._callers.namespace}/{self._callers.ensemble} may make "
                      f"{self._limit.burst} requests at once, then {self._limit.qps:g} per second")

    def _refused(self, denial: Denial | None, peer: str) -> Denial | None:
        if denial is None:
            return None
        self._refusals[denial.reason].inc()
        now = self._clock.now()
        with self._lock:
            last = self._logged_at.get(denial.reason)
            if last is not None and now - last < LOG_INTERVAL_SECONDS:
                self._unlogged[denial.reason] = self._unlogged.get(denial.reason, 0) + 1
                return denial
            self._logged_at[denial.reason] = now
            quiet = self._unlogged.pop(denial.reason, 0)
        log.warning("refused a request from %s: %s%s", peer, denial.message,
                    f" (and {quiet} more refused for {denial.reason.value} since the last one logged)" if quiet else "")
        return denial
