"""``spec.algorithm`` in a reconcile: outcomes taken, leftovers settled, decisions recorded.

Reads the caches and the poll book and writes only ``status.memberActions``: the actions
themselves run on the ``ActionRunner`` (``action_runner.py``, whose docstring has the
design). What was done to each member (``action_records.py``) is kept in memory for exact
times and in the status, so that a restarted operator keeps cooldowns and never repeats a
terminate, a delete or a refill.
"""
from __future__ import annotations

import threading
from dataclasses import replace

from api.v1alpha1 import AlgorithmSpec, Ensemble
from controller.algorithms import Algorithm, MemberSample, get_algorithm
from controller.clock import Clock
from controller.kube.resources import ENSEMBLES
from controller.reconcilers.action_records import (ActionRecords, Intent, records_from_status,
                                                   records_to_status)
from controller.reconcilers.action_runner import ActionJob, ActionRunner
from controller.reconcilers.actions import UNCONFIRMED_REASON
from controller.reconcilers.algorithm import history_seconds
from controller.reconcilers.clients import Writer, request_of
from controller.reconcilers.intents import (INTENT_ATTEMPTS, RecordsChanged, adopt_records, owns_records,
                                            store_records, stored_records)
from controller.reconcilers.members import MemberObserver
from controller.reconcilers.status import MemberObservation, rfc3339
from controller.runtime.events import Recorder
from controller.runtime.reconcile import Request


