"""controller/scaling/minicluster_sizes.py: the sizes the real Flux Operator refuses (seen running it:
0, above spec.maxSize, below spec.minSize, above status.maximumSize) and the size it runs."""
from __future__ import annotations

import pytest

from controller.scaling.minicluster_sizes import accepted_size, maximum_size, refusal


def mc(size: int, *, min_size: int | None = None, max_size: int | None = None,
       status: dict | None = None) -> dict:
    spec = {"size": size, **({"minSize": min_size} if min_size is not None else {}),
            **({"maxSize": max_size} if max_size is not None else {})}
    return {"metadata": {"name": "m"}, "spec": spec, **({"status": status} if status is not None else {})}


# As the Flux Operator writes it right after creating the Job: size 0 until a resize.
CREATED = {"size": 0, "maximumSize": 4, "selector": "hpa-selector=m", "jobid": ""}


@pytest.mark.parametrize("minicluster, size, reason", [
    (mc(2, max_size=4, status=CREATED), 0, "size 0 < 1"),
    (mc(2, max_size=4, status=CREATED), 5, "size 5 > spec.maxSize 4"),
    (mc(2, min_size=2, max_size=4, status=CREATED), 1, "size 1 < spec.minSize 2"),
    # maxSize raised after creation: the Flux Operator keeps its first maximumSize.
    (mc(2, max_size=8, status=CREATED), 6, "size 6 > status.maximumSize 4"),
])
def test_sizes_the_flux_operator_refuses_are_named(minicluster: dict, size: int, reason: str) -> None:
    assert refusal(minicluster, size) == reason


@pytest.mark.parametrize("size", [1, 3, 4])
def test_sizes_within_every_bound_are_accepted(size: int) -> None:
    assert refusal(mc(2, max_size=8, status=CREATED), size) is None


def test_without_a_recorded_maximum_only_the_spec_bounds_apply() -> None:
    assert maximum_size(mc(2, max_size=8)) is None
    assert maximum_size(mc(2, max_size=8, status={**CREATED, "maximumSize": 0})) is None
    assert refusal(mc(2, max_size=8), 8) is None


def test_the_accepted_size_is_the_spec_size_when_the_flux_operator_takes_it() -> None:
    assert accepted_size(mc(3, max_size=4, status=CREATED), fallback=2) == 3


def test_a_refused_size_falls_back_to_the_size_last_given_to_the_job() -> None:
    assert accepted_size(mc(9, max_size=4, status={**CREATED, "size": 3}), fallback=2) == 3
    assert accepted_size(mc(0, max_size=4, status={**CREATED, "size": 3}), fallback=2) == 3


def test_a_refused_size_before_any_resize_falls_back_to_the_creation_size() -> None:
    assert accepted_size(mc(9, max_size=4, status=CREATED), fallback=2) == 2
