"""ensemble.yaml defects found in review (checker and simulated run): each failed before its fix."""
from __future__ import annotations

import textwrap

from api.v1alpha1.ensemble_yaml import check_ensemble_yaml
from tests.unit.test_member_runner import SteppingClock, ensemble_run

BASE = "spec.members[0].ensemble"

NAMELESS_JOB_RULE = """
jobs:
  - {name: a, command: sleep 1, count: 2}
  - {name: b, command: sleep 1}
rules:
  - {trigger: start, action: {name: submit, label: a}}
  - {trigger: job-finish, action: {name: submit, label: b, repetitions: 5}}
"""


def test_job_event_rule_without_a_name_is_accepted() -> None:
    """ensemble-python 0.0.16 loads it (its schema requires only trigger and action) and fires it
    for every job; the checker refused it, so an upstream Ensemble carrying one was Invalid."""
    assert check_ensemble_yaml(textwrap.dedent(NAMELESS_JOB_RULE), BASE) == []


def test_job_event_rule_without_a_name_fires_for_every_job() -> None:
    clock = SteppingClock(start=0.0)
    run, flux = ensemble_run(NAMELESS_JOB_RULE, clock, nodes=1)
    run.run(until=10)
    # a1, a2 finish -> b3, b4; b3, b4 finish -> b5, b6; b5 finishes -> b7 (5 repetitions in all)
    assert [f.detail for f in run.fired] == ["a jobs [1, 2]"] + [f"b jobs [{n}]" for n in range(3, 8)]
    assert flux.status()["queue"]["inactive"] == 7


def test_comparison_with_a_negative_number_is_refused() -> None:
    """ensemble-python 0.0.16 parses the number with ``\\w+``, so "> -1" fails when the member
    loads its rules ('NoneType' object has no attribute 'groupdict'); the checker accepted it."""
    text = "jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n    when: '> -1'\n" \
           "    action: {name: terminate}\n"
    assert [error.path for error in check_ensemble_yaml(text, BASE)] == [f"{BASE}.rules[0].when"]
