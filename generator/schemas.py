"""Navigate JSON schemas through `$ref`, `allOf`, `oneOf`/`anyOf` and nullability."""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import SchemaError, SchemaValidator, core_schema

from generator.errors import did_you_mean
from generator.runtime.mapping import path_keys, path_of
from generator.specs import Schema, SpecSet, escape_pointer_part

JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")


@dataclass(frozen=True)
class Shape:
    """What a schema accepts, flattened: the facts the resolver checks against."""

    types: frozenset[str]  # empty: anything
    nullable: bool
    format: str
    enum: tuple[Any, ...] | None
    read_only: bool
    properties: Mapping[str, Schema]
    required: frozenset[str]
    free_form: bool  # additionalProperties allows unknown keys
    items: Schema | None
    pattern: str = ""  # a string's `pattern` (its own, or its allOf parts')
    # minimum, maxLength... (CONSTRAINT_KEYS but pattern): its own, then its allOf parts'
    bounds: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.types:
            return "any value"
        names = sorted(self.types - {"null"})
        text = " or ".join(names) or "null"
        if self.format:
            text += f" ({self.format})"
        return text


MISFIT_DEPTH = 4  # levels of objects and lists Walker.misfit looks into


@dataclass(frozen=True)
class Miss:
    """Where a dotted path left the schema: the name not found, and what was there."""

    name: str
    options: tuple[str, ...]
    hint: str = ""  # what to write instead, when a list was there

    def describe(self, where: str = "") -> str:
        """E.g. "'emial' not found in Contact; did you mean 'email'?"."""
        if self.hint:
            return f"{self.name!r} not found{where}: {self.hint}"
        return f"{self.name!r} not found{where}{did_you_mean(self.name, self.options)}"


class Walker:
    """Answers questions about schemas of one SpecSet."""

    def __init__(self, specs: SpecSet) -> None:
        self.specs = specs

    def shape(self, schema: Schema) -> Shape:
        return self._shape(schema, depth=0)

    def _shape(self, schema: Schema, depth: int) -> Shape:
        schema = self.specs.deref(schema)
        node = schema.node
        types: set[str] = _types(node)
        nullable = bool(node.get("nullable")) or bool(node.get("x-nullable"))
        nullable = nullable or "null" in types
        properties = {
            str(name): Schema(schema.doc, sub, f"{schema.pointer}/properties/{name}")
            for name, sub in (node.get("properties") or {}).items()
            if isinstance(sub, Mapping)
        }
        required = set(node.get("required") or [])
        enum = tuple(node["enum"]) if isinstance(node.get("enum"), list) else None
        fmt = str(node.get("format", ""))
        pattern = node.get("pattern") if isinstance(node.get("pattern"), str) else ""
        bounds = {k: node[k] for k in (*_BOUNDS, *_COUNTS) if k in node}
        read_only = bool(node.get("readOnly"))
        extra = node.get("additionalProperties")
        free_form = extra is True or (
            isinstance(extra, Mapping) and extra != {"not": {}}
        )
        if "type" not in node and "properties" not in node and extra is None:
            free_form = free_form or not any(
                k in node for k in ("allOf", "oneOf", "anyOf")
            )
        items = (
            Schema(schema.doc, node["items"], schema.pointer + "/items")
            if isinstance(node.get("items"), Mapping)
            else None
        )
        if depth < 20:
            for combinator in ("allOf", "oneOf", "anyOf"):
                for i, sub in enumerate(node.get(combinator) or []):
                    if not isinstance(sub, Mapping):
                        continue
                    part = self._shape(
                        Schema(schema.doc, sub, f"{schema.pointer}/{combinator}/{i}"),
                        depth + 1,
                    )
                    if part.types == {"null"}:
                        nullable = True
                        continue
                    for name, prop in part.properties.items():
                        properties.setdefault(name, prop)
                    if combinator == "allOf":
                        bounds = {**part.bounds, **bounds}
                        required |= part.required
                        types = (
                            types & part.types
                            if types and part.types
                            else set(types or part.types)
                        )
                    else:
                        types = types | part.types if types or not i else types
                    nullable = nullable or (part.nullable and combinator != "allOf")
                    enum = enum or part.enum
                    fmt = fmt or part.format
                    pattern = pattern or part.pattern
                    free_form = free_form or part.free_form
                    items = items or part.items
                    read_only = read_only or part.read_only
        return Shape(
            types=frozenset(types),
            nullable=nullable,
            format=fmt,
            enum=enum,
            read_only=read_only,
            properties=properties,
            required=frozenset(required),
            free_form=free_form,
            items=items,
            pattern=pattern,
            bounds=bounds,
        )

    def default(self, schema: Schema, name: str, depth: int = 0) -> Any:
        """The `default` of property `name` of `schema`: its own definition's, else
        its allOf parts', the last (most derived) first; None when none has one.
        Microsoft Graph's group requires `@odata.type` in its base, entity, and
        gives the default `#microsoft.graph.group` in its own part."""
        schema = self.specs.deref(schema)
        node = schema.node
        props = node.get("properties")
        own = props.get(name) if isinstance(props, Mapping) else None
        if isinstance(own, Mapping):
            at = f"{schema.pointer}/properties/{escape_pointer_part(name)}"
            found = self.specs.deref(Schema(schema.doc, own, at)).node
            if "default" in found:
                return found["default"]
        parts = node.get("allOf") if depth < 20 else None
        for i, part in reversed(list(enumerate(parts or []))):
            if isinstance(part, Mapping):
                pointer = f"{schema.pointer}/allOf/{i}"
                value = self.default(Schema(schema.doc, part, pointer), name, depth + 1)
                if value is not None:
                    return value
        return None

    def misfit(self, source: Schema, target: Schema, depth: int = 0) -> str | None:
        """Why a value of `source` may be refused where `target` is expected, or
        None: a type the target does not take, or a field it requires that the
        source may lack, looked for a few levels into objects and lists."""
        s, t = self.shape(source), self.shape(target)
        src, tgt = s.types - {"null"}, t.types - {"null"}
        if src and tgt and not takes(tgt, src):
            return f"{s.describe()} where the target takes {t.describe()}"
        if depth >= MISFIT_DEPTH:
            return None
        if "array" in src and s.items is not None and t.items is not None:
            why = self.misfit(s.items, t.items, depth + 1)
            return f"items: {why}" if why else None
        if "object" not in src or not tgt & {"object"}:
            return None
        lacking = sorted(t.required - s.required)
        if lacking:
            return f"the target requires {lacking[0]!r}, which the source may lack"
        for name, prop in s.properties.items():
            inner = self.find(target, name)
            why = (
                None if isinstance(inner, Miss) else self.misfit(prop, inner, depth + 1)
            )
            if why:
                return f"{name}: {why}"
        return None

    def get(self, schema: Schema, path: str) -> Schema | None:
        """The schema at a dotted path, or None."""
        found = self.find(schema, path)
        return found if isinstance(found, Schema) else None

    def find(self, schema: Schema, path: str, lists: bool = False) -> Schema | Miss:
        """Follow a dotted path of property names to a schema, or to the Miss.

        A free-form object yields a permissive empty schema for any key. With
        `lists` (source paths), an integer segment indexes a list: `emails.0.email`.
        """
        current = schema
        parts = path_keys(path)
        for i, part in enumerate(parts):
            shape = self.shape(current)
            if lists and _is_list(shape):
                if not is_index(part):
                    listed = path_of(parts[:i]) or "the record"
                    return Miss(
                        part,
                        (),
                        f"{listed!r} is a list; index it with a whole number from 0, "
                        f"e.g. {path_of([*parts[:i], '0', *parts[i:]])!r}",
                    )
                current = shape.items or Schema(
                    current.doc, {}, current.pointer + "/items"
                )
            elif part in shape.properties:
                current = shape.properties[part]
            elif shape.free_form:
                extra = self.specs.deref(current).node.get("additionalProperties")
                node = extra if isinstance(extra, Mapping) else {}
                current = Schema(
                    current.doc, node, current.pointer + "/additionalProperties"
                )
            elif lists and is_index(part):
                listed = path_of(parts[:i]) or "the record"
                return Miss(
                    part,
                    (),
                    f"{listed!r} is not a list ({shape.describe()}); "
                    "only a list can be indexed",
                )
            else:
                return Miss(part, tuple(sorted(shape.properties)))
        return current


