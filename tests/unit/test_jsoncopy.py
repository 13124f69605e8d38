"""copy_json: a deep copy of JSON data, sharing nothing mutable with the original."""
from __future__ import annotations

from dataclasses import dataclass, field

from api.v1alpha1.jsoncopy import copy_json


def test_the_copy_is_equal_and_shares_no_dict_or_list() -> None:
    inner = {"image": "app", "volumes": {"a": {"path": "/x"}}}
    original = {"spec": {"containers": [inner, inner], "size": 2, "ratio": 0.5, "on": True, "none": None}}
    copied = copy_json(original)
    assert copied == original
    copied["spec"]["containers"][0]["volumes"]["a"]["path"] = "/changed"
    copied["spec"]["containers"][1]["image"] = "other"
    assert original["spec"]["containers"][0] == {"image": "app", "volumes": {"a": {"path": "/x"}}}
    assert copied["spec"]["containers"][0] is not copied["spec"]["containers"][1]


def test_scalars_are_returned_as_they_are() -> None:
    for value in ("text", 3, 2.5, False, None):
        assert copy_json(value) is value


@dataclass
class Box:
    items: list = field(default_factory=list)


def test_what_is_not_json_is_deep_copied_all_the_same() -> None:
    original = {"box": Box([{"a": 1}]), "pair": ({"b": 2},)}
    copied = copy_json(original)
    assert copied == original
    copied["box"].items[0]["a"] = 9
    copied["pair"][0]["b"] = 9
    assert original == {"box": Box([{"a": 1}]), "pair": ({"b": 2},)}
