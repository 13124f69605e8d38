"""``ensemble-operator service``: the gRPC ensemble service for one Ensemble."""
from __future__ import annotations

import argparse
import logging
import os

from prometheus_client import REGISTRY

from controller.clock import RealClock
from controller.runtime.httpserver import RouteServer, metrics
from controller.scaling.scaler import EnsembleScaler
from controller.proto.server import GrpcServer
from controller.service.servicer import EnsembleServicer, actions_counter

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
    scaler = EnsembleScaler(client, args.ensemble, args.namespace, clock=clock)
    servicer = EnsembleServicer(scaler, actions_counter(REGISTRY), clock=clock)
    try:
        server = GrpcServer(servicer, args.host, args.port, args.workers)
    except (OSError, ValueError) as err:
        log.error("%s", err)
        return 1
    if args.metrics_port:
        try:
            RouteServer(args.host, args.metrics_port, {"/metrics": metrics(REGISTRY)}).start()
        except OSError as err:
            server.stop(0)
            log.error("--metrics-port: cannot serve metrics on %s:%d: %s", args.host, args.metrics_port, err)
            return 1
    log.info("serving Ensemble %s/%s", args.namespace, args.ensemble)
    server.serve_until_signal(args.grace)
    return 0
