"""What the poller reported for each member, kept between reconciles.

Poll threads write here and reconciles read, so every access takes the lock. Three
views of one stream of results: the latest (failures included, for reachability),
the reports published in the status (all of an Ensemble's members' refreshed together,
at most once per interval, so members polled at different times cost one status write
per window and not one each), and the recent successful
polls that algorithms read as history. History is kept only for members whose
Ensemble has an algorithm, and only as far back as its windows reach
(``keep_history``), each sample holding only what algorithms read (``history_view``):
members are tenants, and every sample is memory they choose.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from controller.algorithms import MemberSample
from controller.algorithms.status import history_view
from controller.reconcilers.poller import PollKey, PollResult

# Hard cap per member whatever the time window: 512 polls are 85 minutes at a 10 s heartbeat.
MAX_SAMPLES = 512

EnsembleKey = tuple[str, str]
"""An Ensemble's namespace and name: the first two parts of its members' ``PollKey``."""


class PollBook:
    def __init__(self, max_samples: int = MAX_SAMPLES) -> None:
        self._lock = threading.Lock()
        self._max_samples = max_samples
        self._latest: dict[PollKey, PollResult] = {}
        self._last_ok: dict[PollKey, PollResult] = {}
        self._published: dict[PollKey, PollResult] = {}
        self._history: dict[PollKey, deque[MemberSample]] = {}
        self._windows: dict[PollKey, float] = {}
        self._undecided: set[PollKey] = set()
        # Per Ensemble: when (monotonic) its reports were last refreshed, and how often they may be.
        self._refreshed: dict[EnsembleKey, float] = {}
        self._intervals: dict[EnsembleKey, float] = {}

    def keep_history(self, key: PollKey, seconds: float | None) -> None:
        """Keep ``key``'s successful polls of the last ``seconds`` (at most ``max_samples``),
        or none (``None``: no algorithm reads them)."""
        with self._lock:
            if seconds is None:
                self._windows.pop(key, None)
                self._history.pop(key, None)
                self._undecided.discard(key)
                return
            self._windows[key] = seconds
            samples = self._history.get(key)
            if samples:
                _trim(samples, samples[-1].time - seconds)

    def record(self, key: PollKey, result: PollResult) -> None:
        with self._lock:
            self._latest[key] = result
            if result.ok and result.status is not None:
                self._last_ok[key] = result
                window = self._windows.get(key)
                if window is None:
                    return
                samples = self._history.setdefault(key, deque(maxlen=self._max_samples))
                samples.append(MemberSample(result.time, history_view(result.status)))
                _trim(samples, result.time - window)
                self._undecided.add(key)

    def history_size(self) -> int:
        """Samples kept over all members (what the history costs)."""
        with self._lock:
            return sum(len(samples) for samples in self._history.values())

    def forget(self, key: PollKey) -> None:
        with self._lock:
            for store in (self._latest, self._last_ok, self._published, self._history, self._windows):
                store.pop(key, None)
            self._undecided.discard(key)

    def latest(self, key: PollKey) -> PollResult | None:
        with self._lock:
            return self._latest.get(key)

    def publish(self, ensemble: EnsembleKey, keys: Iterable[PollKey], now: float, interval: float) -> None:
        """Show the newest successful poll of every member in ``keys`` (one Ensemble's), all
        at once, if one is newer than its shown one and ``interval`` seconds of the monotonic
        ``now`` have passed since the Ensemble's last refresh (its window); else keep showing
        the old ones. One refresh per window is one status write, however spread the polls.
        A member's first success is shown at once (the status shows the latest poll of a
        member with none shown anyway; it comes with the member's turn to Running)."""
        with self._lock:
            self._intervals[ensemble] = interval
            held = []
            for key in self._held(keys):
                if key in self._published:
                    held.append(key)
                else:
                    self._published[key] = self._last_ok[key]
                    self._refreshed.setdefault(ensemble, now)
            refreshed = self._refreshed.get(ensemble)
            if not held or (refreshed is not None and now - refreshed < interval):
                return
            for key in held:
                self._published[key] = self._last_ok[key]
            self._refreshed[ensemble] = now

    def next_publish(self, ensemble: EnsembleKey, keys: Iterable[PollKey], now: float) -> float | None:
        """Seconds until a poll newer than the shown one in ``keys`` may be shown (0: now);
        None when none is held back."""
        with self._lock:
            refreshed = self._refreshed.get(ensemble)
            if not self._held(keys):
                return None
            if refreshed is None:
                return 0.0
            return max(0.0, refreshed + self._intervals.get(ensemble, 0.0) - now)

    def published(self, key: PollKey) -> PollResult | None:
        """The successful poll the status shows (see ``publish``)."""
        with self._lock:
            return self._published.get(key)

    def forget_ensemble(self, ensemble: EnsembleKey) -> None:
        """The Ensemble's window (its members' polls are forgotten one by one with ``forget``)."""
        with self._lock:
            self._refreshed.pop(ensemble, None)
            self._intervals.pop(ensemble, None)

    def _held(self, keys: Iterable[PollKey]) -> list[PollKey]:
        """Members of ``keys`` with a success newer than the one shown (caller holds the lock)."""
        held = []
        for key in keys:
            newest, shown = self._last_ok.get(key), self._published.get(key)
            if newest is not None and (shown is None or newest.time > shown.time):
                held.append(key)
        return held

    def take_history(self, key: PollKey, since: float) -> list[MemberSample] | None:
        """Successful polls newer than ``since`` (older ones are dropped), or None when no
        poll succeeded since the last call: each poll is decided on once."""
        with self._lock:
            if key not in self._undecided:
                return None
            self._undecided.discard(key)
            samples = self._history[key]
            _trim(samples, since)
            return list(samples)


def _trim(samples: deque[MemberSample], since: float) -> None:
    while samples and samples[0].time < since:
        samples.popleft()
