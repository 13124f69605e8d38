"""validate(): every problem with an Ensemble object, each with its field path.

It repeats what the CRD schema and its CEL rules check, because objects stored
before a rule existed (or written with validation off) reach the operator too,
and adds what the API server cannot check: each member's ensemble.yaml.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.v1alpha1.codec import checked
from api.v1alpha1.ensemble_yaml import (RULES_VERSION, check_ensemble_yaml, ensemble_yaml_warnings,
                                        load_ensemble_yaml)
from api.v1alpha1.errors import FieldError
from api.v1alpha1.names import ensemble_name_errors
from api.v1alpha1.service_mode import UPSTREAM, service_mode
from api.v1alpha1.types import API_VERSION, DEFAULT_ENSEMBLE_PYTHON, DEFAULT_MEMBER_SIZE, KIND, LATEST, Ensemble


def validate(obj: Any) -> list[FieldError]:
    """All field errors of an Ensemble object (a plain dict); empty when it is valid."""
    return validated(obj)[0]


def validated(obj: Any) -> tuple[list[FieldError], Ensemble | None]:
    """``validate(obj)`` and, when it found no error, the object decoded (``Ensemble.from_dict``'s
    result, from the same walk: a reconcile needs both)."""
    if not isinstance(obj, dict):
        return [FieldError("", f"an {KIND} must be an object, got {type(obj).__name__}")], None
    decoded: list[Ensemble | None] = [None]

    def schema() -> list[FieldError]:
        decoded[0], schema_errors = checked(Ensemble, obj)
        return schema_errors
    errors = _type_meta(obj) + _name(obj) + guarded("spec", schema)
    spec = obj.get("spec")
    members = spec.get("members") if isinstance(spec, dict) else None
    for index, member in enumerate(members if isinstance(members, list) else []):
        if isinstance(member, dict):
            path = f"spec.members[{index}]"
            errors += guarded(path, lambda: _member(member, path))
    sidecar = spec.get("sidecar") if isinstance(spec, dict) else None
    if isinstance(sidecar, dict):
        errors += _port(sidecar.get("port"), "spec.sidecar.port")
    return errors, (None if errors else decoded[0])


def spec_warnings(obj: Any) -> list[FieldError]:
    """What a valid Ensemble says that will not do what it seems (never a reason to refuse it):
    each member's ensemble.yaml as ensemble-python would run it."""
    spec = obj.get("spec") if isinstance(obj, dict) else None
    members = spec.get("members") if isinstance(spec, dict) else None
    warnings: list[FieldError] = []
    if isinstance(spec, dict) and spec.get("statusSidecar") is False and spec.get("algorithm"):
        warnings.append(FieldError("spec.algorithm", "does not run: it reads the members' status polls, and "
                                                     "spec.statusSidecar is false"))
    if isinstance(spec, dict) and spec.get("budget") and service_mode(spec.get("sidecar")) == UPSTREAM:
        warnings.append(FieldError("spec.budget", "is not enforced on members' grow requests in service mode "
                                                  "upstream (upstream's service grows within minSize..maxSize only); "
                                                  "the operator's scale algorithm still keeps it"))
    warnings += _refill_group_warnings(spec, members)
    for index, member in enumerate(members if isinstance(members, list) else []):
        if not isinstance(member, dict):
            continue
        warnings += _rules_version_warning(member, f"spec.members[{index}]")
        ensemble = member.get("ensemble")
        if isinstance(ensemble, str) and ensemble:
            warnings += ensemble_yaml_warnings(ensemble, f"spec.members[{index}].ensemble")
    return warnings


def guarded(path: str, run: Callable[[], list[FieldError]]) -> list[FieldError]:
    """``run()``'s errors, or one naming ``path`` and the cause when it raised: a tenant's input
    (an ensemble.yaml nested past the YAML parser's recursion limit, a rule that exhausts
    memory) must end as an InvalidSpec condition, not as a reconcile retried forever."""
    try:
        return run()
    except Exception as err:  # whatever the input made the checks raise
        return [FieldError(path, f"could not be validated: {type(err).__name__}: {str(err)[:200]}")]


def _type_meta(obj: dict) -> list[FieldError]:
    errors = []
    if "apiVersion" in obj and obj["apiVersion"] != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}, got {obj['apiVersion']!r}"))
    if "kind" in obj and obj["kind"] != KIND:
        errors.append(FieldError("kind", f"must be {KIND}, got {obj['kind']!r}"))
    return errors


