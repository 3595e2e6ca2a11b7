"""The Schema Objects of an OpenAPI 3.1 document against JSON Schema 2020-12.

OpenAPI 3.1's own schema leaves Schema Objects to their JSON Schema dialect, so
neither the check against it nor openapi-spec-validator's located errors catch
`type: strin` there. Each Schema Object is checked here against the 2020-12
meta-schema. A mistake in a keyword that shapes the models (`type`, `properties`,
`required`, `minimum`...), reached through the keywords that nest schemas, is an
error; a mistake elsewhere (`examples` as a mapping, a 2019-09 `$recursiveAnchor`)
changes nothing a link does, so it is a warning and p2pgen ignores it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from generator.errors import one_line
from generator.specs import escape_pointer_part, join_pointer

# Keywords whose value a model is built from.
SHAPING = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "prefixItems",
        "additionalProperties",
        "patternProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "enum",
        "const",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "$ref",
    }
)
# Keywords that hold subschemas: by name (a mapping), by index (a list) or one.
NAMED = frozenset({"properties", "patternProperties"})
LISTED = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
SINGLE = frozenset({"items", "additionalProperties", "not"})
# Where a Schema Object is never found: values, and the vendor's extensions.
VALUES = frozenset({"example", "examples", "default", "enum", "const"})
TYPES = "string, number, integer, boolean, array, object, null"
BRIEF = 160  # characters of a quoted value in a message


def schema_objects(data: Any) -> Iterator[tuple[str, Any]]:
    """(pointer, schema) for each Schema Object that is not inside another one:
    those under components/schemas and every `schema` of a parameter, header or
    media type."""
    components = data.get("components") if isinstance(data, dict) else None
    schemas = components.get("schemas") if isinstance(components, dict) else None
    if isinstance(schemas, dict):
        for name, schema in schemas.items():
            yield join_pointer("components", "schemas", name), schema
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, list):
            stack.extend((f"{pointer}/{i}", v) for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            at = f"{pointer}/{escape_pointer_part(str(key))}"
            if at == "/components/schemas" or key in VALUES:
                continue
            if isinstance(key, str) and key.startswith("x-"):
                continue
            if key == "schema" and isinstance(value, dict | bool):
                yield at, value
            else:
                stack.append((at, value))


def schema_mistakes(data: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(errors, warnings) as (pointer, message) of the document's Schema Objects."""
    checker = _meta_checker()
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    for pointer, schema in schema_objects(data):
        if checker.is_valid(schema):
            continue
        for found in checker.iter_errors(schema):
            path = list(found.instance_path)
            where = pointer + (join_pointer(*path) if path else "")
            if _shapes_models(path):
                errors.append((where, _message(path, found)))
            else:
                warnings.append(
                    (where, f"{one_line(found.message, BRIEF)}; p2pgen ignores it")
                )
    return errors, warnings


def _shapes_models(path: list[Any]) -> bool:
    """Whether a mistake at `path` (inside a schema) is in a keyword models are
    built from, reached only through keywords that nest schemas."""
    i = 0
    while i < len(path) - 1:
        key = path[i]
        if key in NAMED or key in LISTED:
            i += 2  # the keyword, then a name or an index
        elif key in SINGLE:
            i += 1
        else:
            return False
    if i == len(path) - 1:
        return path[i] in SHAPING
    return bool(path)  # a subschema that is not a schema at all


def _message(path: list[Any], found: Any) -> str:
    if path[-1] == "type":
        return f"type {one_line(repr(found.instance), BRIEF)} is not a JSON Schema type ({TYPES})"
    return f"invalid schema: {one_line(found.message, BRIEF)}"


@functools.cache
def _meta_checker() -> Any:
    """A checker of schemas against the JSON Schema 2020-12 meta-schema, which
    jsonschema-rs carries (no network)."""
    import jsonschema_rs  # noqa: PLC0415 (a spec validated before never needs it)

    return jsonschema_rs.validator_for(
        {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    )
