"""The Manager: shared caches, controllers, leader election, probes, metrics and events.

Start order follows controller-runtime: servers, event writer and caches first (so
/readyz turns ok once caches synced, leader or not), then controllers once leading.
Stop order: controllers drain (the lease still renewed), caches stop, the lease is
released, servers close.
"""
from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import uuid
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from controller.clock import Clock, RealClock
from controller.informers import SharedInformerFactory
from controller.kube.resources import Resource
from controller.runtime.cache import ObjectCache
from controller.runtime.controller import Controller
from controller.runtime.events import EventRecorder
from controller.runtime.httpserver import RouteServer, check, metrics
from controller.runtime.metricsauth import MetricsAuthorizer
from controller.runtime.leader import KubeLeaseStore, LeaderElector
from controller.runtime.metrics import ControllerMetrics
from controller.workqueue import PrometheusMetricsProvider, RateLimitingQueue, new_rate_limiting_queue

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class Runnable(Protocol):
    """A background component the Manager starts and stops (a poller, a periodic sweeper).

    An optional ``needs_leader_election`` attribute (default True) says whether it may
    only run on the leader; False runs it on every replica once caches synced.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LeaderElectionLost(RuntimeError):
    """The lease could not be renewed; the process must exit so another replica leads."""


def default_leader_election_namespace() -> str:
    """$POD_NAMESPACE, else the ServiceAccount's namespace in a pod, else "default"."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


