"""The pieces of a simulated ensemble run: rule parsing, frequency, metrics, journal, scaled time."""
from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time

import pytest

from controller.clock import ScaledClock
from tests.fakes import FakeClock
from controller.member.jobgroups import JobGroup
from sim.member.metrics import GroupMetrics
from api.v1alpha1.ensemble_yaml import When, WhenError, load_ensemble_yaml
from sim.member.rules import Frequency, run_rules
from sim.member.simulator import JobTransition, SimulatedFlux
from sim.fluxmembers import flux_build


@pytest.mark.parametrize("when, value, expected", [
    (10, 10.0, True), (10, 9.0, False), (2.5, 2.5, True),
    ("> 5", 5.0, False), ("> 5", 5.5, True), (">=5", 5.0, True), ("<= 2", 3.0, False),
    ("=> 3", 3.5, True),                                   # found as "> 3"
])
def test_when_compares_like_ensemble_python(when: object, value: float, expected: bool) -> None:
    assert When.parse(when).matches(value) is expected


@pytest.mark.parametrize("when, value, expected", [("> 0.5", 0.2, True), ("< 0.5", 0.25, False),
                                                   ("> 2.5", 2.25, True)])
def test_a_fraction_in_a_when_string_is_dropped_as_ensemble_python_reads_it(when: str, value: float,
                                                                           expected: bool) -> None:
    """ensemble-python 0.0.16 reads the number with \\w+: in a real Flux instance a rule
    ``mean.a-duration "> 0.5"`` terminated after one 0.2 s job (it compares with 0)."""
    assert When.parse(when).matches(value) is expected


@pytest.mark.parametrize("when", ["about 5", "> five", True, None, "== 3", "!= 3", "7", "> -1"])
def test_a_when_ensemble_python_cannot_load_is_refused(when: object) -> None:
    with pytest.raises(WhenError):
        When.parse(when)


def firings(frequency: Frequency, triggers: int) -> list[int]:
    return [index for index in range(triggers) if frequency.allow()]


def test_default_frequency_fires_once() -> None:
    assert firings(Frequency(), 5) == [0]


def test_repetitions_without_backoff_fire_on_consecutive_triggers() -> None:
    assert firings(Frequency(repetitions=3), 6) == [0, 1, 2]


def test_backoff_skips_that_many_triggers_between_firings() -> None:
    assert firings(Frequency(repetitions=5, backoff=2), 20) == [0, 3, 6, 9, 12]


def test_zero_repetitions_never_fire() -> None:
    assert firings(Frequency(repetitions=0, backoff=1), 4) == []


def config(rules: list[dict], heartbeat: float | None = None):
    document: dict = {"jobs": [{"name": "a", "command": "sleep 1"}], "rules": rules}
    if heartbeat is not None:
        document["logging"] = {"heartbeat": heartbeat}
    loaded = load_ensemble_yaml(json.dumps(document))
    assert loaded.config is not None, loaded.errors
    return loaded.config


def test_rules_carry_their_position_trigger_and_action_settings() -> None:
    rules = run_rules(config([
        {"trigger": "start", "action": {"name": "submit", "label": "a"}},
        {"trigger": "metric", "name": "mean.a-pending", "when": "> 5",
         "action": {"name": "grow", "value": 2, "repetitions": 3, "backoff": 1}},
    ]))
    assert [(rule.where, rule.trigger, rule.name, rule.action, rule.label, rule.value) for rule in rules] == [
        ("rules[0]", "start", None, "submit", "a", 1),
        ("rules[1]", "metric", "mean.a-pending", "grow", None, 2)]
    assert rules[1].when == When(">", 5.0)
    assert (rules[1].frequency.repetitions, rules[1].frequency.backoff) == (3, 1)
    assert rules[1].describe() == "rules[1] metric mean.a-pending > 5"


@pytest.mark.parametrize("heartbeat, action, expected", [
    (None, "submit", 0.0), (3, "submit", 3.0), (None, "grow", 60.0), (0, "shrink", 60.0), (7, "grow", 7.0),
])
def test_heartbeat_is_turned_on_by_grow_or_shrink(heartbeat: float | None, action: str,
                                                   expected: float) -> None:
    assert config([{"trigger": "start", "action": {"name": action, "label": "a"}}], heartbeat).heartbeat == expected


