"""``ensemble-operator member-status``: the status endpoint of one member's lead broker.

It serves the real Flux broker it runs beside; the simulated member the local environment
runs instead lives in ``hack/sim/member`` (``python hack/sim/member``).
"""
from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path

from controller.member.backend import BackendError, MemberBackend
from controller.member.brokerwatch import BrokerWatch, connect_when_ready
from controller.member.flux_backend import (BindingsUnavailable, FluxBackend, FluxBindingsError, import_flux,
                                           local_socket)
from controller.member.jobgroups import JobGroup, load_job_groups
from controller.member.servicer import DEFAULT_MAX_SUBMIT, NAME_REQUIRED, MemberServicer
from controller.proto.limits import DEFAULT_MAX_MESSAGE_BYTES
from controller.proto.server import GrpcServer

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument("--ensemble-yaml", type=Path, default=None,
                        help="the member's ensemble.yaml (its jobs are the groups that can be submitted)")
    parser.add_argument("--workers", type=int, default=4, help="gRPC worker threads (default 4)")
    parser.add_argument("--name", default="",
                        help="this member's MiniCluster name (required): requests naming another member "
                             "are DENIED")
    parser.add_argument("--max-submit", type=int, default=DEFAULT_MAX_SUBMIT,
                        help=f"most jobs one submit action may ask for (default {DEFAULT_MAX_SUBMIT})")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help=f"largest gRPC message received or sent (default {DEFAULT_MAX_MESSAGE_BYTES})")
    parser.add_argument("--broker-wait-timeout", type=float, default=None,
                        help="seconds to wait for the broker to answer at start "
                             "(default: as long as it takes)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to finish requests on SIGTERM")
    parser.add_argument("--broker-check-interval", type=float, default=5.0,
                        help="seconds between broker liveness checks; the endpoint exits 0 "
                             "after 3 failures in a row, so the lead pod can complete (default 5)")


def build_backend(args: argparse.Namespace) -> MemberBackend:
    """The local Flux broker, once it answers (or ``--broker-wait-timeout`` passes); without Flux's
    bindings, an endpoint that answers every request with the reason."""
    groups = _groups(args.ensemble_yaml)
    try:
        flux = import_flux()
    except FluxBindingsError as err:
        log.error("%s; serving that reason to every request instead of Flux's status", err)
        return BindingsUnavailable(str(err), local_socket(os.environ.get("FLUX_URI")))
    return connect_when_ready(lambda: FluxBackend(groups, flux), timeout=args.broker_wait_timeout)


def run(args: argparse.Namespace) -> int:
    try:
        if not args.name:  # before the backend: the flux one connects to the broker
            raise ValueError(NAME_REQUIRED)
        backend = build_backend(args)
        server = GrpcServer(MemberServicer(backend, args.name, max_submit=args.max_submit),
                            args.host, args.port, args.workers, max_message_bytes=args.max_message_bytes)
    except (BackendError, ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    stopping = threading.Event()
    alive = getattr(backend, "alive", None)  # backends bound to a broker's lifetime (Flux) offer it
    if alive is not None:
        BrokerWatch(alive, stopping, interval=args.broker_check_interval).start()
    server.serve_until_signal(args.grace, stopping=stopping)
    return 0


def _groups(path: Path | None) -> dict[str, JobGroup]:
    if path is None:
        return {}
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"--ensemble-yaml {path}: {err.strerror}") from None
    return load_job_groups(text, str(path))
