"""The Ensemble reconciler: desired objects applied, removed members deleted, status written.

Level-triggered: every reconcile recomputes everything from the informer caches and
writes only what differs, so a reconcile with nothing to do sends no request at all.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from api.v1alpha1 import AlgorithmSpec, Ensemble, FieldError, validate
from api.v1alpha1.validation import guarded
from controller.algorithms import Algorithm, MemberSample, get_algorithm
from controller.clock import Clock
from controller.informers import CONTROLLER_UID_INDEX
from controller.kube.errors import is_conflict, is_not_found
from controller.kube.resources import (CONFIGMAPS, DEPLOYMENTS, ENSEMBLES, MINICLUSTERS, NETWORKPOLICIES,
                                       Resource, for_object)
from controller.scaling.minicluster_sizes import effective_max_size
from controller.reconcilers.desired import DesiredSettings, desired_objects
from controller.reconcilers.desired.compare import applied_hash, differs, with_applied_hash
from controller.reconcilers.action_records import (ActionRecords, Intent, records_from_status,
                                                   records_to_status)
from controller.reconcilers.actions import UNCONFIRMED_REASON, ActionExecutor
from controller.reconcilers.algorithm import algorithm_errors, history_seconds
from controller.reconcilers.conflicts import CONFLICT, conflict_message, controlled_by, with_conflicts
from controller.reconcilers.desired.meta import member_index_of, member_name
from controller.reconcilers.intents import (INTENT_ATTEMPTS, RecordsChanged, adopt_records, owns_records,
                                            store_records, stored_records)
from controller.reconcilers.leadbroker import MINICLUSTER_INDEX, lead_broker
from controller.reconcilers.pollbook import PollBook
from controller.reconcilers.poller import PollKey, PollResult, PollTarget
from controller.reconcilers.status import (COMPLETED, FAILED, OWNED_FIELDS, MemberObservation,
                                           invalid_status, member_phase, rfc3339, status_changed,
                                           valid_status)
from controller.runtime.reconcile import Request, Result

log = logging.getLogger(__name__)

FIELD_MANAGER = "ensemble-operator"
# Owns a MiniCluster's spec.size next to whoever scales it, so that our main apply can
# leave size out without server-side apply deleting it (see _apply_minicluster).
SIZE_FIELD_MANAGER = "ensemble-operator-initial-size"
# How long after a delete the informer may still show the object without a second DELETE.
DELETE_EXPECTATION_SECONDS = 60.0
# Member objects whose removal from the spec means deletion.
MEMBER_RESOURCES = (MINICLUSTERS, CONFIGMAPS)
# A new lastPoll payload is written at most every max(heartbeat, this) seconds.
MIN_PUBLISH_SECONDS = 10.0


class Cache(Protocol):
    def get(self, name: str, namespace: str | None = None) -> dict | None: ...

    def by_index(self, index_name: str, value: str) -> list[dict]: ...


class Writer(Protocol):
    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict: ...

    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict: ...

    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = "Background",
               preconditions: dict | None = None) -> dict | None: ...


class Recorder(Protocol):
    def event(self, obj: dict, type_: str, reason: str, message: str) -> None: ...


class Poller(Protocol):
    def register(self, target: PollTarget) -> None: ...

    def unregister(self, key: PollKey) -> None: ...


@dataclass
class EnsembleCaches:
    """The informer caches the reconciler reads (owned ones indexed by controller UID)."""

    ensembles: Cache
    owned: dict[Resource, Cache]
    pods: Cache


class EnsembleReconciler:
    def __init__(self, *, client: Writer, caches: EnsembleCaches, events: Recorder, clock: Clock,
                 settings: DesiredSettings = DesiredSettings(), poller: Poller | None = None,
                 validator: Callable[[dict], list[FieldError]] = validate,
                 executor: ActionExecutor | None = None) -> None:
        """``executor`` carries out ``spec.algorithm``'s decisions; without one none run."""
        self._client = client
        self._caches = caches
        self._events = events
        self._clock = clock
        self._settings = settings
        self._poller = poller
        self._validate = validator
        self._executor = executor
        self._lock = threading.Lock()
        self._polls = PollBook()
        self._poll_keys: dict[tuple[str, str], set[PollKey]] = {}
        # Ensemble -> (its uid, member name -> what algorithms did to the member).
        self._actions: dict[Request, tuple[str, dict[str, ActionRecords]]] = {}
        # Ensembles whose records were read from the status, their manager not checked yet.
        self._records_unchecked: set[Request] = set()
        # Objects we deleted that the informer may still show: uid -> deadline.
        self._expected_deletes: dict[str, float] = {}

    # -- poller feedback ----------------------------------------------------------

    def record_poll(self, key: PollKey, result: PollResult) -> Request:
        """Keep a poll result for the next status; returns the Request to enqueue."""
        with self._lock:
            if key in self._poll_keys.get((key[0], key[1]), set()):
                self._polls.record(key, result)
        return Request(key[0], key[1])

    # -- reconcile ------------------------------------------------------------------

    def reconcile(self, request: Request) -> Result:
        ensemble = self._caches.ensembles.get(request.name, request.namespace)
        if ensemble is None or ensemble["metadata"].get("deletionTimestamp"):
            # Owned objects go with the Ensemble through their owner references.
            self._set_poll_targets(request, {})
            self._forget_actions(request)
            return Result()
        # A tenant's input must end as InvalidSpec, never as a reconcile that raises and is retried.
        errors = guarded("spec", lambda: self._validate(ensemble) + algorithm_errors(ensemble))
        typed: Ensemble | None = None
        if not errors:
            try:
                typed = Ensemble.from_dict(ensemble)
            except Exception as err:  # validation should have caught it: say what did
                errors = [FieldError("spec", f"could not be read: {type(err).__name__}: {str(err)[:200]}")]
        if typed is None:
            self._report_invalid(ensemble, errors)
            return Result()
        members = {member_name(ensemble, index) for index in range(len(typed.spec.members))}
        records = self._action_records(ensemble, members)
        desired = desired_objects(typed.to_dict(), self._settings)
        conflicts = [conflict for obj in desired if not _deleted_by_algorithm(obj, records)
                     for conflict in [self._apply(ensemble, obj)] if conflict is not None]
        self._delete_removed_members(ensemble, len(typed.spec.members))
        self._delete_undesired_policies(ensemble, desired)
        observations = self._observe_members(ensemble, typed, records)
        written, observations = self._algorithm_step(ensemble, typed, observations, records)
        deployment = self._caches.owned[DEPLOYMENTS].get(request.name, request.namespace)
        now = self._clock.wall()
        status = with_conflicts(valid_status(written, observations, deployment, now), conflicts,
                                written["metadata"].get("generation"), rfc3339(now))
        self._write_status(written, status)
        if any(_needs_polling(o) for o in observations):
            return Result(requeue_after=float(typed.spec.heartbeat))
        return Result()

    # -- owned objects ----------------------------------------------------------------

    def _apply(self, ensemble: dict, desired: dict) -> str | None:
        """Create or update ``desired``; an object of that name not controlled by this Ensemble
        is left alone and returned as a conflict message (with a Warning Event naming it)."""
        resource = for_object(desired)
        meta = desired["metadata"]
        cached = self._caches.owned[resource].get(meta["name"], meta["namespace"])
        if cached is None:
            cached = self._unseen(resource, meta)
        if cached is not None and not controlled_by(cached, ensemble):
            conflict = conflict_message(desired["kind"], meta["namespace"], meta["name"])
            self._events.event(ensemble, "Warning", CONFLICT, conflict)
            return conflict
        # The hash leaves the MiniCluster's size out: after creation it is not ours to apply.
        desired = with_applied_hash(desired, applied_hash(
            _without_size(desired) if resource == MINICLUSTERS else desired))
        if resource == MINICLUSTERS and cached is not None:
            desired = _without_size(desired)
        if not differs(desired, cached):
            return None
        if resource == MINICLUSTERS and cached is not None:
            self._pin_size(cached)
        log.info("applying %s %s/%s", desired["kind"], meta["namespace"], meta["name"])
        self._client.apply(resource, desired, field_manager=FIELD_MANAGER, force=True)
        if cached is None:
            self._events.event(ensemble, "Normal", "Created", f"Created {desired['kind']} {meta['name']}")
        return None

    def _unseen(self, resource: Resource, meta: dict) -> dict | None:
        """The live object behind a cache miss, None when there is none.

        Either we created it and the informer has not shown it yet (a reconcile woken by
        another event can run first: applying again would be a wasted write, and for a
        MiniCluster one whose spec.size could undo a grow), or it existed before without our
        labels, so our label-selected caches never show it: applying would adopt it.
        One read settles both.
        """
        try:
            return self._client.get(resource, meta["name"], meta["namespace"])
        except Exception as error:
            if is_not_found(error):
                return None
            raise

    def _pin_size(self, cached: dict) -> None:
        """Co-own spec.size under a second manager before our main apply drops it.

        Without a conflict the size stays as it is; a conflict means the scaling path
        already owns it, which is just as good.
        """
        meta = cached["metadata"]
        size = (cached.get("spec") or {}).get("size")
        if size is None:
            return
        pin = {"apiVersion": MINICLUSTERS.api_version, "kind": MINICLUSTERS.kind,
               "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
               "spec": {"size": size}}
        try:
            self._client.apply(MINICLUSTERS, pin, field_manager=SIZE_FIELD_MANAGER, force=False)
        except Exception as error:
            if not is_conflict(error):
                raise

    def _delete_removed_members(self, ensemble: dict, member_count: int) -> None:
        """Delete the objects of removed members, once each."""
        uid = ensemble["metadata"]["uid"]
        for resource in MEMBER_RESOURCES:
            for obj in self._caches.owned[resource].by_index(CONTROLLER_UID_INDEX, uid):
                index = member_index_of(obj)
                if index is not None and index >= member_count:
                    self._delete_owned(ensemble, resource, obj, f"member {index} removed from the spec")

    def _delete_undesired_policies(self, ensemble: dict, desired: list[dict]) -> None:
        """Delete our NetworkPolicies the Ensemble no longer asks for (``spec.networkPolicy:
        false``, a removed member)."""
        keep = {obj["metadata"]["name"] for obj in desired if for_object(obj) == NETWORKPOLICIES}
        why = "spec.networkPolicy is false" if not keep else "no longer desired"
        for obj in self._caches.owned[NETWORKPOLICIES].by_index(CONTROLLER_UID_INDEX, ensemble["metadata"]["uid"]):
            if obj["metadata"]["name"] not in keep:
                self._delete_owned(ensemble, NETWORKPOLICIES, obj, why)

    def _delete_owned(self, ensemble: dict, resource: Resource, obj: dict, why: str) -> None:
        """Delete an object this Ensemble controls, once: one already being deleted, or deleted
        by us while the informer has not shown it gone yet, gets no second DELETE nor Event."""
        meta = obj["metadata"]
        now = self._clock.now()
        if meta.get("deletionTimestamp") or self._delete_expected(meta["uid"], now):
            return
        try:
            answer = self._client.delete(resource, meta["name"], meta["namespace"],
                                         preconditions={"uid": meta["uid"]})
        except Exception as error:
            if not is_not_found(error):
                raise
            answer = None
        with self._lock:
            self._expected_deletes[meta["uid"]] = now + DELETE_EXPECTATION_SECONDS
        if answer is None:
            return  # already gone: not our deletion to report
        self._events.event(ensemble, "Normal", "Deleted",
                           f"Deleted {obj.get('kind', resource.kind)} {meta['name']} ({why})")

    def _delete_expected(self, uid: str, now: float) -> bool:
        """True while an object we deleted may still linger in the cache (expired ones dropped)."""
        with self._lock:
            for known in [u for u, deadline in self._expected_deletes.items() if deadline <= now]:
                del self._expected_deletes[known]
            return uid in self._expected_deletes

    # -- members and polling --------------------------------------------------------------

    def _observe_members(self, ensemble: dict, typed: Ensemble,
                         records: dict[str, ActionRecords]) -> list[MemberObservation]:
        request = _request_of(ensemble)
        namespace = request.namespace
        targets: dict[PollKey, PollTarget] = {}
        heartbeat = float(typed.spec.heartbeat)
        publish_every = max(heartbeat, MIN_PUBLISH_SECONDS)
        pod_lists = []
        for index, member in enumerate(typed.spec.members):
            name = member_name(ensemble, index)
            pods = [pod for pod in self._caches.pods.by_index(MINICLUSTER_INDEX, name)
                    if pod["metadata"].get("namespace") == namespace]
            pod_lists.append((name, member, pods))
            lead = lead_broker(pods, minicluster=name)
            if lead is not None and lead.reachable and not _records_of(records, name).terminated:
                key = (namespace, request.name, name)
                targets[key] = PollTarget(key, self._member_address(lead.ip), heartbeat)
        self._set_poll_targets(request, targets, history=_history_window(typed))
        observations = []
        for name, member, pods in pod_lists:
            key = (namespace, request.name, name)
            minicluster = self._caches.owned[MINICLUSTERS].get(name, namespace)
            observations.append(MemberObservation(
                name=name, spec_size=member.size, min_size=member.min_size,
                max_size=effective_max_size(member.max_size, minicluster), minicluster=minicluster, pods=pods,
                poll=self._polls.latest(key), published=self._polls.published(key, publish_every),
                terminated=_records_of(records, name).terminated))
        return observations

    def _member_address(self, ip: str | None) -> str:
        """``host:port`` as gRPC parses it: an IPv6 pod IP goes in brackets (an IPv6 cluster)."""
        host = f"[{ip}]" if ip is not None and ":" in ip else ip
        return f"{host}:{self._settings.member_status_port}"

    def _set_poll_targets(self, request: Request, targets: dict[PollKey, PollTarget], *,
                          history: float | None = None) -> None:
        """Poll ``targets`` (and no other member of the Ensemble), keeping ``history`` seconds
        of their successful polls for the algorithm (None: none)."""
        with self._lock:
            previous = self._poll_keys.pop((request.namespace, request.name), set())
            if targets:
                self._poll_keys[(request.namespace, request.name)] = set(targets)
            for key in previous - set(targets):
                self._polls.forget(key)
            for key in targets:
                self._polls.keep_history(key, history)
        if self._poller is None:
            return
        for key in previous - set(targets):
            self._poller.unregister(key)
        for target in targets.values():
            self._poller.register(target)

    # -- algorithm ------------------------------------------------------------------------

    def _action_records(self, ensemble: dict, members: set[str]) -> dict[str, ActionRecords]:
        """This Ensemble's records: in memory, else as the status last stored them (restart).

        Keyed by uid too, so an Ensemble recreated under the same name starts afresh. Records
        of members no longer in the spec are dropped, as the status drops them: a member added
        again at that index is a new MiniCluster, not one already terminated or deleted.
        """
        request, uid = _request_of(ensemble), ensemble["metadata"]["uid"]
        with self._lock:
            known = self._actions.get(request)
            if known is None or known[0] != uid:
                known = self._actions[request] = (uid, records_from_status(ensemble.get("status")))
                self._records_unchecked.add(request)
            for removed in [name for name in known[1] if name not in members]:
                del known[1][removed]
            return known[1]

    def _forget_actions(self, request: Request) -> None:
        with self._lock:
            self._actions.pop(request, None)
            self._records_unchecked.discard(request)

    def _algorithm_step(self, ensemble: dict, typed: Ensemble, observations: list[MemberObservation],
                        records: dict[str, ActionRecords]) -> tuple[dict, list[MemberObservation]]:
        """Finish what was left pending, decide and act, store the records. Returns the Ensemble
        as last written and the observations with the members terminated since."""
        executor = self._executor
        if executor is not None:
            self._settle(ensemble, executor, records)
            if typed.spec.algorithm is not None:
                ensemble = self._run_algorithm(ensemble, typed, typed.spec.algorithm, executor, observations,
                                               records)
            observations = [replace(o, terminated=_records_of(records, o.name).terminated)
                            for o in observations]
        return self._save_records(ensemble, records, [o.name for o in observations]), observations

    def _run_algorithm(self, ensemble: dict, typed: Ensemble, spec: AlgorithmSpec, executor: ActionExecutor,
                       observations: list[MemberObservation], records: dict[str, ActionRecords]) -> dict:
        """Decide on each member that answered a poll since the last decision, record the
        actions in the status, then act. Returns the Ensemble as last written."""
        algorithm = get_algorithm(spec.name)
        window = history_seconds(algorithm.parse_options(spec.options), float(typed.spec.heartbeat))
        request = _request_of(ensemble)
        now = self._clock.wall()
        histories: dict[str, tuple[MemberObservation, list[MemberSample]]] = {}
        for observation in observations:
            if _records_of(records, observation.name).terminated:
                continue
            key = (request.namespace, request.name, observation.name)
            history = self._polls.take_history(key, since=now - window)
            if history:
                histories[observation.name] = (observation, history)
        members = [o.name for o in observations]
        for attempt in range(INTENT_ATTEMPTS):
            plans = _plan(algorithm, spec, histories, records)
            if not plans:
                return ensemble
            try:
                ensemble = store_records(self._client, ensemble, records_to_status(records, members))
                break
            except Exception as error:
                for name, intents in plans.items():
                    for intent in intents:
                        records[name].cancel(intent)
                if not isinstance(error, RecordsChanged) or attempt == INTENT_ATTEMPTS - 1:
                    raise
                ensemble = error.live
                adopt_records(ensemble, records, set(members))
        for name, intents in plans.items():
            lead = histories[name][0].lead
            address = self._member_address(lead.ip) if lead is not None and lead.reachable else None
            for intent in intents:
                _carry_out(ensemble, executor, name, records[name], intent, address)
            if records[name].terminated and self._poller is not None:
                # done: the next reconcile forgets its polls too
                self._poller.unregister((request.namespace, request.name, name))
        return ensemble

    def _settle(self, ensemble: dict, executor: ActionExecutor, records: dict[str, ActionRecords]) -> None:
        """Actions recorded but not known to be done (a crash, a lost lease, a reconcile that
        raised between record and act): a delete or terminate is finished (both idempotent,
        the delete bound to the MiniCluster's uid); a grow, shrink or submit counts as done
        and is not repeated, since it may have happened."""
        for member, member_records in records.items():
            for intent in list(member_records.pending):
                if intent.kind in ("delete", "terminate"):
                    taken = executor.execute(ensemble, intent.action(member), None, minicluster_uid=intent.uid)
                    member_records.confirm(intent, taken.amount if taken is not None else 0)
                    continue
                member_records.confirm(intent, intent.amount)
                self._events.event(ensemble, "Warning", UNCONFIRMED_REASON,
                                   f"Member {member}: {intent.kind} recorded at {rfc3339(intent.time)} may or "
                                   f"may not have been done (the operator stopped or failed in between): "
                                   f"counted as done, not repeated")

    def _save_records(self, ensemble: dict, records: dict[str, ActionRecords], members: list[str]) -> dict:
        """Write what changed in the records (outcomes, removed members); another writer's
        records win over ours (their pending actions then count as done). Records this process
        found in the status are checked once for their manager (one read): those an older
        operator wrote are written again under ours before the main status apply drops them."""
        force = False
        with self._lock:
            unchecked = _request_of(ensemble) in self._records_unchecked
            self._records_unchecked.discard(_request_of(ensemble))
        if unchecked and stored_records(ensemble):
            meta = ensemble["metadata"]
            force = not owns_records(self._client.get(ENSEMBLES, meta["name"], meta["namespace"]))
        try:
            return store_records(self._client, ensemble, records_to_status(records, members), force=force)
        except RecordsChanged as changed:
            adopt_records(changed.live, records, set(members))
            return changed.live

    # -- status ------------------------------------------------------------------------

    def _report_invalid(self, ensemble: dict, errors: list[FieldError]) -> None:
        self._set_poll_targets(_request_of(ensemble), {})
        status = invalid_status(ensemble, errors, self._clock.wall())
        if self._write_status(ensemble, status):
            self._events.event(ensemble, "Warning", "InvalidSpec", "; ".join(str(e) for e in errors))

    def _write_status(self, ensemble: dict, status: dict) -> bool:
        if not status_changed(status, ensemble.get("status")):
            return False
        meta = ensemble["metadata"]
        body = {"apiVersion": ENSEMBLES.api_version, "kind": ENSEMBLES.kind,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "status": {key: status[key] for key in OWNED_FIELDS if key in status}}
        self._client.apply(ENSEMBLES, body, field_manager=FIELD_MANAGER, force=True, subresource="status")
        return True


