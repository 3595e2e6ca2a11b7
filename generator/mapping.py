"""The mapping file's typed model; every block remembers where its keys are written."""

from __future__ import annotations

import dataclasses
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import Problem

ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a template's `{dotted.path}` placeholders; `{{` and `}}` are literal braces
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


@dataclass(frozen=True)
class Loc:
    file: str
    line: int
    column: int

    def problem(
        self,
        message: str,
        severity: str = "error",
        *,
        code: str = "",
        targets: tuple[str, ...] = (),
    ) -> Problem:
        return Problem(
            self.file,
            self.line,
            self.column,
            message,
            severity=severity,
            code=code,
            targets=targets,
        )


@dataclass(frozen=True)
class Expr:
    """One mapping value: how a target value is produced."""

    kind: str  # path | const | template | env | stub | each
    loc: Loc
    path: str = ""  # path (copy / from) or the list that `each` walks
    value: Any = None  # const
    text: str = ""  # template text, env variable or stub function name
    table: tuple[tuple[Any, Any], ...] | None = None  # map
    default: Any = None
    has_default: bool = False
    convert: str | None = None  # as
    fields: tuple[FieldMap, ...] = ()  # each


@dataclass(frozen=True)
class FieldMap:
    target: str  # dotted target path
    expr: Expr
    loc: Loc


@dataclass(frozen=True, kw_only=True)
class Block:
    """A block of the mapping file that remembers where each of its values is."""

    loc: Loc
    locs: dict[str, Loc] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def at(self, key: str) -> Loc:
        """Where the value of `key` is written, else where the block starts."""
        return self.locs.get(key, self.loc)


@dataclass(frozen=True)
class Pagination(Block):
    style: str
    param: str | None = None
    next: str | None = None
    next_from_last: str | None = None
    has_more: str | None = None
    limit_param: str | None = None
    limit: int | None = None
    start: int | None = None  # page: default 1; offset: default 0
    max_pages: int = 10000


@dataclass(frozen=True)
class Incremental(Block):
    param: str
    field: str


@dataclass(frozen=True)
class Auth:
    scheme: str | None
    env: dict[str, str]
    loc: Loc


@dataclass(frozen=True)
class IdempotencyKey(Block):
    header: str
    source: str


@dataclass(frozen=True)
class Endpoint(Block):
    spec: Path
    operation: str
    params: tuple[FieldMap, ...] = ()
    auth: Auth | None = None
    records: str | None = None
    pagination: Pagination | None = None
    incremental: Incremental | None = None
    idempotency_key: IdempotencyKey | None = None


@dataclass(frozen=True)
class Mapping:
    path: Path
    sha256: str
    name: str
    description: str
    source: Endpoint
    target: Endpoint
    fields: tuple[FieldMap, ...]


def is_identifier(name: str) -> bool:
    """Whether a name can be a Python function or variable name."""
    return bool(IDENTIFIER.fullmatch(name)) and not keyword.iskeyword(name)


def template_paths(text: str) -> list[str]:
    """The dotted source paths named by a `template`'s placeholders."""
    return [
        m.group(1).strip() for m in PLACEHOLDER.finditer(text) if m.group(1) is not None
    ]


def unbalanced_braces(text: str) -> bool:
    """Whether a template has a '{' or '}' that is neither a placeholder nor doubled."""
    rest = PLACEHOLDER.sub("", text)
    return "{" in rest or "}" in rest


def json_safe(value: Any) -> Any:
    """YAML may give dates and datetimes; the generated code deals in JSON values."""
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
