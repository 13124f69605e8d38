"""The operator's garbage-collector settings, checked in a child interpreter: they are
process-wide, and this test process must keep its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import gc, json, sys, weakref
sys.path.insert(0, {root!r})
from controller.runtime.gc_tuning import tune_garbage_collector
alive = [{{"kept": i}} for i in range(1000)]
before = gc.get_threshold()
tune_garbage_collector({args})
frozen = gc.get_freeze_count()
class Node:
    pass
def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)
first = cycle()
for _ in range(20_000):  # more allocations than the young threshold, no explicit collection
    cycle()
print(json.dumps({{"before": before, "after": gc.get_threshold(), "frozen": frozen,
                  "first_cycle_freed": first() is None, "alive": len(alive)}}))
"""


def run_child(args: str = "") -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), args=args)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def tuned() -> dict:
    """One child tuned with the defaults, for the tests that read it."""
    return run_child()


def test_objects_alive_at_tuning_are_frozen_out_of_collections(tuned: dict) -> None:
    # The 1,000 dicts kept alive (and everything imported) are in the permanent generation.
    assert tuned["frozen"] >= 1000
    assert tuned["alive"] == 1000


def test_the_young_threshold_is_raised_and_older_generations_keep_theirs(tuned: dict) -> None:
    assert tuned["after"][0] == 10_000
    assert tuned["after"][1:] == tuned["before"][1:]
    assert run_child("young_threshold=2500")["after"][0] == 2500


def test_cycles_made_after_tuning_are_still_collected_automatically(tuned: dict) -> None:
    # A garbage cycle made after freezing is freed by a young collection once enough
    # allocations follow, without anyone calling gc.collect().
    assert tuned["first_cycle_freed"] is True
