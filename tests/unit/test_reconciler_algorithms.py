"""spec.algorithm in the reconciler: decisions after polls, actions carried out, records kept."""
from __future__ import annotations

import copy
import threading
from typing import NoReturn

import pytest

from tests.fakes import FakeClock
from controller.kube.errors import ApiError
from controller.kube.resources import CONFIGMAPS, ENSEMBLES, MINICLUSTERS, PODS
from controller.reconcilers.ensemble import FIELD_MANAGER, EnsembleReconciler
from controller.reconcilers.intents import RECORDS_FIELD_MANAGER
from controller.proto.errors import ActionCallError
from controller.reconcilers.poller import PollResult
from controller.runtime.reconcile import Request
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import Outcome
from tests.unit.fakes.reconciler import (ADDRESS, DONE, EMPTY, KEY, PENDING, Env, FakeApi, FakeCache,
                                         FakeMembers, FakeRecorder, fake_caches, lead_pod, make_ensemble, member,
                                         spec_edited, stored_ensemble)

def scale(**options) -> dict:
    return {"name": "scale", "options": {"waitSeconds": "0", **options}}


def test_queued_jobs_grow_the_minicluster_tell_the_member_and_leave_an_event_and_a_record() -> None:
    env = Env(scale(cooldownSeconds=20))
    env.poll(PENDING)
    assert env.size() == 3
    assert env.scaler.requests == [("ns", "e1", ScaleRequest("grow", "e1-0", 1))]
    assert env.members.requests == [(ADDRESS, "e1-0", "resize", {"nodes": 3})]
    (event,) = [e for e in env.events.events if e[1] == "ScaledUp"]
    assert event[0] == "Normal" and "Member e1-0: MiniCluster e1-0 size 2 -> 3" in event[2]
    assert "3 jobs pending" in event[2]
    (entry,) = env.status["memberActions"]
    assert entry["name"] == "e1-0" and entry["actionCounts"] == {"grow": 1}
    assert entry["lastAction"] == {"time": "2023-11-14T22:30:07Z", "kind": "grow", "amount": 1,
                                   "reason": "3 jobs pending for 0s"}

    env.poll(PENDING)  # 7 s later: inside the 20 s cooldown
    assert env.size() == 3
    env.poll(PENDING, step=14)  # 21 s after the grow
    assert env.size() == 4
    env.poll(PENDING, step=30)  # at maxSize: the algorithm clamps, nothing to do
    assert env.size() == 4 and len(env.scaler.requests) == 2
    assert env.status["memberActions"][0]["actionCounts"] == {"grow": 2}


def test_the_reconcile_only_records_the_decision_and_the_runner_carries_it_out() -> None:
    env = Env(scale(cooldownSeconds=0))
    writes = len(env.api.writes)
    env.poll(PENDING, settle=False)
    assert env.scaler.requests == [] and env.members.requests == [] and env.size() == 2
    written = env.api.writes[writes:]
    assert {(w[0], w[1], w[5]) for w in written} == {("apply", "Ensemble", "status")}  # its status only
    assert RECORDS_FIELD_MANAGER in [w[3] for w in written]
    (pending,) = env.status["memberActions"][0]["pendingActions"]
    assert (pending["kind"], pending["amount"]) == ("grow", 1)
    env.poll(PENDING, settle=False)  # in flight: its polls wait for the outcome, nothing is decided twice
    assert len(env.status["memberActions"][0]["pendingActions"]) == 1
    env.operator.settle()
    assert env.size() == 4  # the grow, then the waiting poll decided on once the outcome came back
    assert [r.delta for _, _, r in env.scaler.requests] == [1, 1]
    assert env.status["memberActions"][0]["actionCounts"] == {"grow": 2}
    assert "pendingActions" not in env.status["memberActions"][0]