def test_metrics_answer_by_rule_name_and_wait_for_data() -> None:
    metrics = GroupMetrics()
    assert metrics.value("count.sleep.success") is None
    assert metrics.value("mean.sleep-pending") is None
    metrics.increment("sleep", "success")
    metrics.increment("sleep", "success")
    for pending in (0.0, 4.0, 11.0):
        metrics.record("sleep-pending", pending)
    assert metrics.value("count.sleep.success") == 2.0
    assert metrics.value("count.sleep.failed") is None
    assert metrics.value("mean.sleep-pending") == 5.0
    assert (metrics.value("min.sleep-pending"), metrics.value("max.sleep-pending")) == (0.0, 11.0)
    assert metrics.value("variance.sleep-pending") == pytest.approx(31.0)  # sample variance, as river's Var
    assert metrics.value("iqr.sleep-pending") == 11.0          # river's 0.75 and 0.25 of 3 samples: 11, 0
    assert metrics.value("mad.sleep-pending") == 0.0
    assert metrics.value("median.sleep-pending") is None       # no such model in ensemble-python either
    assert metrics.snapshot()["count.sleep.success"] == 2.0


def test_variance_of_one_sample_is_zero_as_in_river() -> None:
    """So ``variance.a-duration ">= 0"`` fires at the first finished job, as it did with
    ensemble-python in a real Flux instance."""
    metrics = GroupMetrics()
    metrics.record("a-duration", 7.0)
    assert metrics.value("variance.a-duration") == 0.0


# iqr and mad after each sample, computed by river 0.26.1's stats.IQR() and stats.MAD() (the river
# in ensemble-python 0.0.16's virtualenv, ~/.cache/ensemble-operator/flux/0.88.0/): river's P²
# estimates, not the batch values, since rules compare what ensemble-python computes.
RIVER_IQR_MAD = {
    "mad docstring": ([4, 2, 5, 3, 0, 4],
                      [0.0, 2.0, 3.0, 2.0, 2.0, 0.0],
                      [0.0, 2.0, 1.0, 1.0, 1.0, 1.0]),
    "durations": ([12.5, 9.0, 30.25, 7.75, 15.0, 61.0, 8.5, 10.0, 11.25, 9.5, 120.0, 13.0],
                  [0.0, 3.5, 21.25, 21.25, 6.0, 0.0, 9.597222222222218, 10.904513888888886,
                   10.904513888888886, 10.904513888888886, 10.904513888888886, 10.904513888888886],
                  [0.0, 3.5, 3.5, 4.75, 3.5, 3.5, 4.25, 4.25, 3.708333333333333, 3.708333333333333,
                   3.708333333333333, 3.708333333333333]),
    "ties": ([5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 5.0],
             [0.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.27777777777777773, 0.8275462962962963, 0.8275462962962963,
              1.7407407407407407],
             [0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1388888888888889, 0.4012345679012345,
              0.4012345679012345]),
    "falling": ([100.0 - 7.0 * i for i in range(14)],
                [0.0, 7.0, 14.0, 14.0, 14.0, 7.0, 14.0, 21.0, 28.0, 28.0, 35.0, 42.0, 42.0, 42.0],
                [0.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 10.88888888888889, 15.382716049382717,
                 15.382716049382717, 19.736111111111114, 19.736111111111114, 23.58206018518519,
                 23.58206018518519]),
}


@pytest.mark.parametrize("samples, iqr, mad", RIVER_IQR_MAD.values(), ids=RIVER_IQR_MAD.keys())
def test_iqr_and_mad_are_rivers_estimates(samples: list[float], iqr: list[float], mad: list[float]) -> None:
    """So ``iqr.<group>-duration`` and ``mad.<group>-pending`` rules fire when they would in a real
    member (a single sample gives 0, as river's models answer once ensemble-python creates them)."""
    metrics = GroupMetrics()
    ours: tuple[list[float | None], list[float | None]] = ([], [])
    for sample in samples:
        metrics.record("a-duration", sample)
        ours[0].append(metrics.value("iqr.a-duration"))
        ours[1].append(metrics.value("mad.a-duration"))
    assert ours == (pytest.approx(iqr, rel=0, abs=1e-9), pytest.approx(mad, rel=0, abs=1e-9))
    assert {"iqr.a-duration", "mad.a-duration"} <= metrics.snapshot().keys()


