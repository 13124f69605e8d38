"""The status sidecar ends when its Flux broker is gone, so the lead pod can complete."""
from __future__ import annotations

import argparse
import threading
import time

import pytest

from controller.member import main as member_main
from controller.member.brokerwatch import BrokerWatch
from sim.member.simulator import SimulatedFlux


class InstantClock:
    """Sleeping costs nothing: each check happens at once."""

    def sleep(self, seconds: float) -> None:
        pass


def test_stops_after_the_configured_misses_in_a_row() -> None:
    answers = iter([True, False, False, True, False, False, False])
    calls = []

    def alive() -> bool:
        calls.append(1)
        return next(answers)

    stop = threading.Event()
    BrokerWatch(alive, stop, interval=1, misses=3, clock=InstantClock()).run()
    assert stop.is_set()
    assert len(calls) == 7, "two misses, then a success, reset the count"


def test_an_exception_counts_as_a_miss() -> None:
    def alive() -> bool:
        raise OSError("broker socket closed")

    stop = threading.Event()
    BrokerWatch(alive, stop, interval=1, misses=2, clock=InstantClock()).run()
    assert stop.is_set()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        BrokerWatch(lambda: True, threading.Event(), interval=0)


class GoneBroker(SimulatedFlux):
    def alive(self) -> bool:
        return False


def test_member_status_exits_zero_once_the_broker_is_gone(monkeypatch) -> None:
    monkeypatch.setattr(member_main, "build_backend", lambda args: GoneBroker({}, 1, None))
    parser = argparse.ArgumentParser()
    member_main.add_arguments(parser)
    args = parser.parse_args(["--host", "127.0.0.1", "--port", "0", "--name", "ens-0",
                              "--broker-check-interval", "0.01"])
    started = time.monotonic()
    assert member_main.run(args) == 0
    assert time.monotonic() - started < 10


class SteppingClock:
    """now() advances only by what sleep() was asked for."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_connect_when_ready_retries_until_the_broker_socket_answers() -> None:
    from controller.member.brokerwatch import connect_when_ready
    failures = [FileNotFoundError(2, "No such file or directory"), ConnectionRefusedError(111, "refused")]

    def connect() -> str:
        if failures:
            raise failures.pop(0)
        return "handle"

    clock = SteppingClock()
    assert connect_when_ready(connect, clock=clock, interval=0.5) == "handle"  # type: ignore[arg-type]
    assert clock.sleeps == [0.5, 0.5]


def test_connect_when_ready_gives_up_after_its_timeout_and_never_retries_other_errors() -> None:
    from controller.member.brokerwatch import connect_when_ready
    clock = SteppingClock()

    def absent() -> None:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(FileNotFoundError):
        connect_when_ready(absent, clock=clock, interval=1.0, timeout=3.0)  # type: ignore[arg-type]
    assert clock.t == 3.0

    calls = []

    def no_bindings() -> None:
        calls.append(1)
        raise ImportError("no module named flux")

    with pytest.raises(ImportError):
        connect_when_ready(no_bindings, clock=SteppingClock())  # type: ignore[arg-type]
    assert calls == [1]
