"""The objects an Ensemble owns: applied when they differ, deleted once no longer desired.

Compared with the cache and applied server-side only when something differs; a name held
by an object this Ensemble does not control is never applied over or adopted (a conflict).
A cache miss is first a create-only apply (one request when the object does not exist, as
on every first reconcile); only when something holds the name is it read and checked.
A MiniCluster's spec.size is the scaling path's after creation, so it is pinned under a
manager of its own before the main apply leaves it out. Deletions wait for the cache to
show them (``runtime.expectations``), so a lagging cache costs no second DELETE nor Event.
"""
from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from controller.informers import CONTROLLER_UID_INDEX
from controller.kube.errors import is_conflict, is_not_found, status_of
from controller.kube.resources import CONFIGMAPS, MINICLUSTERS, NETWORKPOLICIES, Resource, for_object
from controller.reconcilers.clients import FIELD_MANAGER, EnsembleCaches, Writer, request_of
from controller.reconcilers.conflicts import CONFLICT, conflict_message, controlled_by
from controller.reconcilers.desired.compare import applied_hash, differs, with_applied_hash
from controller.reconcilers.desired.meta import member_index_of
from controller.runtime.expectations import Expectations
from controller.runtime.events import Recorder, joined_notes
from controller.runtime.reconcile import Request
from controller.runtime.writes import WrittenObjects

log = logging.getLogger(__name__)

# Owns a MiniCluster's spec.size next to whoever scales it, so that our main apply can
# leave size out without server-side apply deleting it (see OwnedObjects._pin_size).
SIZE_FIELD_MANAGER = "ensemble-operator-initial-size"
# A resourceVersion no stored object has (etcd's revisions count up from 1 and never get
# near 2**64): an apply carrying it creates or fails (see _Write).
CREATE_ONLY_RESOURCE_VERSION = str(2**64 - 1)
# How long after a delete the informer may still show the object without a second DELETE.
DELETE_EXPECTATION_SECONDS = 60.0
# Member objects whose removal from the spec means deletion.
MEMBER_RESOURCES = (MINICLUSTERS, CONFIGMAPS)
# Owned kinds deleted when no longer desired (indexed by controller UID).
DELETED_RESOURCES = (*MEMBER_RESOURCES, NETWORKPOLICIES)


@dataclass(frozen=True, slots=True)
class DesiredRef:
    """Which object is desired, and its applied hash: all an unchanged reconcile compares."""

    resource: Resource
    namespace: str
    name: str
    digest: str


@dataclass(frozen=True, slots=True)
class HashedObject:
    """A desired object annotated with its applied hash (``ref.digest``)."""

    obj: dict
    ref: DesiredRef


def hashed(obj: dict) -> HashedObject:
    """``obj`` with its applied hash. A MiniCluster's hash leaves its size out: after creation
    the size is not ours to apply."""
    resource = for_object(obj)
    digest = applied_hash(_without_size(obj) if resource == MINICLUSTERS else obj)
    meta = obj["metadata"]
    return HashedObject(with_applied_hash(obj, digest), DesiredRef(resource, meta["namespace"], meta["name"], digest))


@dataclass(eq=False)
class _Write:
    """One apply to send: ``desired`` (carrying its applied hash ``digest``) over ``before``,
    the cache's copy (None: absent). A ``create_only`` one fails, writing nothing, if the name
    is taken: server-side apply with a resourceVersion no stored object can have checks it
    only against an existing object (409 Conflict) and creates a missing one as any apply
    would, managed fields included. One request for what is otherwise a read and an apply.
    (A uid in the body would do the opposite: the API server refuses to create an object
    whose uid is set.)"""

    resource: Resource
    desired: dict
    digest: str
    before: dict | None
    create_only: bool
    body: dict = field(init=False)

    def __post_init__(self) -> None:
        self.body = self.desired if not self.create_only else {
            **self.desired, "metadata": {**self.desired["metadata"], "resourceVersion": CREATE_ONLY_RESOURCE_VERSION}}