RIVER_SCRIPT = """
import json, sys
from river import stats
models = [stats.Mean, stats.Var, stats.Min, stats.Max, stats.IQR, stats.MAD]
out = []
for samples in json.load(sys.stdin):
    live, rows = [model() for model in models], []
    for x in samples:
        for model in live:
            model.update(x)
        rows.append([model.get() for model in live])
    out.append(rows)
json.dump(out, sys.stdout)
"""


def test_every_model_matches_river_in_the_member_virtualenv_on_random_series() -> None:
    """Runs river itself where the real members' virtualenv is built; required when
    ``ENSEMBLE_MEMBERS=real`` (as CI sets), deselected otherwise."""
    python = flux_build().venv / "bin" / "python"
    if not os.access(python, os.X_OK):
        if os.environ.get("ENSEMBLE_MEMBERS", "").strip() == "real":
            pytest.fail(f"ENSEMBLE_MEMBERS=real but there is no member virtualenv at {python.parent.parent} "
                        "(hack/build-flux.sh builds it)")
        pytest.skip(f"no member virtualenv with river at {python.parent.parent} (hack/build-flux.sh)")
    rng = random.Random(11)
    series = [[rng.choice((rng.uniform(0, 600), rng.expovariate(0.05), float(rng.randint(0, 4))))
               for _ in range(rng.randint(1, 80))] for _ in range(150)]
    river = json.loads(subprocess.run([str(python), "-c", RIVER_SCRIPT], input=json.dumps(series),
                                      capture_output=True, text=True, check=True, timeout=120).stdout)
    names = ("mean", "variance", "min", "max", "iqr", "mad")
    for samples, expected in zip(series, river, strict=True):
        metrics = GroupMetrics()
        for sample, values in zip(samples, expected, strict=True):
            metrics.record("s-pending", sample)
            assert [metrics.value(f"{name}.s-pending") for name in names] == pytest.approx(
                values, rel=1e-9, abs=1e-9), samples


def test_group_names_with_dots_and_dashes_resolve() -> None:
    metrics = GroupMetrics()
    metrics.increment("lammps.v2", "success")
    metrics.record("sleep-long-duration", 100.0)
    assert metrics.value("count.lammps.v2.success") == 1.0
    assert metrics.value("mean.sleep-long-duration") == 100.0


def test_simulator_journal_lists_every_transition_in_time_order() -> None:
    clock = FakeClock(start=0.0)
    flux = SimulatedFlux({"a": JobGroup("a", "sleep 4", 1, 1, 4.0)}, 1, clock)
    flux.submit("a", 2)
    assert flux.next_change_at() == 4.0
    clock.step(10)
    journal = flux.journal()
    assert journal == [
        JobTransition(1, "a", "new", 0.0), JobTransition(2, "a", "new", 0.0),
        JobTransition(1, "a", "sched", 0.0), JobTransition(2, "a", "sched", 0.0),
        JobTransition(1, "a", "run", 0.0), JobTransition(1, "a", "inactive", 4.0),
        JobTransition(2, "a", "run", 4.0), JobTransition(2, "a", "inactive", 8.0)]
    assert flux.journal(6) == journal[6:]
    assert flux.next_change_at() is None


def test_scaled_clock_runs_faster_than_real_time() -> None:
    clock = ScaledClock(speed=200.0)
    condition = threading.Condition()
    started, wall = clock.now(), time.monotonic()
    with condition:
        assert clock.wait(condition, 20.0) is False            # 20 clock seconds = 0.1 s of wall time
    assert clock.now() - started >= 20.0
    assert time.monotonic() - wall < 5.0


@pytest.mark.parametrize("speed", [0, -1.0, float("nan")])
def test_scaled_clock_rejects_a_speed_that_is_not_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed: must be > 0"):
        ScaledClock(speed)
