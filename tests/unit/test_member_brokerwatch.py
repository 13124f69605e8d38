"""The status sidecar ends when its Flux broker is gone, so the lead pod can complete."""
from __future__ import annotations

import argparse
import threading
import time

import pytest

from controller.member import main as member_main
from controller.member.brokerwatch import BrokerWatch
from controller.member.simulator import SimulatedFlux


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
