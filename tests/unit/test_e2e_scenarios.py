"""tests/e2e's scenario builders and runtime selection, without a cluster: a scenario that a
runtime would run 10 times too slow, a template our validator refuses, or a real_flux scenario
silently deselected where real members were demanded would otherwise show only in the e2e run."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from api.v1alpha1.ensemble_yaml import check_ensemble_yaml
from tests.e2e import providers, scenarios
from tests.e2e.conftest import real_members_demanded

SIMULATED = SimpleNamespace(member_speed=10.0)
REAL = SimpleNamespace(member_speed=1.0)
BUILDERS = (scenarios.quick_run, scenarios.grow_shrink, scenarios.queued_work, scenarios.long_run)


def test_member_seconds_scale_wall_seconds_by_the_member_runtime_speed() -> None:
    assert scenarios.member_seconds(SIMULATED, 2) == 20
    assert scenarios.member_seconds(REAL, 2) == 2
    assert scenarios.member_seconds(REAL, 0.2) == 1  # never 0: a heartbeat or sleep of 0 means something else


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_scenarios_are_valid_ensemble_yaml_for_both_runtimes(build) -> None:
    for cluster in (SIMULATED, REAL):
        assert check_ensemble_yaml(build(cluster), "spec.members[0].ensemble") == []


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_scenario_durations_take_the_same_wall_time_on_both_runtimes(build) -> None:
    def seconds(cluster) -> list[int]:
        config = yaml.safe_load(build(cluster))
        return [config["logging"]["heartbeat"]] + [int(job["command"].split()[1]) for job in config["jobs"]
                                                   if job["command"].startswith("sleep ")]

    assert seconds(SIMULATED) == [10 * s for s in seconds(REAL)]


def test_idset_reads_flux_rank_lists() -> None:
    assert scenarios.idset("0") == {0}
    assert scenarios.idset("[0-2,5]") == {0, 1, 2, 5}
    assert scenarios.idset("\n") == set()


def test_failed_jobs_are_exceptions_and_unsuccessful_ends() -> None:
    done = {"state": "INACTIVE", "result": "COMPLETED", "exception": {"occurred": False}}
    running = {"state": "RUN", "exception": {"occurred": False}}
    lost = {"state": "INACTIVE", "result": "FAILED", "exception": {"occurred": True, "type": "node-failure"}}
    canceled = {"state": "INACTIVE", "result": "CANCELED", "exception": {"occurred": False}}
    assert scenarios.failed_jobs([done, running, lost, canceled]) == [lost, canceled]


def test_clusters_other_than_local_run_real_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENSEMBLE_MEMBERS", "simulated")
    assert providers.expected_member_runtime("kind") == "real"
    assert providers.expected_member_runtime("existing") == "real"
    assert providers.expected_member_runtime("local") == "simulated"


def test_real_members_are_demanded_by_either_switch() -> None:
    assert real_members_demanded({"E2E_REAL_MEMBERS": "1"})
    assert real_members_demanded({"ENSEMBLE_MEMBERS": "real"})
    assert not real_members_demanded({"ENSEMBLE_MEMBERS": "simulated"})
    assert not real_members_demanded({})
