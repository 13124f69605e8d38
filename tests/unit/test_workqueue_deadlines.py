"""controller/workqueue/deadlines.py: one deadline per key in one heap (delaying queue, poller)."""
from __future__ import annotations

from controller.workqueue.deadlines import Deadlines


def test_due_keys_come_earliest_first_and_equal_deadlines_in_the_order_set() -> None:
    deadlines: Deadlines[str] = Deadlines()
    for key, at in (("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("late", 9.0)):
        deadlines.set(key, at)
    assert deadlines.pop_due(0.5) == []
    assert deadlines.pop_due(2.0) == ["a", "b1", "b2"]
    assert "a" not in deadlines and deadlines.at("a") is None and len(deadlines) == 2
    assert deadlines.next_at() == 3.0


def test_set_moves_a_deadline_either_way_and_the_old_one_never_fires() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("k", 1.0)
    deadlines.set("k", 5.0)                     # postponed: the entry at 1.0 is stale
    assert deadlines.pop_due(1.0) == [] and deadlines.at("k") == 5.0
    assert deadlines.next_at() == 5.0
    deadlines.set("k", 2.0)                     # brought forward
    assert deadlines.pop_due(2.0) == ["k"]
    assert deadlines.pop_due(10.0) == [] and len(deadlines) == 0


def test_set_earlier_keeps_whichever_deadline_comes_first() -> None:
    deadlines: Deadlines[str] = Deadlines()
    assert deadlines.set_earlier("k", 4.0) is True
    assert deadlines.set_earlier("k", 6.0) is False and deadlines.at("k") == 4.0
    assert deadlines.set_earlier("k", 4.0) is False
    assert deadlines.set_earlier("k", 3.0) is True and deadlines.at("k") == 3.0
    assert deadlines.pop_due(3.5) == ["k"] and deadlines.pop_due(4.0) == []


def test_a_cancelled_key_is_never_due_and_the_next_deadline_skips_it() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("gone", 1.0)
    deadlines.set("kept", 2.0)
    deadlines.cancel("gone")
    deadlines.cancel("never-set")
    assert deadlines.next_at() == 2.0 and len(deadlines) == 1
    assert deadlines.pop_due(2.0) == ["kept"]
    assert deadlines.next_at() is None
