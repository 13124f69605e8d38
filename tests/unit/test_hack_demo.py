"""hack/demo.py (`make run`): its defaults are the ones the README documents."""
from __future__ import annotations

import json

import demo


def test_demo_runs_at_the_documented_default_speed() -> None:
    # README: "`--speed`: simulated Flux seconds per wall second, default 5".
    args = demo.parse_args([])
    assert args.speed == 5.0
    assert args.timeout == 600
    assert args.example.endswith("examples/hello-world/ensemble.yaml")


INVALID = {
    "metadata": {"name": "hello-world"},
    "status": {"phase": "Invalid", "conditions": [
        {"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "x"},
        {"type": "InvalidSpec", "status": "True", "reason": "InvalidSpec",
         "message": "spec.members[0].ensemble.rules[0].trigger: must be one of start, metric"}]},
}


class FakeCluster:
    def __init__(self, ensemble: dict) -> None:
        self.ensemble, self.gets = ensemble, 0

    def kubectl(self, *args: str, check: bool = True) -> str:
        if args[:2] == ("get", "ensemble"):
            self.gets += 1
            return json.dumps(self.ensemble)
        return json.dumps({"items": []})


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_an_invalid_ensemble_ends_the_watch_with_its_reason(monkeypatch, capsys) -> None:
    monkeypatch.setattr(demo, "time", FakeTime())
    cluster = FakeCluster(INVALID)
    assert demo.watch(cluster, "hello-world", timeout=600) is False
    assert cluster.gets == 1
    out = capsys.readouterr().out
    assert "phase Invalid" in out and "spec.members[0].ensemble.rules[0].trigger: must be one of" in out


def test_a_completed_ensemble_still_ends_the_watch_as_a_success(monkeypatch) -> None:
    monkeypatch.setattr(demo, "time", FakeTime())
    done = {"metadata": {"name": "hello-world"}, "status": {"phase": "Completed"}}
    assert demo.watch(FakeCluster(done), "hello-world", timeout=600) is True
