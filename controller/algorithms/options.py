"""Typed algorithm options from the loosely typed ``spec.algorithm.options`` map.

Each algorithm declares its options as a frozen dataclass whose fields carry the
user-facing (camelCase) name, so one parser gives every algorithm the same checks
and the same error messages.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = dataclasses.MISSING


class OptionError(ValueError):
    """An option that is unknown, missing or of the wrong type; names the option."""

    def __init__(self, algorithm: str, option: str, problem: str) -> None:
        super().__init__(f"algorithm {algorithm!r}: option {option!r}: {problem}")
        self.algorithm = algorithm
        self.option = option


def option(name: str, default: object = _MISSING, *, minimum: float | None = None) -> Any:
    """Declare a dataclass field as the option ``name`` (no default: required)."""
    metadata = {"option": name, "minimum": minimum}
    if default is _MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _convert(kind: type, value: object) -> object:
    """Convert ``value`` to ``kind``, accepting the string forms a YAML map may carry."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError("expected true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("expected an integer")
    if kind is float:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ValueError("expected a number")
        # NaN passes any minimum (every comparison is false) and then silently disables the
        # window or cooldown it names; an infinite one never ends. Neither is a duration.
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if kind is str:
        if isinstance(value, str) and value:
            return value
        raise ValueError("expected a non-empty string")
    raise TypeError(f"unsupported option type {kind!r}")


def parse_dataclass(cls: type[T], algorithm: str, raw: Mapping[str, object]) -> T:
    """Build ``cls`` from ``raw``, rejecting unknown, missing and ill-typed options."""
    if not isinstance(raw, Mapping):
        raise OptionError(algorithm, "options", f"expected a map, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.metadata["option"]: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in raw:
        if name not in fields:
            raise OptionError(algorithm, str(name), f"unknown option (known: {', '.join(sorted(fields))})")
    values: dict[str, object] = {}
    for name, spec in fields.items():
        if name not in raw:
            if spec.default is _MISSING:
                raise OptionError(algorithm, name, "is required")
            continue
        try:
            value = _convert(hints[spec.name], raw[name])
        except ValueError as error:
            raise OptionError(algorithm, name, f"{error}, got {raw[name]!r}") from None
        minimum = spec.metadata["minimum"]
        if minimum is not None and value < minimum:  # type: ignore[operator]
            raise OptionError(algorithm, name, f"must be >= {minimum:g}, got {value!r}")
        values[spec.name] = value
    return cls(**values)