def test_a_member_call_that_hangs_holds_a_runner_thread_not_the_reconcile() -> None:
    env = Env(REFILL_ONCE)
    answer, asked, outcome = threading.Event(), threading.Event(), threading.Event()
    real = env.members.request

    def hanging(address: str, member: str, action: str, payload: dict) -> dict:
        asked.set()
        assert answer.wait(10), "the test never let the member answer"
        return real(address, member, action, payload)

    env.members.request = hanging  # type: ignore[method-assign]
    env.operator.runner.on_outcome = lambda request: outcome.set()
    env.operator.runner.start()
    try:
        env.poll(EMPTY, settle=False)  # returns with the submit in flight on the runner's thread
        assert asked.wait(10), "the runner never asked the member"
        env.reconcile()  # other events meanwhile: nothing waits, nothing is decided twice
        assert env.operator.runner.holds(Request("ns", "e1"), "e1-0") and not outcome.is_set()
        assert [p["kind"] for p in env.status["memberActions"][0]["pendingActions"]] == ["submit"]
        answer.set()
        assert outcome.wait(10), "no outcome from the runner"
    finally:
        answer.set()
        env.operator.runner.stop()
    env.reconcile()
    assert env.members.requests == [(ADDRESS, "e1-0", "submit", {"group": "a", "count": 2})]
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}


def test_one_scaler_serves_an_ensembles_actions_across_reconciles() -> None:
    env = Env(scale(cooldownSeconds=0))
    env.poll(PENDING)
    env.poll(PENDING)
    assert env.size() == 4 and env.scaler.made == 1


def test_a_stopped_runner_gets_no_decisions_to_carry_out() -> None:
    env = Env(scale(cooldownSeconds=0))
    env.operator.runner.stop()
    env.poll(PENDING)
    assert env.scaler.requests == [] and "memberActions" not in env.status


def test_each_poll_is_decided_on_once() -> None:
    env = Env(scale(cooldownSeconds=0))
    env.poll(PENDING)
    for _ in range(3):
        env.reconcile()  # woken by other events: no new poll, no new decision
    assert env.size() == 3 and len(env.scaler.requests) == 1


def test_without_spec_algorithm_nothing_is_decided() -> None:
    env = Env(None)
    env.poll(PENDING)
    env.poll(PENDING)
    assert env.scaler.requests == [] and env.members.requests == []
    assert "memberActions" not in env.status


def test_records_survive_a_restart_so_the_cooldown_holds() -> None:
    env = Env(scale(cooldownSeconds=60))
    env.poll(PENDING)
    assert env.size() == 3
    env.operator = env.new_operator()  # a restarted operator: only the status remains
    env.reconcile()
    env.api.put(PODS, lead_pod("e1-0"))
    env.poll(PENDING, step=30)
    assert env.size() == 3
    env.poll(PENDING, step=31)
    assert env.size() == 4
    assert env.status["memberActions"][0]["actionCounts"] == {"grow": 2}


def test_idle_member_shrinks_within_min_size() -> None:
    env = Env(scale(idlePolls="2", stabilizationSeconds="0", cooldownSeconds="0"),
              [member(2, maxSize=4, minSize=1)])
    env.poll(EMPTY)
    assert env.size() == 2
    env.poll(EMPTY)
    assert env.size() == 1
    assert env.members.requests[-1] == (ADDRESS, "e1-0", "resize", {"nodes": 1})
    env.poll(EMPTY)
    env.poll(EMPTY)
    assert env.size() == 1
    assert env.reasons().count("ScaledDown") == 1


def test_terminate_completes_once_deletes_the_minicluster_and_keeps_it_deleted() -> None:
    env = Env({"name": "terminate", "options": {"confirmPolls": 2, "deleteMiniCluster": "true"}})
    env.poll(DONE)
    assert env.status["members"][0]["phase"] == "Running"
    env.poll(DONE)
    assert env.status["members"][0]["phase"] == "Completed"
    assert (MINICLUSTERS, "ns", "e1-0") not in env.api.objects
    assert env.poller.targets == {}  # a finished member is not polled any more
    assert env.status["memberActions"][0]["actionCounts"] == {"delete": 1, "terminate": 1}
    env.clock.step(60)
    env.reconcile()
    writes = len(env.api.writes)
    env.reconcile()  # settled: the deleted MiniCluster is not re-created, nothing is written
    assert (MINICLUSTERS, "ns", "e1-0") not in env.api.objects
    assert len(env.api.writes) == writes
    assert env.status["phase"] == "Completed"
    assert env.reasons().count("Terminated") == 1 and env.reasons().count("MiniClusterDeleted") == 1


