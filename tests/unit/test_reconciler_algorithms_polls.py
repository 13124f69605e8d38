"""Poll results in the status: rate-limited lastPoll, reachability, bounded history, records."""
from __future__ import annotations

from controller.algorithms import Action
from controller.reconcilers.action_records import ActionRecords, records_from_status, records_to_status
from controller.reconcilers.pollbook import PollBook
from controller.reconcilers.poller import PollResult
from tests.unit.fakes.reconciler import ADDRESS, DONE, Env

BUSY = {"queue": {"run": 1}, "nodes": {"node_up_count": 2}}
BUSIER = {"queue": {"run": 2}, "nodes": {"node_up_count": 2}}


def ok(time: float, status: dict) -> PollResult:
    return PollResult(True, time, ADDRESS, 0.01, 0, status)


def condition(env: Env, type_: str) -> dict | None:
    return next((c for c in env.status["conditions"] if c["type"] == type_), None)


def status_writes(env: Env) -> int:
    return sum(1 for w in env.api.writes if w[0] == "apply" and w[5] == "status")


def test_a_changing_report_is_written_at_most_every_ten_seconds() -> None:
    env = Env(None)  # heartbeat 7 s: the floor of 10 s applies
    env.poll(BUSY)
    assert env.status["members"][0]["lastPoll"] == BUSY
    writes = status_writes(env)
    env.poll(BUSIER)  # 7 s later: changed, but too soon to publish
    assert status_writes(env) == writes
    assert env.status["members"][0]["lastPoll"] == BUSY
    env.poll(BUSIER)  # 14 s after the last publication
    assert status_writes(env) == writes + 1
    assert env.status["members"][0]["lastPoll"] == BUSIER
    assert env.status["members"][0]["lastPollTime"] == "2023-11-14T22:30:21Z"


def test_unreachable_member_gets_a_condition_and_recovery_turns_it_true() -> None:
    env = Env(None)
    env.poll(BUSY)
    assert condition(env, "MembersReachable") is None
    for failures in (1, 2):
        env.poll(None, failures=failures)
    assert condition(env, "MembersReachable") is None
    assert env.status["members"][0]["lastPoll"] == BUSY  # a failed poll does not erase the last report
    env.poll(None, failures=3)
    lost = condition(env, "MembersReachable")
    assert (lost["status"], lost["reason"]) == ("False", "MembersUnreachable")
    assert f"e1-0 at {ADDRESS}" in lost["message"]
    writes = status_writes(env)
    env.poll(None, failures=4)  # still down: nothing new to write
    assert status_writes(env) == writes
    env.poll(BUSY, step=60)
    back = condition(env, "MembersReachable")
    assert (back["status"], back["reason"]) == ("True", "MembersReachable")


def test_history_keeps_recent_successes_once_and_within_its_cap() -> None:
    book = PollBook(max_samples=3)
    key = ("ns", "e", "e-0")
    book.keep_history(key, 1000.0)
    assert book.take_history(key, since=0) is None
    for t in (10.0, 20.0, 30.0, 40.0):
        book.record(key, ok(t, {"queue": {"run": int(t)}}))
    book.record(key, PollResult(False, 45.0, ADDRESS, 2.0, 1, None, "timeout"))
    assert [s.time for s in book.take_history(key, since=25.0)] == [30.0, 40.0]
    assert book.take_history(key, since=0) is None  # nothing new since the last decision
    assert book.latest(key).ok is False
    book.forget(key)
    assert book.latest(key) is None and book.published(key) is None


def test_history_is_kept_only_when_asked_and_only_within_its_window() -> None:
    book = PollBook()
    key = ("ns", "e", "e-0")
    for t in (10.0, 20.0):
        book.record(key, ok(t, BUSY))
    assert book.history_size() == 0 and book.take_history(key, since=0) is None  # no algorithm reads it
    book.publish(("ns", "e"), [key], now=20.0, interval=10)
    assert book.latest(key).time == 20.0 and book.published(key).status == BUSY
    book.keep_history(key, 15.0)
    for t in (30.0, 40.0, 50.0):
        book.record(key, ok(t, BUSY))
    assert book.history_size() == 2                                  # 40 and 50: within 15 s of 50
    book.keep_history(key, 5.0)                                       # a shorter window trims at once
    assert [s.time for s in book.take_history(key, since=0)] == [50.0]
    book.record(key, ok(60.0, BUSY))
    book.keep_history(key, None)                                      # the algorithm was removed
    assert book.history_size() == 0 and book.take_history(key, since=0) is None


def test_the_reconciler_keeps_no_history_without_an_algorithm_and_the_window_with_one() -> None:
    idle = Env(None)
    for _ in range(20):
        idle.poll(BUSY)
    assert idle.reconciler.members.polls.history_size() == 0
    # scale with waitSeconds 0: stabilizationSeconds 120 + (idlePolls 3 + 10) heartbeats of 7 s = 211 s
    scaled = Env({"name": "scale", "options": {"waitSeconds": "0", "cooldownSeconds": "100000"}})
    book = scaled.reconciler.members.polls
    for _ in range(80):                    # 560 s of polls, every 7 s
        scaled.poll(BUSY)
        assert book.history_size() <= 211 // 7 + 1
    assert book.history_size() == 211 // 7 + 1


def test_published_report_moves_only_after_the_interval() -> None:
    book = PollBook()
    key = ("ns", "e", "e-0")
    book.record(key, ok(100.0, BUSY))
    book.publish(("ns", "e"), [key], now=100.0, interval=10)
    assert book.published(key).status == BUSY
    book.record(key, ok(105.0, BUSIER))
    book.publish(("ns", "e"), [key], now=105.0, interval=10)
    assert book.published(key).time == 100.0
    assert book.next_publish(("ns", "e"), [key], now=105.0) == 5.0
    book.record(key, ok(110.0, BUSIER))
    book.publish(("ns", "e"), [key], now=110.0, interval=10)
    assert book.published(key).time == 110.0
    assert book.next_publish(("ns", "e"), [key], now=110.0) is None


def test_action_records_round_trip_through_the_status() -> None:
    records = ActionRecords()
    records.note(Action("grow", "e-0", 2, reason="busy"), 2, 1_700_000_000.0)
    records.note(Action("grow", "e-0", 1, reason="busier"), 1, 1_700_000_060.0)
    entries = records_to_status({"e-0": records, "e-1": ActionRecords()}, ["e-0", "e-1"])
    assert entries == [{"name": "e-0", "lastActionTimes": {"grow": "2023-11-14T22:14:20Z"},
                        "actionCounts": {"grow": 2},
                        "lastAction": {"time": "2023-11-14T22:14:20Z", "kind": "grow", "amount": 1,
                                       "reason": "busier"}}]
    restored = records_from_status({"memberActions": entries + [{"name": 3}, "junk"]})
    assert list(restored) == ["e-0"]
    view = restored["e-0"].view("e-0", 3, 1, 4)
    assert view.last_actions == {"grow": 1_700_000_060.0} and view.action_counts == {"grow": 2}


def test_a_poll_count_longer_than_ten_heartbeats_is_still_reached() -> None:
    # History was trimmed to 10 heartbeats whatever the algorithm counted, so a
    # confirmPolls above 10 never saw enough drained polls and the member never completed.
    env = Env({"name": "terminate", "options": {"confirmPolls": 15}})
    for _ in range(14):
        env.poll(DONE)
    assert env.status["members"][0]["phase"] == "Running"
    env.poll(DONE)
    assert env.status["members"][0]["phase"] == "Completed"
