"""``member-status --run``: the status endpoint and a simulated ensemble run in one process.

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
from dataclasses import dataclass

import yaml

from controller.clock import ScaledClock
from controller.member.action_client import ActionClient
from controller.member.jobgroups import load_job_groups
from controller.member.runner import EnsembleRun
from controller.member.servicer import NAME_REQUIRED, MemberServicer
from controller.member.simulator import SimulatedFlux
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
    if args.backend != "simulated":
        raise ValueError("--run: needs --backend simulated "
                         "(in a real MiniCluster ensemble-python runs the ensemble)")
    if args.ensemble_yaml is None:
        raise ValueError("--run: needs --ensemble-yaml (the rules to follow)")
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


def run(args: argparse.Namespace) -> int:
    try:
        session = build_session(args)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    return session.serve()
