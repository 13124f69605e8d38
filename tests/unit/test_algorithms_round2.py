"""Second review of controller/algorithms: option values that parse but cannot mean anything."""
from __future__ import annotations

import pytest

from controller.algorithms import OptionError, parse_options
from controller.reconcilers.algorithm import algorithm_errors


@pytest.mark.parametrize("value", ["nan", "NaN", float("nan"), "inf", "-inf", float("inf")])
def test_a_number_option_must_be_finite(value: object) -> None:
    # "nan" parsed (float("nan") < 0 is False, so the minimum passed): a NaN window or
    # cooldown makes every comparison false, so the algorithm silently never acted.
    with pytest.raises(OptionError, match="'stabilizationSeconds': expected a finite number"):
        parse_options("scale", {"stabilizationSeconds": value})


def test_finite_numbers_still_parse() -> None:
    assert parse_options("scale", {"waitSeconds": "1.5e1"}).wait_seconds == 15.0  # type: ignore[attr-defined]


def _ensemble(algorithm: dict, heartbeat: int | None = None) -> dict:
    spec: dict = {"members": [{}], "algorithm": algorithm}
    if heartbeat is not None:
        spec["heartbeat"] = heartbeat
    return {"spec": spec}


@pytest.mark.parametrize("algorithm,heartbeat", [
    ({"name": "terminate", "options": {"confirmPolls": 600}}, None),
    ({"name": "scale", "options": {"stabilizationSeconds": 6000}}, 10),
    ({"name": "refill", "options": {"group": "a", "emptyPolls": "503"}}, 1),
])
def test_a_window_longer_than_the_kept_history_is_an_invalid_spec(algorithm: dict, heartbeat: int | None) -> None:
    # A member keeps at most 512 polls: confirmPolls 600 never saw its run (never terminated),
    # a 6000 s stabilization at a 10 s heartbeat was silently cut to 85 minutes.
    errors = algorithm_errors(_ensemble(algorithm, heartbeat))
    assert [error.path for error in errors] == ["spec.algorithm.options"]
    assert "more than the 512 kept per member" in errors[0].message


@pytest.mark.parametrize("algorithm,heartbeat", [
    ({"name": "terminate", "options": {"confirmPolls": 500}}, None),
    ({"name": "scale", "options": {"stabilizationSeconds": 6000}}, 60),
    ({"name": "refill", "options": {"group": "a"}}, 1),
])
def test_windows_within_the_kept_history_are_valid(algorithm: dict, heartbeat: int | None) -> None:
    assert algorithm_errors(_ensemble(algorithm, heartbeat)) == []
