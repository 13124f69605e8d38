"""Applying grow/shrink to MiniClusters of one Ensemble, safely under concurrency.

Every write carries the resourceVersion it was computed from, so the API server rejects
a write based on stale data (409) and the request is recomputed from a fresh read. The
last object seen (usually our own patch's answer) is cached, so a steady stream of
requests costs one PATCH each; the resourceVersion guard makes the cache safe. A
decision that sends no write (already at the bound, denied) has no such guard, so it is
only ever taken from a fresh read.

With ``spec.budget`` a grow also depends on the other members' sizes, which another decider
(the operator's ``scale`` algorithm, another process) may be changing at the same moment. So a
budgeted grow reads the Ensemble afresh, counts the grants other deciders recorded in its
ledger (``status.budgetGrants``) and not yet applied, records its own grant there guarded by
the Ensemble's resourceVersion, and only then patches the MiniCluster: of two grows decided
from the same ledger, one gets a 409 and decides again with the other's grant counted.
Unbudgeted grows and shrinks send no more requests than before.

With a book of ``actions`` (the ensemble service; not the operator's action runner, whose
actions ``status.memberActions`` records), each resize is recorded per member in
``status.serviceActions`` (see ``service_actions``): in the ledger write when a budgeted grow
makes one anyway, else in memory after the MiniCluster patch, for ``ServiceActionWriter`` to
write off the request path (``service_action_writer``).
"""
from __future__ import annotations

import enum
import random
import threading
from dataclasses import dataclass, field

import cachetools
import tenacity

from api.v1alpha1.names import member_object_name

from controller.backoff import exponential, full_jitter
from controller.clock import Clock
from controller.kube.errors import ApiError, KubeError, is_conflict, is_forbidden, is_not_found
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.scaling.requests import ScaleRequest, ScaleRequestError, clamp, current_size, size_bounds
from controller.scaling.fair_share import (GRANT_TTL_SECONDS, LedgerGrant, grant_growth, pending_sizes,
                                           read_ledger, record_grant, waiting_demand)
from controller.scaling.kubeapi import KubeApi
from controller.scaling.ownership import describe_owner, owned_by
from controller.scaling.service_actions import STATUS_FIELD as ACTIONS_FIELD, ServiceActionBook

FIELD_MANAGER = "ensemble-service"


class Outcome(enum.Enum):
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    DENIED = "DENIED"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    """Conflict retries: full-jitter exponential backoff between ``attempts`` tries."""

    attempts: int = 30
    base_delay: float = 0.005
    max_delay: float = 0.2


class ConflictsExhausted(Exception):
    pass


class _Unverified(Exception):
    """A decision that writes nothing was about to be taken from a cached MiniCluster."""


