"""check_ensemble_yaml: the ensemble-python format, with exact field paths."""
from __future__ import annotations

import textwrap

import pytest

from api.v1alpha1.ensemble_yaml import check_ensemble_yaml
from tests.unit.test_hack_sim_member_runner import SteppingClock, ensemble_run

BASE = "spec.members[0].ensemble"


def errors_of(text: str) -> dict[str, str]:
    return {error.path: error.message for error in check_ensemble_yaml(textwrap.dedent(text), BASE)}


VALID = """
logging:
  debug: true
  heartbeat: 3
jobs:
  - name: sim
    command: sleep 1
    count: 2
    nodes: 1
    tasks: 4
    duration: 30
    workdir: /tmp
rules:
  - trigger: start
    action: {name: submit, label: sim}
  - trigger: metric
    name: mean.sim-pending
    when: "> 5.5"
    action: {name: grow, value: 2, repetitions: 3, backoff: 0}
  - trigger: metric
    name: count.sim.success
    when: 2
    action: {name: custom, label: refill}
  - trigger: job-finish
    name: sim
    action: {name: shrink}
  - trigger: job-depend
    name: sim
    when: "> 0"
    action: {name: terminate}
custom: |
  def refill(*args, **kwargs):
      return None
"""


def test_a_complete_valid_file_has_no_errors() -> None:
    assert errors_of(VALID) == {}


@pytest.mark.parametrize("when", [3, 2.5, -1, "> 5", "<= 2", ">=0.5", " < 10 "])
def test_when_accepts_numbers_and_comparisons(when: object) -> None:
    text = f"jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n    when: {when!r}\n" \
           "    action: {name: terminate}\n"
    assert errors_of(text) == {}


@pytest.mark.parametrize("when", ["=> 3", "> five", "<>", "", "true", "[1]", "== 4", "!= 1", "7"])
def test_when_rejects_other_strings(when: str) -> None:
    text = f"jobs: []\nrules:\n  - trigger: metric\n    name: count.a.success\n    when: {when!r}\n" \
           "    action: {name: terminate}\n"
    assert list(errors_of(text)) == [f"{BASE}.rules[0].when"]


def test_invalid_yaml_reports_line_and_column() -> None:
    errors = errors_of("jobs: [\nrules: x: y\n")
    assert list(errors) == [BASE]
    assert errors[BASE].startswith("is not valid YAML (line 2")


def test_document_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == {BASE: "must be a YAML mapping with jobs and rules, got array"}


def test_jobs_and_rules_are_required_and_unknown_top_level_keys_rejected() -> None:
    errors = errors_of("logging: {debug: false}\nrule: []\n")
    assert set(errors) == {f"{BASE}.jobs", f"{BASE}.rules", f"{BASE}.rule"}
    assert "unknown field" in errors[f"{BASE}.rule"]


def test_logging_fields() -> None:
    errors = errors_of("logging: {debug: 'no', heartbeat: -2, colour: red}\njobs: []\nrules: []\n")
    assert set(errors) == {f"{BASE}.logging.debug", f"{BASE}.logging.heartbeat", f"{BASE}.logging.colour"}


def test_job_fields() -> None:
    errors = errors_of("""
        jobs:
          - name: a
            command: run
            count: 0
            nodes: 1.5
            tasks: true
            duration: -1
            gpus: 1
          - command: run
          - name: a
            command: ""
        rules: []
        """)
    assert errors == {
        f"{BASE}.jobs[0].count": "must be a positive integer, got 0",
        f"{BASE}.jobs[0].nodes": "must be a positive integer, got 1.5",
        f"{BASE}.jobs[0].tasks": "must be a positive integer, got True",
        f"{BASE}.jobs[0].duration": "must be a number of seconds >= 0, got -1",
        f"{BASE}.jobs[0].gpus":
            "unknown field (allowed: name, command, workdir, count, nodes, tasks, duration)",
        f"{BASE}.jobs[1].name": "required field is missing",
        f"{BASE}.jobs[2].command": "must be a non-empty string, got ''",
        f"{BASE}.jobs[2].name": "duplicate job name 'a'",
    }