def test_a_failed_delete_is_decided_again_on_the_next_poll_not_lost_behind_terminate() -> None:
    env = Env({"name": "terminate", "options": {"confirmPolls": 2, "deleteMiniCluster": "true"}})
    real_delete, failures = env.api.delete, [ApiError(500, "InternalError", "etcd timeout")]

    def delete_failing_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_delete(*args, **kwargs)

    env.api.delete = delete_failing_once
    env.poll(DONE)
    with pytest.raises(ApiError):
        env.poll(DONE)  # the reconcile fails and will be retried; the member is not terminated yet
    assert (MINICLUSTERS, "ns", "e1-0") in env.api.objects
    assert "Terminated" not in env.reasons()
    env.poll(DONE)
    assert (MINICLUSTERS, "ns", "e1-0") not in env.api.objects
    assert env.status["members"][0]["phase"] == "Completed"
    assert env.status["memberActions"][0]["actionCounts"] == {"delete": 1, "terminate": 1}
    assert env.reasons().count("Terminated") == 1 and env.reasons().count("MiniClusterDeleted") == 1


def test_refill_submits_through_the_member_up_to_max_refills() -> None:
    env = Env({"name": "refill", "options": {"group": "a", "count": 2, "emptyPolls": 1, "maxRefills": 1}})
    env.poll(EMPTY)
    assert env.members.requests == [(ADDRESS, "e1-0", "submit", {"group": "a", "count": 2})]
    assert env.status["memberActions"][0]["lastAction"]["amount"] == 2
    (event,) = [e for e in env.events.events if e[1] == "Refilled"]
    assert "submitted 2 jobs of group 'a'" in event[2]
    env.poll(EMPTY)
    env.poll(EMPTY)
    assert len(env.members.requests) == 1


def test_a_partly_done_refill_counts_the_jobs_that_went_in_and_warns_about_the_rest() -> None:
    env = Env({"name": "refill", "options": {"group": "a", "count": 3, "emptyPolls": 1, "maxRefills": 1}})
    env.members.request = lambda address, member, action, payload: {  # type: ignore[method-assign]
        "submitted": [7], "error": "submit a: job 2 of 3 refused: queue closed"}
    env.poll(EMPTY)
    assert env.status["memberActions"][0]["lastAction"]["amount"] == 1
    (warning,) = [e for e in env.events.events if e[1] == "AlgorithmActionFailed"]
    assert warning[0] == "Warning" and "1 of 3 jobs submitted: submit a: job 2 of 3 refused" in warning[2]
    env.poll(EMPTY)  # counted as the one refill allowed: the jobs that went in are not submitted again
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}


def test_a_failed_submit_is_a_warning_and_is_tried_again() -> None:
    env = Env({"name": "refill", "options": {"group": "a", "emptyPolls": 1}})
    env.members.fail = True
    env.poll(EMPTY)
    assert ("Warning", "AlgorithmActionFailed") in [(t, r) for t, r, _ in env.events.events]
    assert "memberActions" not in env.status
    env.members.fail = False
    env.poll(EMPTY)
    assert len(env.members.requests) == 2
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}


def test_a_denied_grow_is_a_warning_and_not_recorded() -> None:
    env = Env(scale(cooldownSeconds=0))
    env.scaler.outcome = Outcome.DENIED
    env.poll(PENDING)
    (warning,) = [m for t, r, m in env.events.events if r == "AlgorithmActionFailed"]
    assert "grow not done: DENIED: no nodes granted" in warning
    assert env.size() == 2 and env.members.requests == [] and "memberActions" not in env.status


def test_grow_still_counts_when_the_member_cannot_be_told() -> None:
    env = Env(scale(cooldownSeconds=0))
    env.members.fail = True
    env.poll(PENDING)
    assert env.size() == 3
    assert env.status["memberActions"][0]["actionCounts"] == {"grow": 1}
    assert any("size changed, but member e1-0" in m for _, r, m in env.events.events
               if r == "AlgorithmActionFailed")


