"""validate(): upstream examples and ours pass; schema and CEL-equivalent rules fail with field paths."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from api.v1alpha1 import Ensemble, validate
from api.v1alpha1.validation import validated
from api.v1alpha1.crd import crd
from api.v1alpha1.names import MAX_ENSEMBLE_NAME_LENGTH
from controller.kube.resources import ENSEMBLES
from controller.reconcilers.desired import DesiredSettings, desired_objects
from controller.reconcilers.desired.meta import grpc_service_name
from controller.runtime.reconcile import Request, Result
from tests.compat import UPSTREAM_EXAMPLES
from tests.unit.fakes.reconciler import conditions, make_ensemble, member, stored_ensemble

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_FILES = sorted(UPSTREAM_EXAMPLES.glob("*.yaml"))
OUR_EXAMPLES = sorted((ROOT / "examples").glob("*/ensemble.yaml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_example_sets_are_present() -> None:
    assert [p.name for p in UPSTREAM_FILES] == ["grow-shrink.yaml", "hello-world.yaml"]
    assert [p.parent.name for p in OUR_EXAMPLES] == ["algorithm-scale", "grow-shrink", "hello-world"]


@pytest.mark.parametrize("path", UPSTREAM_FILES + OUR_EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_are_valid(path: Path) -> None:
    obj = load(path)
    assert validate(obj) == []
    assert Ensemble.from_dict(obj).spec.members


@pytest.mark.parametrize("path", UPSTREAM_FILES + OUR_EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_validated_decodes_a_valid_ensemble_as_from_dict_does(path: Path) -> None:
    obj = load(path)
    errors, decoded = validated(obj)
    assert errors == [] and decoded == Ensemble.from_dict(obj)


def test_validated_decodes_nothing_when_anything_is_wrong() -> None:
    bad_yaml = {**valid(), "spec": {**valid()["spec"], "members": [{**valid()["spec"]["members"][0], "ensemble": "jobs: ["}]}}
    for obj in (bad_yaml, {**valid(), "apiVersion": "v1"}, {**valid(), "spec": {"members": []}}, []):
        errors, decoded = validated(obj)
        assert errors and decoded is None, obj


def valid() -> dict:
    return load(OUR_EXAMPLES[1])


def paths(obj: dict) -> dict[str, str]:
    return {error.path: error.message for error in validate(obj)}


def test_not_an_object() -> None:
    assert [str(e) for e in validate(["x"])] == ["an Ensemble must be an object, got list"]


def test_wrong_api_version_and_kind() -> None:
    obj = valid()
    obj.update(apiVersion="ensemble.flux-framework.org/v1", kind="MiniCluster")
    assert set(paths(obj)) == {"apiVersion", "kind"}


def test_members_required_and_non_empty() -> None:
    obj = valid()
    obj["spec"]["members"] = []
    assert paths(obj) == {"spec.members": "must have at least 1 item(s), got 0"}
    del obj["spec"]["members"]
    assert paths(obj) == {"spec.members": "required field is missing"}


def test_member_needs_ensemble_minicluster_and_container_image() -> None:
    obj = valid()
    member = obj["spec"]["members"][0]
    del member["ensemble"]
    member["minicluster"]["spec"]["containers"] = [{"workingDir": "/"}, {"image": ""}]
    assert paths(obj) == {
        "spec.members[0].ensemble": "required field is missing",
        "spec.members[0].minicluster.spec.containers[0].image": "required field is missing",
        "spec.members[0].minicluster.spec.containers[1].image": "must not be empty",
    }
    member["minicluster"]["spec"]["containers"] = []
    assert paths(obj)["spec.members[0].minicluster.spec.containers"] == "must have at least 1 item(s), got 0"
    del member["minicluster"]
    assert paths(obj)["spec.members[0].minicluster"] == "required field is missing"


@pytest.mark.parametrize("sizes, expected", [
    ({"size": 2, "minSize": 5, "maxSize": 4}, {
        "spec.members[0].minicluster.spec.minSize": "minSize (5) must not exceed maxSize (4)",
        "spec.members[0].minicluster.spec.size": "size (2) must be at least minSize (5)"}),
    ({"size": 6, "minSize": 1, "maxSize": 4}, {
        "spec.members[0].minicluster.spec.size": "size (6) must not exceed maxSize (4)"}),
    ({"size": 1, "minSize": 2}, {
        "spec.members[0].minicluster.spec.size": "size (1) must be at least minSize (2)"}),
    ({"size": 0, "minSize": 2, "maxSize": 3}, {
        "spec.members[0].minicluster.spec.size": "size (1) must be at least minSize (2)"}),
    ({"size": -1}, {"spec.members[0].minicluster.spec.size": "must be at least 0, got -1"}),
    ({"size": 3, "maxSize": 0}, {}),
    ({"size": 3, "minSize": 0, "maxSize": 3}, {}),
])
def test_size_rules_match_the_crd(sizes: dict, expected: dict) -> None:
    obj = valid()
    spec = obj["spec"]["members"][0]["minicluster"]["spec"]
    for key in ("size", "minSize", "maxSize"):
        spec.pop(key, None)
    spec.update(sizes)
    assert paths(obj) == expected


@pytest.mark.parametrize("port, message", [
    ("0", "port must be between 1 and 65535, got '0'"),
    ("70000", "port must be between 1 and 65535, got '70000'"),
    ("http", "must match ^[0-9]{1,5}$, got 'http'"),
    (50051, "must be a string, got integer 50051"),
])
def test_sidecar_port(port: object, message: str) -> None:
    obj = valid()
    obj["spec"]["sidecar"]["port"] = port
    assert paths(obj) == {"spec.sidecar.port": message}


def test_new_fields_are_checked() -> None:
    obj = valid()
    obj["spec"].update(heartbeat=0, budget=0, algorithm={"options": []})
    assert paths(obj) == {
        "spec.heartbeat": "must be at least 1, got 0",
        "spec.budget": "must be at least 1, got 0",
        "spec.algorithm.name": "required field is missing",
        "spec.algorithm.options": "must be an object, got array",
    }


def test_ensemble_yaml_errors_are_nested_under_the_member() -> None:
    obj = valid()
    members = obj["spec"]["members"]
    members.append(copy.deepcopy(members[0]))
    members[1]["ensemble"] = members[1]["ensemble"].replace('when: "> 10"', 'when: "about 10"')
    assert list(paths(obj)) == ["spec.members[1].ensemble.rules[1].when"]


def test_an_ensemble_yaml_nested_past_the_parsers_stack_is_refused_as_over_our_limit() -> None:
    obj = valid()
    obj["spec"]["members"].append(copy.deepcopy(obj["spec"]["members"][0]))
    obj["spec"]["members"][1]["ensemble"] = "jobs: " + "[" * 1000 + "]" * 1000   # past the YAML parser's stack
    errors = validate(obj)
    assert [str(e) for e in errors] == ["spec.members[1].ensemble: is nested deeper than 32 levels: "
                                        "this operator's limit"]


def test_a_check_that_raises_is_an_error_naming_the_member_and_the_cause(monkeypatch) -> None:
    from api.v1alpha1 import validation

    def exhausted(text: str, path: str) -> list:
        raise MemoryError("x" * 1000)
    monkeypatch.setattr(validation, "check_ensemble_yaml", exhausted)
    obj = valid()
    errors = validate(obj)
    assert [e.path for e in errors] == ["spec.members[0]"]
    assert errors[0].message.startswith("could not be validated: MemoryError: ")
    assert len(errors[0].message) < 300


def test_a_spec_nested_past_the_stack_is_an_error_not_an_exception() -> None:
    obj = valid()
    options: dict = {}
    for _ in range(1000):
        options = {"a": options}
    obj["spec"]["algorithm"] = {"name": "scale", "options": options}
    (error,) = validate(obj)
    assert error.path == "spec" and error.message.startswith("could not be validated: RecursionError")


def test_unbounded_fields_are_bounded_naming_the_field() -> None:
    many = valid()
    many["spec"]["members"] = [copy.deepcopy(many["spec"]["members"][0]) for _ in range(101)]
    assert ("spec.members", "must have at most 100 item(s), got 101") in {(e.path, e.message) for e in validate(many)}
    obj = valid()
    obj["spec"]["algorithm"] = {"name": "s" * 64, "options": {f"k{i}": 1 for i in range(65)}}
    obj["spec"]["members"][0]["ensemble"] = "#" * 65537
    obj["spec"]["members"][0]["branch"] = "b" * 256
    errors = {(e.path, e.message) for e in validate(obj)}
    assert {("spec.algorithm.name", "must be at most 63 characters long"),
            ("spec.algorithm.options", "must have at most 64 properties, got 65"),
            ("spec.members[0].ensemble", "must be at most 65536 characters long"),
            ("spec.members[0].branch", "must be at most 255 characters long")} <= errors


def test_unknown_fields_are_not_errors() -> None:
    obj = valid()
    obj["spec"]["sidecar"]["pullAlways"] = True
    obj["spec"]["members"][0]["minicluster"]["spec"]["interactive"] = True
    obj["spec"]["futureField"] = 1
    assert validate(obj) == []


def test_status_is_checked_too() -> None:
    obj = valid()
    obj["status"] = {"conditions": [{"type": "Ready", "status": "Maybe"},
                                    {"type": "Ready", "status": "True"}]}
    assert paths(obj) == {
        "status.conditions[0].status": "must be one of True, False, Unknown, got 'Maybe'"}
    obj["status"]["conditions"][0]["status"] = "False"
    assert paths(obj) == {"status.conditions[1]": "duplicate entry with type ('Ready',)"}


def named(name: str) -> dict:
    return make_ensemble(name=name)


def test_the_longest_valid_name_makes_a_63_character_service_name() -> None:
    name = "e" * MAX_ENSEMBLE_NAME_LENGTH
    assert validate(named(name)) == []
    assert len(grpc_service_name(named(name))) == 63


def test_a_name_too_long_for_the_service_is_a_field_error() -> None:
    errors = validate(named("e" * (MAX_ENSEMBLE_NAME_LENGTH + 1)))
    assert [e.path for e in errors] == ["metadata.name"]
    assert "at most 58 characters" in errors[0].message and "-grpc" in errors[0].message


def test_a_dotted_name_is_a_field_error() -> None:
    errors = validate(named("my.ensemble"))
    assert [e.path for e in errors] == ["metadata.name"]
    assert "dots" in errors[0].message


def test_objects_without_a_name_are_judged_on_their_spec_only() -> None:
    obj = named("x")
    del obj["metadata"]["name"]
    assert validate(obj) == []


def test_every_object_name_the_operator_builds_fits_a_dns_label() -> None:
    ensemble = named("e" * MAX_ENSEMBLE_NAME_LENGTH)
    ensemble["spec"]["members"] = ensemble["spec"]["members"] * 10
    typed = Ensemble.from_dict(ensemble).to_dict()
    settings = DesiredSettings(operator_image="op:dev", member_status_port=7000)
    for obj in desired_objects(typed, settings):
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


def test_a_name_too_long_gets_invalid_spec_and_a_warning_instead_of_failing_applies(env) -> None:
    api, recorder, _, _, reconciler = env
    name = "e" * (MAX_ENSEMBLE_NAME_LENGTH + 1)
    api.put(ENSEMBLES, make_ensemble(name=name))
    assert reconciler.reconcile(Request("ns", name)) == Result()
    assert api.kinds_written() == [("Ensemble", name)]   # no Service the API server would refuse
    assert stored_ensemble(api, name)["status"]["phase"] == "Invalid"
    assert "metadata.name" in conditions(api, name)["InvalidSpec"]["message"]
    (warning,) = recorder.events
    assert warning[:2] == ("Warning", "InvalidSpec") and "metadata.name" in warning[2]


def test_the_crd_refuses_such_names_at_apply() -> None:
    rules = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == [
        f"oldSelf.hasValue() || (self.metadata.name.size() <= {MAX_ENSEMBLE_NAME_LENGTH})",
        "oldSelf.hasValue() || (!self.metadata.name.contains('.'))"]
    assert all(r["optionalOldSelf"] for r in rules)   # at create only: stored objects stay writable
    assert all(r["message"].startswith("metadata.name") for r in rules)


def _paths(errors) -> list[str]:
    return [error.path for error in errors]


def test_ensemble_python_is_a_release_or_latest_and_not_with_a_branch() -> None:
    from api.v1alpha1 import spec_warnings
    obj = make_ensemble()
    member = obj["spec"]["members"][0]
    for version in ("0.0.16", "0.0.15", "latest", "1.0rc1"):
        member["ensemblePython"] = version
        assert validate(obj) == [], version
    for version in ("0.0.16; rm -rf /", "--upgrade", "Latest"):
        member["ensemblePython"] = version
        assert _paths(validate(obj)) == ["spec.members[0].ensemblePython"], version
    member["ensemblePython"], member["branch"] = "0.0.16", "main"
    (error,) = validate(obj)
    assert error.path == "spec.members[0].ensemblePython" and "not both" in error.message
    del member["ensemblePython"]
    assert validate(obj) == [] and _paths(spec_warnings(obj)) == ["spec.members[0].branch"]


@pytest.mark.parametrize("version, warned", [(None, False), ("0.0.16", False), ("0.0.15", True), ("latest", True)])
def test_a_release_whose_rules_are_not_known_is_checked_with_0016s_and_says_so(version, warned) -> None:
    from api.v1alpha1 import spec_warnings
    obj = make_ensemble([member()])
    if version:
        obj["spec"]["members"][0]["ensemblePython"] = version
    warnings = spec_warnings(obj)
    assert _paths(warnings) == (["spec.members[0].ensemblePython"] if warned else [])
    if warned:
        assert "checked against ensemble-python 0.0.16's" in warnings[0].message


def test_a_budget_in_upstream_service_mode_is_a_warning_not_an_error() -> None:
    from api.v1alpha1 import spec_warnings
    obj = make_ensemble([member()])
    obj["spec"]["budget"] = 4
    assert spec_warnings(obj) == []
    obj["spec"]["sidecar"] = {"image": "registry.example/me/ensemble-python:1"}
    assert validate(obj) == [] and _paths(spec_warnings(obj)) == ["spec.budget"]


def test_a_refill_group_a_member_does_not_define_is_a_warning_naming_the_member() -> None:
    from api.v1alpha1 import spec_warnings
    obj = make_ensemble([member(), member()])
    obj["spec"]["members"][1]["ensemble"] = obj["spec"]["members"][1]["ensemble"].replace("name: a", "name: b")
    obj["spec"]["algorithm"] = {"name": "refill", "options": {"group": "a"}}
    (warning,) = [w for w in spec_warnings(obj) if w.path.startswith("spec.algorithm")]
    assert str(warning) == ("spec.algorithm.options.group: 'a' is no job group of spec.members[1]'s ensemble.yaml: "
                            "refill's submits to those members fail")
    obj["spec"]["members"][1]["ensemble"] = obj["spec"]["members"][0]["ensemble"]
    assert spec_warnings(obj) == []
