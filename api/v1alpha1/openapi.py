"""Structural OpenAPI v3 schemas generated from the API dataclasses."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from api.v1alpha1.markers import (FieldInfo, api_fields, class_description, class_rules, declared_default,
                                  is_api_class, is_open, json_name, unwrap_optional)

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def object_schema(cls: type, description: str | None = None) -> dict[str, Any]:
    """The schema of one API dataclass: typed properties, required list, openness and CEL rules."""
    schema: dict[str, Any] = {"type": "object", "description": description or class_description(cls)}
    properties = {}
    required = []
    for field, hint, info in api_fields(cls):
        properties[json_name(field)] = field_schema(field, hint, info)
        if info.required:
            required.append(json_name(field))
    schema["properties"] = properties
    if required:
        schema["required"] = required
    if is_open(cls):
        schema["x-kubernetes-preserve-unknown-fields"] = True
    rules = class_rules(cls)
    if rules:
        schema["x-kubernetes-validations"] = [rule.to_schema() for rule in rules]
    return schema


def field_schema(field: dataclasses.Field, hint: Any, info: FieldInfo) -> dict[str, Any]:
    schema = type_schema(hint, info, info.description)
    schema["description"] = info.description
    default = declared_default(field)
    if default is not None:
        schema["default"] = default
    if info.rules:
        schema["x-kubernetes-validations"] = [rule.to_schema() for rule in info.rules]
    return schema


def type_schema(hint: Any, info: FieldInfo, description: str) -> dict[str, Any]:
    hint, _ = unwrap_optional(hint)
    if info.shape is not None:
        return object_schema(info.shape, description)
    if is_api_class(hint):
        return object_schema(hint, description)
    origin = typing.get_origin(hint)
    if origin is list:
        item_hint = typing.get_args(hint)[0]
        schema: dict[str, Any] = {"type": "array", "items": type_schema(item_hint, FieldInfo(""), "")}
        if info.list_map_keys:
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = list(info.list_map_keys)
        return _with_constraints(schema, info)
    if origin is dict:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if info.max_properties is not None:
            schema["maxProperties"] = info.max_properties
        return schema
    return _with_constraints({"type": _SCALARS[hint]}, info)


def _with_constraints(schema: dict[str, Any], info: FieldInfo) -> dict[str, Any]:
    constraints = {"minimum": info.minimum, "minItems": info.min_items, "maxItems": info.max_items,
                   "minLength": info.min_length, "maxLength": info.max_length, "pattern": info.pattern,
                   "format": info.format, "enum": list(info.enum) or None}
    schema.update({key: value for key, value in constraints.items() if value is not None})
    return schema