@pytest.mark.parametrize("algorithm, path, cause", [
    ({"name": "scale", "options": {"idlePolls": 0}}, "spec.algorithm.options.idlePolls",
     "must be >= 1, got 0"),
    ({"name": "scale", "options": {"bogus": 1}}, "spec.algorithm.options.bogus", "unknown option"),
    ({"name": "refill", "options": {}}, "spec.algorithm.options.group", "is required"),
    ({"name": "nope"}, "spec.algorithm.name", "unknown algorithm 'nope'"),
])
def test_invalid_algorithm_is_an_invalid_spec_naming_the_option(algorithm: dict, path: str,
                                                                cause: str) -> None:
    api, events = FakeApi(), FakeRecorder()
    ensemble = make_ensemble([member()])
    ensemble["spec"]["algorithm"] = algorithm
    api.put(ENSEMBLES, ensemble)
    caches = fake_caches(api)
    reconciler = EnsembleReconciler(client=api, caches=caches, events=events, clock=FakeClock())
    reconciler.reconcile(Request("ns", "e1"))
    invalid = next(c for c in stored_ensemble(api)["status"]["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["status"] == "True"
    assert invalid["message"].startswith(f"{path}: ") and cause in invalid["message"]
    assert (MINICLUSTERS, "ns", "e1-0") not in api.objects


# -- actions are recorded before they act (a crash or a lost lease never repeats one) --------


class Crash(BaseException):
    """The operator's process dying at that point: nothing after it runs."""


def crash(*args: object, **kwargs: object) -> NoReturn:
    raise Crash()


REFILL_ONCE = {"name": "refill", "options": {"group": "a", "count": 2, "emptyPolls": 1, "maxRefills": 1}}
DELETE_ON_DONE = {"name": "terminate", "options": {"confirmPolls": 1, "deleteMiniCluster": "true"}}


def restart(env: Env) -> None:
    """A new operator process: only what the API server holds remains."""
    env.operator = env.new_operator()


def test_a_submit_is_recorded_as_pending_in_the_status_before_the_member_is_asked() -> None:
    env = Env(REFILL_ONCE)
    seen: list[list[dict]] = []
    real = env.members.request

    def request(address: str, member: str, action: str, payload: dict) -> dict:
        seen.append(stored_ensemble(env.api)["status"]["memberActions"])
        return real(address, member, action, payload)

    env.members.request = request  # type: ignore[method-assign]
    env.poll(EMPTY)
    (entry,) = seen[0]
    (pending,) = entry["pendingActions"]
    assert pending["kind"] == "submit" and pending["amount"] == 2 and pending["group"] == "a"
    (done,) = env.status["memberActions"]
    assert "pendingActions" not in done and done["actionCounts"] == {"submit": 1}


def test_a_crash_between_the_record_and_the_submit_never_refills_past_max_refills() -> None:
    env = Env(REFILL_ONCE)

    env.members.request = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        env.poll(EMPTY)
    env.members = FakeMembers()
    restart(env)
    for _ in range(3):
        env.poll(EMPTY)
    assert env.members.requests == []  # it may have gone in: counted, never asked again
    (entry,) = env.status["memberActions"]
    assert entry["actionCounts"] == {"submit": 1} and "pendingActions" not in entry
    (warning,) = [m for t, r, m in env.events.events if r == "AlgorithmActionUnconfirmed"]
    assert warning.startswith("Member e1-0: submit recorded at ") and "not repeated" in warning


def test_a_crash_between_the_record_and_the_delete_finishes_that_delete_once_and_never_recreates() -> None:
    env = Env(DELETE_ON_DONE)
    uid = env.api.objects[(MINICLUSTERS, "ns", "e1-0")]["metadata"]["uid"]
    real_delete, deletes = env.api.delete, []

    def delete(res, name, namespace=None, **kwargs):
        deletes.append((res.kind, name, kwargs.get("preconditions")))
        return real_delete(res, name, namespace, **kwargs)

    env.api.delete = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        env.poll(DONE)
    assert (MINICLUSTERS, "ns", "e1-0") in env.api.objects
    env.api.delete = delete  # type: ignore[method-assign]
    restart(env)
    env.reconcile()
    assert deletes == [("MiniCluster", "e1-0", {"uid": uid})]
    assert (MINICLUSTERS, "ns", "e1-0") not in env.api.objects
    assert env.status["members"][0]["phase"] == "Completed"
    assert env.status["memberActions"][0]["actionCounts"] == {"delete": 1, "terminate": 1}
    for _ in range(2):
        restart(env)
        env.reconcile()
    assert (MINICLUSTERS, "ns", "e1-0") not in env.api.objects and len(deletes) == 1
    assert env.reasons().count("MiniClusterDeleted") == 1 and env.reasons().count("Terminated") == 1


def test_a_crash_after_the_delete_sends_no_second_event_and_spares_a_minicluster_of_another_uid() -> None:
    env = Env(DELETE_ON_DONE)

    env.poll(DONE, settle=False)  # decided and recorded; the runner then deletes and terminates,
    env.operator.run_actions()  # and the process dies before a reconcile takes the outcome
    assert (MINICLUSTERS, "ns", "e1-0") not in env.api.objects
    assert [p["kind"] for p in env.status["memberActions"][0]["pendingActions"]] == ["delete", "terminate"]
    stranger = {"apiVersion": "flux-framework.org/v1alpha2", "kind": "MiniCluster",
                "metadata": {"name": "e1-0", "namespace": "ns", "uid": "uid-someone-else"}, "spec": {}}
    env.api.put(MINICLUSTERS, stranger)
    real_delete = env.api.delete

    def delete(res, name, namespace=None, *, preconditions=None, **kwargs):
        current = env.api.objects.get((res, namespace, name))
        if preconditions and current is not None and current["metadata"]["uid"] != preconditions["uid"]:
            raise ApiError(409, "Conflict", "Precondition failed: UID in precondition")
        return real_delete(res, name, namespace, preconditions=preconditions, **kwargs)

    env.api.delete = delete  # type: ignore[method-assign]
    restart(env)
    env.reconcile()
    assert env.api.objects[(MINICLUSTERS, "ns", "e1-0")] is stranger
    assert env.reasons().count("MiniClusterDeleted") == 1
    assert env.status["memberActions"][0]["actionCounts"] == {"delete": 1, "terminate": 1}


class StaleEnsembleCache(FakeCache):
    """An informer that has not delivered the latest Ensemble yet: it serves a snapshot."""

    def __init__(self, api: FakeApi, snapshot: dict) -> None:
        super().__init__(api, ENSEMBLES)
        self.snapshot = snapshot

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        return copy.deepcopy(self.snapshot)


def test_a_second_operator_deciding_on_a_stale_ensemble_does_not_refill_again() -> None:
    """A leader that lost its lease and the new one decide on the same polls: the record of
    the first refuses the second's (resourceVersion), which then sees maxRefills reached."""
    env = Env(REFILL_ONCE)
    other = env.new_operator()
    other.reconciler._caches.ensembles = StaleEnsembleCache(env.api, copy.deepcopy(stored_ensemble(env.api)))
    other.reconcile()  # it polls the member too
    env.poll(EMPTY)
    assert len(env.members.requests) == 1
    other.reconciler.record_poll(KEY, PollResult(True, env.clock.wall(), ADDRESS, 0.01, 0, EMPTY, None))
    other.reconcile()
    assert len(env.members.requests) == 1
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}


def test_an_operator_writing_its_status_from_a_stale_cache_never_erases_the_records() -> None:
    env = Env(REFILL_ONCE)
    snapshot = copy.deepcopy(stored_ensemble(env.api))
    snapshot["status"]["phase"] = "Pending"  # so that its status differs and is written
    env.poll(EMPTY)
    other = env.new_operator()
    other.reconciler._caches.ensembles = StaleEnsembleCache(env.api, snapshot)
    writes = len(env.api.writes)
    other.reconcile()
    assert len(env.api.writes) > writes
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}


