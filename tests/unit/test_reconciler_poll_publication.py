"""Poll results are published per Ensemble, once per window: members polled at different
times cost one status write per heartbeat window, while everything else is written at once."""
from __future__ import annotations

from controller.kube.resources import PODS
from controller.reconcilers.pollbook import PollBook
from controller.reconcilers.poller import PollResult
from controller.runtime.reconcile import Request, Result
from tests.unit.fakes.reconciler import Env, lead_pod, member

MEMBERS = 4
EMPTY: dict = {"queue": {}}
HEARTBEAT = 7.0   # the fake Ensemble's spec.heartbeat
WINDOW = 10.0     # its publication window: max(heartbeat, 10 s)
REQUEST = Request("ns", "e1")


def started() -> Env:
    """An Ensemble of four Running members, each polled once, a window ago."""
    env = Env(None, members=[member(1) for _ in range(MEMBERS)])
    for index in range(MEMBERS):
        env.api.put(PODS, lead_pod(f"e1-{index}", ip=f"10.0.0.{index + 5}"))
    env.reconcile()
    for index in range(MEMBERS):  # first answers turn members Running: phase changes, written at once
        poll(env, index, EMPTY)
    env.clock.step(WINDOW)
    return env


def status_writes(env: Env) -> list[tuple]:
    return [w for w in env.api.writes if w[0] == "apply" and w[5] == "status"]


def poll(env: Env, index: int, report: dict) -> Result:
    """Member ``index``'s poll result arrives now; the reconcile it enqueues runs."""
    key = ("ns", "e1", f"e1-{index}")
    env.reconciler.record_poll(key, PollResult(True, env.clock.wall(), f"10.0.0.{index + 5}:7000", 0.01, 0, report))
    return env.reconciler.reconcile(REQUEST)


def shown_time(book: PollBook, key: tuple[str, str, str]) -> float | None:
    shown = book.published(key)
    return None if shown is None else shown.time


def last_polls(env: Env) -> list[dict | None]:
    return [m.get("lastPoll") for m in env.status["members"]]


def test_members_polled_at_staggered_times_cost_at_most_one_status_write_per_window() -> None:
    env = started()
    writes_at: list[float] = []
    for round_ in range(6):                            # 60 s; each member polled every 10 s,
        for index in range(MEMBERS):                   # 2.5 s after the one before it
            before = len(status_writes(env))
            result = poll(env, index, {"queue": {"run": round_ * MEMBERS + index}})
            if len(status_writes(env)) > before:
                writes_at.append(env.clock.now())
            assert result.requeue_after is not None and result.requeue_after <= WINDOW
            env.clock.step(WINDOW / MEMBERS)
    # Before: a write per member per window (24 here). Now: no two writes within one window.
    assert 1 <= len(writes_at) <= 6
    assert all(later - earlier >= WINDOW for earlier, later in zip(writes_at, writes_at[1:]))


def test_held_results_are_all_published_when_the_window_opens_and_the_reconcile_is_requeued_for_it() -> None:
    env = started()
    poll(env, 0, {"queue": {"run": 1}})                # the first result opens the window at once
    assert last_polls(env) == [{"queue": {"run": 1}}, EMPTY, EMPTY, EMPTY]
    writes = len(status_writes(env))
    env.clock.step(3)
    poll(env, 1, {"queue": {"run": 2}})
    env.clock.step(3)
    result = poll(env, 2, {"queue": {"run": 3}})
    assert len(status_writes(env)) == writes           # held back: no write mid-window
    assert result.requeue_after == 4.0                 # ...but the reconcile comes back when it ends
    env.clock.step(4)
    env.reconciler.reconcile(REQUEST)
    assert len(status_writes(env)) == writes + 1       # one write publishes both held results
    assert last_polls(env) == [{"queue": {"run": 1}}, {"queue": {"run": 2}}, {"queue": {"run": 3}}, EMPTY]
    assert env.reconciler.reconcile(REQUEST).requeue_after == HEARTBEAT  # nothing held: the heartbeat only


def test_a_phase_change_is_written_at_once_mid_window_without_publishing_held_polls() -> None:
    env = started()
    poll(env, 0, {"queue": {"run": 1}})
    env.clock.step(2)
    poll(env, 0, {"queue": {"run": 2}})                # held until the window opens
    writes = len(status_writes(env))
    env.api.put(PODS, lead_pod("e1-1", ip="10.0.0.6", phase="Failed"))
    env.reconciler.reconcile(REQUEST)
    assert len(status_writes(env)) == writes + 1
    assert env.status["phase"] == "Failed" and env.status["members"][1]["phase"] == "Failed"
    assert last_polls(env)[0] == {"queue": {"run": 1}}  # the poll result still waits for its window


def test_a_members_first_report_is_shown_at_once_and_later_ones_wait_for_the_window() -> None:
    book = PollBook()
    ensemble, first, second = ("ns", "e"), ("ns", "e", "e-0"), ("ns", "e", "e-1")
    book.record(first, PollResult(True, 100.0, "a:1", 0.01, 0, {"queue": {"run": 1}}))
    book.publish(ensemble, [first, second], now=100.0, interval=WINDOW)         # opens the window
    book.record(second, PollResult(True, 104.0, "b:1", 0.01, 0, {"queue": {"run": 2}}))
    book.record(first, PollResult(True, 104.0, "a:1", 0.01, 0, {"queue": {"run": 3}}))
    book.publish(ensemble, [first, second], now=104.0, interval=WINDOW)
    assert shown_time(book, second) == 104.0                                    # new member: at once
    assert shown_time(book, first) == 100.0                                     # held until 110
    assert book.next_publish(ensemble, [first, second], now=104.0) == 6.0
    book.publish(ensemble, [first, second], now=110.0, interval=WINDOW)
    assert shown_time(book, first) == 104.0
    book.forget_ensemble(ensemble)
    assert book.next_publish(ensemble, [first, second], now=110.0) is None
