"""Streaming metric models per job group, named as ensemble-python names them.

Rules read ``count.<group>.<success|failed|finished>`` and ``<model>.<group>-<pending|duration>``
with model one of mean, variance, min, max (river's, which ensemble-python keeps; its iqr and mad
are streaming quantile estimates not reproduced here). Pending is seconds from submit to start
(recorded at start, and for still-waiting jobs at each heartbeat); duration is seconds from start
to finish.
"""
from __future__ import annotations

from dataclasses import dataclass

KEPT_MODELS = ("count", "mean", "variance", "min", "max")


@dataclass
class Summary:
    """Running mean, variance, min and max of one series, without keeping the samples."""
    n: int = 0
    mean: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    _squares: float = 0.0  # sum of squared deviations from the mean (Welford)

    def add(self, value: float) -> None:
        self.n += 1
        previous = self.mean
        self.mean += (value - self.mean) / self.n
        self._squares += (value - previous) * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    @property
    def variance(self) -> float:
        """river's ``stats.Var()`` as ensemble-python builds it: the sample variance (ddof 1), 0 for
        a single sample (a rule ``variance.<group>-duration >= 0`` fires at the first job)."""
        return self._squares / (self.n - 1) if self.n > 1 else 0.0


class GroupMetrics:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._series: dict[str, Summary] = {}

    def increment(self, group: str, key: str) -> None:
        self._counts[group, key] = self._counts.get((group, key), 0) + 1

    def record(self, series: str, value: float) -> None:
        """Add one sample to a series such as ``sleep-pending``."""
        self._series.setdefault(series, Summary()).add(value)

    def value(self, metric: str) -> float | None:
        """The current value of a rule's metric name; None until it has data (the rule then waits)."""
        model, _, rest = metric.partition(".")
        if model == "count":
            group, _, key = rest.rpartition(".")
            count = self._counts.get((group, key))
            return None if count is None else float(count)
        summary = self._series.get(rest)
        if summary is None or model not in KEPT_MODELS:
            return None
        return float(getattr(summary, model))

    def snapshot(self) -> dict[str, float]:
        """Every metric with data, by rule name (for logs and tests)."""
        values = {f"count.{group}.{key}": float(n) for (group, key), n in self._counts.items()}
        for series, summary in self._series.items():
            values.update({f"{model}.{series}": float(getattr(summary, model)) for model in KEPT_MODELS[1:]})
        return values
