"""``ensemble-operator``: run the controller, the ensemble service, or a member's status endpoint,
or show Ensembles' status.

``service``, ``member-status`` and ``status`` delegate to modules that expose
``add_arguments(parser)`` and ``run(args) -> int``; they and the reconcilers are
imported only when their subcommand runs, so one missing piece never breaks the others.
"""
from __future__ import annotations

import argparse
import importlib
import ipaddress
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from controller.kube.errors import KubeError, status_of
from controller.kube.resources import Resource
from controller.logs import LEVELS, configure

if TYPE_CHECKING:
    from controller.kube.ratelimit import RequestRateLimiter

log = logging.getLogger("controller.cli")

DELEGATED = {
    "service": ("controller.service.main", "run the gRPC ensemble service for one Ensemble"),
    "member-status": ("controller.member.main", "serve a lead broker's queue and node status"),
    "status": ("controller.statusview.command", "print the members of Ensembles as the operator observed them"),
}
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# What installs each custom resource the controller watches, for the error naming a missing one.
INSTALLED_BY = {
    "ensembles.ensemble.flux-framework.org": "the Ensemble CRD: kubectl apply -k manifests/",
    "miniclusters.flux-framework.org": "the Flux Operator first, whose CRD defines MiniCluster",
}


class CliError(Exception):
    """A usage or setup problem, reported as one line and exit status 2."""


def parse_bind_address(flag: str, value: str) -> tuple[str, int] | None:
    """``:8080`` (all interfaces), ``127.0.0.1:8080``, or ``0`` to disable the server."""
    if value == "0":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"{flag}: expected [host]:port or 0, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_namespaces(value: str) -> list[str] | None:
    """``a,b`` -> [a, b]; empty means every namespace."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    return names or None


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and SERVICE_ACCOUNT_TOKEN.exists()


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, "
                        "~/.kube/config, else the pod's ServiceAccount)")
    parser.add_argument("--namespaces", default="",
                        help="comma-separated namespaces to watch (default: all)")
    parser.add_argument("--workers", type=int, default=4,
                        help="concurrent reconciles of the Ensemble controller (default 4)")
    parser.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=None,
                        help="elect a leader on a Lease so only one replica reconciles "
                             "(default: on when running in a cluster)")
    parser.add_argument("--leader-election-id", default="ensemble-operator",
                        help="name of the Lease (default ensemble-operator)")
    parser.add_argument("--leader-election-namespace",
                        help="namespace of the Lease (default: $POD_NAMESPACE, the pod's, else default)")
    parser.add_argument("--metrics-bind-address", default=":8443",
                        help="[host]:port of /metrics, 0 to disable (default :8443)")
    parser.add_argument("--metrics-secure", action=argparse.BooleanOptionalAction, default=True,
                        help="serve /metrics over TLS to callers allowed to get /metrics (TokenReview and "
                             "SubjectAccessReview); --no-metrics-secure serves plain HTTP to anyone, on a "
                             "loopback address only, for development (default on)")
    parser.add_argument("--metrics-cert-dir",
                        help="directory with tls.crt and tls.key for /metrics (default: a self-signed "
                             "certificate made at start)")
    parser.add_argument("--health-probe-bind-address", default=":8081",
                        help="[host]:port of /healthz and /readyz, 0 to disable (default :8081)")
    parser.add_argument("--operator-image",
                        help="image of the ensemble service Deployment (default $ENSEMBLE_OPERATOR_IMAGE)")
    parser.add_argument("--member-status-port", type=int,
                        help="port of the member status endpoint in lead brokers")
    parser.add_argument("--kube-api-qps", type=float, default=-1.0,
                        help="client-side limit on API requests per second; <= 0 means none, as "
                             "controller-runtime does, leaving it to the API server's Priority and "
                             "Fairness (default -1)")
    parser.add_argument("--kube-api-burst", type=int, default=10,
                        help="requests allowed at once above --kube-api-qps, when it is set (default 10)")
    parser.add_argument("--operator-namespace",
                        help="namespace of the operator's pods, which generated NetworkPolicies let reach "
                             "ensemble services and member status ports (default: $POD_NAMESPACE, else "
                             "ensemble-operator-system)")
    parser.add_argument("--service-rate-limit-qps", type=float,
                        help="requests per second each Ensemble's pods may make to its ensemble service once "
                             "the burst is used (default: the service's, 10)")
    parser.add_argument("--service-rate-limit-burst", type=int,
                        help="requests each Ensemble's pods may make to its ensemble service at once "
                             "(default: the service's, 100)")
    add_log_arguments(parser)


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="log line format (default json)")
    parser.add_argument("--log-level", choices=LEVELS, default="info", help="(default info)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the delegated module of ``command`` is imported, to add its flags."""
    parser = argparse.ArgumentParser(
        prog="ensemble-operator",
        description="Run the Ensemble operator, its ensemble service, or a member's status endpoint; "
                    "show Ensembles' status.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the Ensemble controller",
                              description="Run the Ensemble controller manager.")
    add_run_arguments(run)
    run.set_defaults(handler=run_manager)
    for name, (module_name, help_text) in DELEGATED.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = import_delegate(name, module_name)
            module.add_arguments(sub)
            if not any("--log-format" in action.option_strings for action in sub._actions):
                add_log_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def import_delegate(command: str, module_name: str) -> ModuleType:
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise CliError(f"{command}: cannot import {module_name}: {err}") from err
    for attribute in ("add_arguments", "run"):
        if not callable(getattr(module, attribute, None)):
            raise CliError(f"{command}: {module_name} has no {attribute}()")
    return module


