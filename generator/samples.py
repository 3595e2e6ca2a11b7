"""Sample values for the generated tests, from the specs' examples or their schemas."""

from __future__ import annotations

import copy
import datetime
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from generator.runtime.mapping import path_keys
from generator.schemas import Shape, Walker, unusable_constraint, value_type
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
    "duration": "PT1H30M",
}
# ISO 8601 durations, the text pydantic reads a `format: duration` (timedelta) from
_DURATION = re.compile(
    r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
)


def _valid_for_format(value: str, fmt: str) -> bool:
    """Whether an example string is valid for its format (date, date-time, uuid...)."""
    if fmt in ("uri", "url"):
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc)
    if fmt == "duration":
        return _DURATION.fullmatch(value) is not None
    if fmt == "uuid":  # no OpenAPI format, but pydantic's models check it
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    # Imported here: half a second at import, and most samples have no format.
    from openapi_schema_validator import oas30_format_checker  # noqa: PLC0415

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
            if value is not None and _fits(walker, schema, value):
                return value
    if shape.enum:
        values = _json_values(shape.enum)
        found = next((v for v in values if v is not None), None)
        if found is not None or None in shape.enum:
            return found
    if "object" in types or (shape.properties and not types):
        if depth > 8:
            return {}
        made = {
            prop_name: sample(walker, prop, prop_name, depth + 1)
            for prop_name, prop in shape.properties.items()
            if depth < 2 or prop_name in shape.required
        }
        return _enough_entries(walker, schema, shape, made, depth)
    if "array" in types:
        if shape.items is None or depth > 6:
            return []
        item = sample(walker, shape.items, name, depth + 1)
        # as many items as `minItems` asks (a covariance matrix: one per asset)
        wanted = shape.bounds.get("minItems")
        count = wanted if isinstance(wanted, int) and 1 < wanted <= 20 else 1
        return [copy.deepcopy(item) for _ in range(count)]
    if "integer" in types:
        return _bounded(shape.bounds, 3)
    if "number" in types:
        return float(_bounded(shape.bounds, 2.5))
    if "boolean" in types:
        return True
    if "string" in types or not types:
        if shape.format in _FORMAT_SAMPLES and _matches(
            shape.pattern, _FORMAT_SAMPLES[shape.format]
        ):
            return _FORMAT_SAMPLES[shape.format]
        text = f"sample {name}"
        longest, shortest = shape.bounds.get("maxLength"), shape.bounds.get("minLength")
        shortest = shortest if isinstance(shortest, int) else 0
        if isinstance(longest, int):
            text = text[:longest]
        text = text.ljust(shortest, "x")
        if not _matches(shape.pattern, text):
            text = _pattern_sample(shape.pattern, shortest) or text
        return text
    return None


def _enough_entries(
    walker: Walker, schema: Schema, shape: Shape, made: dict[str, Any], depth: int
) -> dict[str, Any]:
    """`made`, with entries added up to `minProperties` (AWS's tag maps): each a
    sample of `additionalProperties` under a made-up key."""
    wanted = shape.bounds.get("minProperties")
    if not isinstance(wanted, int) or len(made) >= wanted or wanted > 20:
        return made
    held = walker.specs.deref(schema)
    extra = held.node.get("additionalProperties")
    value_schema = (
        Schema(held.doc, extra, f"{held.pointer}/additionalProperties")
        if isinstance(extra, Mapping)
        else None
    )
    count = 0
    while len(made) < wanted:
        count += 1
        key = f"key{count}"
        made.setdefault(
            key,
            sample(walker, value_schema, key, depth + 1) if value_schema else "value",
        )
    return made


def fitted(
    walker: Walker, record: Schema, value: Any, copies: list[tuple[str, Schema]]
) -> Any:
    """The sample record, each value copied as it is into a target field changed to
    one the target accepts too (its enum, pattern or format) where the source field
    allows it: the generated tests then show a record that gets through."""
    for path, target in copies:
        source = walker.get(record, path)
        *parents, key = path_keys(path)
        holder = value
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if source is None or not isinstance(holder, dict) or key not in holder:
            continue
        current = holder[key]
        if current is None or _fits(walker, target, current):
            continue
        wanted = sample(walker, target, key, 1)
        if wanted is not None and _fits(walker, source, wanted):
            holder[key] = wanted
    return value


def _matches(pattern: str, text: str) -> bool:
    """Whether text matches a schema `pattern` (unanchored, as JSON Schema says);
    a pattern the models cannot use matches everything (p2pgen drops it)."""
    if unusable_constraint("pattern", pattern):
        return True
    return re.search(pattern, text) is not None


_CATEGORY_SAMPLES = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_WORD": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_NOT_WORD": "-",
    "CATEGORY_NOT_SPACE": "a",
}
_MAX_PATTERN_SAMPLE = 200


def _pattern_sample(pattern: str, min_length: int = 0) -> str | None:
    """The shortest-ish string matching a `pattern`, at least `min_length` long
    where its repeats allow, or None when none is found.

    Walks Python's own parse of the regular expression: each repeat its minimum (at
    least once), each alternation its first branch, each class its first member;
    then, for `min_length`, the first repeats that may grow take more turns.
    The result is checked with `re.search`, so a wrong guess is never returned.
    """
    try:
        from re import _parser  # type: ignore[attr-defined]  # noqa: PLC0415

        parsed = _parser.parse(pattern)
        text = _emit(parsed, 0, [0])
        if text is not None and len(text) < min_length:
            text = _emit(parsed, 0, [min(min_length, _MAX_PATTERN_SAMPLE) - len(text)])
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        return None
    if text is None or len(text) > _MAX_PATTERN_SAMPLE:
        return None
    return text if _matches(pattern, text) else None


