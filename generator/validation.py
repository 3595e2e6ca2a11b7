"""Validate OpenAPI documents: every error with its JSON pointer, sloppy defaults as warnings."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from openapi_spec_validator import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
)

from generator.errors import P2pgenError, Problem
from generator.specs import Document, SpecSet, escape_pointer_part, join_pointer

_VALIDATOR_VERSION = version("openapi-spec-validator")
MAX_WARNINGS = 5  # per spec; real specs can hold hundreds of sloppy defaults


def validate_document(specs: SpecSet, doc: Document) -> list[Problem]:
    """Validate with openapi-spec-validator; raise every error, return warnings.

    A schema `default` that does not match the schema's own type is common in real
    specs (Mailchimp has dozens) and harmless to a client, so it is a warning.
    """
    if doc.path in specs.validated:
        return specs.validated[doc.path]
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
    validator_class = _VALIDATORS.get(version[:3], OpenAPIV31SpecValidator)
    cache = _validation_cache(doc)
    try:
        found = (
            []
            if cache is not None and cache.is_file()
            else list(
                validator_class(doc.data, base_uri=doc.path.as_uri()).iter_errors()
            )
        )
    except Exception as exc:  # the validator raises assorted errors on broken refs
        raise P2pgenError(
            [doc.problem(f"invalid OpenAPI document: {_short(str(exc))}")]
        ) from None
    errors: list[Problem] = []
    value_errors = 0
    located: list[tuple[tuple[Any, ...], str]] = []
    for error in found:
        path = tuple(error.absolute_path)
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
        errors.append(
            doc.problem(
                f"invalid OpenAPI document: {_short(message)}",
                join_pointer(*path) if path else "",
            )
        )
    if errors:
        raise P2pgenError(errors)
    if cache is not None and cache.is_file():
        value_errors = 0  # only a hint when no default is found; not kept
    mismatched = list(_mismatched_defaults(doc.data, ""))
    warnings = [
        replace(doc.problem(message, pointer), severity="warning")
        for pointer, message in mismatched[:MAX_WARNINGS]
    ]
    if len(mismatched) > MAX_WARNINGS:
        warnings.append(
            replace(
                doc.problem(
                    f"{len(mismatched) - MAX_WARNINGS} more schema defaults do not "
                    "match their types"
                ),
                severity="warning",
            )
        )
    if value_errors and not warnings:
        warnings.append(
            replace(
                doc.problem("a schema default or example does not match its type"),
                severity="warning",
            )
        )
    specs.validated[doc.path] = warnings
    if cache is not None and not cache.is_file():
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(doc.path.name, encoding="utf-8")
        except OSError:
            pass  # a cache that cannot be written only costs time
    return warnings


_EXTERNAL_REF = re.compile(r"""\$ref['"]?\s*:\s*['"]?(?!#)[^\s'"]""")


def _validation_cache(doc: Document) -> Path | None:
    """Marker file that says this exact text passed validation before.

    Validating a large spec (Stripe: 20 s) dominates a run; the marker is keyed
    by the text's sha256 and the validator's version. Specs with $refs into
    other files are not cached, since those files can change on their own.
    """
    if os.environ.get("P2PGEN_NO_CACHE") or _EXTERNAL_REF.search(doc.text):
        return None
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    key = f"{doc.sha256}-{_VALIDATOR_VERSION}"
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


_VALIDATORS: dict[str, type[Any]] = {
    "2.0": OpenAPIV2SpecValidator,
    "3.0": OpenAPIV30SpecValidator,
    "3.1": OpenAPIV31SpecValidator,
}
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _mismatched_defaults(node: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer, message) for every schema whose `default` is not of its `type`."""
    if isinstance(node, dict):
        declared = node.get("type")
        if (
            isinstance(declared, str)
            and "default" in node
            and declared in _PYTHON_TYPES
        ):
            value = node["default"]
            wrong_bool = isinstance(value, bool) and declared in ("integer", "number")
            if value is not None and (
                wrong_bool or not isinstance(value, _PYTHON_TYPES[declared])
            ):
                yield (
                    pointer + "/default",
                    f"default {json.dumps(value)} is not a {declared}; p2pgen ignores it",
                )
        for key, value in node.items():
            yield from _mismatched_defaults(
                value, f"{pointer}/{escape_pointer_part(str(key))}"
            )
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _mismatched_defaults(value, f"{pointer}/{i}")


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