def test_a_record_refused_only_because_the_cache_lagged_is_written_again_and_acted_on() -> None:
    env = Env(REFILL_ONCE)
    stale = StaleEnsembleCache(env.api, copy.deepcopy(stored_ensemble(env.api)))
    env.reconciler._caches.ensembles = stale
    ledger = stored_ensemble(env.api)  # the ensemble service writes its budget ledger meanwhile
    env.api.apply(ENSEMBLES, {**ledger, "status": {**ledger["status"], "budgetGrants": []}},
                  field_manager="ensemble-service", subresource="status")
    env.poll(EMPTY)
    assert env.members.requests == [(ADDRESS, "e1-0", "submit", {"group": "a", "count": 2})]
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}


def test_records_an_older_operator_wrote_are_taken_over_once_so_the_status_apply_keeps_them() -> None:
    env = Env(REFILL_ONCE)
    env.poll(EMPTY)
    key = (ENSEMBLES, "ns", "e1")
    records = env.status["memberActions"]
    env.api.status_owners[key] = {FIELD_MANAGER: set(env.status)}  # as the operator before it wrote them
    env.api.objects[key]["status"]["phase"] = "Pending"  # so that the status apply runs, without them
    restart(env)
    writes = len(env.api.writes)
    env.reconcile()
    (taken_over,) = [w for w in env.api.writes[writes:] if w[3] == RECORDS_FIELD_MANAGER]
    assert taken_over[6]["status"]["memberActions"] == records
    assert env.status["phase"] == "Running" and env.status["memberActions"] == records
    restart(env)
    writes = len(env.api.writes)
    env.reconcile()
    assert [w for w in env.api.writes[writes:] if w[3] == RECORDS_FIELD_MANAGER] == []


