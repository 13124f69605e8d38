"""Streaming metric models per job group, named as ensemble-python names them.

Rules read ``count.<group>.<success|failed|finished>`` and ``<model>.<group>-<pending|duration>``
with model one of mean, variance, min, max, iqr, mad: every model ensemble-python 0.0.16 keeps
(river's ``stats``), with river's values, so a rule fires in the simulated run exactly when it
would in a real member. Pending is seconds from submit to start (recorded at start, and for
still-waiting jobs at each heartbeat); duration is seconds from start to finish.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

KEPT_MODELS = ("count", "mean", "variance", "min", "max", "iqr", "mad")


class Quantile:
    """river's ``stats.Quantile``: the P² estimate (Jain & Chlamtac) of one quantile.

    It follows river 0.x's arithmetic step by step, because rules compare its value to thresholds
    and an estimate that differs from river's would fire at other times. Up to five samples it is
    the sorted sample at index ``min(n - 1, n * q)`` truncated, as river answers; from the sixth
    on it is the middle of five markers."""

    def __init__(self, q: float) -> None:
        self.q = q
        self._heights: list[float] = []  # the first five samples; then the markers' heights
        self._markers = False
        self._positions = [1.0, 2.0, 3.0, 4.0, 5.0]
        self._desired = [1.0, 1 + 2 * q, 1 + 4 * q, 3 + 2 * q, 5.0]
        self._steps = [0.0, q / 2, q, (1 + q) / 2, 1.0]

    def add(self, x: float) -> None:
        heights, positions = self._heights, self._positions
        if len(heights) < 5:
            heights.append(x)
            return
        if not self._markers:
            heights.sort()
            self._markers = True
        cell = bisect_right(heights, x)  # heights stay sorted, so this is the cell holding x
        if cell == 0:
            heights[0] = x
        elif cell == 5:
            heights[4] = max(heights[4], x)
        cell = min(max(cell, 1), 4)
        for i in range(cell, 5):
            positions[i] += 1
        for i in range(5):
            self._desired[i] += self._steps[i]
        for i in (1, 2, 3):
            self._move(i)

    def _move(self, i: int) -> None:
        """Shift marker i one position towards where it should be, piecewise-parabolic when that
        keeps the heights in order, else linear (the P² adjustment step)."""
        h, pos = self._heights, self._positions
        n = pos[i]
        d = self._desired[i] - n
        if not ((d >= 1 and pos[i + 1] - n > 1) or (d <= -1 and pos[i - 1] - n < -1)):
            return
        s = 1.0 if d > 0 else -1.0
        parabolic = h[i] + s / (pos[i + 1] - pos[i - 1]) * (
            (n - pos[i - 1] + s) * (h[i + 1] - h[i]) / (pos[i + 1] - n)
            + (pos[i + 1] - n - s) * (h[i] - h[i - 1]) / (n - pos[i - 1]))
        if h[i - 1] < parabolic < h[i + 1]:
            h[i] = parabolic
        else:
            j = i + int(s)
            h[i] = h[i] + s * (h[j] - h[i]) / (pos[j] - n)
        pos[i] = n + s

    def get(self) -> float | None:
        """None before any sample (river's too); our series exist only once they have one."""
        if self._markers:
            return self._heights[2]
        if not self._heights:
            return None
        n = len(self._heights)
        return sorted(self._heights)[int(min(n - 1, n * self.q))]


def _value(quantile: Quantile) -> float:
    value = quantile.get()
    assert value is not None, "a Summary has a sample before it is read"
    return value


@dataclass
class Summary:
    """Running mean, variance, min, max, iqr and mad of one series, without keeping the samples."""
    n: int = 0
    mean: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    _squares: float = 0.0  # sum of squared deviations from the mean (Welford)
    _lower: Quantile = field(default_factory=lambda: Quantile(0.25))
    _upper: Quantile = field(default_factory=lambda: Quantile(0.75))
    _median: Quantile = field(default_factory=lambda: Quantile(0.5))
    _deviation: Quantile = field(default_factory=lambda: Quantile(0.5))

    def add(self, value: float) -> None:
        self.n += 1
        previous = self.mean
        self.mean += (value - self.mean) / self.n
        self._squares += (value - previous) * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self._lower.add(value)
        self._upper.add(value)
        self._median.add(value)  # river's MAD updates the median first, then deviates from it
        self._deviation.add(abs(value - _value(self._median)))

    @property
    def variance(self) -> float:
        """river's ``stats.Var()`` as ensemble-python builds it: the sample variance (ddof 1), 0 for
        a single sample (a rule ``variance.<group>-duration >= 0`` fires at the first job)."""
        return self._squares / (self.n - 1) if self.n > 1 else 0.0

    @property
    def iqr(self) -> float:
        """river's ``stats.IQR()``: estimated 0.75 quantile minus estimated 0.25 quantile (0 for a
        single sample, as river answers once ensemble-python has created the model)."""
        return _value(self._upper) - _value(self._lower)

    @property
    def mad(self) -> float:
        """river's ``stats.MAD()``: the estimated median of |sample - median estimate so far|;
        not the batch MAD, since the median moves as samples arrive."""
        return _value(self._deviation)


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
