"""The Manager: one place that wires and runs a controller process's parts.

Each concern has a module of its own: the informers behind caches and watches
(``caches.py``), background runnables (``runnables.py``), leader election
(``leaderelection.py`` around ``leader.py``), the metrics and probe servers
(``servers.py``) and Events (``events.py``); this class owns only the order they start
and stop in.

Start order follows controller-runtime: servers, event writer and caches first (so
/readyz turns ok once caches synced, leader or not), then controllers once leading.
Stop order: runnables stop (a leader still holding the lease lets those with a ``drain``
finish accepted work first), controllers drain (the lease still renewed), caches stop, the
lease is released, servers close.
"""
from __future__ import annotations

import logging
import ssl
import threading

from prometheus_client import CollectorRegistry, Counter

from controller.clock import Clock, RealClock
from controller.informers import SharedInformerFactory
from controller.kube.client import KubeClient
from controller.kube.resources import Resource
from controller.runtime.cache import ObjectCache
from controller.runtime.caches import Caches
from controller.runtime.controller import Controller
from controller.runtime.events import EventRecorder
from controller.runtime.leader import KubeLeaseStore, LeaderElector
from controller.runtime.leaderelection import (Elector, ElectionThread, LeaderElectionLost,
                                               default_identity, default_leader_election_namespace)
from controller.runtime.metrics import ControllerMetrics
from controller.runtime.runnables import Runnable, Runnables
from controller.runtime.servers import metrics_server, probe_server
from controller.workqueue import PrometheusMetricsProvider, RateLimitingQueue, new_rate_limiting_queue

__all__ = ["LeaderElectionLost", "Manager", "Runnable"]

log = logging.getLogger(__name__)


