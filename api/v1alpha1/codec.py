"""Decode API objects (plain dicts) into the dataclasses, and encode them back.

The decoder checks what the CRD schema checks (types, required fields, minimum,
enum, pattern, lengths, item counts) and collects every error with its field
path, so objects created before the CRD had a rule are judged the same way.
Unknown fields are ignored, as the API server prunes them.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

from api.v1alpha1.errors import FieldError, InvalidObjectError
from api.v1alpha1.jsoncopy import copy_json
from api.v1alpha1.markers import (FieldInfo, api_fields, declared_default, is_api_class, json_name,
                                  unwrap_optional)

_INVALID = object()
_NO_INFO = FieldInfo(description="")


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_EXPECTED = {str: ((str,), "a string"), int: ((int,), "an integer"), float: ((int, float), "a number"),
             bool: ((bool,), "a boolean")}


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


class _Walker:
    """One pass over an object; ``errors`` holds every problem found."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> object:
        self.errors.append(FieldError(path, message))
        return _INVALID

    def object(self, cls: type, data: Any, path: str, as_dict: bool) -> Any:
        """A dataclass instance, or (``as_dict``, for embedded upstream types) the dict with defaults."""
        if not isinstance(data, dict):
            return self.fail(path, f"must be an object, got {type_name(data)}")
        before = len(self.errors)
        values: dict[str, Any] = {}
        out: dict[str, Any] = copy_json(data) if as_dict else {}
        for field, hint, info in api_fields(cls):
            key = json_name(field)
            if data.get(key) is None:
                if info.required:
                    self.fail(child(path, key), "required field is missing")
                elif as_dict and declared_default(field) is not None:
                    out[key] = copy_json(declared_default(field))
                continue
            value = self.value(hint, info, data[key], child(path, key), as_dict)
            if value is not _INVALID:
                values[field.name] = value
                if as_dict:
                    out[key] = value
        if len(self.errors) > before:
            return _INVALID
        return out if as_dict else cls(**values)

    def value(self, hint: Any, info: FieldInfo, data: Any, path: str, as_dict: bool) -> Any:
        hint, _ = unwrap_optional(hint)
        if info.shape is not None:
            return self.object(info.shape, data, path, as_dict=True)
        if is_api_class(hint):
            return self.object(hint, data, path, as_dict)
        origin = typing.get_origin(hint)
        if origin is list:
            return self.array(typing.get_args(hint)[0], info, data, path, as_dict)
        if origin is dict:
            if not isinstance(data, dict):
                return self.fail(path, f"must be an object, got {type_name(data)}")
            if info.max_properties is not None and len(data) > info.max_properties:
                return self.fail(path, f"must have at most {info.max_properties} properties, got {len(data)}")
            return copy_json(data)
        return self.scalar(hint, info, data, path)

    def array(self, item_hint: Any, info: FieldInfo, data: Any, path: str, as_dict: bool) -> Any:
        if not isinstance(data, list):
            return self.fail(path, f"must be an array, got {type_name(data)}")
        if info.min_items is not None and len(data) < info.min_items:
            return self.fail(path, f"must have at least {info.min_items} item(s), got {len(data)}")
        if info.max_items is not None and len(data) > info.max_items:
            return self.fail(path, f"must have at most {info.max_items} item(s), got {len(data)}")
        items = [self.value(item_hint, _NO_INFO, item, f"{path}[{index}]", as_dict)
                 for index, item in enumerate(data)]
        if any(item is _INVALID for item in items):
            return _INVALID
        if info.list_map_keys:
            return self.unique_keys(data, info.list_map_keys, path, items)
        return items

    def unique_keys(self, data: list, keys: tuple[str, ...], path: str, items: list) -> Any:
        """List-map semantics (x-kubernetes-list-map-keys): no two items share a key."""
        seen: set[tuple] = set()
        for index, item in enumerate(data):
            key = tuple(item.get(name) for name in keys)
            if key in seen:
                return self.fail(f"{path}[{index}]", f"duplicate entry with {', '.join(keys)} {key!r}")
            seen.add(key)
        return items

    def scalar(self, hint: Any, info: FieldInfo, data: Any, path: str) -> Any:
        if hint is Any:
            return data
        accepted, wanted = _EXPECTED[hint]
        if (isinstance(data, bool) and hint is not bool) or not isinstance(data, accepted):
            return self.fail(path, f"must be {wanted}, got {type_name(data)} {data!r}")
        if info.enum and data not in info.enum:
            return self.fail(path, f"must be one of {', '.join(info.enum)}, got {data!r}")
        if isinstance(data, str):
            return self.text(info, data, path)
        if info.minimum is not None and isinstance(data, (int, float)) and data < info.minimum:
            return self.fail(path, f"must be at least {info.minimum}, got {data}")
        return data

    def text(self, info: FieldInfo, data: str, path: str) -> Any:
        """The string limits: lengths and pattern."""
        if info.min_length is not None and len(data) < info.min_length:
            return self.fail(path, "must not be empty" if info.min_length == 1
                             else f"must be at least {info.min_length} characters long")
        if info.max_length is not None and len(data) > info.max_length:
            return self.fail(path, f"must be at most {info.max_length} characters long")
        if info.pattern is not None and not re.search(info.pattern, data):
            return self.fail(path, f"must match {info.pattern}, got {data!r}")
        return data


def check(cls: type, data: Any, path: str = "") -> list[FieldError]:
    """Every schema-level error of ``data`` read as ``cls``."""
    return checked(cls, data, path)[1]


def checked(cls: type, data: Any, path: str = "") -> tuple[Any, list[FieldError]]:
    """``data`` as a ``cls`` instance (None when it has errors) and every schema-level error:
    ``check`` and ``decode`` in one walk."""
    walker = _Walker()
    result = walker.object(cls, data, path, as_dict=False)
    return (None if walker.errors or result is _INVALID else result), walker.errors


def decode(cls: type, data: Any, path: str = "") -> Any:
    """``data`` as a ``cls`` instance with defaults applied; raises InvalidObjectError."""
    walker = _Walker()
    result = walker.object(cls, data, path, as_dict=False)
    if walker.errors:
        raise InvalidObjectError(cls.__name__, walker.errors)
    return result


def encode(instance: Any) -> Any:
    """A dataclass instance as its wire dict; unset (None) fields are left out."""
    if dataclasses.is_dataclass(instance):
        out = {}
        for field in dataclasses.fields(instance):
            value = getattr(instance, field.name)
            if value is not None:
                out[json_name(field)] = encode(value)
        return out
    if isinstance(instance, list):
        return [encode(item) for item in instance]
    return copy_json(instance)
