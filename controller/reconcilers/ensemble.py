"""The Ensemble reconciler: desired objects applied, removed members deleted, status written.

Level-triggered: every reconcile recomputes everything from the informer caches and
writes only what differs, so a reconcile with nothing to do sends no request at all. It
reads caches only and writes only the Ensemble's owned objects and status; each step is a
collaborator with one job:

- ``OwnedObjects`` (owned_objects.py): apply what differs, size pinning, conflicts, deletions;
- ``LastDesired`` (last_desired.py): what the decoded spec desired last, so that desired objects
  the caches still show as matched are not built again;
- ``MemberObserver`` (members.py): member pods, lead brokers, poll targets and results;
- ``AlgorithmStep`` (algorithm_step.py): ``spec.algorithm``'s records and decisions, carried
  out by the ``ActionRunner`` (action_runner.py) off the reconcile workers.
"""
from __future__ import annotations

from collections.abc import Callable

from api.v1alpha1 import Ensemble, FieldError, spec_warnings
from api.v1alpha1.validation import guarded, validated
from controller.clock import Clock
from controller.kube.resources import DEPLOYMENTS, ENSEMBLES, MINICLUSTERS, NETWORKPOLICIES
from controller.reconcilers.action_records import ActionRecords
from controller.reconcilers.action_runner import ActionRunner
from controller.reconcilers.algorithm import algorithm_errors
from controller.reconcilers.algorithm_step import AlgorithmStep
from controller.reconcilers.clients import FIELD_MANAGER, EnsembleCaches, Poller, Writer, request_of
from controller.reconcilers.conflicts import with_conflicts
from controller.reconcilers.desired import DesiredSettings, desired_objects
from controller.reconcilers.desired.meta import member_name
from controller.reconcilers.known_valid import KnownValid
from controller.reconcilers.last_desired import LastDesired
from controller.reconcilers.members import MemberObserver
from controller.reconcilers.owned_objects import DELETE_EXPECTATION_SECONDS, DesiredRef, OwnedObjects, hashed
from controller.reconcilers.poller import PollKey, PollResult
from controller.reconcilers.status import (COMPLETED, FAILED, OWNED_FIELDS, SPEC_WARNINGS, MemberObservation,
                                           invalid_status, member_phase, rfc3339, spec_warnings_message,
                                           status_changed, valid_status, with_spec_warnings)
from controller.runtime.expectations import Expectations
from controller.runtime.events import Recorder
from controller.runtime.reconcile import Request, Result
from controller.runtime.writes import WrittenObjects

__all__ = ["FIELD_MANAGER", "EnsembleCaches", "EnsembleReconciler"]

# A publication window that opened between observing and returning is not requeued at 0 s
# (the poll result that arrived meanwhile enqueued its own reconcile).
MIN_REQUEUE_SECONDS = 0.1