@pytest.mark.parametrize("reply", [{"submitted": 2}, {"submitted": "7"}])
def test_a_submit_reply_of_the_wrong_shape_is_a_warning_not_a_crashed_reconcile(reply: dict) -> None:
    env = Env({"name": "refill", "options": {"group": "a", "emptyPolls": 1}})
    env.members.request = lambda address, member, action, payload: reply  # type: ignore[method-assign]
    env.poll(EMPTY)
    (warning,) = [m for t, r, m in env.events.events if r == "AlgorithmActionFailed"]
    assert "submit not done" in warning and "reply" in warning
    assert "memberActions" not in env.status


def test_a_submit_that_timed_out_counts_as_a_refill_and_is_not_sent_again() -> None:
    env = Env({"name": "refill", "options": {"group": "a", "emptyPolls": 1, "maxRefills": 1}})
    calls: list[str] = []

    def timed_out(address: str, member: str, action: str, payload: dict) -> dict:
        calls.append(action)
        raise ActionCallError(f"member {member} at {address}: {action}: DEADLINE_EXCEEDED: late",
                                maybe_done=True)

    env.members.request = timed_out  # type: ignore[method-assign]
    for _ in range(3):
        env.poll(EMPTY)
    assert calls == ["submit"]
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}
    (warning,) = [m for t, r, m in env.events.events if r == "AlgorithmActionUnconfirmed"]
    assert "DEADLINE_EXCEEDED" in warning and warning.endswith("counted as done, not repeated")
    assert "AlgorithmActionFailed" not in env.reasons()


def test_a_member_removed_and_added_again_starts_afresh_not_terminated() -> None:
    # The records of a removed member stayed in memory (the status dropped them), so a
    # member added again at that index was Completed at once and, after deleteMiniCluster,
    # its MiniCluster was never created; after a restart it was created. Both now start afresh.
    env = Env({"name": "terminate", "options": {"confirmPolls": 1, "deleteMiniCluster": "true"}},
              members=[member(2, maxSize=4), member()])
    env.api.put(PODS, lead_pod("e1-1", ip="10.0.0.6"))
    env.reconcile()
    env.clock.step(7)
    env.reconciler.record_poll(("ns", "e1", "e1-1"), PollResult(True, env.clock.wall(), "10.0.0.6:7000", 0.01,
                                                               0, DONE))
    env.reconcile()
    assert (MINICLUSTERS, "ns", "e1-1") not in env.api.objects
    assert [m["phase"] for m in env.status["members"]] == ["Running", "Completed"]
    removed = spec_edited(env.api)["spec"]["members"].pop()
    del env.api.objects[(PODS, "ns", "e1-1-0-abcde")]
    env.reconcile()
    assert (CONFIGMAPS, "ns", "e1-1") not in env.api.objects
    spec_edited(env.api)["spec"]["members"].append(removed)
    env.reconcile()
    assert (MINICLUSTERS, "ns", "e1-1") in env.api.objects
    assert [m["phase"] for m in env.status["members"]] == ["Running", "Pending"]
    assert [entry["name"] for entry in env.status.get("memberActions", [])] == []


def test_an_ipv6_lead_broker_is_dialled_in_brackets() -> None:
    # "fd00::5:7000" is no host:port to gRPC (an unbracketed IPv6 address takes the
    # last group as part of the address), so on an IPv6 cluster no member was ever polled.
    env = Env(None)
    env.api.put(PODS, lead_pod("e1-0", ip="fd00::5"))
    env.reconcile()
    (target,) = env.poller.targets.values()
    assert target.address == "[fd00::5]:7000"


def test_without_stabilization_an_idle_member_shrinks_though_the_decision_follows_the_poll() -> None:
    """The reconcile reading a poll runs a moment after it; measured from then, a
    stabilizationSeconds of 0 held no recommendation at all and the member never shrank."""
    env = Env(scale(idlePolls="1", stabilizationSeconds="0", cooldownSeconds="0"), [member(2, maxSize=4)])
    env.clock.step(7)
    env.reconciler.record_poll(KEY, PollResult(True, env.clock.wall(), ADDRESS, 0.01, 0, EMPTY))
    env.clock.step(0.05)  # the queue hands the Request to a worker
    env.reconcile()
    assert env.size() == 1
    assert env.reasons().count("ScaledDown") == 1