def _name(obj: dict) -> list[FieldError]:
    """The CRD's name rules: an invalid name would fail every apply of a Service, unreported."""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return []
    return [FieldError("metadata.name", message) for message in ensemble_name_errors(name)]


def _member(member: dict, path: str) -> list[FieldError]:
    errors = []
    minicluster = member.get("minicluster")
    spec = minicluster.get("spec") if isinstance(minicluster, dict) else None
    if isinstance(spec, dict):
        errors += _sizes(spec, f"{path}.minicluster.spec")
    ensemble = member.get("ensemble")
    if isinstance(ensemble, str) and ensemble:
        errors += check_ensemble_yaml(ensemble, f"{path}.ensemble")
    if member.get("branch") and member.get("ensemblePython"):
        errors.append(FieldError(f"{path}.ensemblePython", "set either branch (install from git) or "
                                                           "ensemblePython (a PyPI release), not both"))
    return errors


def _refill_group_warnings(spec: Any, members: Any) -> list[FieldError]:
    """The refill algorithm submits a job group through each member's status sidecar, which knows
    only the groups of that member's ensemble.yaml: name the members that lack it."""
    algorithm = spec.get("algorithm") if isinstance(spec, dict) else None
    options = algorithm.get("options") if isinstance(algorithm, dict) else None
    refill = isinstance(algorithm, dict) and algorithm.get("name") == "refill"
    group = options.get("group") if refill and isinstance(options, dict) else None
    if not isinstance(group, str):
        return []
    lacking = []
    for index, member in enumerate(members if isinstance(members, list) else []):
        text = member.get("ensemble") if isinstance(member, dict) else None
        config = load_ensemble_yaml(text, f"spec.members[{index}].ensemble").config if isinstance(text, str) else None
        if config is not None and group not in config.groups():
            lacking.append(f"spec.members[{index}]")
    if not lacking:
        return []
    return [FieldError("spec.algorithm.options.group", f"{group!r} is no job group of {', '.join(lacking)}'s "
                                                       "ensemble.yaml: refill's submits to those members fail")]


def _rules_version_warning(member: dict, path: str) -> list[FieldError]:
    """The member's ensemble.yaml is checked with the rules of ensemble-python RULES_VERSION; say so
    when the member installs anything else (whose rules may differ either way)."""
    branch, version = member.get("branch"), member.get("ensemblePython") or DEFAULT_ENSEMBLE_PYTHON
    if branch:
        installed, where = f"branch {branch!r}", f"{path}.branch"
    elif version == LATEST:
        installed, where = f"the latest release (which may be newer than {RULES_VERSION})", f"{path}.ensemblePython"
    elif version != RULES_VERSION:
        installed, where = f"ensemble-python {version}", f"{path}.ensemblePython"
    else:
        return []
    return [FieldError(where, f"the member runs {installed}, whose ensemble.yaml rules this operator does not "
                              f"know: ensemble.yaml was checked against ensemble-python {RULES_VERSION}'s, so a file "
                              "that version refuses is refused here and one it loads may still fail to load")]


def _sizes(spec: dict, path: str) -> list[FieldError]:
    """The CEL size rules of MiniClusterSpecShape: 0 means unset, as upstream."""
    def integer(key: str) -> int | None:
        value = spec.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    size = integer("size") or DEFAULT_MEMBER_SIZE
    min_size, max_size = integer("minSize"), integer("maxSize") or None
    errors = []
    if min_size is not None and max_size is not None and min_size > max_size:
        errors.append(FieldError(f"{path}.minSize",
                                 f"minSize ({min_size}) must not exceed maxSize ({max_size})"))
    if min_size is not None and size < min_size:
        errors.append(FieldError(f"{path}.size", f"size ({size}) must be at least minSize ({min_size})"))
    if max_size is not None and size > max_size:
        errors.append(FieldError(f"{path}.size", f"size ({size}) must not exceed maxSize ({max_size})"))
    return errors


def _port(port: Any, path: str) -> list[FieldError]:
    """The CEL range rule of Sidecar.port (its digits-only pattern is checked by the codec)."""
    if isinstance(port, str) and port.isdigit() and not 1 <= int(port) <= 65535:
        return [FieldError(path, f"port must be between 1 and 65535, got {port!r}")]
    return []