def default_identity() -> str:
    """Hostname plus a random suffix, so two processes on one host never share an identity."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


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
        self.clock = clock or RealClock()
        self.namespaces = list(namespaces) if namespaces is not None else None
        self.identity = identity or default_identity()
        self.registry = CollectorRegistry()
        undecodable = Counter("informer_undecodable_objects_total",
                              "Objects skipped by an informer because they could not be decoded",
                              ["resource"], registry=self.registry)
        self.informers = SharedInformerFactory(
            client, clock=self.clock, on_undecodable=lambda resource: undecodable.labels(resource).inc())
        self.controller_metrics = ControllerMetrics(self.registry)
        self._workqueue_metrics = PrometheusMetricsProvider(self.registry)
        self.events = EventRecorder(client, self.clock, reporting_instance=self.identity, registry=self.registry)
        self.controllers: list[Controller] = []
        self.runnables: list[Runnable] = []
        self.elector = (LeaderElector(
            KubeLeaseStore(client, leader_election_namespace or default_leader_election_namespace(),
                           leader_election_id),
            self.identity, self.clock, lease_duration=lease_duration,
            renew_deadline=renew_deadline, retry_period=retry_period)
            if leader_election else None)
        self._cache_sync_timeout = cache_sync_timeout
        authorizer = MetricsAuthorizer(client, self.clock) if secure_metrics is not None else None
        self.metrics_server = (RouteServer(metrics_host, metrics_port, {"/metrics": metrics(self.registry)},
                                           tls=secure_metrics,
                                           authorize=authorizer.check if authorizer is not None else None)
                               if metrics_port is not None else None)
        self.health_server = (RouteServer(health_host, health_port, {
            "/healthz": check("healthz", self.is_running),
            "/readyz": check("readyz", self.is_ready)}) if health_port is not None else None)
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by the end of the cache sync
        self._running = False
        self._ready = False
        self._lost = False
        self._lock = threading.Lock()
        self._elector_thread: threading.Thread | None = None
        self._controllers_started = False
        self._started_runnables: list[Runnable] = []

    # --- wiring (before start) -------------------------------------------------------

    def informers_for(self, resource: Resource, *, namespace: str | None = None,
                      label_selector: str | None = None) -> list:
        """The informers feeding a watch: one per watched namespace, or one cluster-wide."""
        return list(self._informers_by_namespace(resource, namespace, label_selector).values())

    def cache(self, resource: Resource, *, label_selector: str | None = None) -> ObjectCache:
        """Cached reads of ``resource`` across the watched namespaces.

        With ``label_selector`` the cache holds only matching objects, and shares its
        informers with watches given the same selector.
        """
        return ObjectCache(resource, self._informers_by_namespace(resource, None, label_selector))

    def _informers_by_namespace(self, resource: Resource, namespace: str | None,
                                label_selector: str | None) -> dict[str | None, object]:
        if not resource.namespaced:
            return {None: self.informers.informer_for(resource, label_selector=label_selector)}
        if namespace is not None:
            if self.namespaces is not None and namespace not in self.namespaces:
                raise ValueError(f"namespace {namespace!r} for {resource} is not watched "
                                 f"(watched: {', '.join(self.namespaces)})")
            targets: list[str | None] = [namespace]
        else:
            targets = list(self.namespaces) if self.namespaces is not None else [None]
        return {ns: self.informers.informer_for(resource, namespace=ns, label_selector=label_selector)
                for ns in targets}

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
        if not (callable(getattr(runnable, "start", None)) and callable(getattr(runnable, "stop", None))):
            raise TypeError(f"add_runnable: {type(runnable).__name__} needs start() and stop() methods")
        self.runnables.append(runnable)

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
            self.informers.start()
            if not self._wait_for_caches():
                if self._stop.is_set():
                    return
                raise RuntimeError(f"informer caches did not sync within {self._cache_sync_timeout}s")
            self._ready = True
            log.info("caches synced", extra={"controllers": [c.name for c in self.controllers]})
            self._start_runnables(leading=False)
            if self.elector is None:
                self._start_controllers()
            else:
                self._elector_thread = threading.Thread(target=self._lead, args=(self.elector,),
                                                        name="leader-election", daemon=True)
                self._elector_thread.start()
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

    def _wait_for_caches(self) -> bool:
        """Wait for the caches to sync; False when they did not in time or ``stop`` came first.

        The wait runs on a helper thread so that ``stop`` (a SIGTERM) ends it at once: caches
        that cannot sync (a watched CRD not installed) would otherwise hold the process for
        the whole sync timeout, past the pod's termination grace period.
        """
        synced: list[bool] = []

        def wait() -> None:
            synced.append(self.informers.wait_for_cache_sync(self._cache_sync_timeout))
            self._wake.set()

        threading.Thread(target=wait, name="cache-sync", daemon=True).start()
        self._wake.wait()
        return bool(synced) and synced[0] and not self._stop.is_set()

    def _lead(self, elector: LeaderElector) -> None:
        if elector.run(self._start_controllers):
            self._lost = True
            self.stop()

    def _start_controllers(self) -> None:
        with self._lock:
            if self._stop.is_set() or self._controllers_started:
                return
            self._controllers_started = True
            for controller in self.controllers:
                controller.start()
        self._start_runnables(leading=True)

    def _start_runnables(self, *, leading: bool) -> None:
        """Start the runnables for this phase: every replica's first, then the leader's."""
        for runnable in self.runnables:
            if bool(getattr(runnable, "needs_leader_election", True)) != leading:
                continue
            with self._lock:
                if self._stop.is_set():
                    return
                self._started_runnables.append(runnable)
                # Under the lock, as controllers start: a shutdown from another thread stops
                # this runnable only once its start() returned, never during or before it.
                runnable.start()

    def _stop_runnables(self) -> None:
        """Stop started runnables, last started first, before controllers drain."""
        with self._lock:
            started, self._started_runnables = self._started_runnables, []
        for runnable in reversed(started):
            try:
                runnable.stop()
            except Exception:  # one failing stop must not keep the others running
                log.exception("stopping %s failed", type(runnable).__name__)

    def _stop_elector(self) -> None:
        if self.elector is not None:
            self.elector.stop()
            if self._elector_thread is not None:
                self._elector_thread.join()

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
        self._stop_runnables()
        if started:
            for controller in self.controllers:
                controller.shutdown(drain=not self._lost)
        # Renewed until now, as controller-runtime cancels leader election only after the
        # leader's runnables stopped: a lease left to expire mid-drain lets a standby
        # reconcile next to us.
        self._stop_elector()
        self.informers.shutdown()
        if self.elector is not None and not self._lost:
            self.elector.release()
        self.events.stop()
        for server in (self.metrics_server, self.health_server):
            if server is not None:
                server.stop()
        self._running = False
        log.info("manager stopped")
