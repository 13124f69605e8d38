"""bench_reconcile_cpu's harness: the real reconciler over an instant writer whose answers the stores show."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_reconcile_cpu import build, run_pass  # noqa: E402


def test_a_new_ensemble_costs_its_seven_creates_the_status_and_one_event_and_the_next_reconcile_writes_nothing() -> None:
    harness = build(3)
    new = run_pass(harness)
    assert (new.writes_per_ensemble, new.events_per_ensemble) == (8, 1)
    for _ in range(2):  # the stores show every answer, so nothing differs
        steady = run_pass(harness)
        assert (steady.writes_per_ensemble, steady.events_per_ensemble) == (0, 0)
        assert steady.cpu_ms_per_ensemble > 0


def test_each_ensemble_gets_a_status_in_its_store() -> None:
    harness = build(2)
    run_pass(harness)
    for request in harness.requests:
        stored = harness.stored(request)
        assert stored["status"]["phase"] == "Pending"
        assert stored["status"]["observedGeneration"] == 1
