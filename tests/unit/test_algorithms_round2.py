"""Second review of controller/algorithms: option values that parse but cannot mean anything."""
from __future__ import annotations

import pytest

from controller.algorithms import OptionError, parse_options


@pytest.mark.parametrize("value", ["nan", "NaN", float("nan"), "inf", "-inf", float("inf")])
def test_a_number_option_must_be_finite(value: object) -> None:
    # "nan" parsed (float("nan") < 0 is False, so the minimum passed): a NaN window or
    # cooldown makes every comparison false, so the algorithm silently never acted.
    with pytest.raises(OptionError, match="'stabilizationSeconds': expected a finite number"):
        parse_options("scale", {"stabilizationSeconds": value})


def test_finite_numbers_still_parse() -> None:
    assert parse_options("scale", {"waitSeconds": "1.5e1"}).wait_seconds == 15.0  # type: ignore[attr-defined]
