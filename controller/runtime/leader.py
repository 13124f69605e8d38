"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

A candidate takes the lease when nobody holds it, when we hold it, or when the holder
has not renewed it for ``lease_duration`` as measured on *our* clock since we last saw
the record change (clock skew between nodes does not matter). The leader renews every
``retry_period``; when it cannot renew within ``renew_deadline`` it must stop leading,
which happens before anyone else may take over because renew_deadline < lease_duration.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from controller.backoff import proportional_jitter
from controller.clock import Clock
from controller.informers.stopper import Stopper
from controller.kube.resources import LEASES

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2


@dataclasses.dataclass(frozen=True)
class LeaderElectionRecord:
    holder_identity: str
    lease_duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    leader_transitions: int = 0


class LeaseStore(Protocol):
    """Where the record lives; writes must fail when ``resource_version`` is stale."""

    def get(self) -> tuple[LeaderElectionRecord, str] | None:
        """The record and its resourceVersion, or None when there is no lease yet."""

    def create(self, record: LeaderElectionRecord) -> None: ...

    def update(self, record: LeaderElectionRecord, resource_version: str) -> None: ...


def micro_time(epoch_seconds: float) -> str:
    """A metav1.MicroTime string, the format Lease times use."""
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubeLeaseStore:
    """A LeaseStore backed by a Lease object; the resourceVersion makes updates safe."""

    def __init__(self, client, namespace: str, name: str) -> None:
        self._client = client
        self.namespace = namespace
        self.name = name

    def get(self) -> tuple[LeaderElectionRecord, str] | None:
        lease = self._client.get_or_none(LEASES, self.name, self.namespace)
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        record = LeaderElectionRecord(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            leader_transitions=int(spec.get("leaseTransitions") or 0))
        return record, lease["metadata"]["resourceVersion"]

    def create(self, record: LeaderElectionRecord) -> None:
        self._client.create(LEASES, self._lease(record), self.namespace)

    def update(self, record: LeaderElectionRecord, resource_version: str) -> None:
        self._client.replace(LEASES, self._lease(record, resource_version))

    def _lease(self, record: LeaderElectionRecord, resource_version: str | None = None) -> dict:
        metadata: dict = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": LEASES.api_version, "kind": LEASES.kind, "metadata": metadata,
            "spec": {"holderIdentity": record.holder_identity,
                     "leaseDurationSeconds": record.lease_duration_seconds,
                     "acquireTime": record.acquire_time, "renewTime": record.renew_time,
                     "leaseTransitions": record.leader_transitions},
        }


class LeaderElector:
    def __init__(self, store: LeaseStore, identity: str, clock: Clock, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, rand: Callable[[], float] = random.random) -> None:
        if not identity:
            raise ValueError("leader election identity must not be empty")
        if not lease_duration > renew_deadline > JITTER_FACTOR * retry_period:
            raise ValueError("leader election needs lease_duration > renew_deadline > "
                             f"{JITTER_FACTOR} * retry_period, got {lease_duration}, "
                             f"{renew_deadline}, {retry_period}")
        self.identity = identity
        self._store = store
        self._clock = clock
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._rand = rand
        self._observed: LeaderElectionRecord | None = None
        self._observed_at = 0.0
        self._stopper = Stopper(clock)

    @property
    def is_leader(self) -> bool:
        return self._observed is not None and self._observed.holder_identity == self.identity

    def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; False when someone else holds it or on error."""
        now_wall = micro_time(self._clock.wall())
        try:
            current = self._store.get()
            if current is None:
                record = LeaderElectionRecord(self.identity, int(self._lease_duration),
                                              now_wall, now_wall, 0)
                self._store.create(record)
                self._observe(record)
                return True
            record, resource_version = current
            self._observe(record)
            held_by_other = record.holder_identity not in ("", self.identity)
            if held_by_other and self._clock.now() < self._observed_at + record.lease_duration_seconds:
                return False
            if record.holder_identity == self.identity:
                renewed = dataclasses.replace(record, renew_time=now_wall,
                                              lease_duration_seconds=int(self._lease_duration))
            else:
                renewed = LeaderElectionRecord(self.identity, int(self._lease_duration), now_wall,
                                               now_wall, record.leader_transitions + 1)
            self._store.update(renewed, resource_version)
            self._observe(renewed)
            return True
        except Exception as err:
            log.warning("error acquiring or renewing lease: %s", err, extra={"identity": self.identity})
            return False

    def _observe(self, record: LeaderElectionRecord) -> None:
        if record != self._observed:
            self._observed = record
            self._observed_at = self._clock.now()

    def run(self, on_started_leading: Callable[[], None]) -> bool:
        """Block until stopped or the lease is lost; True means it was lost.

        ``on_started_leading`` runs once, in this thread, right after acquiring.
        """
        if not self._acquire():
            return False
        log.info("acquired lease", extra={"identity": self.identity})
        on_started_leading()
        lost = self._renew_until_lost_or_stopped()
        if lost:
            log.error("leader election lost", extra={"identity": self.identity})
        return lost

    def stop(self) -> None:
        """End ``run``; the lease stays held until ``release``."""
        self._stopper.stop()

    def release(self) -> bool:
        """Hand the lease over at once (holderIdentity cleared) if we still hold it."""
        try:
            current = self._store.get()
            if current is None or current[0].holder_identity != self.identity:
                return False
            record, resource_version = current
            now_wall = micro_time(self._clock.wall())
            released = LeaderElectionRecord("", 1, now_wall, now_wall, record.leader_transitions)
            self._store.update(released, resource_version)
            self._observe(released)
            log.info("released lease", extra={"identity": self.identity})
            return True
        except Exception as err:
            log.warning("error releasing lease: %s", err, extra={"identity": self.identity})
            return False

    def _acquire(self) -> bool:
        while not self._stopper.stopped:
            if self.try_acquire_or_renew():
                return True
            if self._stopper.wait(proportional_jitter(self._retry_period, JITTER_FACTOR, self._rand)):
                return False
        return False

    def _renew_until_lost_or_stopped(self) -> bool:
        last_renewed = self._clock.now()
        while not self._stopper.wait(self._retry_period):
            if self._try_before(last_renewed + self._renew_deadline):
                last_renewed = self._clock.now()
            elif self._clock.now() - last_renewed >= self._renew_deadline or not self._still_ours():
                return True
        return False

    def _try_before(self, deadline: float) -> bool:
        """``try_acquire_or_renew``, but stop waiting for it at ``deadline`` (clock time).

        client-go bounds each renewal with the renew deadline; a request hanging on a dead
        connection (read timeout 60 s) would otherwise keep us leading long after the
        lease expired and another replica took it. An abandoned attempt finishes unheard.
        """
        done = threading.Condition()
        outcome: list[bool] = []

        def attempt() -> None:
            renewed = self.try_acquire_or_renew()
            with done:
                outcome.append(renewed)
                done.notify_all()

        threading.Thread(target=attempt, name="leader-election-renew", daemon=True).start()
        with done:
            while not outcome:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    log.warning("lease renewal still unanswered at the renew deadline",
                                extra={"identity": self.identity})
                    return False
                self._clock.wait(done, remaining)
            return outcome[0]

    def _still_ours(self) -> bool:
        """False once the record names another holder: someone took over, stop at once."""
        return self._observed is None or self._observed.holder_identity in ("", self.identity)