class Manager:
    def __init__(self, client, *, namespaces: list[str] | None = None,
                 metrics_port: int | None = 8080, health_port: int | None = 8081,
                 metrics_host: str = "0.0.0.0", health_host: str = "0.0.0.0",
                 leader_election: bool = False, leader_election_id: str = "ensemble-operator",
                 leader_election_namespace: str | None = None, identity: str | None = None,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, cache_sync_timeout: float = 120.0,
                 clock: Clock | None = None, secure_metrics: ssl.SSLContext | None = None) -> None:
        """Ports: None disables that server, 0 picks a free port (see ``metrics_server.port``).
        ``secure_metrics``: serve metrics over TLS with it, to callers whose token the API server
        accepts and whose user may get /metrics (metricsauth.py); None: plain HTTP, anyone."""
        if namespaces is not None and not namespaces:
            raise ValueError("namespaces: give at least one namespace, or None for all")
        self.client = client
        if isinstance(client, KubeClient):
            # Its informers take each object it applies back from the apply's answer (kube/answers.py).
            client.share_apply_answers()
        self.clock = clock or RealClock()
        self.identity = identity or default_identity()
        self.registry = CollectorRegistry()
        undecodable = Counter("informer_undecodable_objects_total",
                              "Objects skipped by an informer because they could not be decoded",
                              ["resource"], registry=self.registry)
        self.caches = Caches(SharedInformerFactory(
            client, clock=self.clock, on_undecodable=lambda resource: undecodable.labels(resource).inc()),
            list(namespaces) if namespaces is not None else None)
        self.controller_metrics = ControllerMetrics(self.registry)
        self._workqueue_metrics = PrometheusMetricsProvider(self.registry)
        self.events = EventRecorder(client, self.clock, reporting_instance=self.identity, registry=self.registry)
        self.controllers: list[Controller] = []
        self.elector: Elector | None = (LeaderElector(
            KubeLeaseStore(client, leader_election_namespace or default_leader_election_namespace(),
                           leader_election_id),
            self.identity, self.clock, lease_duration=lease_duration,
            renew_deadline=renew_deadline, retry_period=retry_period)
            if leader_election else None)
        self._cache_sync_timeout = cache_sync_timeout
        self.metrics_server = metrics_server(client, self.clock, self.registry, metrics_host, metrics_port,
                                             secure_metrics)
        self.health_server = probe_server(health_host, health_port, healthz=self.is_running,
                                          readyz=self.is_ready)
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by the end of the cache sync
        self._running = False
        self._ready = False
        self._lock = threading.Lock()
        self._election: ElectionThread | None = None
        self._controllers_started = False
        self._runnables = Runnables(self._lock, self._stop)

    # --- wiring (before start) -------------------------------------------------------

    @property
    def namespaces(self) -> list[str] | None:
        return self.caches.namespaces

    @property
    def informers(self) -> SharedInformerFactory:
        return self.caches.informers

    def select(self, resource: Resource, label_selector: str) -> None:
        """Cache and watch only the objects of ``resource`` matching ``label_selector``
        (controller-runtime's cache ``ByObject``); before its first cache() or watch."""
        self.caches.select(resource, label_selector)

    def informers_for(self, resource: Resource, *, namespace: str | None = None) -> list:
        """The informers feeding a watch: one per watched namespace, or one cluster-wide."""
        return self.caches.informers_for(resource, namespace=namespace)

    def cache(self, resource: Resource) -> ObjectCache:
        """Cached reads of ``resource`` across the watched namespaces, from the informers its
        watches share (only the objects ``select`` chose, if it was called for ``resource``)."""
        return self.caches.cache(resource)

    def new_queue(self, name: str) -> RateLimitingQueue:
        return new_rate_limiting_queue(name, clock=self.clock, metrics=self._workqueue_metrics)

    def add_controller(self, controller: Controller) -> None:
        if any(c.name == controller.name for c in self.controllers):
            raise ValueError(f"a controller named {controller.name!r} is already registered")
        self.controllers.append(controller)

    def add_runnable(self, runnable: Runnable) -> None:
        """Run ``runnable`` with the manager: started after caches synced (and, unless its
        ``needs_leader_election`` is False, only once leading), stopped on shutdown."""
        if self._running:
            raise RuntimeError("add_runnable: the manager already started; add runnables before start()")
        self._runnables.add(runnable)

    @property
    def runnables(self) -> list[Runnable]:
        return list(self._runnables.registered)

    # --- probes ----------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def is_ready(self) -> bool:
        return self._running and self._ready

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run until ``stop``; raises LeaderElectionLost when leadership was lost."""
        if self._running:
            raise RuntimeError("manager already started")
        self._running = True
        try:
            self._start_servers()
            self.events.start()
            self.caches.start()
            synced = self.caches.wait_for_sync(self._cache_sync_timeout, self._wake)
            if self._stop.is_set():
                return
            if not synced:
                raise RuntimeError(f"informer caches did not sync within {self._cache_sync_timeout}s")
            self._ready = True
            log.info("caches synced", extra={"controllers": [c.name for c in self.controllers]})
            self._runnables.start(leading=False)
            if self.elector is None:
                self._start_controllers()
            else:
                self._election = ElectionThread(self.elector)
                self._election.start(self._start_controllers, on_lost=self.stop)
            self._stop.wait()
        finally:
            self._shutdown()
        if self._lost:
            raise LeaderElectionLost(f"leader election lost: {self.identity} could not renew "
                                     "its lease within the renew deadline")

    def stop(self) -> None:
        """Ask ``start`` to shut down and return; safe from any thread, signal handlers too."""
        self._stop.set()
        self._wake.set()

    @property
    def _lost(self) -> bool:
        return self._election is not None and self._election.lost

    def _start_controllers(self) -> None:
        with self._lock:
            if self._stop.is_set() or self._controllers_started:
                return
            self._controllers_started = True
            for controller in self.controllers:
                controller.start()
        self._runnables.start(leading=True)

    def _stop_elector(self) -> None:
        if self._election is not None:
            self._election.stop()
        elif self.elector is not None:
            self.elector.stop()

    def _start_servers(self) -> None:
        for server in (self.metrics_server, self.health_server):
            if server is not None:
                server.start()

    def _shutdown(self) -> None:
        log.info("stopping manager")
        self._ready = False
        with self._lock:
            self._stop.set()
            started = self._controllers_started
        if not started:
            self._stop_elector()  # a standby: no work of ours needs the lease
        self._runnables.stop(drain=started and not self._lost)  # before controllers drain
        if started:
            for controller in self.controllers:
                controller.shutdown(drain=not self._lost)
        # Renewed until now, as controller-runtime cancels leader election only after the
        # leader's runnables stopped: a lease left to expire mid-drain lets a standby
        # reconcile next to us.
        self._stop_elector()
        self.caches.shutdown()
        if self.elector is not None and not self._lost:
            self.elector.release()
        self.events.stop()
        for server in (self.metrics_server, self.health_server):
            if server is not None:
                server.stop()
        self._running = False
        log.info("manager stopped")
