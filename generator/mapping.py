"""The mapping file's typed model; every block remembers where its keys are written."""

from __future__ import annotations

import dataclasses
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import Problem
from generator.runtime.mapping import path_of

ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a template's `{dotted.path}` placeholders; `{{` and `}}` are literal braces
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
# source.filter's operators; a bare value means eq
FILTER_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists")
DEFAULT_SCHEDULE = "0 * * * *"  # hourly, UTC
RECORD = "$record."  # inside `each`, a source path from the enclosing record
# The five cron fields both deploy targets read: (name, lowest, highest, names).
# Day of week stops at 6: Kubernetes' cron parser refuses 7 for Sunday.
CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, tuple("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())),
    ("day of week", 0, 6, tuple("SUN MON TUE WED THU FRI SAT".split())),
)


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
class TextAt:
    """Where a scalar's text is written, to locate a position inside it."""

    loc: Loc  # its first character (exact), else where the scalar starts
    exact: bool  # the text is written as is: plain, quoted without escapes, or `|`
    indent: int = 0  # a `|` block: the column its lines start at

    def at(self, line: int, column: int) -> Loc:
        """The file position of the text's `line` (from 1) and `column` (from 0)."""
        if not self.exact:
            return self.loc
        if line == 1:
            return Loc(self.loc.file, self.loc.line, self.loc.column + column)
        return Loc(self.loc.file, self.loc.line + line - 1, self.indent + column)


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
    convert: tuple[str, ...] = ()  # as: its steps, applied in order
    fields: tuple[FieldMap, ...] = ()  # each
    tree: Any = None  # expr: the parsed expression (generator/expr.py)
    at: TextAt | None = None  # expr: where its text is, for located errors


@dataclass(frozen=True)
class FieldMap:
    target: str  # dotted target path
    expr: Expr
    loc: Loc
    plain: bool = False  # a plain string read as a constant (source.params)


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
    token_auth: str | None = (
        None  # OAuth2: how the client proves itself at the token URL
    )
    stub: str | None = None  # a function of the script that signs each request


@dataclass(frozen=True)
class IdempotencyKey(Block):
    header: str
    source: str


SIGNATURE_SCHEMES = ("standard-webhooks", "stripe", "hmac-sha256")
DEFAULT_TOLERANCE = 300  # seconds a signed timestamp may be off


@dataclass(frozen=True)
class Signature(Block):
    """`source.signature` of a webhook source: how deliveries are signed."""

    scheme: str  # one of SIGNATURE_SCHEMES
    secret_env: str  # env.secret: the variable holding the signing secret
    header: str | None = None  # hmac-sha256: the header with the hex digest
    tolerance: int | None = None  # seconds; default DEFAULT_TOLERANCE


@dataclass(frozen=True)
class Condition:
    """One `source.filter` condition: the record's `field` compared by `op` to `value`."""

    field: str  # dotted source path
    op: str  # one of FILTER_OPERATORS
    value: Any
    loc: Loc


@dataclass(frozen=True)
class Filter:
    """`source.filter`: conditions a record must all meet, or a stub predicate."""

    conditions: tuple[Condition, ...]
    stub: str  # the predicate's function name ("" with conditions)
    loc: Loc
    expr: Expr | None = None  # {expr: "..."}: one expression instead


# target.on_match and target.on_missing: their values, the default first
ON_MATCH = ("update", "skip")
ON_MISSING = ("create", "skip", "dead_letter")


@dataclass(frozen=True)
class TargetCall(Block):
    """`target.match` or `target.update`: another operation of the target API.

    Its params are values as in `fields`; an update's may be `{match: PATH}`
    (Expr kind "match"), a field of the matched target record.
    """

    operation: str
    params: tuple[FieldMap, ...] = ()
    records: str | None = None  # match: the list in its answer (None: the body)


@dataclass(frozen=True)
class Batch(Block):
    """`target.batch`: up to `size` records per request to a bulk operation."""

    size: int
    path: str | None = None  # the list of bodies in the request body (None: the body)
    results: str | None = None  # per-record results in the answer, in request order


