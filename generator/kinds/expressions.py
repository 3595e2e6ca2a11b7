"""Field expression kinds and their modifiers: one descriptor each, and the registry.

A kind is picked by its mapping key (`from`, `const`, ...; a bare string is a
`path`) and names the keys that may go with it. It reads its keys (mapping_reader),
type-checks its value against the source and target schemas (checks.py) and
compiles to a Python expression (expressions.py). The runtime helpers it needs
are the names its compiled code calls (`_get`, `_render`, ...): runtime_copy
copies into the script the pieces of generator/runtime/mapping.py those names
define. A modifier (`map`, `default`, `as`) is read once for every kind that
takes it; `as` wraps the compiled code of any kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from generator import expr as expr_language
from generator.errors import Code, did_you_mean
from generator.literals import py_literal
from generator.mapping import (
    ENV_VAR,
    Expr,
    FieldMap,
    Loc,
    TextAt,
    from_record,
    json_safe,
    template_paths,
    unbalanced_braces,
)
from generator.schemas import Shape, value_type
from generator.specs import Schema

if TYPE_CHECKING:
    from generator.checks import TypeChecker
    from generator.mapping_reader import Node, Parser

    Keys = Mapping[str, tuple[Node, Loc]]


class Compiler(Protocol):
    """What a compile rule may ask of the compiler (generator/expressions.py)."""

    env_vars: set[str]  # the variables the script needs at start-up

    def fields(self, fields: tuple[FieldMap, ...], data: str, depth: int) -> str: ...


class Modifier:
    """A key that goes with some kinds and sets fields of their Expr."""

    key: str = ""

    def read(
        self, parser: Parser, entry: tuple[Node, Loc], what: str
    ) -> dict[str, Any]:
        """The Expr fields this key sets."""
        return {}

    def wrap(self, expr: Expr, code: str) -> str:
        """The compiled code with this modifier applied (kinds apply their own)."""
        return code


class MapTable(Modifier):
    """`map`: translate source values through a table (checked and compiled by `path`)."""

    key = "map"

    def read(
        self, parser: Parser, entry: tuple[Node, Loc], what: str
    ) -> dict[str, Any]:
        node = entry[0]
        if not node.is_map:
            parser.error(
                node.loc,
                f"{what}.map must be a mapping of source values to target values",
            )
            return {}
        return {"table": tuple((k, v.value()) for k, v, _ in node.items())}


class Default(Modifier):
    """`default`: the value when the source value is missing or null."""

    key = "default"

    def read(
        self, parser: Parser, entry: tuple[Node, Loc], what: str
    ) -> dict[str, Any]:
        return {"has_default": True, "default": entry[0].value()}


class As(Modifier):
    """`as`: conversions and string steps applied last, in order (a name or a list).

    The last step's result type is what the target gets; a string step needs a
    string before it (the source's, or a conversion's).
    """

    key = "as"
    # step -> (JSON types, format) of what it produces
    results: ClassVar[dict[str, tuple[frozenset[str], str]]] = {
        "string": (frozenset({"string"}), ""),
        "integer": (frozenset({"integer"}), ""),
        "number": (frozenset({"number"}), ""),
        "boolean": (frozenset({"boolean"}), ""),
        "date": (frozenset({"string"}), "date"),
        "datetime": (frozenset({"string"}), "date-time"),
        "lowercase": (frozenset({"string"}), ""),
        "uppercase": (frozenset({"string"}), ""),
        "strip": (frozenset({"string"}), ""),
        "md5": (frozenset({"string"}), ""),
        "sha256": (frozenset({"string"}), ""),
    }
    string_steps: ClassVar[frozenset[str]] = frozenset(
        {"lowercase", "uppercase", "strip", "md5", "sha256"}
    )

    def read(
        self, parser: Parser, entry: tuple[Node, Loc], what: str
    ) -> dict[str, Any]:
        node, loc = entry
        entries = [(n, loc) for n in node.elements()] if node.is_list else [entry]
        if not entries:
            parser.error(node.loc, f"{what}.as: the list of steps is empty")
            return {}
        steps = []
        for item in entries:
            step = parser.string(item, f"{what}.as")
            if step is None:
                return {}
            if step not in self.results:
                names = tuple(self.results)
                parser.error(
                    item[0].loc,
                    f"{what}: unknown conversion {step!r}"
                    f"{did_you_mean(step, names)}; use one of {', '.join(names)}",
                )
                return {}
            steps.append(step)
        return {"convert": tuple(steps)}

    @classmethod
    def result(
        cls, steps: tuple[str, ...], types: set[str], fmt: str
    ) -> tuple[set[str], str, str]:
        """The types and format the steps give a value of `types`, and the first
        string step that gets something other than a string ("" if none)."""
        for step in steps:
            known = types - {"null"}
            if step in cls.string_steps and known and known != {"string"}:
                return types, fmt, step
            results, fmt = cls.results[step]
            types = set(results)
        return types, fmt, ""

    def wrap(self, expr: Expr, code: str) -> str:
        for step in expr.convert:
            code = f"_as_{step}({code})"
        return code


MODIFIERS: dict[str, Modifier] = {m.key: m for m in (MapTable(), Default(), As())}


class ExprKind:
    """The base of every kind: how it is written, checked and compiled."""

    name: str = ""  # Expr.kind
    key: str = ""  # the mapping key that picks it
    companions: tuple[str, ...] = ()  # modifiers and other keys it takes
    reads_record: bool = True  # else a constant or the environment
    makes_parameter: bool = True  # may give a request parameter's value

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        """The Expr of `{key: value, ...}`; `common` holds the modifiers' fields."""
        text = parser.string(keys[self.key], f"{what}.{self.key}") or ""
        return Expr(self.name, loc, text=text, **common)

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        """Report what cannot match the target field (`required`: the target needs it)."""

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        """Python source for the value; `data` names the record (or list item)."""
        raise NotImplementedError


