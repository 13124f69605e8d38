"""Streaks in a member's history: the latest samples that all meet a condition."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from controller.algorithms.base import MemberSample

Condition = Callable[[dict], bool]


def trailing_run(history: Sequence[MemberSample], condition: Condition) -> list[MemberSample]:
    """The longest suffix of ``history`` whose samples all satisfy ``condition``."""
    start = len(history)
    while start > 0 and condition(history[start - 1].status):
        start -= 1
    return list(history[start:])