@dataclass(frozen=True)
class Delete(TargetCall):
    """`target.delete`: records meeting `when` are deleted at the target instead."""

    when: Filter | None = None


# lookups: which API a lookup asks, and what a record it finds nothing for gets
LOOKUP_APIS = ("target", "source")
LOOKUP_ON_MISSING = ("dead_letter", "omit", "skip")


@dataclass(frozen=True)
class Lookup(TargetCall):
    """One `lookups` entry: a GET of the source or target API, one per distinct key."""

    name: str = ""
    api: str = LOOKUP_APIS[0]
    on_missing: str = LOOKUP_ON_MISSING[0]


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
    filter: Filter | None = None  # source only
    # source.body: a JSON-like tree (dicts, lists) whose leaves are constant or env Exprs
    body: dict[str, Any] | None = None
    webhook: str | None = None  # source only: a `webhooks` entry instead of `operation`
    event_id: str | None = None  # webhook: path of the event's id (None: webhook-id)
    signature: Signature | None = None  # webhook: required
    match: TargetCall | None = None  # target only, from here on
    on_match: str = ""  # "" when not written: update with `update`, else skip
    update: TargetCall | None = None
    on_missing: str = ON_MISSING[0]
    batch: Batch | None = None
    delete: Delete | None = None


@dataclass(frozen=True)
class Mapping:
    path: Path
    sha256: str
    name: str
    description: str
    source: Endpoint
    target: Endpoint
    fields: tuple[FieldMap, ...]
    schedule: str = DEFAULT_SCHEDULE  # cron, UTC: when the deploy targets run the link
    fields_loc: Loc | None = None  # where `fields` is written
    lookups: tuple[Lookup, ...] = ()


def body_leaves(tree: Any, prefix: str = "") -> list[tuple[str, Expr]]:
    """(dotted path, expression) of each leaf of a `source.body` tree; a list
    item's path ends at the list."""
    if isinstance(tree, Expr):
        return [(prefix, tree)]
    if isinstance(tree, list):
        return [leaf for item in tree for leaf in body_leaves(item, prefix)]
    return [
        leaf
        for key, value in tree.items()
        for leaf in body_leaves(
            value, (prefix + "." if prefix else "") + path_of([key])
        )
    ]


def is_identifier(name: str) -> bool:
    """Whether a name can be a Python function or variable name."""
    return bool(IDENTIFIER.fullmatch(name)) and not keyword.iskeyword(name)


def from_record(path: str) -> str | None:
    """The path after `$record.` when a path starts with it, else None."""
    return path[len(RECORD) :] if path.startswith(RECORD) else None


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


def cron_problem(text: str) -> str | None:
    """What is wrong with a five-field cron expression, or None when it is valid."""
    parts = text.split()
    if len(parts) != len(CRON_FIELDS):
        return f"has {len(parts)} field(s), not 5"
    for part, (what, low, high, names) in zip(parts, CRON_FIELDS, strict=True):
        for item in part.split(","):
            problem = _cron_item(item, low, high, names)
            if problem:
                return f"{what} {part!r}: {problem}"
    return None


def _cron_item(item: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    """One entry of a cron field's list: *, N, N-M, each with an optional /STEP."""
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and 1 <= int(step) <= high):
        return f"step {step!r} must be a whole number from 1 to {high}"
    if span == "*":
        return None
    if slash and "-" not in span:
        return f"a step needs '*' or a range before it (e.g. '*/{step}')"
    first, dash, last = span.partition("-")
    values = []
    for bound in (first, last) if dash else (first,):
        upper = bound.upper()
        value = names.index(upper) + low if upper in names else None
        if value is None and bound.isdigit():
            value = int(bound)
        if value is None or not low <= value <= high:
            spelled = f" or {names[0]}-{names[-1]}" if names else ""
            return f"{bound or item!r} is not a value from {low} to {high}{spelled}"
        values.append(value)
    if values != sorted(values):
        return f"range {span!r} runs backwards"
    return None
