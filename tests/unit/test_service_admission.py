"""Admission of ensemble-service requests: identity first, then the Ensemble's rate limit, counted."""
from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.service.admission import LOG_INTERVAL_SECONDS, RateLimit, RequestAdmission, refusals_counter
from controller.service.callers import CallerAuthorizer, Refusal
from tests.unit.service_pods import LEAD0, LEAD1, Pods

LEAD = "ipv4:10.0.0.5:1"
OTHER_LEAD = "ipv4:10.0.1.5:1"
STRANGER = "ipv4:10.9.9.9:1"


class Admission:
    def __init__(self, qps: float = 1, burst: int = 3) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.admission = RequestAdmission(CallerAuthorizer(Pods(LEAD0, LEAD1), "ens", "ns"), RateLimit(qps, burst),
                                          refusals_counter(self.registry), clock=self.clock)

    def refused(self, reason: Refusal) -> float:
        return self.registry.get_sample_value("ensemble_service_refusals_total", {"reason": reason.value})


def test_requests_beyond_the_limit_are_rate_limited_until_tokens_come_back() -> None:
    a = Admission(qps=1, burst=3)
    assert [a.admission.admit_action(LEAD, "ens-0") for _ in range(3)] == [None] * 3
    denial = a.admission.admit_action(LEAD, "ens-0")
    assert denial is not None and denial.reason is Refusal.RATE_LIMITED
    assert denial.message.startswith("rate limited: Ensemble ns/ens may make 3 requests at once, then 1 per second")
    assert a.admission.admit_status(LEAD) is not None  # one bucket for every request of the Ensemble
    a.clock.step(1)
    assert a.admission.admit_action(LEAD, "ens-0") is None
    assert a.refused(Refusal.RATE_LIMITED) == 2


def test_outsiders_are_refused_before_the_bucket_and_cannot_use_it_up() -> None:
    a = Admission(qps=1, burst=2)
    for _ in range(50):
        assert a.admission.admit_action(STRANGER, "ens-0").reason is Refusal.NOT_LEAD_BROKER
        assert a.admission.admit_action(OTHER_LEAD, "ens-0").reason is Refusal.NOT_LEAD_BROKER
        assert a.admission.admit_status(STRANGER).reason is Refusal.NOT_ENSEMBLE_POD
    assert [a.admission.admit_action(LEAD, "ens-0"), a.admission.admit_action(LEAD, "ens-0")] == [None, None]
    assert a.refused(Refusal.NOT_LEAD_BROKER) == 100
    assert a.refused(Refusal.NOT_ENSEMBLE_POD) == 50
    assert a.refused(Refusal.RATE_LIMITED) == 0


def test_every_refusal_reason_is_exported_from_the_start() -> None:
    a = Admission()
    assert {reason: a.refused(reason) for reason in Refusal} == {reason: 0.0 for reason in Refusal}


def test_a_flood_of_refusals_logs_once_per_interval_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    a = Admission()
    with caplog.at_level(logging.WARNING, logger="controller.service.admission"):
        for _ in range(100):
            a.admission.admit_action(STRANGER, "ens-0")
        a.clock.step(LOG_INTERVAL_SECONDS)
        a.admission.admit_action(STRANGER, "ens-0")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("refused a request from ipv4:10.9.9.9:1: caller 10.9.9.9")
    assert lines[1].endswith("(and 99 more refused for not_lead_broker since the last one logged)")


@pytest.mark.parametrize("qps, burst, flag", [(0, 1, "--rate-limit-qps"), (1, 0, "--rate-limit-burst")])
def test_bad_rate_limits_name_their_flag(qps: float, burst: int, flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        RateLimit(qps, burst)