def takes(target: set[str] | frozenset[str], source: set[str] | frozenset[str]) -> bool:
    """Whether a value of the `source` JSON types fits the `target` ones (a number
    takes an integer)."""
    return source <= target | ({"integer"} if "number" in target else set())


def is_index(part: str) -> bool:
    """Whether a path segment is a list index: ASCII digits, such as 0 or 12."""
    return part.isascii() and part.isdigit()


def _is_list(shape: Shape) -> bool:
    return "array" in shape.types and not shape.properties


def _types(node: Mapping[str, Any]) -> set[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    if "properties" in node or "additionalProperties" in node:
        return {"object"}
    if "items" in node:
        return {"array"}
    if isinstance(node.get("enum"), list) and node["enum"]:
        return {value_type(v) for v in node["enum"]}
    return set()


def value_type(value: Any) -> str:
    """The JSON type name of a Python value from YAML or JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_COUNTS = (
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
CONSTRAINT_KEYS = frozenset(("pattern", *_BOUNDS, *_COUNTS))
_LIMIT = 2**63


def unusable_constraint(key: str, value: Any) -> str | None:
    """Why pydantic cannot build a schema constraint (p2pgen drops it), or None.

    Applies to the JSON Schema keywords in CONSTRAINT_KEYS; a value of the wrong
    type is left to the OpenAPI validator.
    """
    if key == "pattern" and isinstance(value, str):
        return _unusable_pattern(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if key in _BOUNDS and (not math.isfinite(value) or abs(value) > _LIMIT):
        return f"{key} {_number(value)} is not a finite number within ±2**63"
    if key in _COUNTS and not 0 <= value < _LIMIT:
        return f"{key} {_number(value)} is not between 0 and 2**63-1"
    return None


@functools.lru_cache(maxsize=4096)
def _unusable_pattern(pattern: str) -> str | None:
    """Why a pattern cannot be used, or None. It must compile twice: in Python's `re`
    (samples are built and checked with it) and in the Rust regex engine pydantic's
    models run it with, which has no look-around or backreferences and refuses
    what `re` reads as a nested set (`[[A-Z]`)."""
    shown = json.dumps(pattern)[:80]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning: possible nested set
            re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return f"pattern {shown} is not a valid regular expression ({exc})"
    try:
        SchemaValidator(core_schema.str_schema(pattern=pattern))
    except SchemaError as exc:
        reason = str(exc).strip().splitlines()[-1].removeprefix("error: ")
        return (
            f"pattern {shown} is not a regular expression pydantic can run ({reason})"
        )
    return None


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
    text = str(value) if isinstance(value, float) else f"{value}"
    return (
        text if len(text) <= 30 else f"{text[:12]}... ({len(text.lstrip('-'))} digits)"
    )
