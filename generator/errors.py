"""One exception family for every problem p2pgen reports about its inputs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_MESSAGE = 2000  # characters of one message; longer ones quote a hostile value


class Code(StrEnum):
    """What kind of problem it is: stable names, catalogued in docs/mapping.md.

    Tools (such as `p2pgen init`) act on these and on a problem's structured
    fields, never on the wording of its message.
    """

    # the mapping file itself
    MAPPING_SYNTAX = "mapping-syntax"
    UNKNOWN_KEY = "unknown-key"
    DUPLICATE_KEY = "duplicate-key"
    MISSING_KEY = "missing-key"
    INVALID_VALUE = "invalid-value"
    CONFLICTING_KEYS = "conflicting-keys"
    # the specs and operations it names
    SPEC_NOT_FOUND = "spec-not-found"
    OPERATION_NOT_FOUND = "operation-not-found"
    NO_RECORDS = "no-records"
    NO_REQUEST_BODY = "no-request-body"
    # parameters
    UNKNOWN_PARAMETER = "unknown-parameter"
    PARAMETER_VALUE = "parameter-value"
    REQUIRED_PARAMETER_UNMAPPED = "required-parameter-unmapped"
    PATH_PARAMETER_MAY_BE_MISSING = "path-parameter-may-be-missing"  # a warning
    PARAMS_PLAIN_STRING = "params-plain-string"  # a warning
    SOURCE_BODY_UNMAPPED = "source-body-unmapped"
    # fields and expressions
    SOURCE_FIELD_NOT_FOUND = "source-field-not-found"
    RESPONSE_FIELD_NOT_FOUND = "response-field-not-found"
    TARGET_FIELD_NOT_FOUND = "target-field-not-found"
    TARGET_READ_ONLY = "target-read-only"
    FIELD_INSIDE_MAPPED_FIELD = "field-inside-mapped-field"
    REQUIRED_FIELD_UNMAPPED = "required-field-unmapped"
    TYPE_MISMATCH = "type-mismatch"
    FORMAT_MISMATCH = "format-mismatch"
    VALUE_NOT_IN_ENUM = "value-not-in-enum"
    ENUM_NOT_COVERED = "enum-not-covered"
    MAP_KEY = "map-key"
    TEMPLATE_SYNTAX = "template-syntax"
    EXPR_SYNTAX = "expr-syntax"
    EXPR_FUNCTION = "expr-function"
    OPTIONAL_TO_REQUIRED = "optional-to-required"
    # source.filter
    FILTER_OPERATOR = "filter-operator"
    FILTER_VALUE = "filter-value"
    FILTER_TYPE = "filter-type"
    # target.match, target.update
    MATCH_OPERATION = "match-operation"
    MATCH_FIELD = "match-field"
    UPDATE_BODY = "update-body"
    LOOKUP = "lookup"
    BATCH = "batch"
    # auth
    AUTH_SCHEME = "auth-scheme"
    AUTH_UNSUPPORTED = "auth-unsupported"
    AUTH_ENV = "auth-env"
    # stubs
    STUB_NAME_TAKEN = "stub-name-taken"
    STUB_SIGNATURE = "stub-signature"


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in an input file, located as precisely as we can.

    `code` says what kind of problem it is; `targets` names the target fields
    it is about where there are several (required-field-unmapped).
    """

    file: str
    line: int = 0
    column: int = 0
    message: str = field(default="", compare=True)
    pointer: str = ""
    severity: str = "error"
    code: str = field(default="", compare=False)
    targets: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Problem:
        """A Problem as dataclasses.asdict() wrote it (its targets came back a list)."""
        return cls(**{**entry, "targets": tuple(entry.get("targets") or ())})

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        if self.pointer:
            where += f": at {self.pointer.translate(_VISIBLE_CONTROLS)}"
        prefix = "warning: " if self.severity == "warning" else ""
        message = self.message.translate(_VISIBLE_CONTROLS)
        if len(message) > MAX_MESSAGE:  # a value quoted from a hostile file
            message = message[:MAX_MESSAGE] + f"... ({len(message):,} characters)"
        return f"{where}: {prefix}{message}"


# A newline or other control character from an input file must not break a
# message into lines that look like other messages.
_VISIBLE_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(32), 0x7F, 0x85)} | {
    0x2028: "\\u2028",  # line and paragraph separators: line breaks to some tools
    0x2029: "\\u2029",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


class P2pgenError(Exception):
    """Bad input: carries every problem found, so they can be reported together."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(
        cls,
        file: str,
        message: str,
        *,
        line: int = 0,
        column: int = 0,
        pointer: str = "",
        code: str = "",
    ) -> P2pgenError:
        return cls([Problem(file, line, column, message, pointer, code=code)])


def one_line(text: str, limit: int = 300) -> str:
    """A message on one line, cut at `limit` characters (it may quote a long value
    from a spec, such as a whole example)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return a "; did you mean 'x'?" suffix when a candidate is close to name."""
    options = sorted({str(c) for c in candidates})
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"; did you mean {close[0]!r}?" if close else ""
