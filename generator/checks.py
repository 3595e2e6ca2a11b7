"""Type checks of mapping expressions against the source and target schemas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from generator.errors import Code, Problem, did_you_mean
from generator.mapping import (
    Expr,
    FieldMap,
    Loc,
    json_safe,
    template_paths,
    unbalanced_braces,
)
from generator.schemas import Miss, Shape, Walker, value_type
from generator.specs import Schema

CONVERSION_RESULT = {
    "string": ({"string"}, ""),
    "integer": ({"integer"}, ""),
    "number": ({"number"}, ""),
    "boolean": ({"boolean"}, ""),
    "date": ({"string"}, "date"),
    "datetime": ({"string"}, "date-time"),
}


class TypeChecker:
    """Collects problems into a shared list; never raises."""

    def __init__(self, walker: Walker, problems: list[Problem]) -> None:
        self.walker = walker
        self.problems = problems

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
        targets = {fm.target for fm in fields}
        for fm in fields:
            parts = fm.target.split(".")
            for i in range(1, len(parts)):
                if ".".join(parts[:i]) in targets:
                    self.error(
                        fm.loc,
                        f"{what}: {fm.target!r} sets a key inside "
                        f"{'.'.join(parts[:i])!r}, which is mapped as a whole",
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
            required = self._required(target, fm.target)
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
            fm.target[len(prefix) :].split(".")[0]
            for fm in fields
            if fm.target.startswith(prefix)
        }
        missing = (
            sorted(
                name
                for name in shape.required
                if name not in mapped
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
                    f"{prefix}{name}"
                    + (f" (source has {hint.split(chr(39))[1]!r})" if hint else "")
                )
            loc = fields[0].loc if fields else Loc("", 0, 0)
            self.error(
                Loc(loc.file, loc.line, loc.column) if not prefix else loc,
                f"{what}: required target field(s) not mapped: {', '.join(hints)}",
                Code.REQUIRED_FIELD_UNMAPPED,
                tuple(prefix + name for name in missing),
            )
        for name in sorted(mapped):
            if name in shape.properties:
                nested = [
                    fm for fm in fields if fm.target.startswith(f"{prefix}{name}.")
                ]
                if nested:
                    self._check_required(
                        nested, source, shape.properties[name], what, f"{prefix}{name}."
                    )

    def check_expr(
        self, expr: Expr, source: Schema, target: Schema, what: str, required: bool
    ) -> None:
        tshape = self.walker.shape(target)
        loc = expr.loc
        if expr.kind == "const":
            try:
                value = json_safe(expr.value)
            except ValueError as exc:
                self.error(loc, f"{what}: {exc}", Code.INVALID_VALUE)
                return
            self._check_value(value, tshape, loc, what, "constant")
            return
        if expr.kind == "env":
            self._check_types(
                {"string"}, "", tshape, loc, what, f"env {expr.text}", expr
            )
            return
        if expr.kind == "stub":
            return
        if expr.kind == "template":
            if unbalanced_braces(expr.text):
                self.error(
                    loc,
                    f"{what}: unbalanced '{{' or '}}' in template; close the placeholder,"
                    " or write '{{' and '}}' for literal braces",
                    Code.TEMPLATE_SYNTAX,
                )
            for path in template_paths(expr.text):
                if not path:
                    self.error(
                        loc,
                        f"{what}: empty placeholder '{{}}' in template; write "
                        "'{{' and '}}' for literal braces",
                        Code.TEMPLATE_SYNTAX,
                    )
                else:
                    self.source_field(source, path, loc, what)
            self._check_types({"string"}, "", tshape, loc, what, "template", expr)
            return
        sshape = self.source_field(source, expr.path, loc, what)
        if expr.kind == "each":
            if sshape is not None and "array" not in sshape.types and sshape.types:
                self.error(
                    loc,
                    f"{what}: each: source field {expr.path!r} is "
                    f"{sshape.describe()}, not a list",
                    Code.TYPE_MISMATCH,
                )
                return
            if tshape.types and "array" not in tshape.types:
                self.error(
                    loc,
                    f"{what}: each: target is {tshape.describe()}, not a list",
                    Code.TYPE_MISMATCH,
                )
                return
            if sshape is None or sshape.items is None or tshape.items is None:
                return
            self.check_fields(expr.fields, sshape.items, tshape.items, what)
            return
        if sshape is None:
            return
        if expr.table is not None:
            self._check_map(expr, sshape, tshape, what)
            return
        if expr.has_default:
            self._check_value(json_safe(expr.default), tshape, loc, what, "default")
        self._check_types(
            set(sshape.types),
            sshape.format,
            tshape,
            loc,
            what,
            f"source {expr.path!r}",
            expr,
        )
        if sshape.enum and tshape.enum and not expr.convert:
            lacking = [v for v in sshape.enum if v is not None and v not in tshape.enum]
            if lacking:
                self.error(
                    loc,
                    f"{what}: source {expr.path!r} can be "
                    f"{', '.join(map(_show, lacking))}, which the target enum lacks; "
                    "add a `map:` (with `from:`) to translate them",
                    Code.ENUM_NOT_COVERED,
                )
        source_optional = sshape.nullable or not self._required(source, expr.path)
        if required and source_optional and not expr.has_default:
            self.warn(
                loc,
                f"{what}: source {expr.path!r} may be missing or null but the "
                "target requires it; such records will be dead-lettered (add "
                "`default:` to avoid that)",
                Code.OPTIONAL_TO_REQUIRED,
            )

    def _required(self, schema: Schema, path: str) -> bool:
        """Whether every step of a dotted path is a required property."""
        current = schema
        for part in path.split("."):
            shape = self.walker.shape(current)
            if part not in shape.required or part not in shape.properties:
                return False
            current = shape.properties[part]
        return True

    def _check_map(self, expr: Expr, sshape: Shape, tshape: Shape, what: str) -> None:
        pairs = list(expr.table or ())
        outputs = [("map value", value) for _, value in pairs]
        if expr.has_default:
            outputs.append(("default", expr.default))
        for label, value in outputs:
            if expr.convert:
                # the conversion decides the type that reaches the target
                self._check_types({"string"}, "", tshape, expr.loc, what, "map", expr)
                break
            self._check_value(json_safe(value), tshape, expr.loc, what, label)
        keys = [key for key, _ in pairs]
        for i, key in enumerate(keys):
            for other in keys[i + 1 :]:
                if key == other:
                    clash = value_type(key) != value_type(other)
                    self.error(
                        expr.loc,
                        (
                            f"{what}: map keys {_show(key)} and {_show(other)} clash "
                            "(true equals 1 in YAML); quote one of them"
                            if clash
                            else f"{what}: map key {_show(key)} is given twice"
                        ),
                        Code.MAP_KEY,
                    )
        source_types = set(sshape.types) - {"null"}
        for key in keys:
            key_type = value_type(key)
            if (
                source_types
                and key_type not in source_types
                and not (key_type == "integer" and "number" in source_types)
            ):
                self.error(
                    expr.loc,
                    f"{what}: map key {_show(key)} is {key_type} but source "
                    f"{expr.path!r} is {sshape.describe()}; it can never match"
                    + ("; quote it" if "string" in source_types else ""),
                    Code.MAP_KEY,
                )
        if sshape.enum and not expr.has_default:
            lacking = [
                v
                for v in sshape.enum
                if v is not None
                and not any(k == v and value_type(k) == value_type(v) for k in keys)
            ]
            if lacking:
                self.error(
                    expr.loc,
                    f"{what}: map has no entry for source value(s) "
                    f"{', '.join(map(_show, lacking))}; add them or a `default:`",
                    Code.ENUM_NOT_COVERED,
                )

    def source_field(
        self, source: Schema, path: str, loc: Loc, what: str
    ) -> Shape | None:
        """The shape of a source field, or None after reporting that it is missing."""
        found = self.walker.find(source, path)
        if isinstance(found, Miss):
            self.error(
                loc,
                f"{what}: source field {found.describe()}",
                Code.SOURCE_FIELD_NOT_FOUND,
            )
            return None
        return self.walker.shape(found)

    def _check_value(
        self, value: Any, tshape: Shape, loc: Loc, what: str, label: str
    ) -> None:
        if value is None:
            return
        if tshape.enum is not None and value not in tshape.enum:
            self.error(
                loc,
                f"{what}: {label} {_show(value)} is not one of the target's "
                f"values: {', '.join(map(_show, tshape.enum))}",
                Code.VALUE_NOT_IN_ENUM,
            )
            return
        self._check_types(
            {value_type(value)},
            "",
            tshape,
            loc,
            what,
            f"{label} {_show(value)}",
            None,
            suggest=False,
        )

    def _check_types(
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
            source_types, source_format = CONVERSION_RESULT[expr.convert]
            source_types = set(source_types)
        src = source_types - {"null"}
        tgt = set(tshape.types) - {"null"}
        if not src or not tgt:
            return
        widened = set(tgt) | ({"integer"} if "number" in tgt else set())
        if src <= widened:
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


def _show(value: Any) -> str:
    """A mapping or spec value as the user wrote it: true, null, 'text', 3."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return repr(value)


def _suggest(tshape: Shape) -> str:
    if tshape.format == "date-time":
        return "datetime"
    if tshape.format == "date":
        return "date"
    for name in ("string", "integer", "number", "boolean"):
        if name in tshape.types:
            return name
    return ""