def _needs_polling(observation: MemberObservation) -> bool:
    """A member whose lead broker serves and whose work is not over."""
    lead = observation.lead
    return (lead is not None and lead.reachable
            and member_phase(observation) not in (COMPLETED, FAILED))


def _records_of(records: dict[str, ActionRecords], member: str) -> ActionRecords:
    return records.get(member) or ActionRecords()


def _carry_out(ensemble: dict, executor: ActionExecutor, member: str, member_records: ActionRecords,
               intent: Intent, address: str | None) -> None:
    """Act on a recorded intent. Refused or failed with nothing changed: the record goes and it
    may be decided again; an exception leaves it pending for the next reconcile's ``_settle``."""
    taken = executor.execute(ensemble, intent.action(member), address, minicluster_uid=intent.uid)
    if taken is None:
        member_records.cancel(intent)
    else:
        member_records.confirm(intent, taken.amount)


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


def _deleted_by_algorithm(desired: dict, records: dict[str, ActionRecords]) -> bool:
    """A MiniCluster an algorithm deleted stays deleted: its member's work is done."""
    return for_object(desired) == MINICLUSTERS and _records_of(records, desired["metadata"]["name"]).deleted


def _without_size(minicluster: dict) -> dict:
    """The MiniCluster minus spec.size: after creation the size belongs to grow/shrink."""
    spec = {key: value for key, value in minicluster["spec"].items() if key != "size"}
    return {**minicluster, "spec": spec}


def _history_window(typed: Ensemble) -> float | None:
    """Seconds of poll history the Ensemble's algorithm reads; None without an algorithm."""
    spec = typed.spec.algorithm
    if spec is None:
        return None
    return history_seconds(get_algorithm(spec.name).parse_options(spec.options), float(typed.spec.heartbeat))


def _request_of(ensemble: dict) -> Request:
    return Request(ensemble["metadata"]["namespace"], ensemble["metadata"]["name"])