class Path(ExprKind):
    name = "path"
    key = "from"
    companions = ("map", "default", "as")

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        path = parser.string(keys["from"], f"{what}.from") or ""
        return Expr("path", loc, path=path, **common)

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        sshape = checker.source_field(
            source, expr.path, expr.loc, what, record_prefix=True
        )
        if sshape is None:
            return
        tshape = checker.walker.shape(target)
        if expr.table is not None:
            _check_map(checker, expr, sshape, tshape, what)
            return
        if expr.has_default:
            checker.check_value(
                json_safe(expr.default), tshape, expr.loc, what, "default"
            )
        checker.check_types(
            set(sshape.types),
            sshape.format,
            tshape,
            expr.loc,
            what,
            f"source {expr.path!r}",
            expr,
        )
        if sshape.enum and tshape.enum and not expr.convert:
            lacking = [v for v in sshape.enum if v is not None and v not in tshape.enum]
            if lacking:
                checker.error(
                    expr.loc,
                    f"{what}: source {expr.path!r} can be "
                    f"{', '.join(map(show, lacking))}, which the target enum lacks; "
                    "add a `map:` (with `from:`) to translate them",
                    Code.ENUM_NOT_COVERED,
                )
        source_optional = sshape.nullable or checker.optional(source, expr.path)
        if required and source_optional and not expr.has_default:
            checker.warn(
                expr.loc,
                f"{what}: source {expr.path!r} may be missing or null but the "
                "target requires it; such records will be dead-lettered (add "
                "`default:` to avoid that)",
                Code.OPTIONAL_TO_REQUIRED,
            )

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        data, path = scoped(expr.path, data)
        if expr.table is not None:
            table = {json_safe(k): json_safe(v) for k, v in expr.table}
            default = (
                py_literal(json_safe(expr.default)) if expr.has_default else "_MISSING"
            )
            return (
                f"_lookup(_get({data}, {path}), {py_literal(table)}, {default}, {path})"
            )
        if expr.has_default:
            return (
                f"_get({data}, {path}, default={py_literal(json_safe(expr.default))})"
            )
        return f"_get({data}, {path})"


class Const(ExprKind):
    name = "const"
    key = "const"
    reads_record = False

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        return Expr("const", loc, value=keys["const"][0].value())

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        try:
            value = json_safe(expr.value)
        except ValueError as exc:
            checker.error(expr.loc, f"{what}: {exc}", Code.INVALID_VALUE)
            return
        checker.check_value(
            value, checker.walker.shape(target), expr.loc, what, "constant"
        )

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        return py_literal(json_safe(expr.value))


