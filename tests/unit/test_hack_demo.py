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


class StoppedCluster:
    kubeconfig = "/state/data/kubeconfig"
    bin_dir = __import__("pathlib").Path("/cache/k8s/bin")


def test_the_demo_ends_with_next_steps_that_exist(tmp_path) -> None:
    from pathlib import Path

    from controller.cli import DELEGATED
    root = Path(demo.ROOT)
    steps = demo.next_steps(StoppedCluster(), tmp_path / "demo.log", tmp_path / "localenv")
    assert "export KUBECONFIG=/state/data/kubeconfig" in steps
    assert "/cache/k8s/bin/kubectl get ensembles,miniclusters,pods -n demo" in steps
    assert "make run EXAMPLE=examples/grow-shrink/ensemble.yaml" in steps
    assert (root / "examples" / "grow-shrink" / "ensemble.yaml").is_file()
    assert list((root / "tests" / "compat" / "upstream-examples").glob("*.yaml"))
    assert "ensemble-operator status -n demo --watch" in steps and "status" in DELEGATED
    assert "kubectl get ensembles -n demo -w" in steps
    assert f"this run's: {tmp_path / 'demo.log'}" in steps and str(tmp_path / "localenv") in steps
    assert steps.splitlines()[-1].strip() == "Stop everything:    make cluster-down"


def test_the_demo_logs_everything_to_its_file_and_only_warnings_to_the_terminal(tmp_path, capsys) -> None:
    import logging
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        demo.log_to_file(tmp_path / "demo.log")
        retries = logging.getLogger("controller.informers.reflector")
        retries.debug("ensembles: 429 TooManyRequests: storage is (re)initializing; retrying in 0.8s")
        retries.warning("ensembles: 403 Forbidden; retrying in 0.8s")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
    terminal = capsys.readouterr().err
    assert "403 Forbidden" in terminal and "storage is (re)initializing" not in terminal
    logged = (tmp_path / "demo.log").read_text()
    assert "DEBUG controller.informers.reflector ensembles: 429" in logged and "WARNING" in logged
