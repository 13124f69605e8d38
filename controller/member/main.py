"""``ensemble-operator member-status``: the status endpoint of one member's lead broker."""
from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from controller.clock import RealClock
from controller.member import session
from controller.member.backend import BackendError, MemberBackend
from controller.member.brokerwatch import BrokerWatch, connect_when_ready
from controller.member.flux_backend import FluxBackend
from controller.member.jobgroups import JobGroup, load_job_groups
from controller.member.servicer import DEFAULT_MAX_SUBMIT, NAME_REQUIRED, MemberServicer
from controller.member.simulator import SimulatedFlux
from controller.proto.limits import DEFAULT_MAX_MESSAGE_BYTES
from controller.proto.server import GrpcServer

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument("--backend", choices=("flux", "simulated"), default="flux",
                        help="flux: the local Flux broker; simulated: a deterministic in-process queue")
    parser.add_argument("--ensemble-yaml", type=Path, default=None,
                        help="the member's ensemble.yaml (its jobs are the groups that can be submitted)")
    parser.add_argument("--nodes", type=int, default=1, help="simulated backend: nodes at start (default 1)")
    parser.add_argument("--workers", type=int, default=4, help="gRPC worker threads (default 4)")
    parser.add_argument("--name", default="",
                        help="this member's MiniCluster name (required): requests naming another member "
                             "are DENIED, and --run sends it with grow/shrink")
    parser.add_argument("--max-submit", type=int, default=DEFAULT_MAX_SUBMIT,
                        help=f"most jobs one submit action may ask for (default {DEFAULT_MAX_SUBMIT})")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help=f"largest gRPC message received or sent (default {DEFAULT_MAX_MESSAGE_BYTES})")
    parser.add_argument("--broker-wait-timeout", type=float, default=None,
                        help="flux backend: seconds to wait for the broker to answer at start "
                             "(default: as long as it takes)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to finish requests on SIGTERM")
    parser.add_argument("--broker-check-interval", type=float, default=5.0,
                        help="flux backend: seconds between broker liveness checks; the endpoint exits 0 "
                             "after 3 failures in a row, so the lead pod can complete (default 5)")
    simulated_run = parser.add_argument_group("simulated ensemble run (--run)")
    simulated_run.add_argument("--run", action="store_true",
                     help="also follow the ensemble.yaml's rules on the simulated queue, as ensemble-python "
                          "would in the lead broker (needs --backend simulated)")
    simulated_run.add_argument("--service", metavar="HOST:PORT", default=None,
                     help="the ensemble service that grow/shrink rules ask")
    simulated_run.add_argument("--speed", type=float, default=1.0,
                     help="simulated seconds per wall second (default 1; 10 makes `sleep 10` take 1 s)")
    simulated_run.add_argument("--linger", type=float, default=10.0,
                     help="wall seconds the status endpoint keeps answering after terminate (default 10)")


def build_backend(args: argparse.Namespace) -> MemberBackend:
    """The chosen backend; the simulated one starts by submitting every group's ``count`` jobs."""
    groups = _groups(args.ensemble_yaml)
    if args.backend == "flux":
        return connect_when_ready(lambda: FluxBackend(groups), timeout=args.broker_wait_timeout)
    simulated = SimulatedFlux(groups, args.nodes, RealClock())
    for group in groups.values():
        simulated.submit(group.name, group.count)
    return simulated


def run(args: argparse.Namespace) -> int:
    if args.run:
        return session.run(args)
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