class EnsembleReconciler:
    def __init__(self, *, client: Writer, caches: EnsembleCaches, events: Recorder, clock: Clock,
                 settings: DesiredSettings = DesiredSettings(), poller: Poller | None = None,
                 validator: Callable[[dict], tuple[list[FieldError], Ensemble | None]] = validated,
                 warner: Callable[[dict], list[FieldError]] = spec_warnings,
                 runner: ActionRunner | None = None, written: WrittenObjects | None = None) -> None:
        """``runner`` carries out ``spec.algorithm``'s decisions; without one none are made.
        ``validator``: an Ensemble's errors and, when none, the object decoded (``validated``).
        ``written``: see OwnedObjects."""
        self._client = client
        self._caches = caches
        self._clock = clock
        self._events = events
        self._settings = settings
        self._validate = validator
        self._warnings = warner
        self._known_valid = KnownValid()
        self._last_desired = LastDesired()
        self.owned = OwnedObjects(client=client, caches=caches, events=events,
                                  expectations=Expectations(clock, ttl=DELETE_EXPECTATION_SECONDS),
                                  written=written)
        self.members = MemberObserver(caches=caches, member_status_port=settings.member_status_port,
                                      clock=clock, poller=poller)
        self.algorithm = AlgorithmStep(client=client, events=events, clock=clock, members=self.members,
                                       runner=runner)

    def record_poll(self, key: PollKey, result: PollResult) -> Request:
        """Keep a poll result for the next status; returns the Request to enqueue."""
        return self.members.record_poll(key, result)

    def reconcile(self, request: Request) -> Result:
        ensemble = self._caches.ensembles.get(request.name, request.namespace)
        if ensemble is None or ensemble["metadata"].get("deletionTimestamp"):
            # Owned objects go with the Ensemble through their owner references.
            self.members.forget(request)
            self.algorithm.forget(request)
            self.owned.forget(request)
            self._known_valid.forget(request)
            self._last_desired.forget(request)
            return Result()
        errors, typed = self._checked(request, ensemble)
        if typed is None:
            self._report_invalid(ensemble, errors)
            return Result()
        members = {member_name(ensemble, index) for index in range(len(typed.spec.members))}
        records = self.algorithm.records(ensemble, members)
        conflicts, refs = self._apply_desired(request, ensemble, typed, records)
        policies = {ref.name for ref in refs if ref.resource == NETWORKPOLICIES}
        self.owned.delete_undesired(ensemble, len(typed.spec.members), policies)
        observations = self.members.observe(ensemble, typed, records)
        written, observations = self.algorithm.run(ensemble, typed, observations, records)
        deployment = self._caches.owned[DEPLOYMENTS].get(request.name, request.namespace)
        now = self._clock.wall()
        generation = written["metadata"].get("generation")
        status = with_conflicts(valid_status(written, observations, deployment, now), conflicts,
                                generation, rfc3339(now))
        status = with_spec_warnings(status, guarded("spec", lambda: self._warnings(ensemble)), generation, now)
        answer = self._write_status(written, status)
        if answer is not None:
            self._known_valid.status_written(request, answer)
        self._announce_warnings(written, status)
        waits = [wait for wait in (self.members.next_publish(request),) if wait is not None]
        if typed.spec.status_sidecar and any(_needs_polling(o) for o in observations):
            waits.append(float(typed.spec.heartbeat))
        # Poll results held back until the Ensemble's publication window opens are written then.
        return Result(requeue_after=max(min(waits), MIN_REQUEUE_SECONDS)) if waits else Result()

    def _apply_desired(self, request: Request, ensemble: dict, typed: Ensemble,
                       records: dict[str, ActionRecords]) -> tuple[list[str], tuple[DesiredRef, ...]]:
        """Apply what differs of the desired objects; the conflicts, and every desired object's
        reference. Those last desired by this same decoded spec are not built again while the
        caches show each as last matched (last_desired.py)."""
        refs = self._last_desired.get(request, typed)
        if refs is not None and self.owned.unchanged(ensemble, [ref for ref in refs
                                                               if not _deleted_by_algorithm(ref, records)]):
            return [], refs
        desired = [hashed(obj) for obj in desired_objects(typed.to_dict(), self._settings)]
        refs = tuple(item.ref for item in desired)
        self._last_desired.keep(request, typed, refs)
        return self.owned.apply_all(ensemble, [item for item in desired
                                               if not _deleted_by_algorithm(item.ref, records)]), refs

    def _checked(self, request: Request, ensemble: dict) -> tuple[list[FieldError], Ensemble | None]:
        """The Ensemble's errors, and when there are none the Ensemble decoded (by the same
        walk as the schema check). A tenant's input must end as InvalidSpec, never as a
        reconcile that raises and is retried. What is known valid already is not walked
        again (known_valid.py)."""
        known = self._known_valid.decoded(request, ensemble)
        if known is not None:
            return [], known
        decoded: list[Ensemble | None] = [None]
        subject = ensemble
        if "status" in ensemble and self._known_valid.status_known(request, ensemble):
            subject = {key: value for key, value in ensemble.items() if key != "status"}

        def run() -> list[FieldError]:
            errors, decoded[0] = self._validate(subject)
            return errors + algorithm_errors(ensemble)
        errors = guarded("spec", run)
        typed = decoded[0]
        if not errors and typed is None:
            try:
                typed = Ensemble.from_dict(subject)
            except Exception as err:  # the validator should have said why: say what did
                errors = [FieldError("spec", f"could not be read: {type(err).__name__}: {str(err)[:200]}")]
        if errors or typed is None:
            self._known_valid.forget(request)
            self._last_desired.forget(request)
            return errors, None
        self._known_valid.passed(request, ensemble, typed)
        return [], typed

    # -- status ------------------------------------------------------------------------

    def _report_invalid(self, ensemble: dict, errors: list[FieldError]) -> None:
        self.members.forget(request_of(ensemble))
        status = invalid_status(ensemble, errors, self._clock.wall())
        if self._write_status(ensemble, status) is not None:
            self._events.event(ensemble, "Warning", "InvalidSpec", "; ".join(str(e) for e in errors))

    def _announce_warnings(self, ensemble: dict, status: dict) -> None:
        """One Warning Event each time the spec's warnings change (not on every reconcile)."""
        message = spec_warnings_message(status)
        if message is not None and message != spec_warnings_message(ensemble.get("status")):
            self._events.event(ensemble, "Warning", SPEC_WARNINGS, message)

    def _write_status(self, ensemble: dict, status: dict) -> dict | None:
        """Apply ``status`` if it changed; the API server's answer (None: nothing to write)."""
        if not status_changed(status, ensemble.get("status")):
            return None
        meta = ensemble["metadata"]
        body = {"apiVersion": ENSEMBLES.api_version, "kind": ENSEMBLES.kind,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "status": {key: status[key] for key in OWNED_FIELDS if key in status}}
        return self._client.apply(ENSEMBLES, body, field_manager=FIELD_MANAGER, force=True, subresource="status")


def _needs_polling(observation: MemberObservation) -> bool:
    """A member whose lead broker serves and whose work is not over."""
    lead = observation.lead
    return (lead is not None and lead.reachable
            and member_phase(observation) not in (COMPLETED, FAILED))


def _deleted_by_algorithm(desired: DesiredRef, records: dict[str, ActionRecords]) -> bool:
    """A MiniCluster an algorithm deleted stays deleted: its member's work is done."""
    known = records.get(desired.name)
    return desired.resource == MINICLUSTERS and known is not None and known.deleted
