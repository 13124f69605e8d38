"""Upstream grow/shrink request semantics, as a table (pure parsing and sizing)."""
from __future__ import annotations

import json

import pytest

from controller.scaling.requests import (
    ScaleRequestError, SizeBounds, clamp, parse_scale_request, size_bounds,
)

MEMBER_PAYLOAD = {"version": "v1alpha2", "group": "flux-framework.org"}


@pytest.mark.parametrize("action, extra, delta", [
    ("grow", {}, 1),
    ("grow", {"grow": None}, 1),
    ("grow", {"grow": 3}, 3),
    ("shrink", {}, -1),
    ("shrink", {"shrink": 2}, -2),
    ("shrink", {"shrink": -2}, -2),
])
def test_delta_follows_upstream_defaults_and_sign(action: str, extra: dict, delta: int) -> None:
    request = parse_scale_request("miniclusters", "mc", action, json.dumps({**MEMBER_PAYLOAD, **extra}))
    assert (request.action, request.name, request.delta) == (action, "mc", delta)


def test_empty_payload_means_default_step() -> None:
    assert parse_scale_request("miniclusters", "mc", "grow", "").delta == 1


@pytest.mark.parametrize("member, action, payload, names", [
    ("miniclusters", "grow", '{"grow": 0}', "payload.grow"),
    ("miniclusters", "shrink", '{"shrink": 0}', "payload.shrink"),
    ("miniclusters", "grow", '{"grow": -2}', "payload.grow: must be > 0"),
    ("miniclusters", "grow", '{"grow": "2"}', "payload.grow: expected an integer"),
    ("miniclusters", "grow", '{"grow": true}', "payload.grow: expected an integer"),
    ("miniclusters", "grow", "{not json", "payload: malformed JSON"),
    ("miniclusters", "grow", "[1]", "payload: expected a JSON object"),
    ("miniclusters", "grow", '{"group": "apps"}', "payload.group"),
    ("miniclusters", "grow", '{"version": "v1"}', "payload.version"),
    ("miniclusters", "restart", "{}", "action: unknown action 'restart'"),
    ("jobsets", "grow", "{}", "member: unsupported member type 'jobsets'"),
])
def test_bad_requests_name_the_field(member: str, action: str, payload: str, names: str) -> None:
    with pytest.raises(ScaleRequestError, match=names.replace(".", r"\.").replace("(", r"\(")):
        parse_scale_request(member, "mc", action, payload)


def test_empty_name_is_refused() -> None:
    with pytest.raises(ScaleRequestError, match="name"):
        parse_scale_request("miniclusters", "", "grow", "{}")


@pytest.mark.parametrize("spec, bounds", [
    ({"size": 3}, SizeBounds(1, 3)),
    ({"size": 3, "minSize": 2, "maxSize": 8}, SizeBounds(2, 8)),
    ({"maxSize": 4}, SizeBounds(1, 4)),
])
def test_bounds_default_like_upstream(spec: dict, bounds: SizeBounds) -> None:
    assert size_bounds({"metadata": {"name": "mc"}, "spec": spec}) == bounds


@pytest.mark.parametrize("spec, status, bounds", [
    ({"size": 2, "maxSize": 8}, {"maximumSize": 4, "size": 0}, SizeBounds(1, 4)),   # maxSize raised later
    ({"size": 2, "maxSize": 8}, {"maximumSize": 0, "size": 0}, SizeBounds(1, 8)),   # not recorded yet
    ({"size": 2, "maxSize": 3}, {"maximumSize": 4, "size": 0}, SizeBounds(1, 3)),
])
def test_the_maximum_is_capped_by_the_flux_operators_maximum_size(spec: dict, status: dict,
                                                                  bounds: SizeBounds) -> None:
    assert size_bounds({"metadata": {"name": "mc"}, "spec": spec, "status": status}) == bounds


@pytest.mark.parametrize("spec, message", [
    ({"size": 2, "minSize": 5, "maxSize": 3}, "spec.minSize 5 > spec.maxSize 3"),
    ({"size": 2, "maxSize": "9"}, "spec.maxSize is not an integer"),
    ({"size": "two"}, "spec.size is not an integer"),
])
def test_bad_minicluster_bounds_are_named(spec: dict, message: str) -> None:
    with pytest.raises(ScaleRequestError, match=f"MiniCluster mc: {message}"):
        size_bounds({"metadata": {"name": "mc"}, "spec": spec})


@pytest.mark.parametrize("size, expected", [(0, 2), (2, 2), (5, 5), (8, 8), (20, 8)])
def test_clamp_into_bounds(size: int, expected: int) -> None:
    assert clamp(size, SizeBounds(2, 8)) == expected
