"""Many producers and workers on one queue: no item is ever worked on twice at once, none is lost."""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Hashable

import pytest

from controller.workqueue import DelayingQueue, Queue

PRODUCERS = 8
ADDS_PER_PRODUCER = 2000
KEYS = 200
WORKERS = 4


class Ledger:
    """Orders every add and every processing start on one counter, and spots overlapping work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticks = itertools.count()
        self.last_add: dict[Hashable, int] = {}
        self.last_start: dict[Hashable, int] = {}
        self.in_flight: set[Hashable] = set()
        self.overlaps: list[Hashable] = []
        self.processed = 0

    def before_add(self, key: Hashable) -> None:
        with self._lock:
            self.last_add[key] = next(self._ticks)

    def start(self, key: Hashable) -> None:
        with self._lock:
            if key in self.in_flight:
                self.overlaps.append(key)
            self.in_flight.add(key)
            self.last_start[key] = next(self._ticks)
            self.processed += 1

    def finish(self, key: Hashable) -> None:
        with self._lock:
            self.in_flight.discard(key)


def produce(queue: Queue, ledger: Ledger, producer: int) -> None:
    for index in range(ADDS_PER_PRODUCER):
        key = f"key-{(index * 7 + producer * 13) % KEYS}"
        ledger.before_add(key)
        queue.add(key)


def work(queue: Queue, ledger: Ledger) -> None:
    while True:
        key, shutdown = queue.get()
        if shutdown:
            return
        ledger.start(key)
        time.sleep(0)  # simulated work: lets other threads run while the key is in flight
        ledger.finish(key)
        queue.done(key)


@pytest.mark.parametrize("queue_type", [Queue, DelayingQueue])
def test_no_item_is_processed_concurrently_and_none_is_lost(queue_type: type[Queue]) -> None:
    queue = queue_type("concurrency")
    ledger = Ledger()
    workers = [threading.Thread(target=work, args=(queue, ledger), daemon=True) for _ in range(WORKERS)]
    producers = [threading.Thread(target=produce, args=(queue, ledger, index), daemon=True)
                 for index in range(PRODUCERS)]
    for thread in workers + producers:
        thread.start()
    for thread in producers:
        thread.join(30)
    queue.shutdown_with_drain()
    for thread in workers:
        thread.join(30)

    assert not any(thread.is_alive() for thread in workers + producers)
    assert ledger.overlaps == []
    assert set(ledger.last_start) == set(ledger.last_add)
    late = [key for key, added in ledger.last_add.items() if ledger.last_start[key] < added]
    assert late == []
    assert ledger.processed <= PRODUCERS * ADDS_PER_PRODUCER
    assert len(queue) == 0
