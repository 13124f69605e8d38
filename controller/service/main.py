"""``ensemble-operator service``: the gRPC ensemble service for one Ensemble."""
from __future__ import annotations

import argparse
import logging
import os

from prometheus_client import REGISTRY

from controller.clock import RealClock
from controller.runtime.httpserver import RouteServer, metrics
from controller.scaling.scaler import EnsembleScaler
from controller.scaling.service_action_writer import DEFAULT_INTERVAL as DEFAULT_RECORD_INTERVAL, ServiceActionWriter
from controller.proto.server import GrpcServer
from controller.service.admission import (DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_QPS, RateLimit,
                                          RequestAdmission, refusals_counter)
from controller.service.callers import CallerAuthorizer
from controller.service.memberpods import MemberPods
from controller.service.servicer import EnsembleServicer, actions_counter, unrecorded_actions_counter

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubernetes", action="store_true",
                        help="running inside Kubernetes: use the pod's ServiceAccount unless --kubeconfig")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument("--workers", type=int, default=10, help="gRPC worker threads (default 10)")
    parser.add_argument("--ensemble", default=os.environ.get("ENSEMBLE_NAME"),
                        help="name of the Ensemble served (default $ENSEMBLE_NAME)")
    parser.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE"),
                        help="namespace of the Ensemble (default $POD_NAMESPACE)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--metrics-port", type=int, default=8080,
                        help="Prometheus metrics port on --host, 0 to disable (default 8080)")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds in-flight requests get to finish on SIGTERM (default 10)")
    parser.add_argument("--rate-limit-qps", type=float, default=DEFAULT_RATE_LIMIT_QPS,
                        help="requests per second the Ensemble's pods may make once the burst is used; more are "
                             f"DENIED 'rate limited' (default {DEFAULT_RATE_LIMIT_QPS:g})")
    parser.add_argument("--rate-limit-burst", type=int, default=DEFAULT_RATE_LIMIT_BURST,
                        help=f"requests the Ensemble's pods may make at once (default {DEFAULT_RATE_LIMIT_BURST})")
    parser.add_argument("--pod-sync-timeout", type=float, default=30.0,
                        help="seconds to wait for the first list of the Ensemble's pods before serving; requests "
                             "are DENIED until it arrives (default 30)")
    parser.add_argument("--record-interval", type=float, default=DEFAULT_RECORD_INTERVAL,
                        help="seconds between writes of the served resizes to the Ensemble's status.serviceActions; "
                             f"the resizes of a burst are written together (default {DEFAULT_RECORD_INTERVAL:g})")


def run(args: argparse.Namespace) -> int:
    if not args.ensemble:
        log.error("--ensemble: required (or set ENSEMBLE_NAME)")
        return 2
    if not args.namespace:
        log.error("--namespace: required (or set POD_NAMESPACE)")
        return 2
    from controller.kube.client import KubeClient
    from controller.kube.errors import KubeError

    try:
        if args.kubernetes and not args.kubeconfig:
            client = KubeClient.in_cluster()
        else:
            client = KubeClient.load(args.kubeconfig)
    except KubeError as err:  # one log line naming the cause, not a traceback past the JSON logs
        log.error("cannot configure API access: %s", err)
        return 1
    clock = RealClock()
    try:
        limit = RateLimit(args.rate_limit_qps, args.rate_limit_burst)
        recorder = ServiceActionWriter(client, args.ensemble, args.namespace, clock=clock,
                                       interval=args.record_interval,
                                       on_failed=unrecorded_actions_counter(REGISTRY).inc)
    except ValueError as err:
        log.error("%s", err)
        return 2
    scaler = EnsembleScaler(client, args.ensemble, args.namespace, clock=clock, actions=recorder.book)
    pods = MemberPods(client, args.ensemble, args.namespace, clock=clock)
    admission = RequestAdmission(CallerAuthorizer(pods, args.ensemble, args.namespace), limit,
                                 refusals_counter(REGISTRY), clock=clock)
    servicer = EnsembleServicer(scaler, actions_counter(REGISTRY), clock=clock, admission=admission)
    try:
        server = GrpcServer(servicer, args.host, args.port, args.workers)
    except (OSError, ValueError) as err:
        log.error("%s", err)
        return 1
    pods.start()
    if not pods.wait_for_sync(args.pod_sync_timeout):
        log.warning("the pods of Ensemble %s/%s are not listed after %gs: every request is DENIED until they are",
                    args.namespace, args.ensemble, args.pod_sync_timeout)
    if args.metrics_port:
        try:
            RouteServer(args.host, args.metrics_port, {"/metrics": metrics(REGISTRY)}).start()
        except OSError as err:
            server.stop(0)
            pods.stop()
            log.error("--metrics-port: cannot serve metrics on %s:%d: %s", args.host, args.metrics_port, err)
            return 1
    log.info("serving Ensemble %s/%s", args.namespace, args.ensemble)
    recorder.start()
    try:
        server.serve_until_signal(args.grace)
    finally:
        pods.stop()
        recorder.stop()  # after the gRPC server drained: the last resizes served are written too
    return 0