def _emit(parsed: Any, depth: int, grow: list[int]) -> str | None:
    """One string for a parsed regular expression (see _pattern_sample); `grow`
    holds how many more characters the repeats that may grow should add."""
    if depth > 20:
        return None
    out: list[str] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            piece = _class_member(arg)
            if piece is None:
                return None
            out.append(piece)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            piece = _emit(sub, depth + 1, [0])
            if piece is None:
                return None
            if low > _MAX_PATTERN_SAMPLE:
                out.append("")
                continue
            turns = max(low, 1)
            if grow[0] > 0 and piece and high > turns:
                more = min(high - turns, -(-grow[0] // len(piece)))
                turns += more
                grow[0] -= more * len(piece)
            out.append(piece * turns)
        elif name == "SUBPATTERN":
            piece = _emit(arg[-1], depth + 1, grow)
            if piece is None:
                return None
            out.append(piece)
        elif name == "BRANCH":
            piece = _emit(arg[1][0], depth + 1, grow)
            if piece is None:
                return None
            out.append(piece)
        elif name == "CATEGORY":
            out.append(_CATEGORY_SAMPLES.get(str(arg), "a"))
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # anchors and look-arounds add no characters
        else:  # back-references, conditionals: give up
            return None
    return "".join(out)


def _class_member(items: Any) -> str | None:
    """A character of a character class `[...]`."""
    if items and str(items[0][0]) == "NEGATE":
        return next((c for c in "a0Z_-." if not _in_class(c, items[1:])), None)
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return _CATEGORY_SAMPLES.get(str(arg))
    return None


def _fits(walker: Walker, schema: Schema, value: Any, depth: int = 0) -> bool:
    """Whether an example fits its schema: types, formats, patterns, lengths and
    bounds, all the way down (real specs' examples often break their own patterns)."""
    shape = walker.shape(schema)
    types = shape.types - {"null"}
    kind = value_type(value)
    if value is None:
        return shape.nullable or not types
    if shape.enum is not None and value not in _json_values(shape.enum):
        return False
    if not (not types or kind in types or (kind == "integer" and "number" in types)):
        return False
    bounds = shape.bounds
    if kind == "string":
        return (
            _valid_for_format(value, shape.format)
            and _matches(shape.pattern, value)
            and _within(len(value), bounds.get("minLength"), bounds.get("maxLength"))
        )
    if kind in ("integer", "number"):
        return _in_bounds(value, bounds)
    if depth > 8:
        return True
    if isinstance(value, dict):
        counts = (bounds.get("minProperties"), bounds.get("maxProperties"))
        return (
            shape.required <= value.keys() and _within(len(value), *counts)
        ) and all(
            _fits(walker, shape.properties[key], item, depth + 1)
            for key, item in value.items()
            if key in shape.properties
        )
    if isinstance(value, list) and shape.items is not None:
        items = shape.items
        return all(_fits(walker, items, item, depth + 1) for item in value)
    return True


def _within(value: float, low: Any, high: Any) -> bool:
    """Whether value is within the bounds that are numbers."""
    return not (_number(low) and value < low) and not (_number(high) and value > high)


def _in_bounds(value: float, node: Mapping[str, Any]) -> bool:
    """Whether a number meets minimum, maximum and their exclusive forms (3.1's
    numbers, or 3.0's booleans that make minimum and maximum exclusive)."""
    if not _within(value, node.get("minimum"), node.get("maximum")):
        return False
    for key, bound, above in (
        ("exclusiveMinimum", "minimum", True),
        ("exclusiveMaximum", "maximum", False),
    ):
        strict: Any = node.get(key)
        limit: Any = node.get(bound) if strict is True else strict
        if _number(limit) and (value <= limit if above else value >= limit):
            return False
    return True


def _number(bound: Any) -> bool:
    return isinstance(bound, int | float) and not isinstance(bound, bool)


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


def _bounded(bounds: Mapping[str, Any], value: float) -> Any:
    """`value`, moved inside the schema's bounds where it is not."""
    low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
    high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
    if _number(low) and value < low:
        value = low + 1
    if _number(high) and value > high:
        value = high
    if not _in_bounds(value, bounds):  # on an exclusive bound
        if _number(low) and _number(high):
            value = (low + high) / 2
        else:
            value = low + 1 if _number(low) else high - 1
    return int(value) if isinstance(value, int) or float(value).is_integer() else value


_CATEGORY_TESTS = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_SPACE": str.isspace,
}


def _in_class(char: str, items: Any) -> bool:
    """Whether a character is one of a class's members (literals, ranges, \\d \\w \\s)."""
    for op, arg in items:
        name = str(op)
        if name == "LITERAL" and chr(arg) == char:
            return True
        if name == "RANGE" and arg[0] <= ord(char) <= arg[1]:
            return True
        if name == "CATEGORY":
            category = str(arg)
            test = _CATEGORY_TESTS.get(category.replace("_NOT", ""))
            if test is not None and test(char) != ("_NOT_" in category):
                return True
    return False
