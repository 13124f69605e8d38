"""hack/demo.py (`make run`): its defaults are the ones the README documents."""
from __future__ import annotations

import demo


def test_demo_runs_at_the_documented_default_speed() -> None:
    # README: "`--speed`: simulated Flux seconds per wall second, default 5".
    args = demo.parse_args([])
    assert args.speed == 5.0
    assert args.timeout == 600
    assert args.example.endswith("examples/hello-world/ensemble.yaml")
