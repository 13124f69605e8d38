"""Registry and option parsing shared by all algorithms."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from controller.algorithms import (
    Action,
    MemberSample,
    MemberView,
    OptionError,
    UnknownAlgorithmError,
    algorithm_names,
    get_algorithm,
    parse_options,
    register_algorithm,
)
from controller.algorithms import registry
from controller.reconcilers.algorithm import algorithm_errors


def test_builtin_algorithms() -> None:
    assert algorithm_names() == ["refill", "scale", "terminate"]
    assert all(get_algorithm(name).name == name for name in algorithm_names())


def test_unknown_algorithm_names_the_field_and_choices() -> None:
    with pytest.raises(UnknownAlgorithmError, match=r"spec.algorithm.name: unknown algorithm 'autoscale' \(known: refill, scale, terminate\)"):
        get_algorithm("autoscale")


class Always:
    name = "always"

    def parse_options(self, options: Mapping[str, object]) -> object:
        return dict(options)

    def decide(self, history: Sequence[MemberSample], member: MemberView, options: Mapping[str, object],
               now: float) -> list[Action]:
        return [Action("grow", member.name, 1, reason="always")]


def test_register_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_ALGORITHMS", dict(registry._ALGORITHMS))
    register_algorithm(Always())
    assert get_algorithm("always").decide([], MemberView("m", 1, 1, 2), {}, 0.0)[0].kind == "grow"
    with pytest.raises(ValueError, match="'always' is already registered"):
        register_algorithm(Always())


@pytest.mark.parametrize(
    ("name", "options", "attribute", "expected"),
    [
        ("scale", {}, "wait_seconds", 60.0),
        ("scale", {"waitSeconds": "30"}, "wait_seconds", 30.0),
        ("scale", {"waitSeconds": 12}, "wait_seconds", 12.0),
        ("scale", {"idlePolls": "4"}, "idle_polls", 4),
        ("scale", {"growStep": 2.0}, "grow_step", 2),
        ("terminate", {"deleteMiniCluster": True}, "delete_minicluster", True),
        ("terminate", {"deleteMiniCluster": "False"}, "delete_minicluster", False),
        ("refill", {"group": "lammps"}, "count", 1),
        ("refill", {"group": "lammps", "maxRefills": "0"}, "max_refills", 0),
    ],
)
def test_parse_options(name: str, options: dict, attribute: str, expected: object) -> None:
    assert getattr(parse_options(name, options), attribute) == expected


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("scale", {"waitSecs": 3}, "algorithm 'scale': option 'waitSecs': unknown option (known: cooldownSeconds, growStep, idlePolls, shrinkStep, stabilizationSeconds, waitSeconds)"),
        ("scale", {"waitSeconds": "soon"}, "algorithm 'scale': option 'waitSeconds': expected a number, got 'soon'"),
        ("scale", {"waitSeconds": -1}, "algorithm 'scale': option 'waitSeconds': must be >= 0, got -1.0"),
        ("scale", {"idlePolls": 1.5}, "algorithm 'scale': option 'idlePolls': expected an integer, got 1.5"),
        ("scale", {"idlePolls": True}, "algorithm 'scale': option 'idlePolls': expected an integer, got True"),
        ("scale", {"growStep": "0"}, "algorithm 'scale': option 'growStep': must be >= 1, got 0"),
        ("terminate", {"deleteMiniCluster": "yes"}, "algorithm 'terminate': option 'deleteMiniCluster': expected true or false, got 'yes'"),
        ("refill", {}, "algorithm 'refill': option 'group': is required"),
        ("refill", {"group": ""}, "algorithm 'refill': option 'group': expected a non-empty string, got ''"),
        ("refill", ["group"], "algorithm 'refill': option 'options': expected a map, got list"),
    ],
)
def test_option_errors_name_the_option(name: str, options: object, message: str) -> None:
    with pytest.raises(OptionError) as raised:
        parse_options(name, options)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_decide_rejects_bad_options() -> None:
    with pytest.raises(OptionError, match="option 'confirmPolls'"):
        get_algorithm("terminate").decide([], MemberView("m", 1, 1, 1), {"confirmPolls": 0}, 0.0)


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [(("grow",), 5.0), (("grow", "shrink"), 9.0), (("terminate",), None)],
)
def test_member_view_last_action(kinds: tuple, expected: float | None) -> None:
    member = MemberView("m", 2, 1, 4, last_actions={"grow": 5.0, "shrink": 9.0})
    assert member.last_action(*kinds) == expected


@pytest.mark.parametrize(("size", "expected"), [(0, 1), (3, 3), (9, 4)])
def test_member_view_clamp(size: int, expected: int) -> None:
    assert MemberView("m", 2, 1, 4).clamp(size) == expected


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