def load_setup() -> Callable[[Any, argparse.Namespace], Any]:
    """``controller.reconcilers.setup``, which registers the Ensemble controller."""
    try:
        module = importlib.import_module("controller.reconcilers")
    except ImportError as err:
        raise CliError(f"run: cannot import controller.reconcilers: {err}") from err
    setup = getattr(module, "setup", None)
    if not callable(setup):
        raise CliError("run: controller.reconcilers has no setup(manager, args); "
                       "the Ensemble controller is not available in this build")
    return setup


def unserved_resources(client: Any, resources: Iterable[Resource]) -> list[Resource]:
    """The resources the API server does not serve (a CRD not installed), asked of discovery.

    Informers of such a resource retry their list forever, and the manager gives up only after
    its cache sync timeout with "caches did not sync", which names no CRD. A discovery answer
    other than 404 (forbidden, unreachable) is left to the informers to report.
    """
    served: dict[str, set[str] | None] = {}
    missing = []
    for resource in sorted(set(resources), key=str):
        base = resource.path().rsplit("/", 1)[0]
        if base not in served:
            try:
                answer = client.request("GET", base)
                served[base] = {item.get("name") for item in answer.get("resources") or ()}
            except KubeError as err:
                served[base] = set() if status_of(err) == 404 else None
                if served[base] is None:
                    log.warning("cannot check that %s is served: %s", resource, err)
        names = served[base]
        if names is not None and resource.plural not in names:
            missing.append(resource)
    return missing


def request_rate_limiter(qps: float, burst: int) -> RequestRateLimiter | None:
    """The client's limit from ``--kube-api-qps``/``--kube-api-burst``: none unless qps > 0."""
    from controller.kube.ratelimit import RequestRateLimiter

    if qps <= 0:
        return None
    if burst < 1:
        raise CliError(f"--kube-api-burst: must be >= 1 with --kube-api-qps {qps:g}, got {burst}")
    return RequestRateLimiter(qps, burst)