class AlgorithmStep:
    def __init__(self, *, client: Writer, events: Recorder, clock: Clock, members: MemberObserver,
                 runner: ActionRunner | None = None) -> None:
        """Without a ``runner`` no decision is made nor carried out (records are still kept)."""
        self._client = client
        self._events = events
        self._clock = clock
        self._members = members
        self._runner = runner
        self._lock = threading.Lock()
        # Ensemble -> (its uid, member name -> what algorithms did to the member).
        self._actions: dict[Request, tuple[str, dict[str, ActionRecords]]] = {}
        # Ensembles whose records were read from the status, their manager not checked yet.
        self._records_unchecked: set[Request] = set()
        # status.memberActions as this process last stored or adopted them: the cached
        # Ensemble may lag behind our own writes, and our own write is not another writer's.
        self._stored: dict[Request, list[dict]] = {}

    def records(self, ensemble: dict, members: set[str]) -> dict[str, ActionRecords]:
        """This Ensemble's records: in memory, else as the status last stored them (restart).

        Keyed by uid too, so an Ensemble recreated under the same name starts afresh. Records
        of members no longer in the spec are dropped, as the status drops them: a member added
        again at that index is a new MiniCluster, not one already terminated or deleted.
        """
        request, uid = request_of(ensemble), ensemble["metadata"]["uid"]
        with self._lock:
            known = self._actions.get(request)
            if known is None or known[0] != uid:
                known = self._actions[request] = (uid, records_from_status(ensemble.get("status")))
                self._records_unchecked.add(request)
                self._stored.pop(request, None)
            for removed in [name for name in known[1] if name not in members]:
                del known[1][removed]
            return known[1]

    def forget(self, request: Request) -> None:
        with self._lock:
            self._actions.pop(request, None)
            self._records_unchecked.discard(request)
            self._stored.pop(request, None)
        if self._runner is not None:
            self._runner.forget(request)

    def run(self, ensemble: dict, typed: Ensemble, observations: list[MemberObservation],
            records: dict[str, ActionRecords]) -> tuple[dict, list[MemberObservation]]:
        """Take the runner's outcomes, settle what was left pending, decide and hand over,
        store the records. Returns the Ensemble as last written and the observations with the
        members terminated since."""
        runner = self._runner
        if runner is not None:
            request = request_of(ensemble)
            self._take_outcomes(runner, request, records)
            if not runner.stopped:
                self._settle(ensemble, runner, records)
                if typed.spec.algorithm is not None and typed.spec.status_sidecar:  # it reads the polls
                    ensemble = self._decide(ensemble, typed, typed.spec.algorithm, runner, observations, records)
            observations = [replace(o, terminated=_records_of(records, o.name).terminated)
                            for o in observations]
        return self._save_records(ensemble, records, [o.name for o in observations]), observations

    def _take_outcomes(self, runner: ActionRunner, request: Request, records: dict[str, ActionRecords]) -> None:
        """Done (or outcome unknown): the record becomes a count. Changed nothing: it goes, and
        may be decided again. An action that raised stays pending for ``_settle``, and the
        error is raised here so that the workqueue paces the retry."""
        errors = []
        for outcome in runner.take_outcomes(request):
            member_records = records.get(outcome.member)
            if member_records is None:
                continue  # removed from the spec meanwhile: its records went with it
            for intent, taken in outcome.taken:
                pending = member_records.find_pending(intent)
                if pending is None:
                    continue  # another writer's records replaced ours; theirs win
                if taken is None:
                    member_records.cancel(pending)
                else:
                    member_records.confirm(pending, taken.amount)
            if outcome.error is not None:
                errors.append(outcome.error)
        if errors:
            raise errors[0]

    def _settle(self, ensemble: dict, runner: ActionRunner, records: dict[str, ActionRecords]) -> None:
        """Actions recorded that the runner does not hold (a crash, a lost lease, an action
        that raised): a delete or terminate is carried out again (both idempotent, the delete
        bound to the MiniCluster's uid); a grow, shrink or submit counts as done and is not
        repeated, since it may have happened."""
        request = request_of(ensemble)
        for member, member_records in records.items():
            if not member_records.pending or runner.holds(request, member):
                continue
            again = []
            for intent in list(member_records.pending):
                if intent.kind in ("delete", "terminate"):
                    again.append(intent)
                    continue
                member_records.confirm(intent, intent.amount)
                self._events.event(ensemble, "Warning", UNCONFIRMED_REASON,
                                   f"Member {member}: {intent.kind} recorded at {rfc3339(intent.time)} may or "
                                   f"may not have been done (the operator stopped or failed in between): "
                                   f"counted as done, not repeated")
            if again:
                runner.submit(ActionJob(request, ensemble, member, tuple(again), None))

    def _decide(self, ensemble: dict, typed: Ensemble, spec: AlgorithmSpec, runner: ActionRunner,
                observations: list[MemberObservation], records: dict[str, ActionRecords]) -> dict:
        """Decide on each member that answered a poll since the last decision and whose last
        actions are done, record the actions in the status, then hand them to the runner.
        Returns the Ensemble as last written."""
        algorithm = get_algorithm(spec.name)
        window = history_seconds(algorithm.parse_options(spec.options), float(typed.spec.heartbeat))
        request = request_of(ensemble)
        now = self._clock.wall()
        histories: dict[str, tuple[MemberObservation, list[MemberSample]]] = {}
        for observation in observations:
            if _records_of(records, observation.name).terminated or runner.holds(request, observation.name):
                continue  # a member in flight is decided on once its outcome is known
            key = (request.namespace, request.name, observation.name)
            history = self._members.take_history(key, since=now - window)
            if history:
                histories[observation.name] = (observation, history)
        members = [o.name for o in observations]
        for attempt in range(INTENT_ATTEMPTS):
            plans = _plan(algorithm, spec, histories, records)
            if not plans:
                return ensemble
            try:
                ensemble = self._store(ensemble, records_to_status(records, members))
                break
            except Exception as error:
                for name, intents in plans.items():
                    for intent in intents:
                        records[name].cancel(intent)
                if not isinstance(error, RecordsChanged) or attempt == INTENT_ATTEMPTS - 1:
                    raise
                ensemble = error.live
                self._adopt(ensemble, records, members)
        for name, intents in plans.items():
            address = self._members.address(histories[name][0].lead)
            runner.submit(ActionJob(request, ensemble, name, tuple(intents), address))
            if records[name].terminated:
                self._members.stop_polling((request.namespace, request.name, name))
        return ensemble

    def _save_records(self, ensemble: dict, records: dict[str, ActionRecords], members: list[str]) -> dict:
        """Write what changed in the records (outcomes, removed members); another writer's
        records win over ours (their pending actions then count as done). Records this process
        found in the status are checked once for their manager (one read): those an older
        operator wrote are written again under ours before the main status apply drops them."""
        force = False
        request = request_of(ensemble)
        with self._lock:
            unchecked = request in self._records_unchecked
            self._records_unchecked.discard(request)
        if unchecked and stored_records(ensemble):
            meta = ensemble["metadata"]
            force = not owns_records(self._client.get(ENSEMBLES, meta["name"], meta["namespace"]))
        try:
            return self._store(ensemble, records_to_status(records, members), force=force)
        except RecordsChanged as changed:
            self._adopt(changed.live, records, members)
            return changed.live

    def _store(self, ensemble: dict, member_actions: list[dict], *, force: bool = False) -> dict:
        """``store_records``, judging the live records against those we last stored."""
        request = request_of(ensemble)
        with self._lock:
            base = self._stored.get(request)
        written = store_records(self._client, ensemble, member_actions, force=force, base=base)
        with self._lock:
            self._stored[request] = stored_records(written)
        return written

    def _adopt(self, live: dict, records: dict[str, ActionRecords], members: list[str]) -> None:
        """Another writer's records win: ours become theirs (``adopt_records``)."""
        adopt_records(live, records, set(members))
        with self._lock:
            self._stored[request_of(live)] = stored_records(live)


def _records_of(records: dict[str, ActionRecords], member: str) -> ActionRecords:
    return records.get(member) or ActionRecords()


def _plan(algorithm: Algorithm, spec: AlgorithmSpec,
          histories: dict[str, tuple[MemberObservation, list[MemberSample]]],
          records: dict[str, ActionRecords]) -> dict[str, list[Intent]]:
    """The algorithm's decisions, each member's recorded as pending in ``records``."""
    plans = {}
    for name, (observation, history) in histories.items():
        member_records = records.setdefault(name, ActionRecords())
        if member_records.terminated:
            continue
        live_spec = (observation.minicluster or {}).get("spec") or {}
        size = int(live_spec.get("size") or observation.spec_size)
        view = member_records.view(name, size, observation.min_size, observation.max_size)
        # Judged as of the newest poll, which this reconcile follows by a moment: from `now`,
        # a window shorter than that moment (stabilizationSeconds 0) would hold no sample.
        decided_at = history[-1].time
        actions = algorithm.decide(history, view, spec.options, decided_at)
        if actions:
            uid = ((observation.minicluster or {}).get("metadata") or {}).get("uid")
            plans[name] = member_records.intend(actions, decided_at, uid)
    return plans