class Template(ExprKind):
    name = "template"
    key = "template"
    companions = ("as",)

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        if unbalanced_braces(expr.text):
            checker.error(
                expr.loc,
                f"{what}: unbalanced '{{' or '}}' in template; close the placeholder,"
                " or write '{{' and '}}' for literal braces",
                Code.TEMPLATE_SYNTAX,
            )
        for path in template_paths(expr.text):
            if not path:
                checker.error(
                    expr.loc,
                    f"{what}: empty placeholder '{{}}' in template; write "
                    "'{{' and '}}' for literal braces",
                    Code.TEMPLATE_SYNTAX,
                )
            else:
                checker.source_field(source, path, expr.loc, what)
        checker.check_types(
            {"string"},
            "",
            checker.walker.shape(target),
            expr.loc,
            what,
            "template",
            expr,
        )

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        return f"_render({py_literal(expr.text)}, {data})"


class Env(ExprKind):
    name = "env"
    key = "env"
    companions = ("default", "as")
    reads_record = False

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        expr = super().read(parser, keys, loc, what, common)
        if expr is not None and expr.text and not ENV_VAR.fullmatch(expr.text):
            parser.error(
                keys["env"][0].loc,
                f"{what}: {expr.text!r} is not an environment "
                "variable name (letters, digits and _)",
            )
        return expr

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        checker.check_types(
            {"string"},
            "",
            checker.walker.shape(target),
            expr.loc,
            what,
            f"env {expr.text}",
            expr,
        )

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        name = py_literal(expr.text)
        if expr.has_default:
            return f"os.environ.get({name}, {py_literal(json_safe(expr.default))})"
        compiler.env_vars.add(expr.text)  # required at start-up
        return f"os.environ[{name}]"


class Stub(ExprKind):
    """Custom code: a function of the script's stubs region fills the value."""

    name = "stub"
    key = "stub"

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        expr = super().read(parser, keys, loc, what, common)
        if expr is not None and expr.text:
            parser.function_name(expr.text, keys["stub"][0].loc, what)
        return expr

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        return f"{expr.text}(record)" if depth == 0 else f"{expr.text}(record, {data})"


class Each(ExprKind):
    """A list of objects, one per item of a source list, each with its own fields."""

    name = "each"
    key = "each"
    companions = ("fields",)
    makes_parameter = False

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        source = parser.string(keys["each"], f"{what}.each") or ""
        if "fields" not in keys:
            parser.error(
                loc,
                f"{what}: 'each' needs 'fields' (the target item's fields)",
                Code.MISSING_KEY,
            )
            return None
        fields = parser.field_maps(keys["fields"][0], f"{what}.fields")
        return Expr("each", loc, path=source, fields=fields)

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        sshape = checker.source_field(
            source, expr.path, expr.loc, what, record_prefix=True
        )
        tshape = checker.walker.shape(target)
        if sshape is not None and "array" not in sshape.types and sshape.types:
            checker.error(
                expr.loc,
                f"{what}: each: source field {expr.path!r} is "
                f"{sshape.describe()}, not a list",
                Code.TYPE_MISMATCH,
            )
            return
        if tshape.types and "array" not in tshape.types:
            checker.error(
                expr.loc,
                f"{what}: each: target is {tshape.describe()}, not a list",
                Code.TYPE_MISMATCH,
            )
            return
        if sshape is None or sshape.items is None or tshape.items is None:
            return
        checker.each_depth += 1
        try:
            checker.check_fields(expr.fields, sshape.items, tshape.items, what)
        finally:
            checker.each_depth -= 1

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        item = "item" if depth == 0 else f"item{depth + 1}"
        inner = compiler.fields(expr.fields, item, depth + 1)
        data, path = scoped(expr.path, data)
        return f"[{inner} for {item} in _items({data}, {path})]"