def metrics_tls(secure: bool, cert_dir: str | None,
                address: tuple[str, int] | None) -> ssl.SSLContext | None:
    """The metrics server's TLS context; None for plain HTTP, which only a loopback address may
    serve: metrics name every tenant's namespaces and Ensembles."""
    if address is None:
        return None
    if not secure:
        if not _loopback(address[0]):
            raise CliError(f"--no-metrics-secure: plain HTTP metrics are served on a loopback address only "
                           f"(127.0.0.1:{address[1]} or [::1]:{address[1]}), not {address[0] or '*'}")
        return None
    from controller.runtime.certs import server_context

    try:
        return server_context(cert_dir)
    except (OSError, ssl.SSLError) as err:
        raise CliError(f"--metrics-cert-dir: cannot load tls.crt and tls.key from {cert_dir}: {err}") from err


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_manager(args: argparse.Namespace) -> int:
    """Build the Manager, register the Ensemble controller, run until SIGTERM/SIGINT."""
    from controller.kube.client import KubeClient
    from controller.runtime.gc_tuning import tune_garbage_collector
    from controller.runtime.manager import LeaderElectionLost, Manager

    if args.workers < 1:
        raise CliError(f"--workers: must be >= 1, got {args.workers}")
    if args.service_rate_limit_qps is not None and not args.service_rate_limit_qps > 0:
        raise CliError(f"--service-rate-limit-qps: must be > 0, got {args.service_rate_limit_qps:g}")
    if args.service_rate_limit_burst is not None and args.service_rate_limit_burst < 1:
        raise CliError(f"--service-rate-limit-burst: must be >= 1, got {args.service_rate_limit_burst}")
    metrics_address = parse_bind_address("--metrics-bind-address", args.metrics_bind_address)
    secure_metrics = metrics_tls(args.metrics_secure, args.metrics_cert_dir, metrics_address)
    health_address = parse_bind_address("--health-probe-bind-address", args.health_probe_bind_address)
    limiter = request_rate_limiter(args.kube_api_qps, args.kube_api_burst)
    setup = load_setup()
    try:
        client = KubeClient.load(args.kubeconfig)
    except KubeError as err:
        raise CliError(f"run: cannot configure API access: {err}") from err
    if limiter is not None:
        client.limit_rate(limiter)
    leader_elect = in_cluster() if args.leader_elect is None else args.leader_elect
    manager = Manager(
        client, namespaces=parse_namespaces(args.namespaces),
        metrics_host=metrics_address[0] if metrics_address else "0.0.0.0",
        metrics_port=metrics_address[1] if metrics_address else None,
        health_host=health_address[0] if health_address else "0.0.0.0",
        health_port=health_address[1] if health_address else None,
        leader_election=leader_elect, leader_election_id=args.leader_election_id,
        leader_election_namespace=args.leader_election_namespace, secure_metrics=secure_metrics)
    setup(manager, args)
    missing = unserved_resources(client, (informer.resource for informer in manager.informers.informers()))
    for resource in missing:
        log.error("%s (%s/%s) is not served by the API server: install %s", resource.kind, resource,
                  resource.version, INSTALLED_BY.get(str(resource), f"the CRD {resource}"))
    if missing:
        return 1
    stop_on_signals(manager.stop)
    tune_garbage_collector()  # wired: what is alive now lives as long as the process
    log.info("starting manager", extra={"namespaces": args.namespaces or "all",
                                        "leaderElection": leader_elect, "identity": manager.identity})
    try:
        manager.start()
    except LeaderElectionLost as err:
        log.error("%s; exiting so another replica can lead", err)
        return 1
    except Exception:  # e.g. caches that never synced: a JSON line with the cause, not a bare traceback
        log.exception("manager stopped on an error")
        return 1
    return 0


def stop_on_signals(stop: Callable[[], None], exit_now: Callable[[int], object] = os._exit) -> None:
    """The first SIGTERM/SIGINT shuts down gracefully; a second one exits at once (as
    controller-runtime does), for when the graceful shutdown is what hangs."""
    received: list[int] = []

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if received:
            log.warning("received %s again during shutdown, exiting now", name)
            exit_now(1)
            return
        received.append(signum)
        log.info("received %s, shutting down", name)
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
        configure(getattr(args, "log_format", "json"), getattr(args, "log_level", "info"))
        return args.handler(args)
    except CliError as err:
        print(f"ensemble-operator: {err}", file=sys.stderr)
        return 2
