"""The load stage: the mapping, the two specs (validated) and the operations it names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from generator.errors import Code, P2pgenError, Problem
from generator.mapping import Endpoint, Mapping
from generator.mapping_reader import load_mapping
from generator.specs import (
    Document,
    Operation,
    SpecSet,
    find_operation,
    find_webhook,
)
from generator.validation import validate_document


@dataclass(frozen=True)
class Loaded:
    """A mapping whose specs are valid and whose operations exist."""

    mapping: Mapping
    specs: SpecSet
    source: Operation
    target: Operation


def load(mapping_path: Path, problems: list[Problem]) -> Loaded | None:
    """Read the mapping and its specs; add every problem found to `problems`."""
    try:
        mapping = load_mapping(mapping_path)
    except P2pgenError as exc:
        problems.extend(exc.problems)
        return None
    specs = SpecSet()
    validated: dict[Path, list[Problem]] = {}
    ops: dict[str, Operation] = {}
    for side, endpoint in (("source", mapping.source), ("target", mapping.target)):
        try:
            doc = _load_spec(specs, endpoint, side)
            _add_new(problems, validate_once(specs, doc, validated))
            ops[side] = _find(specs, doc, endpoint)
        except P2pgenError as exc:
            problems.extend(exc.problems)
    if len(ops) < 2:
        return None
    return Loaded(mapping, specs, ops["source"], ops["target"])


def validate_once(
    specs: SpecSet, doc: Document, validated: dict[Path, list[Problem]]
) -> list[Problem]:
    """The validate stage for one document, once per run: its warnings."""
    if doc.path not in validated:
        validated[doc.path] = validate_document(specs, doc)
    return validated[doc.path]


def _add_new(problems: list[Problem], found: Iterable[Problem]) -> None:
    problems.extend(p for p in found if p not in problems)


def _load_spec(specs: SpecSet, endpoint: Endpoint, side: str) -> Document:
    try:
        exists, is_file = endpoint.spec.exists(), endpoint.spec.is_file()
    except OSError as exc:  # e.g. a name too long for the file system
        is_file = False
        problem = f"cannot be read ({exc.strerror})"
    else:
        problem = "is not a regular file" if exists else "not found"
    if not is_file:
        raise P2pgenError(
            [
                endpoint.at("spec").problem(
                    f"{side}.spec: file {str(endpoint.spec)[:200]!r} {problem} (paths are "
                    "relative to the mapping file)",
                    code=Code.SPEC_NOT_FOUND,
                )
            ]
        )
    return specs.load(endpoint.spec)


def _find(specs: SpecSet, doc: Document, endpoint: Endpoint) -> Operation:
    key = "operation" if endpoint.webhook is None else "webhook"
    try:
        if endpoint.webhook is not None:
            return find_webhook(specs, doc, endpoint.webhook)
        return find_operation(specs, doc, endpoint.operation)
    except P2pgenError as exc:
        if exc.problems[0].pointer:
            raise  # located in the spec, not in the mapping
        message = exc.problems[0].message
        where = "" if endpoint.webhook is not None else f" in {doc.path.name}"
        raise P2pgenError(
            [
                endpoint.at(key).problem(
                    f"{message}{where}", code=Code.OPERATION_NOT_FOUND
                )
            ]
        ) from None
