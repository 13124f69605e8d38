"""DecisionLog: every failure at WARNING; successes at INFO at most once per interval."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.kube.resources import ENSEMBLES, MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2
from controller.scaling.decision_log import DecisionLog
from controller.scaling.scaler import EnsembleScaler, Outcome
from controller.service.servicer import EnsembleServicer, actions_counter
from tests.unit.fakes.kube import FakeKube, ensemble_obj, minicluster_obj

LOGGER = "test.decisions"


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    logger = logging.getLogger(LOGGER)
    handler = Captured()
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def decisions(clock: FakeClock, interval: float = 10.0) -> DecisionLog:
    return DecisionLog(clock, interval=interval, logger=logging.getLogger(LOGGER))


def levels(captured: Captured) -> list[str]:
    return [record.levelname for record in captured.records]


def test_first_success_is_info_and_a_burst_goes_to_debug(captured: Captured) -> None:
    clock = FakeClock()
    log = decisions(clock)
    for _ in range(3):
        log.record("grow", "ns/mc-0", "miniclusters", Outcome.SUCCESS, '{"to": 2}')
        clock.step(1)
    assert levels(captured) == ["INFO", "DEBUG", "DEBUG"]
    assert captured.records[0].getMessage() == "action grow on ns/mc-0 from member 'miniclusters': SUCCESS {\"to\": 2}"


def test_next_info_line_counts_the_successes_logged_at_debug(captured: Captured) -> None:
    clock = FakeClock()
    log = decisions(clock)
    for _ in range(4):
        log.record("grow", "ns/mc-0", "miniclusters", Outcome.SUCCESS, "{}")
    clock.step(10)
    log.record("shrink", "ns/mc-0", "miniclusters", Outcome.SUCCESS, "{}")
    assert levels(captured) == ["INFO", "DEBUG", "DEBUG", "DEBUG", "INFO"]
    assert captured.records[-1].getMessage().endswith("(and 3 more successful actions since the last one logged at info)")
    clock.step(10)
    log.record("grow", "ns/mc-0", "miniclusters", Outcome.SUCCESS, "{}")
    assert "more successful" not in captured.records[-1].getMessage()


@pytest.mark.parametrize("outcome", [Outcome.DENIED, Outcome.ERROR])
def test_every_failure_is_a_warning_even_in_a_burst(captured: Captured, outcome: Outcome) -> None:
    log = decisions(FakeClock())
    log.record("grow", "ns/mc-0", "miniclusters", Outcome.SUCCESS, "{}")
    for _ in range(2):
        log.record("grow", "ns/other", "miniclusters", outcome, '{"error": "not a member"}')
    assert levels(captured) == ["INFO", "WARNING", "WARNING"]
    assert captured.records[-1].getMessage() == (f"action grow on ns/other from member 'miniclusters': "
                                        f"{outcome.value} {{\"error\": \"not a member\"}}")


def test_zero_interval_logs_every_success_at_info(captured: Captured) -> None:
    log = decisions(FakeClock(), interval=0)
    for _ in range(3):
        log.record("grow", "ns/mc-0", "miniclusters", Outcome.SUCCESS, "{}")
    assert levels(captured) == ["INFO"] * 3


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval: must be >= 0 seconds, got -1"):
        decisions(FakeClock(), interval=-1)


def test_servicer_logs_a_denial_as_a_warning_and_a_burst_of_grows_once_at_info(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="controller.service.servicer")
    kube = FakeKube()
    ensemble = kube.put(ENSEMBLES, ensemble_obj("ens"))
    kube.put(MINICLUSTERS, minicluster_obj("ens-0", ensemble, size=1, max_size=8))
    kube.put(MINICLUSTERS, minicluster_obj("other-0", kube.put(ENSEMBLES, ensemble_obj("other")), size=1))
    clock = FakeClock()
    servicer = EnsembleServicer(EnsembleScaler(kube, "ens", "ns", clock=clock), actions_counter(CollectorRegistry()),
                                clock=clock)
    for name in ("ens-0", "ens-0", "ens-0", "other-0"):
        servicer.RequestAction(pb2.ActionRequest(member="miniclusters", name=name, action="grow"), None)
    assert [(record.levelname, record.getMessage().split(":")[1].split()[0]) for record in caplog.records] == [
        ("INFO", "SUCCESS"), ("WARNING", "DENIED")]
    assert kube.get(MINICLUSTERS, "ens-0", "ns")["spec"]["size"] == 4
