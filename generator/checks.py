"""Type checks of mapping expressions against the source and target schemas."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from generator.errors import Code, Problem, did_you_mean
from generator.kinds.expressions import EXPRESSIONS, As, show
from generator.mapping import (
    RECORD,
    Condition,
    Expr,
    FieldMap,
    Loc,
    from_record,
    json_safe,
)
from generator.runtime.mapping import path_keys, path_of
from generator.schemas import Miss, Shape, Walker, takes, value_type
from generator.specs import Schema


class TypeChecker:
    """Collects problems into a shared list; never raises."""

    def __init__(self, walker: Walker, problems: list[Problem]) -> None:
        self.walker = walker
        self.problems = problems
        self.record: Schema | None = None  # what `$record.` paths start from
        self.each_depth = 0  # how many `each` blocks the fields checked are in

    def error(
        self, loc: Loc, message: str, code: Code, targets: tuple[str, ...] = ()
    ) -> None:
        self.problems.append(loc.problem(message, code=code, targets=targets))

    def warn(self, loc: Loc, message: str, code: Code) -> None:
        self.problems.append(loc.problem(message, severity="warning", code=code))

    def check_fields(
        self, fields: Iterable[FieldMap], source: Schema, target: Schema, what: str
    ) -> None:
        fields = list(fields)
        if not self.each_depth:
            self.record = source
        targets = {fm.target for fm in fields}
        for fm in fields:
            parts = path_keys(fm.target)
            for i in range(1, len(parts)):
                if path_of(parts[:i]) in targets:
                    self.error(
                        fm.loc,
                        f"{what}: {fm.target!r} sets a key inside "
                        f"{path_of(parts[:i])!r}, which is mapped as a whole",
                        Code.FIELD_INSIDE_MAPPED_FIELD,
                    )
            found = self.walker.find(target, fm.target)
            if isinstance(found, Miss):
                self.error(
                    fm.loc,
                    f"{what}: target field {found.describe(' in the request body')}",
                    Code.TARGET_FIELD_NOT_FOUND,
                )
                continue
            shape = self.walker.shape(found)
            if shape.read_only:
                self.error(
                    fm.loc,
                    f"{what}: target field {fm.target!r} is readOnly "
                    "(the target sets it); remove this line",
                    Code.TARGET_READ_ONLY,
                )
                continue
            required = self.required(target, fm.target)
            self.check_expr(fm.expr, source, found, f"{what}.{fm.target}", required)
        self._check_required(fields, source, target, what, prefix="")

    def _check_required(
        self,
        fields: list[FieldMap],
        source: Schema,
        target: Schema,
        what: str,
        prefix: str,
    ) -> None:
        shape = self.walker.shape(target)
        mapped = {
            path_keys(fm.target[len(prefix) :])[0]
            for fm in fields
            if fm.target.startswith(prefix)
        }
        missing = (
            sorted(
                name
                for name in shape.required
                if name not in mapped
                # `required` may name a property the schema never defines (VTEX)
                and name in shape.properties
                and not self.walker.shape(shape.properties[name]).read_only
            )
            if shape.properties
            else sorted(shape.required - mapped)
        )
        missing = [n for n in missing if n in shape.properties or not shape.properties]
        if missing:
            source_names = list(self.walker.shape(source).properties)
            hints = []
            for name in missing:
                hint = did_you_mean(name, source_names)
                hints.append(
                    prefix
                    + path_of([name])
                    + (f" (source has {hint.split(chr(39))[1]!r})" if hint else "")
                )
            loc = fields[0].loc if fields else Loc("", 0, 0)
            self.error(
                Loc(loc.file, loc.line, loc.column) if not prefix else loc,
                f"{what}: required target field(s) not mapped: {', '.join(hints)}",
                Code.REQUIRED_FIELD_UNMAPPED,
                tuple(prefix + path_of([name]) for name in missing),
            )
        for name in sorted(mapped):
            if name in shape.properties:
                inner = f"{prefix}{path_of([name])}."
                nested = [fm for fm in fields if fm.target.startswith(inner)]
                if nested:
                    self._check_required(
                        nested, source, shape.properties[name], what, inner
                    )

    def check_expr(
        self, expr: Expr, source: Schema, target: Schema, what: str, required: bool
    ) -> None:
        """Check one expression by its kind (`required`: the target needs a value)."""
        EXPRESSIONS[expr.kind].check(self, expr, source, target, what, required)

    def required(self, schema: Schema, path: str) -> bool:
        """Whether every step of a dotted path is a required property."""
        current = schema
        for part in path_keys(path):
            shape = self.walker.shape(current)
            if part not in shape.required or part not in shape.properties:
                return False
            current = shape.properties[part]
        return True

    def optional(self, source: Schema, path: str) -> bool:
        """Whether a source path may be missing: a step not required, or a list
        index (the list may be shorter)."""
        rest = from_record(path)
        if rest is not None and self.record is not None:
            source, path = self.record, rest
        return not self.required(source, path)

    def source_field(
        self,
        source: Schema,
        path: str,
        loc: Loc,
        what: str,
        record_prefix: bool = False,
    ) -> Shape | None:
        """The shape of a source field, or None after reporting that it is missing.

        With `record_prefix`, a `$record.` path inside `each` starts at the record.
        """
        found = self.resolve(source, path, record_prefix)
        if isinstance(found, str):
            self.error(loc, f"{what}: {found}", Code.SOURCE_FIELD_NOT_FOUND)
            return None
        return found

    def resolve(
        self, source: Schema, path: str, record_prefix: bool = False
    ) -> Shape | str:
        """The shape of a source field, or why there is none."""
        rest = from_record(path)
        if rest is not None:
            if not (record_prefix and self.each_depth and self.record is not None):
                return f"{RECORD!r} reaches the enclosing record from inside " + (
                    f"`each` (with a path, `from` or `expr`); write {rest!r} here"
                    if not self.each_depth
                    else "`each` in a path, `from` or `expr`, not here; "
                    "use {expr: ...} with concat(...) to join record fields"
                )
            source, path = self.record, rest
        found = self.walker.find(source, path, lists=True)
        if isinstance(found, Miss):
            return f"source field {found.describe()}"
        return self.walker.shape(found)

    def check_condition(self, cond: Condition, source: Schema, what: str) -> None:
        """A `source.filter` condition that cannot hold for any value of its field."""
        shape = self.source_field(source, cond.field, cond.loc, what)
        if shape is None or cond.op == "exists":
            return
        what = f"{what}.{cond.field}"
        types = set(shape.types) - {"null"}
        numbers = {"integer", "number"}
        if (
            cond.op in ("gt", "gte", "lt", "lte")
            and types
            and not types
            & {
                *numbers,
                "string",
            }
        ):
            self.error(
                cond.loc,
                f"{what}: {cond.op} compares numbers, dates or text, but source "
                f"{cond.field!r} is {shape.describe()}",
                Code.FILTER_TYPE,
            )
            return
        values = cond.value if cond.op in ("in", "not_in") else [cond.value]
        for value in map(json_safe, values):
            kind = value_type(value)
            if (
                types
                and kind not in types
                and not (kind in numbers and types & numbers)
            ):
                self.error(
                    cond.loc,
                    f"{what}: {cond.op} {show(value)} is {kind} but source "
                    f"{cond.field!r} is {shape.describe()}; it can never match"
                    + ("; quote it" if "string" in types else ""),
                    Code.FILTER_TYPE,
                )
            elif shape.enum and cond.op in ("eq", "in") and value not in shape.enum:
                self.error(
                    cond.loc,
                    f"{what}: {show(value)} is not one of the values of source "
                    f"{cond.field!r} ({', '.join(map(show, shape.enum))}); "
                    "it can never match",
                    Code.FILTER_TYPE,
                )

    def check_value(
        self, value: Any, tshape: Shape, loc: Loc, what: str, label: str
    ) -> None:
        if value is None:
            return
        if tshape.enum is not None and value not in tshape.enum:
            self.error(
                loc,
                f"{what}: {label} {show(value)} is not one of the target's "
                f"values: {', '.join(map(show, tshape.enum))}",
                Code.VALUE_NOT_IN_ENUM,
            )
            return
        self.check_types(
            {value_type(value)},
            "",
            tshape,
            loc,
            what,
            f"{label} {show(value)}",
            None,
            suggest=False,
        )

    def check_types(
        self,
        source_types: set[str],
        source_format: str,
        tshape: Shape,
        loc: Loc,
        what: str,
        label: str,
        expr: Expr | None,
        suggest: bool = True,
    ) -> None:
        if expr is not None and expr.convert:
            source_types, source_format, step = As.result(
                expr.convert, source_types, source_format
            )
            if step:
                self.error(
                    loc,
                    f"{what}: `as: {step}` needs a string but {label} is "
                    f"{' or '.join(sorted(source_types - {'null'}))}; "
                    f"put `string` before it, as in `as: [string, {step}]`",
                    Code.TYPE_MISMATCH,
                )
                return
        src = source_types - {"null"}
        tgt = set(tshape.types) - {"null"}
        if not src or not tgt:
            return
        if takes(tgt, src):
            if (
                tshape.format in ("date", "date-time")
                and source_format in ("date", "date-time")
                and source_format != tshape.format
                and "string" in src
            ):
                fix = "date" if tshape.format == "date" else "datetime"
                self.error(
                    loc,
                    f"{what}: {label} is a {source_format} but the target "
                    f"expects a {tshape.format}; add `as: {fix}`",
                    Code.FORMAT_MISMATCH,
                )
            return
        fix = _suggest(tshape) if suggest else ""
        self.error(
            loc,
            f"{what}: {label} is {' or '.join(sorted(src))} but the target "
            f"expects {tshape.describe()}" + (f"; add `as: {fix}`" if fix else ""),
            Code.TYPE_MISMATCH,
        )


def _suggest(tshape: Shape) -> str:
    if tshape.format == "date-time":
        return "datetime"
    if tshape.format == "date":
        return "date"
    for name in ("string", "integer", "number", "boolean"):
        if name in tshape.types:
            return name
    return ""