class OwnedObjects:
    def __init__(self, *, client: Writer, caches: EnsembleCaches, events: Recorder,
                 expectations: Expectations, written: WrittenObjects | None = None) -> None:
        """``written`` keeps what each create or apply returned until the caches show it
        (``caches.owned`` should read through it; see controller/runtime/writes.py)."""
        self._client = client
        self._caches = caches
        self._events = events
        self._expectations = expectations
        self._written = written
        # Per Ensemble, per owned object: the (resourceVersion, applied hash) at which the cached
        # object last held everything desired. At one resourceVersion an object cannot change,
        # and the hash changes with anything desired, so the same pair needs no second look: the
        # subset walk was a third of a reconcile with nothing to do (bench_reconcile_cpu.py).
        self._matched: dict[Request, dict[tuple[Resource, str], tuple[str, str]]] = {}

    def apply_all(self, ensemble: dict, desired: list[HashedObject]) -> list[str]:
        """``apply`` each of ``desired``; the conflicts. What was created is logged in one
        line and told in one "Created" Event (a new Ensemble's objects: one record of each
        rather than one per object; the Event is the one the recorder would have made of
        one per object, joining their notes, at a seventh of its bookkeeping).

        Every object is compared and its body built first, then the writes go out one after
        another, and ``written`` hears of their answers after the last. Code run right after
        a request was answered runs with caches the API server's work evicted meanwhile:
        measured in bench_scale at N=400, an applied hash took 75 us there against 20 us run
        again at once. Doing this work in bursts rather than between requests saves that."""
        created: list[dict] = []
        try:
            outcomes = [self._plan(ensemble, obj) for obj in desired]
            writes = [outcome for outcome in outcomes if isinstance(outcome, _Write)]
            answers = dict(zip(writes, self._send_all(ensemble, writes, created)))  # _Write: hashed by identity
            conflicts = []
            for outcome in outcomes:
                if isinstance(outcome, _Write) and outcome.create_only and answers[outcome] is None:
                    outcome = self._after_refused_create(ensemble, outcome, created)
                if isinstance(outcome, str):
                    conflicts.append(outcome)
            return conflicts
        finally:
            if created:
                log.info("created %s", ", ".join(f"{obj['kind']} {obj['metadata']['namespace']}/"
                                                 f"{obj['metadata']['name']}" for obj in created))
                for note in joined_notes([f"Created {obj['kind']} {obj['metadata']['name']}" for obj in created]):
                    self._events.event(ensemble, "Normal", "Created", note)

    def apply(self, ensemble: dict, desired: dict) -> str | None:
        """Create or update ``desired``; an object of that name not controlled by this Ensemble
        is left alone and returned as a conflict message (with a Warning Event naming it)."""
        conflicts = self.apply_all(ensemble, [hashed(desired)])
        return conflicts[0] if conflicts else None

    def unchanged(self, ensemble: dict, refs: Collection[DesiredRef]) -> bool:
        """Whether the caches hold each of ``refs`` at the resourceVersion where it last held
        everything desired under the same applied hash: then ``apply_all`` would send nothing,
        and the desired objects need not even be built."""
        matched = self._matched.get(request_of(ensemble), {})
        for ref in refs:
            cached = self._caches.owned[ref.resource].get(ref.name, ref.namespace)
            version = None if cached is None else cached["metadata"].get("resourceVersion")
            if version is None or matched.get((ref.resource, ref.name)) != (version, ref.digest):
                return False
        return True

    def _plan(self, ensemble: dict, desired: HashedObject) -> _Write | str | None:
        """What ``desired`` needs: a write, a conflict message, or None (the cache holds it)."""
        ref = desired.ref
        cached = self._caches.owned[ref.resource].get(ref.name, ref.namespace)
        if cached is None:
            return _Write(ref.resource, desired.obj, ref.digest, before=None, create_only=True)
        return self._plan_over(ensemble, ref.resource, desired.obj, ref.digest, cached)

    def _plan_over(self, ensemble: dict, resource: Resource, desired: dict, digest: str,
                   cached: dict | None) -> _Write | str | None:
        """What ``desired`` needs where the live object is ``cached`` (None: gone, so an apply
        creates it); a name this Ensemble does not control is a conflict, told in an Event."""
        meta = desired["metadata"]
        if cached is not None and not controlled_by(cached, ensemble):
            conflict = conflict_message(desired["kind"], meta["namespace"], meta["name"])
            self._events.event(ensemble, "Warning", CONFLICT, conflict)
            return conflict
        if resource == MINICLUSTERS and cached is not None:
            desired = _without_size(desired)
        version = (cached or {}).get("metadata", {}).get("resourceVersion")
        matched = self._matched.setdefault(request_of(ensemble), {})
        if version is not None and matched.get((resource, meta["name"])) == (version, digest):
            return None
        if not differs(desired, cached):
            if version is not None:
                matched[(resource, meta["name"])] = (version, digest)
            return None
        if cached is not None:
            log.info("applying %s %s/%s", desired["kind"], meta["namespace"], meta["name"])
        return _Write(resource, desired, digest, before=cached, create_only=False)

    def _send_all(self, ensemble: dict, writes: list[_Write], created: list[dict]) -> list[dict | None]:
        """Send ``writes`` in order; their answers (None: a create that found the name taken),
        told to ``written`` once the last is answered or one fails. ``created`` hears of each
        object made as soon as it is."""
        answers: list[dict | None] = []
        begun = 0
        try:
            for write in writes:
                if write.resource == MINICLUSTERS and write.before is not None:
                    self._pin_size(write.before)
                self._begin(ensemble, write)
                begun += 1
                answer = self._request(write)
                answers.append(answer)
                if answer is not None and write.before is None:
                    created.append(write.desired)
        finally:
            for index, write in enumerate(writes[:begun]):
                self._end(ensemble, write, answers[index] if index < len(answers) else None)
        return answers

    def _after_refused_create(self, ensemble: dict, write: _Write, created: list[dict]) -> str | None:
        """A create found its name taken: read what holds it (``_unseen``) and go on from there."""
        meta = write.desired["metadata"]
        cached = self._unseen(write.resource, meta)
        outcome = self._plan_over(ensemble, write.resource, write.desired, write.digest, cached)
        if isinstance(outcome, _Write):
            self._send_all(ensemble, [outcome], created)
            return None
        return outcome

    def _begin(self, ensemble: dict, write: _Write) -> None:
        if self._written is not None:
            meta = write.body["metadata"]
            self._written.begin(write.resource, meta["namespace"], meta["name"], ensemble["metadata"]["uid"])

    def _request(self, write: _Write) -> dict | None:
        """The apply's answer; None when a create-only apply found the name taken."""
        try:
            return self._client.apply(write.resource, write.body, field_manager=FIELD_MANAGER, force=True)
        except Exception as error:
            if write.create_only and status_of(error) == 409:
                return None
            raise

    def _end(self, ensemble: dict, write: _Write, answer: dict | None) -> None:
        if self._written is not None:
            meta = write.body["metadata"]
            self._written.end(write.resource, meta["namespace"], meta["name"], write.before, answer,
                              request_of(ensemble))

    def _unseen(self, resource: Resource, meta: dict) -> dict | None:
        """The live object behind a cache miss whose create found the name taken (None if it
        is gone since).

        Either we created it and the informer has not shown it yet (a reconcile woken by
        another event can run first: applying again would be a wasted write, and for a
        MiniCluster one whose spec.size could undo a grow), or it existed before without our
        labels, so our label-selected caches never show it: applying would adopt it.
        One read settles both.
        """
        return self._client.get_or_none(resource, meta["name"], meta["namespace"])

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

    def delete_undesired(self, ensemble: dict, member_count: int, policy_names: Collection[str]) -> None:
        """Delete the objects of removed members and our NetworkPolicies the Ensemble no longer
        asks for (not named in ``policy_names``: ``spec.networkPolicy: false``, a removed
        member), each once."""
        uid = ensemble["metadata"]["uid"]
        cached = {res: self._caches.owned[res].by_index(CONTROLLER_UID_INDEX, uid) for res in DELETED_RESOURCES}
        request = request_of(ensemble)
        self._expectations.deletions_observed(
            request, [obj["metadata"]["uid"] for objs in cached.values() for obj in objs])
        for resource in MEMBER_RESOURCES:
            for obj in cached[resource]:
                index = member_index_of(obj)
                if index is not None and index >= member_count:
                    self._delete(ensemble, resource, obj, f"member {index} removed from the spec")
        why = "spec.networkPolicy is false" if not policy_names else "no longer desired"
        for obj in cached[NETWORKPOLICIES]:
            if obj["metadata"]["name"] not in policy_names:
                self._delete(ensemble, NETWORKPOLICIES, obj, why)

    def forget(self, request: Request) -> None:
        """The Ensemble is gone: its objects go with it through their owner references."""
        self._expectations.forget(request)
        self._matched.pop(request, None)

    def _delete(self, ensemble: dict, resource: Resource, obj: dict, why: str) -> None:
        """Delete an object this Ensemble controls, once: one already being deleted, or deleted
        by us while the informer has not shown it gone yet, gets no second DELETE nor Event."""
        meta = obj["metadata"]
        request = request_of(ensemble)
        if meta.get("deletionTimestamp") or self._expectations.deleting(request, meta["uid"]):
            return
        try:
            answer = self._client.delete(resource, meta["name"], meta["namespace"],
                                         preconditions={"uid": meta["uid"]})
        except Exception as error:
            if not is_not_found(error):
                raise
            answer = None
        self._expectations.expect_deletions(request, [meta["uid"]])
        if answer is None:
            return  # already gone: not our deletion to report
        self._events.event(ensemble, "Normal", "Deleted",
                           f"Deleted {obj.get('kind', resource.kind)} {meta['name']} ({why})")


def _without_size(minicluster: dict) -> dict:
    """The MiniCluster minus spec.size: after creation the size belongs to grow/shrink."""
    spec = {key: value for key, value in minicluster["spec"].items() if key != "size"}
    return {**minicluster, "spec": spec}