class Expression(ExprKind):
    """`{expr: "..."}`: an expression over source fields (generator/expr.py).

    Parsed when the mapping is read, typed against the source schema when it is
    checked (errors point into the text), compiled to Python calling the
    helpers of generator/runtime/mapping.py. Also a `source.filter` predicate.
    """

    name = "expr"
    key = "expr"

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        text = parser.string(keys["expr"], f"{what}.expr")
        if text is None:
            return None
        at = keys["expr"][0].text_at()
        try:
            tree = expr_language.parse(text)
        except expr_language.ExprError as exc:
            parser.error(
                at.at(exc.line, exc.column),
                f"{what}: expr: {exc.message}{_where(at, exc)}",
                Code(exc.code),
            )
            return None
        return Expr("expr", loc, text=text, tree=tree, at=at, **common)

    def infer(
        self, checker: TypeChecker, expr: Expr, source: Schema, what: str
    ) -> expr_language.Type | None:
        """The expression's type, or None after reporting its first mistake."""
        try:
            return expr_language.infer(expr.tree, _SourceFields(checker, source))
        except expr_language.ExprError as exc:
            at = expr.at or TextAt(expr.loc, False)
            checker.error(
                at.at(exc.line, exc.column),
                f"{what}: expr: {exc.message}{_where(at, exc)}",
                Code(exc.code),
            )
            return None

    def check(
        self,
        checker: TypeChecker,
        expr: Expr,
        source: Schema,
        target: Schema,
        what: str,
        required: bool,
    ) -> None:
        kind = self.infer(checker, expr, source, what)
        if kind is None:
            return
        loc = _start(expr)
        tshape = checker.walker.shape(target)
        wanted = set(tshape.types) - {"null"}
        if wanted == {"integer"} and kind.types == {"number"}:
            checker.error(
                loc,
                f"{what}: the expression gives a number but the target expects "
                "an integer; wrap it in round(...) or int(...)",
                Code.TYPE_MISMATCH,
            )
            return
        fix = {"date": "date", "date-time": "datetime"}.get(tshape.format)
        if fix and kind.fmt in ("date", "date-time") and kind.fmt != tshape.format:
            checker.error(
                loc,
                f"{what}: the expression gives a {kind.fmt} but the target "
                f"expects a {tshape.format}; wrap it in {fix}(...)",
                Code.FORMAT_MISMATCH,
            )
            return
        outcomes = expr_language.outcomes(expr.tree)
        if tshape.enum is not None and outcomes and expr.at is not None:
            for literal in outcomes:  # each value the target's enum must hold
                at = expr.at.at(literal.line, literal.column)
                checker.check_value(literal.value, tshape, at, what, "expr: value")
        else:
            checker.check_types(
                set(kind.types),
                kind.fmt,
                tshape,
                loc,
                what,
                "the expression",
                None,
                suggest=False,
            )
        if required and kind.null:
            checker.warn(
                loc,
                f"{what}: the expression is null when a source field it reads is "
                "missing, but the target requires it; such records will be "
                "dead-lettered (wrap it in coalesce(..., a default) to avoid that)",
                Code.OPTIONAL_TO_REQUIRED,
            )

    def check_predicate(
        self, checker: TypeChecker, expr: Expr, source: Schema, what: str
    ) -> None:
        """A `source.filter` expression: it must give true or false."""
        kind = self.infer(checker, expr, source, what)
        if kind is not None and not kind.only(frozenset({"boolean", "null"})):
            checker.error(
                _start(expr),
                f"{what}: expr: a filter must be true or false, but this gives "
                f"{kind.describe()}; compare it, as in `status == 'paid'`",
                Code.FILTER_TYPE,
            )

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        return expr_language.to_python(expr.tree, data)


class _SourceFields:
    """The source fields an expression reads, as the checker sees them."""

    def __init__(self, checker: TypeChecker, source: Schema) -> None:
        self.checker = checker
        self.source = source

    def field(self, path: str) -> expr_language.Type | str:
        found = self.checker.resolve(self.source, path, record_prefix=True)
        if isinstance(found, str):
            return found
        optional = self.checker.optional(self.source, path)
        return _type(found, optional)

    def item_field(self, path: str, item: str) -> expr_language.Type | str:
        found = self.checker.resolve(self.source, path, record_prefix=True)
        if isinstance(found, str):
            return found
        if found.items is None:
            return expr_language.ANY
        if not item:
            return _type(self.checker.walker.shape(found.items), False)
        shape = self.checker.resolve(found.items, item)
        if isinstance(shape, str):
            return shape.replace("source field", "item field", 1)
        return _type(shape, True)


