"""Sample values for the generated tests, from the specs' examples or their schemas."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from openapi_schema_validator import oas30_format_checker

from generator.schemas import Walker, value_type
from generator.specs import Schema

_FORMAT_SAMPLES = {
    "date-time": "2024-03-01T12:30:00Z",
    "date": "2024-03-01",
    "time": "12:30:00",
    "email": "ada@example.com",
    "uri": "https://example.com/a",
    "url": "https://example.com/a",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "byte": "U3dhZ2dlcg==",
}


def _valid_for_format(value: str, fmt: str) -> bool:
    """Whether an example string is valid for its format (date, date-time, uuid...)."""
    if fmt in ("uri", "url"):
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc)
    return bool(oas30_format_checker.conforms(value, fmt))


class _NotJson(Exception):
    """A YAML value with no JSON spelling: binary, .inf, .nan, a Python object."""


def sample(walker: Walker, schema: Schema, name: str = "value", depth: int = 0) -> Any:
    """A value that the schema accepts: its example, default or enum, else made up.

    Unions sample their first non-null branch; below the second level only
    required properties are filled in, which keeps samples of large, recursive
    schemas (Stripe's) small and valid.
    """
    node = walker.specs.deref(schema).node
    branches = [
        Schema(schema.doc, sub, f"{schema.pointer}/{key}/{i}")
        for key in ("oneOf", "anyOf")
        for i, sub in enumerate(node.get(key) or [])
        if isinstance(sub, Mapping)
    ]
    branches = [b for b in branches if walker.shape(b).types != {"null"}]
    if branches and "properties" not in node:
        return sample(walker, branches[0], name, depth)
    shape = walker.shape(schema)
    types = shape.types - {"null"}
    candidates = [node.get("example"), node.get("default")]
    if isinstance(node.get("examples"), list) and node["examples"]:
        candidates.insert(0, node["examples"][0])
    if depth > 0:
        for value in _json_values(candidates):
            if value is not None and _fits(value, types, shape.format):
                return value
    if shape.enum:
        values = _json_values(shape.enum)
        found = next((v for v in values if v is not None), None)
        if found is not None or None in shape.enum:
            return found
    if "object" in types or (shape.properties and not types):
        if depth > 8:
            return {}
        return {
            prop_name: sample(walker, prop, prop_name, depth + 1)
            for prop_name, prop in shape.properties.items()
            if depth < 2 or prop_name in shape.required
        }
    if "array" in types:
        if shape.items is None or depth > 6:
            return []
        return [sample(walker, shape.items, name, depth + 1)]
    if "integer" in types:
        return _bounded(walker.specs.deref(schema).node, 3)
    if "number" in types:
        return float(_bounded(walker.specs.deref(schema).node, 2.5))
    if "boolean" in types:
        return True
    if "string" in types or not types:
        if shape.format in _FORMAT_SAMPLES:
            return _FORMAT_SAMPLES[shape.format]
        text = f"sample {name}"
        node_map: Mapping[str, Any] = walker.specs.deref(schema).node
        if isinstance(node_map.get("maxLength"), int):
            text = text[: node_map["maxLength"]]
        if (
            isinstance(node_map.get("minLength"), int)
            and len(text) < node_map["minLength"]
        ):
            text = text.ljust(node_map["minLength"], "x")
        return text
    return None


def _fits(value: Any, types: frozenset[str], fmt: str) -> bool:
    kind = value_type(value)
    if kind == "string" and not _valid_for_format(value, fmt):
        return False
    return not types or kind in types or (kind == "integer" and "number" in types)


def _json_values(values: Any) -> list[Any]:
    """The values that have a JSON spelling, as JSON values (a YAML date: its text)."""
    found = []
    for value in values:
        try:
            found.append(_json(value))
        except _NotJson:
            continue
    return found


def _json(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotJson
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise _NotJson


def _bounded(node: Mapping[str, Any], value: float) -> Any:
    minimum = node.get("minimum", node.get("exclusiveMinimum"))
    maximum = node.get("maximum", node.get("exclusiveMaximum"))
    if (
        isinstance(minimum, int | float)
        and not isinstance(minimum, bool)
        and value < minimum
    ):
        value = minimum + 1
    if (
        isinstance(maximum, int | float)
        and not isinstance(maximum, bool)
        and value > maximum
    ):
        value = maximum
    return int(value) if isinstance(value, int) or float(value).is_integer() else value
