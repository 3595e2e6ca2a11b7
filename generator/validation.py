"""Validate OpenAPI documents: every error with its JSON pointer, sloppy defaults as warnings."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, replace
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any
from warnings import catch_warnings, simplefilter

from generator import __version__
from generator.errors import P2pgenError, Problem, one_line
from generator.schema_objects import schema_mistakes
from generator.schemas import CONSTRAINT_KEYS, unusable_constraint
from generator.specs import (
    Document,
    SpecSet,
    join_pointer,
)

_VALIDATOR_VERSION = version("openapi-spec-validator")
MAX_WARNINGS = 5  # per spec; real specs can hold hundreds of sloppy defaults


def validate_document(specs: SpecSet, doc: Document) -> list[Problem]:
    """Validate with openapi-spec-validator; raise every error, return warnings.

    A schema `default` that does not match the schema's own type is common in real
    specs (Mailchimp has dozens) and harmless to a client, so it is a warning.
    """
    if not isinstance(doc.data, dict) or not (
        "openapi" in doc.data or "swagger" in doc.data
    ):
        raise P2pgenError(
            [
                doc.problem(
                    "not an OpenAPI document: expected a top-level 'openapi' (3.x) or "
                    "'swagger' (2.0) key"
                )
            ]
        )
    version = str(doc.data.get("openapi") or doc.data.get("swagger"))
    cache = _validation_cache(doc)
    remembered = _remembered_warnings(cache, doc)
    if remembered is not None:
        return remembered
    problems = ref_problems(specs, doc)
    if problems:
        raise P2pgenError(problems)
    try:
        with catch_warnings():
            # Python's `re` warns of a `[[` in a spec's pattern; p2pgen says it itself
            simplefilter("ignore", FutureWarning)
            found = (
                []
                if _conforms(version[:3], doc)
                else list(
                    _validator(version[:3])(
                        doc.data, base_uri=doc.path.as_uri()
                    ).iter_errors()
                )
            )
    except RecursionError:
        raise P2pgenError([_too_deep(doc)]) from None
    except Exception as exc:  # the validator raises assorted errors on broken refs
        raise P2pgenError(
            _external_schema_problems(specs, doc)
            or [doc.problem(f"invalid OpenAPI document: {one_line(str(exc))}")]
        ) from None
    errors: list[Problem] = []
    value_errors = 0
    located: list[tuple[tuple[Any, ...], str]] = []
    for error in found:
        path = _at_unexpected_key(doc.data, tuple(error.absolute_path), error.message)
        if not path and error.instance is not doc.data:
            value_errors += 1  # a default's value, located by _mismatched_defaults
        elif _resolves(doc.data, path):
            located.append((path, error.message))
        else:  # a schema error, its path relative to the schema that holds it
            for i, (parent, _) in enumerate(located):
                if _resolves(doc.data, parent + path):
                    located[i] = (parent + path, error.message)
                    break
    paths = [path for path, _ in located]
    for path, message in located:
        if any(
            len(other) > len(path) and other[: len(path)] == path for other in paths
        ):
            continue  # a deeper error says the same thing more precisely
        hint = ""
        if path and message.endswith("does not match any of the regexes: '^x-'"):
            hint = f"; only x- extensions may be added here: remove it or call it x-{path[-1]}"
        errors.append(
            doc.problem(
                f"invalid OpenAPI document: {one_line(message)}{hint}",
                join_pointer(*path) if path else "",
            )
        )
    if errors:
        raise P2pgenError(errors)
    ignored: list[tuple[str, str]] = []
    if version.startswith("3.1"):
        wrong, ignored = schema_mistakes(doc.data)
        if wrong:
            raise P2pgenError([doc.problem(m, p) for p, m in wrong[:MAX_REF_PROBLEMS]])
    warnings = _capped(list(doc.warnings), "duplicate keys; the last one wins", doc)
    mismatched: list[tuple[str, str]] = []
    constraints: list[tuple[str, str]] = []
    for trail, node in _mappings(doc.data):
        mismatched.extend(_mismatched_default(node, trail))
        constraints.extend(_unusable_constraints(node, trail))
    defaults = _located(doc, mismatched, DEFAULTS_TEXT)
    warnings += defaults + _located(doc, constraints, CONSTRAINTS_TEXT)
    warnings += _located(doc, ignored, IGNORED_TEXT)
    if value_errors and not defaults:
        warnings.append(
            replace(
                doc.problem("a schema default or example does not match its type"),
                severity="warning",
            )
        )
    _remember_warnings(cache, warnings)
    return warnings


_UNEXPECTED_KEY = re.compile(
    r"^'(?P<a>[^']*)' does not match any of the regexes|\('(?P<b>[^']*)' was unexpected\)"
)


def _at_unexpected_key(
    data: Any, path: tuple[Any, ...], message: str
) -> tuple[Any, ...]:
    """An error about a key the object may not hold (Google's top-level `source`)
    is located at that key, not at the object, which may be the whole document."""
    found = _UNEXPECTED_KEY.search(message)
    key = found and (found["a"] if found["a"] is not None else found["b"])
    if key is not None and _resolves(data, (*path, key)):
        return (*path, key)
    return path


def _remembered_warnings(cache: Path | None, doc: Document) -> list[Problem] | None:
    """The warnings of a text that passed validation before, located as they were."""
    if cache is None:
        return None
    try:
        entries = json.loads(cache.read_text(encoding="utf-8"))["warnings"]
        return [replace(Problem.from_dict(e), file=str(doc.path)) for e in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not there, or an older or damaged marker: validate again


def _remember_warnings(cache: Path | None, warnings: list[Problem]) -> None:
    if cache is None:
        return
    entries = [asdict(w) for w in warnings]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"warnings": entries}), encoding="utf-8")
    except OSError:
        pass  # a cache that cannot be written only costs time


MAX_REF_PROBLEMS = 20


# Objects whose keys are names (a property, a schema, a media type...): a key there
# that starts with `x-` is a name, not a specification extension.
_NAMED_KEYS = frozenset(
    {
        "properties",
        "patternProperties",
        "definitions",
        "$defs",
        "schemas",
        "parameters",
        "responses",
        "headers",
        "examples",
        "requestBodies",
        "securitySchemes",
        "links",
        "callbacks",
        "content",
        "encoding",
        "variables",
        "pathItems",
        "webhooks",
        "mapping",
        "scopes",
    }
)


_LITERALS = frozenset({"example", "default", "enum", "const"})


def _not_openapi(pointer: str) -> bool:
    """Whether a pointer runs through a specification extension (`x-...`), whose
    content OpenAPI leaves to the vendor (Spotify's `x-spotify-policy-list` holds
    `$ref`s to lists), or through a literal value (an example, a default; an
    Example Object's `value`, where Shutterstock shows a `$ref` of its API): a
    `$ref` there is not OpenAPI's to follow."""
    parts = pointer.split("/")
    for i, part in enumerate(parts):
        if i == 0 or parts[i - 1] in _NAMED_KEYS:
            continue  # a name (a property called `default`), not a keyword
        if part.startswith("x-") or part in _LITERALS:
            return True
        if part == "value" and i >= 2 and parts[i - 2] == "examples":
            return True
    return False


def _refs(data: Any) -> Iterator[tuple[str, Any]]:
    """(pointer of the `$ref` key, its value) for every `$ref` in a document,
    outside specification extensions and literal values."""
    for trail, node in _mappings(data):
        if "$ref" not in node or (trail is not None and trail[0] in _NAMED_KEYS):
            continue  # a property named `$ref` (GitHub's SCIM groups) is no $ref
        if not _not_openapi(pointer := _pointer(trail)):
            yield f"{pointer}/$ref", node["$ref"]


def ref_problems(specs: SpecSet, doc: Document) -> list[Problem]:
    """Every `$ref` (in this spec and the files it refers to) that leads nowhere.

    Checked before the OpenAPI validator, whose messages for these are Python
    internals ('NoneType' object is not subscriptable, maximum recursion depth).
    """
    problems: list[Problem] = []
    queue = [doc]
    checked = set(specs.documents)  # documents read before were checked with their spec
    checked.add(doc.path)
    while queue and len(problems) < MAX_REF_PROBLEMS:
        current = queue.pop(0)
        for at, ref in _refs(current.data):
            try:
                specs.chase(current, ref, at)
            except P2pgenError as exc:
                problems += exc.problems
        for path, reached in specs.documents.items():  # files the $refs led to
            if path not in checked:
                checked.add(path)
                queue.append(reached)
    return problems[:MAX_REF_PROBLEMS]


def _too_deep(doc: Document) -> Problem:
    """A located problem for a document nested beyond the validator's reach."""
    deepest, where = 0, ""
    for trail, _ in _mappings(doc.data):
        depth = len(_keys(trail))
        if depth > deepest:
            deepest, where = depth, _pointer(trail)
    problem = doc.problem(
        f"the document nests {deepest} levels deep, more than the OpenAPI validator "
        "can follow; give nested schemas names under components/schemas and refer to "
        "them with $ref",
        where,
    )
    return replace(problem, pointer=one_line(where, 120))


def _external_schema_problems(specs: SpecSet, doc: Document) -> list[Problem]:
    """Validate schemas in other files that this spec refers to, one at a time.

    When the validator fails on such a schema it raises Python errors instead of
    reporting it; validated alone, its problems get pointers in its own file.
    """
    problems: list[Problem] = []
    for at, ref in _refs(doc.data):
        if not isinstance(ref, str) or ref.startswith("#") or "#" not in ref:
            continue
        try:
            target = specs.follow(doc, ref, at)
        except P2pgenError:
            continue
        if target.doc is doc:
            continue
        wrapper = {
            "openapi": "3.0.3",
            "info": {"title": "x", "version": "1"},
            "paths": {},
            "components": {"schemas": {"T": target.node}},
        }
        try:
            found = list(_validator("3.0")(wrapper).iter_errors())
        except Exception:  # then there is nothing better to say about it
            continue
        located: list[tuple[Any, ...]] = []
        for error in found:
            path = tuple(error.absolute_path)
            prefix = ("components", "schemas", "T")
            if path[:3] == prefix:
                rest = path[3:]
            elif located:
                rest = located[-1] + path
            else:
                rest = path
            located.append(rest)
            problems.append(
                target.doc.problem(
                    f"invalid schema (used by $ref {ref!r} in {doc.path.name}): "
                    f"{one_line(error.message)}",
                    target.pointer + (join_pointer(*rest) if rest else ""),
                )
            )
    return _deepest(problems)


def _deepest(problems: list[Problem]) -> list[Problem]:
    """Drop problems whose pointer is a prefix of another's (said more precisely)."""
    return [
        p
        for p in problems
        if not any(
            o.pointer.startswith(p.pointer + "/") for o in problems if o is not p
        )
    ]


# a `$ref` whose value (a string: quoted, or a plain YAML scalar) is not `#...`; not
# Microsoft Graph's path keys `.../$ref": {`, which made its 20 MB take the slow validator
_EXTERNAL_REF = re.compile(r"""\$ref['"]?\s*:\s*(?:['"](?!#)|(?![#{\[|>'"])\S)""")


def _validation_cache(doc: Document) -> Path | None:
    """Marker file that says this exact text passed validation before, with its warnings.

    Validating a large spec (Stripe: 20 s) dominates a run; the marker is keyed
    by the text's sha256, the validator's version and p2pgen's. Specs with $refs into
    other files are not cached, since those files can change on their own.
    """
    if os.environ.get("P2PGEN_NO_CACHE") or _EXTERNAL_REF.search(doc.text):
        return None
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    key = f"{doc.sha256}-{_VALIDATOR_VERSION}-{__version__}"
    return Path(home) / "p2pgen" / "valid-specs" / key


def _resolves(data: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _conforms(version: str, doc: Document) -> bool:
    """Whether a self-contained document passes the OpenAPI Initiative's JSON Schema.

    jsonschema-rs checks Stripe's 7 MB against it in milliseconds, where
    openapi-spec-validator takes 20 s and more. Only a document that fails (or holds
    `$ref`s into other files, whose targets this check does not reach) goes on to
    openapi-spec-validator, for its located messages. What openapi-spec-validator checks
    beyond the schema and a link needs is checked where the link uses it: defaults of
    the wrong type (warnings below), `$ref`s that lead nowhere (`ref_problems`), and an
    operation's undeclared path parameters and duplicate operationIds (`specs`).
    """
    if _EXTERNAL_REF.search(doc.text):
        return False
    checker = _schema_checker(version)
    try:
        return checker is not None and bool(checker.is_valid(doc.data))
    except ValueError:  # e.g. nested too deep: openapi-spec-validator says where
        return False


@functools.cache
def _schema_checker(version: str) -> Any:
    """A compiled checker of the OpenAPI schema for a version, from the copy that
    openapi-spec-validator ships; None when that copy cannot be read.
    """
    import jsonschema_rs  # noqa: PLC0415 (a spec validated before never needs it)

    folder = {"2.0": "v2.0", "3.0": "v3.0"}.get(version, "v3.1")
    try:
        text = (
            resources.files("openapi_spec_validator")
            .joinpath("resources", "schemas", folder, "schema.json")
            .read_text(encoding="utf-8")
        )
        return jsonschema_rs.validator_for(json.loads(text))
    except (OSError, ValueError):
        return None  # then openapi-spec-validator does all the work


def _validator(version: str) -> type[Any]:
    """openapi-spec-validator's class for an OpenAPI version (3.1 if unknown).

    Imported here, not at the top: it takes a second to import, and a spec
    validated before (see _validation_cache) never needs it.
    """
    # With jsonschema-rs installed (p2pgen's own check above uses it) the validator
    # would switch to it, whose messages are vaguer and which fails on deep nesting
    # with an error of its own; its Python backend locates errors precisely.
    os.environ.setdefault(
        "OPENAPI_SPEC_VALIDATOR_SCHEMA_VALIDATOR_BACKEND", "jsonschema"
    )
    import openapi_spec_validator as osv  # noqa: PLC0415

    known = {"2.0": osv.OpenAPIV2SpecValidator, "3.0": osv.OpenAPIV30SpecValidator}
    return known.get(version, osv.OpenAPIV31SpecValidator)


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


DEFAULTS_TEXT = "schema defaults do not match their types"
CONSTRAINTS_TEXT = "schema constraints pydantic cannot build; p2pgen ignores them"
IGNORED_TEXT = "schema keywords JSON Schema 2020-12 refuses; p2pgen ignores them"


def _located(doc: Document, found: list[tuple[str, str]], what: str) -> list[Problem]:
    """Warnings for (pointer, message) pairs, at most MAX_WARNINGS and a count."""
    warnings = [
        replace(doc.problem(message, pointer), severity="warning")
        for pointer, message in found[:MAX_WARNINGS]
    ]
    if len(found) > MAX_WARNINGS:
        warnings.append(_more(doc, len(found) - MAX_WARNINGS, what))
    return warnings


def _capped(found: list[Problem], what: str, doc: Document) -> list[Problem]:
    """At most MAX_WARNINGS of one kind, then one line counting the rest."""
    if len(found) <= MAX_WARNINGS:
        return found
    return [*found[:MAX_WARNINGS], _more(doc, len(found) - MAX_WARNINGS, what)]


def _more(doc: Document, count: int, what: str) -> Problem:
    return replace(doc.problem(f"{count} more {what}"), severity="warning")


# Where a node is: its key or index, then its parent's trail (None: the document).
# Made for every node of a large spec, so the pointer is only spelled when needed.
Trail = tuple[Any, "Trail"] | None


def _mappings(data: Any) -> Iterator[tuple[Trail, dict[Any, Any]]]:
    """(trail, mapping) for every mapping in a document, in document order.

    Iterative, so a deeply nested document cannot overflow the stack.
    """
    stack: list[tuple[Trail, Any]] = [(None, data)]
    while stack:
        trail, node = stack.pop()
        if isinstance(node, dict):
            yield trail, node
            items: Iterator[tuple[Any, Any]] = iter(node.items())
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        children = [((k, trail), v) for k, v in items if isinstance(v, dict | list)]
        stack.extend(reversed(children))


def _keys(trail: Trail) -> list[Any]:
    """The keys and indexes from the document down to a trail's node."""
    keys: list[Any] = []
    while trail is not None:
        key, trail = trail
        keys.append(key)
    return keys[::-1]


def _pointer(trail: Trail) -> str:
    """The JSON pointer of a trail."""
    keys = _keys(trail)
    return join_pointer(*keys) if keys else ""


def _mismatched_default(
    node: dict[Any, Any], trail: Trail
) -> Iterator[tuple[str, str]]:
    """(pointer, message) when a schema's `default` is not of its `type`."""
    declared = node.get("type")
    if isinstance(declared, str) and "default" in node and declared in _PYTHON_TYPES:
        value = node["default"]
        wrong_bool = isinstance(value, bool) and declared in ("integer", "number")
        if value is not None and (
            wrong_bool or not isinstance(value, _PYTHON_TYPES[declared])
        ):
            yield (
                _pointer(trail) + "/default",
                f"default {_json(value)} is not a {declared}; p2pgen ignores it",
            )


def _json(value: Any) -> str:
    try:
        return one_line(json.dumps(value, default=str), 80)
    except (ValueError, TypeError, RecursionError):
        return one_line(repr(value), 80)


def _unusable_constraints(
    node: dict[Any, Any], trail: Trail
) -> Iterator[tuple[str, str]]:
    """(pointer, message) for each constraint the generated models would drop."""
    for key in [k for k in node if k in CONSTRAINT_KEYS]:
        reason = unusable_constraint(key, node[key])
        if reason is not None:
            yield (
                f"{_pointer(trail)}/{key}",
                f"{reason}; pydantic cannot build it, so p2pgen ignores it",
            )
