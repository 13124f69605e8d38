"""Each member as the caches and the poller show it; which lead brokers are polled.

Member pods come from the cache, indexed by MiniCluster; a member's lead broker
(``controller/memberpods/leadbroker.py``) that serves is a poll target, registered with the poller and dropped
when it goes. The poller's results are kept in a ``PollBook`` (poll threads write, reconciles
read) for the status and, with an algorithm, as history. An Ensemble's members' reports are
published together at most once per window (``PollBook.publish``): polls arriving between
windows cost no status write, and the reconcile is requeued for the window's end.
"""
from __future__ import annotations

import threading

from api.v1alpha1 import Ensemble
from controller.clock import Clock
from controller.algorithms import MemberSample, get_algorithm
from controller.kube.resources import MINICLUSTERS
from controller.reconcilers.action_records import ActionRecords
from controller.reconcilers.algorithm import history_seconds
from controller.reconcilers.clients import EnsembleCaches, Poller, request_of
from controller.reconcilers.desired.meta import member_name
from controller.memberpods.leadbroker import MINICLUSTER_INDEX, LeadBroker, lead_broker, member_job_uid
from controller.reconcilers.pollbook import PollBook
from controller.reconcilers.poller import PollKey, PollResult, PollTarget
from controller.reconcilers.status import MemberObservation
from controller.runtime.reconcile import Request
from controller.scaling.minicluster_sizes import effective_max_size

# New lastPoll payloads are written at most every max(heartbeat, this) seconds per Ensemble.
MIN_PUBLISH_SECONDS = 10.0


class MemberObserver:
    def __init__(self, *, caches: EnsembleCaches, member_status_port: int, clock: Clock,
                 poller: Poller | None = None) -> None:
        self._caches = caches
        self._clock = clock
        self._port = member_status_port
        self._poller = poller
        self.polls = PollBook()
        self._lock = threading.Lock()
        self._poll_keys: dict[Request, set[PollKey]] = {}

    def record_poll(self, key: PollKey, result: PollResult) -> Request:
        """Keep a poll result for the next status; returns the Request to enqueue."""
        request = Request(key[0], key[1])
        with self._lock:
            if key in self._poll_keys.get(request, set()):
                self.polls.record(key, result)
        return request

    def observe(self, ensemble: dict, typed: Ensemble,
                records: dict[str, ActionRecords]) -> list[MemberObservation]:
        """Every member's pods, MiniCluster and polls; polls the serving lead brokers of the
        members not terminated, and no other."""
        request = request_of(ensemble)
        namespace = request.namespace
        targets: dict[PollKey, PollTarget] = {}
        heartbeat = float(typed.spec.heartbeat)
        publish_every = max(heartbeat, MIN_PUBLISH_SECONDS)
        pod_lists = []
        for index, member in enumerate(typed.spec.members):
            name = member_name(ensemble, index)
            pods = [pod for pod in self._caches.pods.by_index(MINICLUSTER_INDEX, name)
                    if pod["metadata"].get("namespace") == namespace]
            minicluster = self._caches.owned[MINICLUSTERS].get(name, namespace)
            job_uid = None if minicluster is None else member_job_uid(
                self._caches.jobs.get(name, namespace), name, minicluster_uid=minicluster["metadata"].get("uid"))
            pod_lists.append((name, member, pods, minicluster, job_uid))
            lead = lead_broker(pods, job_uids={name: job_uid} if job_uid else {}, minicluster=name)
            address = self.address(lead)
            if address is not None and typed.spec.status_sidecar and not _terminated(records, name):
                key = (namespace, request.name, name)
                targets[key] = PollTarget(key, address, heartbeat)
        self.set_targets(request, targets, history=_history_window(typed))
        self.polls.publish((namespace, request.name), targets, self._clock.now(), publish_every)
        observations = []
        for name, member, pods, minicluster, job_uid in pod_lists:
            key = (namespace, request.name, name)
            observations.append(MemberObservation(
                name=name, spec_size=member.size, min_size=member.min_size,
                max_size=effective_max_size(member.max_size, minicluster), minicluster=minicluster, pods=pods,
                job_uid=job_uid,
                poll=self.polls.latest(key), published=self.polls.published(key),
                terminated=_terminated(records, name)))
        return observations

    def address(self, lead: LeadBroker | None) -> str | None:
        """A serving lead broker's ``host:port`` as gRPC parses it (an IPv6 pod IP goes in
        brackets); None without one."""
        if lead is None or not lead.reachable:
            return None
        host = f"[{lead.ip}]" if lead.ip is not None and ":" in lead.ip else lead.ip
        return f"{host}:{self._port}"

    def take_history(self, key: PollKey, since: float) -> list[MemberSample] | None:
        return self.polls.take_history(key, since)

    def next_publish(self, request: Request) -> float | None:
        """Seconds until the Ensemble's held-back poll results may be published; None if none are."""
        with self._lock:
            keys = set(self._poll_keys.get(request, set()))
        return self.polls.next_publish((request.namespace, request.name), keys, self._clock.now())

    def stop_polling(self, key: PollKey) -> None:
        """A finished member: not polled any more (the next reconcile forgets its polls too)."""
        if self._poller is not None:
            self._poller.unregister(key)

    def forget(self, request: Request) -> None:
        self.set_targets(request, {})

    def set_targets(self, request: Request, targets: dict[PollKey, PollTarget], *,
                    history: float | None = None) -> None:
        """Poll ``targets`` (and no other member of the Ensemble), keeping ``history`` seconds
        of their successful polls for the algorithm (None: none)."""
        with self._lock:
            previous = self._poll_keys.pop(request, set())
            if targets:
                self._poll_keys[request] = set(targets)
            for key in previous - set(targets):
                self.polls.forget(key)
            for key in targets:
                self.polls.keep_history(key, history)
            if not targets:
                self.polls.forget_ensemble((request.namespace, request.name))
        if self._poller is None:
            return
        for key in previous - set(targets):
            self._poller.unregister(key)
        for target in targets.values():
            self._poller.register(target)


def _terminated(records: dict[str, ActionRecords], member: str) -> bool:
    known = records.get(member)
    return known is not None and known.terminated


def _history_window(typed: Ensemble) -> float | None:
    """Seconds of poll history the Ensemble's algorithm reads; None without an algorithm."""
    spec = typed.spec.algorithm
    if spec is None:
        return None
    return history_seconds(get_algorithm(spec.name).parse_options(spec.options), float(typed.spec.heartbeat))
