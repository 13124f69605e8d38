"""What the poller reported for each member, kept between reconciles.

Poll threads write here and reconciles read, so every access takes the lock. Three
views of one stream of results: the latest (failures included, for reachability),
the report published in the status (refreshed at most once per interval, so a busy
queue does not cost a status write every heartbeat), and the recent successful
polls that algorithms read as history. History is kept only for members whose
Ensemble has an algorithm, and only as far back as its windows reach
(``keep_history``), each sample holding only what algorithms read (``history_view``):
members are tenants, and every sample is memory they choose.
"""
from __future__ import annotations

import threading
from collections import deque

from controller.algorithms import MemberSample
from controller.algorithms.status import history_view
from controller.reconcilers.poller import PollKey, PollResult

# Hard cap per member whatever the time window: 512 polls are 85 minutes at a 10 s heartbeat.
MAX_SAMPLES = 512


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

    def published(self, key: PollKey, interval: float) -> PollResult | None:
        """The successful poll to show: the one shown before, unless ``interval`` seconds
        separate it from the newest success, which then replaces it."""
        with self._lock:
            shown = self._published.get(key)
            newest = self._last_ok.get(key)
            if newest is not None and (shown is None or newest.time - shown.time >= interval):
                shown = self._published[key] = newest
            return shown

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
