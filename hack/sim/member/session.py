"""A simulated member: its status endpoint and its ensemble run in one process.

What the pod process runner starts for a lead broker when Flux cannot run here
(``python hack/sim/member``; ``--help`` lists the flags).

Both share one SimulatedFlux, so the operator's status polls see the queue the run drives,
and a ``resize`` sent to the endpoint changes the nodes the run's jobs get. After a
terminate rule the endpoint keeps answering for ``--linger`` seconds, so the operator can
observe the drained queue before the process exits 0.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from controller.clock import ScaledClock
from controller.logs import LEVELS, configure
from sim.member.action_client import ActionClient
from controller.member.jobgroups import load_job_groups
from sim.member.runner import EnsembleRun
from controller.member.servicer import DEFAULT_MAX_SUBMIT, NAME_REQUIRED, MemberServicer
from controller.proto.limits import DEFAULT_MAX_MESSAGE_BYTES
from sim.member.simulator import SimulatedFlux
from controller.proto.server import GrpcServer

log = logging.getLogger(__name__)


@dataclass
class MemberSession:
    server: GrpcServer
    ensemble: EnsembleRun
    actions: ActionClient | None
    linger: float
    grace: float

    def serve(self) -> int:
        """Serve until the run ends (then linger) or a signal arrives; 0 unless the run failed."""
        wake = threading.Event()
        signalled = threading.Event()
        failed = threading.Event()

        def follow() -> None:
            try:
                if self.ensemble.run():
                    log.info("ensemble terminated; status endpoint answers for %.1f s more", self.linger)
            except Exception:
                log.exception("ensemble run failed")
                failed.set()
            finally:
                wake.set()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            signalled.set()
            wake.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        follower = threading.Thread(target=follow, name="ensemble-run", daemon=True)
        try:
            self.server.start()
            follower.start()
            wake.wait()
            if not signalled.is_set() and self.ensemble.terminated:
                signalled.wait(self.linger)
        finally:
            self.ensemble.stop()
            follower.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.server.stop(self.grace)
            if self.actions is not None:
                self.actions.close()
        return 1 if failed.is_set() else 0


def build_session(args: argparse.Namespace) -> MemberSession:
    """Everything is checked before the port is bound; errors name the flag or ensemble.yaml field."""
    if args.ensemble_yaml is None:
        raise ValueError("--ensemble-yaml: required (the rules to follow)")
    if not args.speed > 0:
        raise ValueError(f"--speed: must be > 0, got {args.speed}")
    if not args.name:
        raise ValueError(NAME_REQUIRED)
    source = str(args.ensemble_yaml)
    try:
        text = args.ensemble_yaml.read_text()
    except OSError as err:
        raise ValueError(f"--ensemble-yaml {source}: {err.strerror}") from None
    clock = ScaledClock(args.speed)
    flux = SimulatedFlux(load_job_groups(text, source), args.nodes, clock)
    actions = ActionClient(args.service, args.name) if args.service else None
    try:
        ensemble = EnsembleRun(yaml.safe_load(text), flux, actions, clock, source=source)
        server = GrpcServer(MemberServicer(flux, args.name, max_submit=args.max_submit), args.host, args.port,
                            args.workers, max_message_bytes=args.max_message_bytes)
    except (ValueError, OSError):
        if actions is not None:
            actions.close()
        raise
    return MemberSession(server, ensemble, actions, args.linger, args.grace)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port of the status endpoint (default 50051)")
    parser.add_argument("--name", default="",
                        help="this member's MiniCluster name (required): sent with grow/shrink, and status "
                             "requests naming another member are DENIED")
    parser.add_argument("--ensemble-yaml", type=Path, default=None,
                        help="the member's ensemble.yaml: the jobs queued at start and the rules followed")
    parser.add_argument("--nodes", type=int, default=1, help="nodes at start (default 1)")
    parser.add_argument("--service", metavar="HOST:PORT", default=None,
                        help="the ensemble service that grow/shrink rules ask")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="simulated seconds per wall second (default 1; 10 makes `sleep 10` take 1 s)")
    parser.add_argument("--linger", type=float, default=10.0,
                        help="wall seconds the status endpoint keeps answering after terminate (default 10)")
    parser.add_argument("--workers", type=int, default=4, help="gRPC worker threads (default 4)")
    parser.add_argument("--max-submit", type=int, default=DEFAULT_MAX_SUBMIT,
                        help=f"most jobs one submit action may ask for (default {DEFAULT_MAX_SUBMIT})")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help=f"largest gRPC message received or sent (default {DEFAULT_MAX_MESSAGE_BYTES})")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to finish requests on SIGTERM")
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="log line format (default json)")
    parser.add_argument("--log-level", choices=LEVELS, default="info", help="(default info)")


def run(args: argparse.Namespace) -> int:
    try:
        session = build_session(args)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    return session.serve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/sim/member",
                                     description="Run one simulated member: a status endpoint over a simulated "
                                                 "Flux queue, following the member's ensemble.yaml as "
                                                 "ensemble-python would.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure(args.log_format, args.log_level)
    return run(args)