def _type(shape: Shape, optional: bool) -> expr_language.Type:
    types = frozenset(shape.types - {"null"}) or frozenset(shape.types)
    return expr_language.Type(types, shape.format, shape.nullable or optional)


def _start(expr: Expr) -> Loc:
    """Where an expression's text starts (else its mapping)."""
    return expr.at.at(1, 0) if expr.at is not None else expr.loc


def _where(at: TextAt, exc: expr_language.ExprError) -> str:
    """Where in the expression, when the file position cannot show it."""
    if at.exact:
        return ""
    return f" (line {exc.line}, column {exc.column + 1} of the expression)"


class LookedUp(ExprKind):
    """`{lookup: NAME, field: PATH}`: a field of the record a `lookups` entry found.

    Its checks against the looked-up record's schema are in checks_writes.py,
    which knows the lookups; the run loop looks the record up before transform().
    """

    name = "lookup"
    key = "lookup"
    companions = ("field", "default", "as")
    makes_parameter = False

    def read(
        self, parser: Parser, keys: Keys, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        name = parser.string(keys["lookup"], f"{what}.lookup")
        if "field" not in keys:
            parser.error(
                loc,
                f"{what}: 'lookup' needs 'field' (the field of the looked-up record)",
                Code.MISSING_KEY,
            )
            return None
        path = parser.string(keys["field"], f"{what}.field")
        if name is None or path is None:
            return None
        return Expr("lookup", loc, text=name, path=path, **common)

    def compile(self, expr: Expr, data: str, depth: int, compiler: Compiler) -> str:
        default = (
            f", default={py_literal(json_safe(expr.default))}"
            if expr.has_default
            else ""
        )
        return f"_looked_up({py_literal(expr.text)}, {py_literal(expr.path)}{default})"


EXPRESSION = Expression()  # also source.filter's {expr: ...}
EXPRESSIONS: dict[str, ExprKind] = {
    kind.name: kind
    for kind in (
        Path(),
        Const(),
        Template(),
        Env(),
        Stub(),
        Each(),
        EXPRESSION,
        LookedUp(),
    )
}


def expression_keys() -> tuple[str, ...]:
    """Every key an expression mapping may hold: each kind's key, then its companions."""
    return tuple(
        dict.fromkeys(
            key for kind in EXPRESSIONS.values() for key in (kind.key, *kind.companions)
        )
    )


def _check_map(
    checker: TypeChecker, expr: Expr, sshape: Shape, tshape: Shape, what: str
) -> None:
    """`map`: the table's values fit the target, its keys the source, none twice."""
    pairs = list(expr.table or ())
    outputs = [("map value", value) for _, value in pairs]
    if expr.has_default:
        outputs.append(("default", expr.default))
    if expr.convert:  # the steps decide the type that reaches the target
        types = {value_type(json_safe(value)) for _, value in outputs}
        checker.check_types(types, "", tshape, expr.loc, what, "map", expr)
    else:
        for label, value in outputs:
            checker.check_value(json_safe(value), tshape, expr.loc, what, label)
    keys = [key for key, _ in pairs]
    for i, key in enumerate(keys):
        for other in keys[i + 1 :]:
            if key == other:
                clash = value_type(key) != value_type(other)
                checker.error(
                    expr.loc,
                    (
                        f"{what}: map keys {show(key)} and {show(other)} clash "
                        "(true equals 1 in YAML); quote one of them"
                        if clash
                        else f"{what}: map key {show(key)} is given twice"
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
            checker.error(
                expr.loc,
                f"{what}: map key {show(key)} is {key_type} but source "
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
            checker.error(
                expr.loc,
                f"{what}: map has no entry for source value(s) "
                f"{', '.join(map(show, lacking))}; add them or a `default:`",
                Code.ENUM_NOT_COVERED,
            )


def scoped(path: str, data: str) -> tuple[str, str]:
    """The variable a source path reads and the path as a literal: `$record.`
    paths read the record (`src`), the others `data` (the record or list item)."""
    rest = from_record(path)
    return ("src", py_literal(rest)) if rest is not None else (data, py_literal(path))


def show(value: Any) -> str:
    """A mapping or spec value as the user wrote it: true, null, 'text', 3."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return repr(value)