def test_rule_triggers() -> None:
    errors = errors_of("""
        jobs: []
        rules:
          - action: {name: terminate}
          - trigger: Job-Finish
            action: {name: terminate}
          - trigger: interval
            action: {name: terminate}
          - trigger: metric
            action: {name: terminate}
          - trigger: job-finish
            action: {name: terminate}
          - trigger: metric
            name: total.a
            action: {name: terminate}
        """)
    # rules[4]: a job-<event> rule without a name fires for every job (ensemble-python allows it)
    assert set(errors) == {f"{BASE}.rules[0].trigger", f"{BASE}.rules[1].trigger", f"{BASE}.rules[2].trigger",
                           f"{BASE}.rules[3].name", f"{BASE}.rules[5].name"}
    assert "metric name" in errors[f"{BASE}.rules[3].name"]
    assert "must start with one of count, mean" in errors[f"{BASE}.rules[5].name"]


def test_actions() -> None:
    errors = errors_of("""
        jobs:
          - {name: a, command: run}
        rules:
          - trigger: start
          - trigger: start
            action: {name: explode}
          - trigger: start
            action: {name: submit}
          - trigger: start
            action: {name: submit, label: b}
          - trigger: start
            action: {name: grow, value: 0, repetitions: -1, backoff: 1.5, when: 1}
          - trigger: start
            action: {name: submit, label: a, value: -3}
          - trigger: start
            action: submit
        """)
    assert errors == {
        f"{BASE}.rules[0].action": "required field is missing",
        f"{BASE}.rules[1].action.name":
            "must be one of submit, custom, terminate, grow, shrink, got 'explode'",
        f"{BASE}.rules[2].action.label": "required for submit: the name of the job to submit",
        f"{BASE}.rules[3].action.label": "names no defined job: 'b' (jobs: a)",
        f"{BASE}.rules[4].action.value": "must be a positive integer (nodes to grow or shrink by), got 0",
        f"{BASE}.rules[4].action.repetitions": "must be an integer >= 0, got -1",
        f"{BASE}.rules[4].action.backoff": "must be an integer >= 0, got 1.5",
        f"{BASE}.rules[4].action.when": "unknown field (allowed: name, label, value, repetitions, backoff)",
        f"{BASE}.rules[5].action.value": "must be a positive number, got -3",
        f"{BASE}.rules[6].action": "must be a mapping with a name, got string",
    }


def test_custom_actions_need_a_defined_function() -> None:
    rule = "jobs: []\nrules:\n  - trigger: start\n    action: {name: custom, label: go}\n"
    assert "needs a top-level custom: block" in errors_of(rule)[f"{BASE}.rules[0].action.label"]
    other = errors_of(rule + "custom: |\n  def stop():\n      pass\n")
    assert other == {f"{BASE}.rules[0].action.label": "names no function defined in custom: 'go'"}
    broken = errors_of(rule + "custom: |\n  def go(:\n")
    assert list(broken) == [f"{BASE}.custom"]
    assert broken[f"{BASE}.custom"].startswith("is not valid Python (line 1)")


def test_remembered_checks_are_bounded_by_bytes_and_a_repeat_is_not_parsed_again(monkeypatch) -> None:
    from api.v1alpha1 import ensemble_yaml

    parsed: list[str] = []
    document = ensemble_yaml._Checker.document
    monkeypatch.setattr(ensemble_yaml._Checker, "document",
                        lambda self, text: (parsed.append(text), document(self, text))[1])
    monkeypatch.setattr(ensemble_yaml._CHECKED, "max_bytes", 300_000)   # the real bound is 8 MiB
    padding = "#" + "x" * 20_000 + "\n"
    rules = "rules: [{trigger: start, action: {name: submit, label: j}}]\n"
    texts = [f"{padding}jobs: [{{name: j, command: sleep {i}}}]\n{rules}" for i in range(40)]   # 800 KB in all
    for text in texts:
        assert check_ensemble_yaml(text, BASE) == []
        assert ensemble_yaml._CHECKED.bytes <= 300_000
    parsed.clear()
    check_ensemble_yaml(texts[-1], BASE)
    assert parsed == []                                   # the newest is still remembered
    huge = padding * 3 + "jobs: [{name: j, command: sleep 1}]\n" + rules   # over 1/8 of the bound: never kept
    before = ensemble_yaml._CHECKED.bytes
    assert check_ensemble_yaml(huge, BASE) == [] and ensemble_yaml._CHECKED.bytes == before


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