class EnsembleScaler:
    """Grows and shrinks the MiniClusters that the Ensemble ``name`` controls."""

    def __init__(self, api: KubeApi, ensemble: str, namespace: str, *, clock: Clock,
                 rng: random.Random | None = None, retry: RetryPolicy = RetryPolicy(),
                 ensemble_ttl: float = 2.0, cache_ttl: float = 60.0,
                 actions: ServiceActionBook | None = None) -> None:
        self.api = api
        self.ensemble = ensemble
        self.namespace = namespace
        self._clock = clock
        self._rng = rng or random.Random()
        self._retry = retry
        self._lock = threading.Lock()
        # Not what keeps the budget (the ledger does, across processes): it spares this
        # process's own budgeted grows from conflicting with each other on the ledger.
        self._budget_lock = threading.Lock()
        self._miniclusters: cachetools.TTLCache = cachetools.TTLCache(1024, cache_ttl, timer=clock.now)
        self._ensemble_cache: cachetools.TTLCache = cachetools.TTLCache(1, ensemble_ttl, timer=clock.now)
        self._actions = actions

    def scale(self, request: ScaleRequest) -> Decision:
        try:
            return self._scale_with_retries(request)
        except ScaleRequestError as err:
            return Decision(Outcome.ERROR, {"error": str(err)})
        except ConflictsExhausted:
            return Decision(Outcome.ERROR, {"error": f"MiniCluster {self._key(request.name)}: still "
                                                     f"conflicting after {self._retry.attempts} attempts"})
        except KubeError as err:
            if is_not_found(err):
                self._forget(request.name)
            return Decision(Outcome.ERROR, {"error": f"MiniCluster {self._key(request.name)}: {err}"})

    def _scale_with_retries(self, request: ScaleRequest) -> Decision:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_conflict),
            stop=tenacity.stop_after_attempt(self._retry.attempts),
            wait=self._backoff,
            sleep=self._clock.sleep,
            retry_error_callback=self._give_up,
        )
        return retrying(self._attempt, request)

    def _backoff(self, state: tenacity.RetryCallState) -> float:
        ceiling = exponential(self._retry.base_delay, state.attempt_number - 1, self._retry.max_delay)
        with self._lock:
            return full_jitter(ceiling, self._rng.random)

    def _give_up(self, state: tenacity.RetryCallState) -> Decision:
        raise ConflictsExhausted()

    def _attempt(self, request: ScaleRequest) -> Decision:
        try:
            minicluster, cached = self._get_minicluster(request.name)
        except KubeError as err:
            if not is_forbidden(err):
                raise
            # The Role grants this service its own members by name: any other MiniCluster is
            # refused by the API server before ownership can even be read.
            return Decision(Outcome.DENIED, {
                "error": f"MiniCluster {self._key(request.name)} is not a member of Ensemble "
                         f"{self.ensemble!r}: this service may not read it ({err})"})
        try:
            return self._decide(request, minicluster, cached)
        except _Unverified:
            # Another writer (the operator's algorithm, kubectl) may have changed the object since.
            self._forget(request.name)
            minicluster, _ = self._get_minicluster(request.name)
            return self._decide(request, minicluster, False)

    def _decide(self, request: ScaleRequest, minicluster: dict, cached: bool) -> Decision:
        """Raises ``_Unverified`` instead of deciding on no write from a ``cached`` object."""
        ensemble, ensemble_cached = self._get_ensemble_and_age()
        if ensemble is None:
            return Decision(Outcome.ERROR, {"error": f"Ensemble {self._key(self.ensemble)} not found"})
        if not owned_by(minicluster, self.ensemble, _uid(ensemble)):
            if cached:
                raise _Unverified()
            return Decision(Outcome.DENIED, {
                "error": f"MiniCluster {self._key(request.name)} is not a member of Ensemble "
                         f"{self.ensemble!r}: {describe_owner(minicluster)}"})
        size = current_size(minicluster)
        target = clamp(size + request.delta, size_bounds(minicluster))
        reply = {"action": request.action, "name": request.name, "from": size,
                 "requested": size + request.delta}
        if target > size and (ensemble.get("spec") or {}).get("budget") is not None:
            with self._budget_lock:
                fresh = self._fetch_ensemble() if ensemble_cached else ensemble
                return self._grow_within_budget(fresh, minicluster, size, target, reply, cached)
        if target == size and cached:
            raise _Unverified()
        return self._write_size(minicluster, size, target, reply, ensemble)

    def _grow_within_budget(self, ensemble: dict | None, minicluster: dict, size: int, target: int,
                            reply: dict, cached: bool) -> Decision:
        """Grant what the budget allows, counting other deciders' pending grants; record the
        grant in the ledger (resourceVersion-guarded), then patch the MiniCluster.

        ``ensemble`` is freshly read: the ledger write is guarded by its resourceVersion."""
        if ensemble is None:
            return Decision(Outcome.ERROR, {"error": f"Ensemble {self._key(self.ensemble)} not found"})
        budget = (ensemble.get("spec") or {}).get("budget")
        if budget is None:  # removed since the cached read
            return self._write_size(minicluster, size, target, reply, ensemble)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ScaleRequestError(f"Ensemble {self._key(self.ensemble)}: spec.budget must be a "
                              f"non-negative integer, got {budget!r}")
        name = minicluster["metadata"]["name"]
        members = {mc["metadata"]["name"]: mc for mc in self._members(ensemble)}
        versions = {member: mc["metadata"]["resourceVersion"] for member, mc in members.items()}
        if name not in members:  # until the reconciler deletes it, it exists and is still owned
            return Decision(Outcome.DENIED, {**reply, "to": size, "error": (
                f"MiniCluster {self._key(name)} is no longer in spec.members of Ensemble "
                f"{self.ensemble!r}: it gets no share of spec.budget")})
        if versions[name] != minicluster["metadata"]["resourceVersion"]:
            # Our copy is stale: its patch would get a 409, and its grant would be recorded
            # against a version other deciders no longer count.
            self._forget(name)
            if cached:
                raise _Unverified()
            raise ApiError(409, "Conflict", f"MiniCluster {self._key(name)} changed while the budget was decided")
        now = self._clock.wall()
        ledger = read_ledger(ensemble.get("status"))
        # This member's own pending grant (same version: a failed patch, another decider) is not
        # in use: of its patch and ours only one can land, and record_grant keeps the larger.
        pending = pending_sizes([g for g in ledger if g.minicluster != name], versions, now)
        sizes = {member: max(current_size(mc), pending.get(member, 0)) for member, mc in members.items()}
        demand = {member: waiting_demand((poll or {}).get("waiting"))
                  for member, poll in last_polls(ensemble).items()}
        grant = grant_growth(name, target - size, budget, sizes, demand)
        reply["budget"] = grant.reason
        if grant.granted == 0:
            reply.update({"to": size, "error": f"no nodes granted: {grant.reason}"})
            return Decision(Outcome.DENIED, reply)
        granted = LedgerGrant(name, size + grant.granted, versions[name], now + GRANT_TTL_SECONDS)
        grants = record_grant(ledger, granted, versions, now)
        if self._actions is None:
            self._write_ledger(ensemble, grants)
        else:
            self._actions.record_in(ensemble, name, size, granted.size, now,
                                    lambda actions: self._write_ledger(ensemble, grants, actions))
        return self._write_size(minicluster, size, granted.size, reply, ensemble, recorded=True)

    def _write_ledger(self, ensemble: dict, grants: list[dict], actions: list[dict] | None = None) -> None:
        """Replace ``status.budgetGrants`` (status subresource: the service's Role grants patch on
        its Ensemble's status only) if the Ensemble is still the version the grant was decided on;
        ``status.serviceActions`` rides along (the grow is recorded before it is made: one write)."""
        status: dict = {"budgetGrants": grants}
        if actions is not None:
            status[ACTIONS_FIELD] = actions
        patch = {"metadata": {"resourceVersion": ensemble["metadata"]["resourceVersion"]}, "status": status}
        try:
            updated = self.api.patch(ENSEMBLES, self.ensemble, patch, namespace=self.namespace,
                                     subresource="status", field_manager=FIELD_MANAGER)
        except KubeError as err:
            if is_conflict(err):
                raise
            raise ScaleRequestError(f"Ensemble {self._key(self.ensemble)}: recording the grant in "
                              f"status.budgetGrants: {err}") from err
        with self._lock:
            self._ensemble_cache[self.ensemble] = updated

    def _write_size(self, minicluster: dict, size: int, target: int, reply: dict, ensemble: dict, *,
                    recorded: bool = False) -> Decision:
        """Patch ``spec.size``; then record the action unless the ledger write already did."""
        reply["to"] = target
        if target != reply["requested"]:
            reply["clamped"] = True
        if target == size:
            return Decision(Outcome.SUCCESS, reply)
        metadata = minicluster["metadata"]
        patch = {"metadata": {"resourceVersion": metadata["resourceVersion"]}, "spec": {"size": target}}
        try:
            updated = self.api.patch(MINICLUSTERS, metadata["name"], patch, namespace=self.namespace,
                                     field_manager=FIELD_MANAGER)
        except KubeError as err:
            if is_conflict(err):
                self._forget(metadata["name"])
            raise
        self._remember(updated)
        if self._actions is not None:
            if not recorded:  # in memory: its writer stores it off the request path
                self._actions.record(ensemble, metadata["name"], size, target, self._clock.wall())
            self._actions.commit(metadata["name"], size, target)
        return Decision(Outcome.SUCCESS, reply)

    def _members(self, ensemble: dict) -> list[dict]:
        """The Ensemble's existing MiniClusters (``<e>-<i>`` for member ``i``), read one by one:
        the service's Role grants get and patch on MiniClusters, not list."""
        found = []
        for name in member_names(ensemble):
            minicluster = self.api.get_or_none(MINICLUSTERS, name, self.namespace)
            if minicluster is not None and owned_by(minicluster, self.ensemble, _uid(ensemble)):
                found.append(minicluster)
        return found

    def _get_minicluster(self, name: str) -> tuple[dict, bool]:
        """The MiniCluster, and whether it came from the cache (then it may be stale)."""
        with self._lock:
            cached = self._miniclusters.get(name)
        if cached is not None:
            return cached, True
        obj = self.api.get(MINICLUSTERS, name, self.namespace)
        self._remember(obj)
        return obj, False

    def _get_ensemble(self) -> dict | None:
        return self._get_ensemble_and_age()[0]

    def _get_ensemble_and_age(self) -> tuple[dict | None, bool]:
        """The Ensemble, and whether it came from the cache (then it may be stale)."""
        with self._lock:
            cached = self._ensemble_cache.get(self.ensemble)
        if cached is not None:
            return cached, True
        return self._fetch_ensemble(), False

    def _fetch_ensemble(self) -> dict | None:
        """The Ensemble as the API server has it now (and cached for ``_get_ensemble``)."""
        obj = self.api.get_or_none(ENSEMBLES, self.ensemble, self.namespace)
        if obj is None:
            return None
        with self._lock:
            self._ensemble_cache[self.ensemble] = obj
        return obj

    def _remember(self, minicluster: dict) -> None:
        with self._lock:
            self._miniclusters[minicluster["metadata"]["name"]] = minicluster

    def _forget(self, name: str) -> None:
        with self._lock:
            self._miniclusters.pop(name, None)

    def view(self, member: str = "") -> Decision:
        """The ensemble as this service sees it: members, sizes, bounds, last polled status."""
        try:
            ensemble = self._get_ensemble()
            if ensemble is None:
                return Decision(Outcome.ERROR, {"error": f"Ensemble {self._key(self.ensemble)} not found"})
            items = self._members(ensemble)
        except KubeError as err:
            return Decision(Outcome.ERROR, {"error": f"reading Ensemble {self._key(self.ensemble)}: {err}"})
        polls = last_polls(ensemble)
        members = []
        for mc in sorted(items, key=lambda obj: obj["metadata"]["name"]):
            name = mc["metadata"]["name"]
            if member not in ("", name):
                continue
            spec = mc.get("spec") or {}
            members.append({"name": name, "size": spec.get("size", 1), "minSize": spec.get("minSize"),
                            "maxSize": spec.get("maxSize"), "lastPoll": polls.get(name)})
        if member and not members:
            return Decision(Outcome.ERROR, {"error": f"MiniCluster {self._key(member)} is not a "
                                                    f"member of Ensemble {self.ensemble!r}"})
        return Decision(Outcome.SUCCESS, {"ensemble": self.ensemble, "namespace": self.namespace,
                                          "budget": (ensemble.get("spec") or {}).get("budget"),
                                          "members": members})

    def _key(self, name: str) -> str:
        return f"{self.namespace}/{name}"


def member_names(ensemble: dict) -> list[str]:
    """``<ensemble>-<index>`` for each entry of ``spec.members``: the MiniClusters the operator creates."""
    members = (ensemble.get("spec") or {}).get("members")
    name = (ensemble.get("metadata") or {}).get("name", "")
    return [member_object_name(name, index) for index in range(len(members))] if isinstance(members, list) else []


def last_polls(ensemble: dict) -> dict[str, dict]:
    """``status.members[].lastPoll`` by MiniCluster name (``minicluster``, else the member ``name``)."""
    polls = {}
    for entry in (ensemble.get("status") or {}).get("members") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("lastPoll"), dict):
            continue
        minicluster = entry.get("minicluster") or entry.get("name")
        if minicluster:
            polls[minicluster] = entry["lastPoll"]
    return polls


def _uid(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("uid")
