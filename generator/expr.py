"""`{expr: "..."}`: a small, safe expression language over source fields.

Parsed with Python's own parser (`ast`, mode "eval") and then held to an
allow-list: source paths, literals, `+ - * / // %`, comparisons, `and or not`,
`x if cond else y` and the functions in FUNCTIONS; anything else (attribute
access on values, other calls, subscripts, lambdas, comprehensions, f-strings,
`**`) is refused with its position. Paths with integer segments (`emails.0.email`)
and `$record.` paths are not Python, so they are blanked out to identifiers of
the same length before parsing: positions stay those of the text as written.

Three steps, all pure: `parse` (text -> tree of the classes below), `infer`
(tree -> Type, against the fields a `Fields` gives) and `to_python` (tree ->
Python source calling the helpers of generator/runtime/mapping.py). Every value
from the text reaches the code through `py_literal`.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

from generator.errors import Code, did_you_mean
from generator.literals import py_literal
from generator.mapping import from_record

MAX_LENGTH = 2000  # characters of one expression
MAX_DEPTH = 32  # nesting of operators and calls
MAX_INTEGER = 2**63  # larger integer literals are refused
LITERALS = {"null": None, "true": True, "false": False}  # as well as None/True/False

# a dotted source path: names and integer segments, or `$record.` and a path
_PATH = re.compile(
    r"(?:\$record|[A-Za-z_][A-Za-z0-9_]*)(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?![A-Za-z0-9_])))*"
)
_NUMBER = re.compile(r"[0-9.](?:[eE][+-]|[A-Za-z0-9_.])*")
_STRING = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.S
)

ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
ARITHMETIC |= {ast.FloorDiv: "//", ast.Mod: "%"}
COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<="}
COMPARISONS |= {ast.Gt: ">", ast.GtE: ">="}
NUMBERS = frozenset({"integer", "number"})
_OPERATORS = {ast.Pow: "**", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>"}
_OPERATORS |= {ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^"}


@dataclass(frozen=True)
class FunctionSpec:
    """An allowed function: how many arguments, and the runtime helper it calls."""

    least: int
    most: int | None  # None: any number
    helper: str


FUNCTIONS: dict[str, FunctionSpec] = {
    "lower": FunctionSpec(1, 1, "_as_lowercase"),
    "upper": FunctionSpec(1, 1, "_as_uppercase"),
    "strip": FunctionSpec(1, 1, "_as_strip"),
    "len": FunctionSpec(1, 1, "_len"),
    "round": FunctionSpec(1, 2, "_round"),
    "abs": FunctionSpec(1, 1, "_abs"),
    "min": FunctionSpec(2, None, "_min"),
    "max": FunctionSpec(2, None, "_max"),
    "sum": FunctionSpec(1, 2, "_sum"),
    "coalesce": FunctionSpec(2, None, "_coalesce"),
    "concat": FunctionSpec(1, None, "_concat"),
    "md5": FunctionSpec(1, 1, "_as_md5"),
    "sha256": FunctionSpec(1, 1, "_as_sha256"),
    "str": FunctionSpec(1, 1, "_as_string"),
    "int": FunctionSpec(1, 1, "_as_integer"),
    "float": FunctionSpec(1, 1, "_as_number"),
    "date": FunctionSpec(1, 1, "_as_date"),
    "datetime": FunctionSpec(1, 1, "_as_datetime"),
}


class ExprError(Exception):
    """A problem at a position of the expression (line from 1, column from 0)."""

    def __init__(self, message: str, line: int, column: int, code: Code) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.code = message, line, column, code


SYNTAX, FUNCTION = Code.EXPR_SYNTAX, Code.EXPR_FUNCTION
FIELD, TYPE = Code.SOURCE_FIELD_NOT_FOUND, Code.TYPE_MISMATCH


@dataclass(frozen=True)
class Node:
    line: int
    column: int
    text: str  # as written, for messages


@dataclass(frozen=True)
class PathRef(Node):
    path: str  # dotted, may start with `$record.`


@dataclass(frozen=True)
class Literal(Node):
    value: Any  # None, bool, int, float or str


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-", "+" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # one of ARITHMETIC's
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    left: Node
    ops: tuple[str, ...]  # COMPARISONS'
    rights: tuple[Node, ...]


@dataclass(frozen=True)
class Logic(Node):
    op: str  # "and" | "or"
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Choice(Node):
    test: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


# ---------------------------------------------------------------- parsing


def parse(text: str) -> Node:
    """The tree of an expression, or ExprError at the first thing not allowed."""
    if len(text) > MAX_LENGTH:
        raise ExprError(
            f"the expression is {len(text)} characters long, more than {MAX_LENGTH};"
            " split the logic into several fields or a {stub: ...}",
            1,
            0,
            SYNTAX,
        )
    blanked, paths = _blank_paths(text)
    if not blanked.strip():
        raise ExprError("the expression is empty", 1, 0, SYNTAX)
    lines = blanked.split("\n")
    try:  # in parentheses: leading spaces and line breaks are allowed
        with warnings.catch_warnings():  # `1if x else 2`: refused, not printed
            warnings.simplefilter("error", SyntaxWarning)
            tree = ast.parse(f"({blanked}\n)", mode="eval")
    except SyntaxError as exc:
        line = min(exc.lineno or 1, len(lines))
        column = max((exc.offset or 1) - 1 - (line == 1), 0)
        if (exc.lineno or 1) > len(lines):  # at the closing parenthesis we added
            column = len(lines[-1])
        reason = (exc.msg or "invalid syntax").split(" (")[0].split(". Perhaps")[0]
        raise ExprError(f"{reason}", line, column, SYNTAX) from None
    except (RecursionError, MemoryError):
        raise ExprError(
            f"the expression nests too deeply (at most {MAX_DEPTH} levels)",
            1,
            0,
            SYNTAX,
        ) from None
    except ValueError as exc:  # e.g. a number of thousands of digits
        raise ExprError(f"cannot be read: {str(exc)[:200]}", 1, 0, SYNTAX) from None
    return _Reader(text, lines, paths).node(tree.body, 0)


def _blank_paths(text: str) -> tuple[str, dict[tuple[int, int], str]]:
    """The text with every path that is not Python (integer segments, `$record.`)
    replaced by underscores of its length; those paths by (line, column)."""
    out: list[str] = []
    paths: dict[tuple[int, int], str] = {}
    i = 0
    while i < len(text):
        for pattern in (_STRING, _NUMBER, _PATH):
            match = pattern.match(text, i)
            if match and match.group(0):
                break
        else:
            out.append(text[i])
            i += 1
            continue
        word = match.group(0)
        segments = word.split(".")
        if pattern is _PATH and (
            word.startswith("$")
            or any(part.isdigit() for part in segments[1:])
            or (len(segments) > 1 and any(map(keyword.iskeyword, segments)))
        ):
            before = text[:i]
            line = before.count("\n") + 1
            column = len(before) - (before.rfind("\n") + 1)
            paths[(line, column)] = word
            word = "_" * len(word)
        out.append(word)
        i = match.end()
    return "".join(out), paths


class _Reader:
    """Turns Python's tree into ours, refusing what is not allowed."""

    def __init__(
        self,
        text: str,
        lines: list[str],
        paths: dict[tuple[int, int], str],
    ) -> None:
        self.text = text
        self.lines = lines
        self.paths = paths

    def where(self, node: ast.AST) -> tuple[int, int]:
        """Line and column in the text (the parsed text had "(" before it)."""
        line = getattr(node, "lineno", 1)
        start = getattr(node, "col_offset", 0) - (line == 1)
        raw = self.lines[line - 1].encode("utf-8")[:start]
        return line, len(raw.decode("utf-8", "replace"))

    def source(self, node: ast.AST) -> str:
        """The text of a node as written (the paths not blanked)."""
        return ast.get_source_segment(f"({self.text}\n)", node) or ""

    def fail(self, node: ast.AST, message: str, code: Code = SYNTAX) -> ExprError:
        line, column = self.where(node)
        return ExprError(message, line, column, code)

    def node(self, node: ast.expr, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(
                node, f"the expression nests too deeply (at most {MAX_DEPTH} levels)"
            )
        line, column = self.where(node)
        text = self.source(node)
        deeper = depth + 1
        if isinstance(node, ast.Name) and node.id in LITERALS:
            return Literal(line, column, text, LITERALS[node.id])
        if isinstance(node, ast.Name | ast.Attribute):
            return self.path(node, line, column, text)
        if isinstance(node, ast.Constant):
            return Literal(line, column, text, self.literal(node))
        if isinstance(node, ast.UnaryOp):
            ops = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
            if type(node.op) not in ops:
                raise self.fail(node, "'~' is not allowed; use - + * / // %")
            operand = self.node(node.operand, deeper)
            number = isinstance(operand, Literal) and type(operand.value) in (
                int,
                float,
            )
            if number and isinstance(node.op, ast.USub):
                assert isinstance(operand, Literal)
                return Literal(line, column, text, -operand.value)
            return Unary(line, column, text, ops[type(node.op)], operand)
        if isinstance(node, ast.BinOp):
            if type(node.op) not in ARITHMETIC:
                allowed = " ".join(ARITHMETIC.values())
                raise self.fail(
                    node,
                    f"operator {self.operator(node)!r} is not allowed; use {allowed}",
                )
            return Binary(
                line,
                column,
                text,
                ARITHMETIC[type(node.op)],
                self.node(node.left, deeper),
                self.node(node.right, deeper),
            )
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in COMPARISONS:
                    raise self.fail(
                        node,
                        "'in', 'not in', 'is' and 'is not' are not allowed; "
                        "compare with == != < <= > >= (x == null tests for a "
                        "missing value)",
                    )
            return Compare(
                line,
                column,
                text,
                self.node(node.left, deeper),
                tuple(COMPARISONS[type(op)] for op in node.ops),
                tuple(self.node(n, deeper) for n in node.comparators),
            )
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            values = tuple(self.node(n, deeper) for n in node.values)
            return Logic(line, column, text, word, values)
        if isinstance(node, ast.IfExp):
            return Choice(
                line,
                column,
                text,
                self.node(node.test, deeper),
                self.node(node.body, deeper),
                self.node(node.orelse, deeper),
            )
        if isinstance(node, ast.Call):
            return self.call(node, line, column, text, deeper)
        raise self.fail(node, f"{_construct(node)} is not allowed in an expression")

    def path(self, node: ast.expr, line: int, column: int, text: str) -> PathRef:
        parts: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name):
            raise self.fail(
                node,
                "attribute access is allowed only on source paths (such as "
                "customer.email), not on other values",
            )
        start = self.where(current)
        blank = self.paths.get(start)
        if blank is not None and not parts and current.id == "_" * len(blank):
            return PathRef(line, column, blank, blank)
        if blank is not None or not current.id.isascii():
            raise self.fail(node, f"{text!r} is not a source path")
        name = current.id
        if name in LITERALS or name in ("None", "True", "False"):
            raise self.fail(node, f"{name!r} is a value, not a source path")
        return PathRef(line, column, text, ".".join([name, *reversed(parts)]))

    def literal(self, node: ast.Constant) -> Any:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, int) and abs(value) < MAX_INTEGER:
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        if isinstance(value, int | float):
            raise self.fail(
                node,
                f"number {self.source(node)[:30]} is out of range "
                f"(whole numbers below 2**63, finite decimals)",
            )
        raise self.fail(node, f"{_construct(node)} is not allowed in an expression")

    @staticmethod
    def operator(node: ast.BinOp) -> str:
        return _OPERATORS.get(type(node.op), "?")

    def call(
        self, node: ast.Call, line: int, column: int, text: str, depth: int
    ) -> Call:
        allowed = ", ".join(FUNCTIONS)
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = self.source(node.func)
            raise self.fail(
                node,
                f"unknown function {name[:40]!r}{did_you_mean(name, FUNCTIONS)}"
                f" The functions are {allowed}",
                FUNCTION,
            )
        name = node.func.id
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(
                node, f"{name}() takes plain arguments (no name=, no *)", FUNCTION
            )
        spec = FUNCTIONS[name]
        count = len(node.args)
        if count < spec.least or (spec.most is not None and count > spec.most):
            raise self.fail(node, f"{name}() takes {_arity(spec)}", FUNCTION)
        args = tuple(self.node(a, depth) for a in node.args)
        if name == "sum" and not isinstance(args[0], PathRef):
            raise self.fail(
                node.args[0], "sum(list, ...): the list is a source path", FUNCTION
            )
        if (
            name == "sum"
            and len(args) == 2
            and not (isinstance(args[1], Literal) and isinstance(args[1].value, str))
        ):
            raise self.fail(
                node.args[1],
                "sum(list, 'field'): the field is a quoted path in each item",
                FUNCTION,
            )
        if (
            name == "round"
            and len(args) == 2
            and not (
                isinstance(args[1], Literal)
                and type(args[1].value) is int
                and 0 <= args[1].value <= 15
            )
        ):
            raise self.fail(
                node.args[1],
                "round(x, digits): digits is a whole number from 0 to 15",
                FUNCTION,
            )
        return Call(line, column, text, name, args)


def _construct(node: ast.AST) -> str:
    names = {
        ast.Subscript: "indexing with [...] (write a path: items.0.sku)",
        ast.Lambda: "lambda",
        ast.JoinedStr: "an f-string (use concat(...))",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.NamedExpr: "':='",
        ast.Await: "await",
        ast.Starred: "'*'",
    }
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__} literal"
    return names.get(type(node), type(node).__name__)


def _arity(spec: FunctionSpec) -> str:
    if spec.most == spec.least:
        return f"{spec.least} argument{'s' if spec.least > 1 else ''}"
    if spec.most is None:
        return f"{spec.least} or more arguments"
    return f"{spec.least} to {spec.most} arguments"


def reads(node: Node | None) -> Iterator[tuple[str, str]]:
    """The source paths an expression reads: (path, "") for a value, and
    (list path, item field) for sum(list, 'field')."""
    if node is None:
        return
    if isinstance(node, PathRef):
        yield node.path, ""
    elif isinstance(node, Call) and node.name == "sum" and len(node.args) == 2:
        listed, item = node.args
        if isinstance(listed, PathRef) and isinstance(item, Literal):
            yield listed.path, str(item.value)
        else:
            yield from reads(listed)
    else:
        for child in _children(node):
            yield from reads(child)


def outcomes(node: Node) -> tuple[Literal, ...] | None:
    """The literals an expression can give, when it gives nothing else
    (`'a' if x else 'b'`, `coalesce(x, 'none')` is not: x may be anything)."""
    if isinstance(node, Literal):
        return (node,)
    if isinstance(node, Choice):
        then, otherwise = outcomes(node.then), outcomes(node.otherwise)
        return None if then is None or otherwise is None else then + otherwise
    return None


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Compare):
        return (node.left, *node.rights)
    if isinstance(node, Logic):
        return node.values
    if isinstance(node, Choice):
        return (node.test, node.then, node.otherwise)
    if isinstance(node, Call):
        return node.args
    return ()


# ---------------------------------------------------------------- types


@dataclass(frozen=True)
class Type:
    """What a value may be: JSON types (empty: anything), a string format, and
    whether it may be null (a missing source value)."""

    types: frozenset[str]
    fmt: str = ""
    null: bool = False

    def describe(self) -> str:
        if not self.types:
            return "any value"
        names = " or ".join(sorted(self.types))
        article = "an" if names[0] in "aeiou" else "a"
        return f"{article} {names}" + (f" ({self.fmt})" if self.fmt else "")

    def only(self, allowed: frozenset[str]) -> bool:
        """Whether every known type is one of `allowed` (anything passes)."""
        return self.types <= allowed


def T(*types: str, fmt: str = "", null: bool = False) -> Type:
    """A Type of these JSON types."""
    return Type(frozenset(types), fmt, null)


ANY = Type(frozenset())


class Fields(Protocol):
    """The source fields an expression may read (the checker's view of the schema)."""

    def field(self, path: str) -> Type | str:
        """The type of a source path, or why there is none."""
        ...

    def item_field(self, path: str, item: str) -> Type | str:
        """The type of a field of the items of the list at `path`, or why not."""
        ...


def infer(node: Node, fields: Fields) -> Type:
    """The type of an expression; ExprError at the first mistake."""
    return _Infer(fields).type(node)


class _Infer:
    def __init__(self, fields: Fields) -> None:
        self.fields = fields

    def fail(self, node: Node, message: str, code: Code = TYPE) -> ExprError:
        return ExprError(message, node.line, node.column, code)

    def type(self, node: Node) -> Type:
        if isinstance(node, PathRef):
            found = self.fields.field(node.path)
            if isinstance(found, str):
                raise self.fail(node, found, FIELD)
            return found
        if isinstance(node, Literal):
            return _literal_type(node.value)
        if isinstance(node, Unary):
            operand = self.type(node.operand)
            if node.op == "not":
                return T("boolean")
            self.numeric(node.operand, operand, node.op)
            return operand
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Logic):
            kinds = [self.type(v) for v in node.values]
            return _union(kinds, null=any(k.null for k in kinds))
        if isinstance(node, Choice):
            self.type(node.test)
            kinds = [self.type(node.then), self.type(node.otherwise)]
            return _union(kinds, null=any(k.null for k in kinds))
        assert isinstance(node, Call)
        return self.call(node)

    def numeric(self, node: Node, kind: Type, op: str) -> None:
        if kind.only(NUMBERS):
            return
        hint = f"; did you mean float({node.text})?" if "string" in kind.types else ""
        raise self.fail(
            node,
            f"{node.text!r} is {kind.describe()}, and {op} needs numbers{hint}",
        )

    def binary(self, node: Binary) -> Type:
        left, right = self.type(node.left), self.type(node.right)
        null = left.null or right.null
        if node.op == "+" and "string" in left.types | right.types:
            if left.only(frozenset({"string"})) and right.only(frozenset({"string"})):
                return T("string", null=null)
            number = node.right if "string" in left.types else node.left
            raise self.fail(
                node,
                f"+ joins two strings or adds two numbers, but {node.left.text!r} is "
                f"{left.describe()} and {node.right.text!r} is {right.describe()}; "
                f"did you mean str({number.text}), or concat(...)?",
            )
        self.numeric(node.left, left, node.op)
        self.numeric(node.right, right, node.op)
        if node.op == "/":
            return T("number", null=null)
        if not left.types or not right.types:
            return Type(frozenset(), null=null)
        whole = left.types | right.types == {"integer"}
        return T("integer" if whole else "number", null=null)

    def compare(self, node: Compare) -> Type:
        operands = [node.left, *node.rights]
        kinds = [self.type(n) for n in operands]
        for op, (a, b), (ka, kb) in zip(
            node.ops,
            pairwise(operands),
            pairwise(kinds),
            strict=True,
        ):
            if (
                not ka.types
                or not kb.types
                or ka.types == {"null"}
                or kb.types == {"null"}
            ):
                continue
            comparable = bool(ka.types & kb.types) or bool(
                ka.types & NUMBERS and kb.types & NUMBERS
            )
            if op in ("<", "<=", ">", ">="):
                ordered = NUMBERS | {"string"}
                comparable = comparable and ka.only(ordered) and kb.only(ordered)
            if not comparable:
                raise self.fail(
                    node,
                    f"{a.text!r} is {ka.describe()} and {b.text!r} is "
                    f"{kb.describe()}; {op} between them "
                    + {"==": "is never true", "!=": "is always true"}.get(
                        op, "cannot be decided"
                    )
                    + "; convert one with str(...), int(...) or float(...)",
                )
        return T("boolean")

    def call(self, node: Call) -> Type:
        name, args = node.name, node.args
        if name == "sum":
            return self.sum(node)
        kinds = [self.type(a) for a in args]
        null = any(k.null for k in kinds)
        first = kinds[0]
        if name in ("lower", "upper", "strip", "md5", "sha256"):
            if not first.only(frozenset({"string"})):
                raise self.fail(
                    args[0],
                    f"{name}() needs a string, but {args[0].text!r} is "
                    f"{first.describe()}; did you mean {name}(str({args[0].text}))?",
                )
            return T("string", null=null)
        if name == "str":
            return T("string", null=null)
        if name in ("int", "float"):
            self.scalar(name, args[0], first)
            return T("integer" if name == "int" else "number", null=null)
        if name in ("date", "datetime"):
            if not first.only(frozenset({"string", *NUMBERS})):
                raise self.fail(
                    args[0],
                    f"{name}() needs a date text or epoch seconds, but "
                    f"{args[0].text!r} is {first.describe()}",
                )
            return T("string", fmt="date" if name == "date" else "date-time", null=null)
        if name == "len":
            if not first.only(frozenset({"string", "array"})):
                raise self.fail(
                    args[0],
                    f"len() needs a string or a list, but {args[0].text!r} is "
                    f"{first.describe()}",
                )
            return T("integer", null=null)
        if name in ("round", "abs"):
            self.numeric(args[0], first, f"{name}()")
            if name == "round":
                return T("integer" if len(args) == 1 else "number", null=null)
            return Type(first.types, null=null)
        if name in ("min", "max"):
            known = [k for k in kinds if k.types and k.types != {"null"}]
            if known and not (
                all(k.only(NUMBERS) for k in known)
                or all(k.only(frozenset({"string"})) for k in known)
            ):
                raise self.fail(
                    node,
                    f"{name}() compares numbers with numbers or strings with strings",
                )
            return _union(kinds, null=all(k.null for k in kinds))
        if name == "coalesce":
            return _union(kinds, null=all(k.null for k in kinds))
        assert name == "concat"
        for arg, kind in zip(args, kinds, strict=True):
            if kind.types & {"object", "array"}:
                raise self.fail(
                    arg,
                    f"concat() joins single values, but {arg.text!r} is "
                    f"{kind.describe()}",
                )
        return T("string")

    def scalar(self, name: str, arg: Node, kind: Type) -> None:
        if kind.types & {"object", "array"}:
            raise self.fail(
                arg,
                f"{name}() needs a single value, but {arg.text!r} is {kind.describe()}",
            )

    def sum(self, node: Call) -> Type:
        listed = node.args[0]
        kind = self.type(listed)
        if kind.types and "array" not in kind.types:
            raise self.fail(
                listed,
                f"sum() adds up a list, but {listed.text!r} is {kind.describe()}",
            )
        if len(node.args) == 1:
            if not isinstance(listed, PathRef):
                return T("number")
            item = self.fields.item_field(listed.path, "")
        else:
            assert isinstance(listed, PathRef) and isinstance(node.args[1], Literal)
            item = self.fields.item_field(listed.path, str(node.args[1].value))
        if isinstance(item, str):
            raise self.fail(node.args[-1], item, FIELD)
        if not item.only(NUMBERS | {"null"}):
            raise self.fail(
                node.args[-1],
                f"sum() adds numbers, but the items' {node.args[-1].text} "
                f"is {item.describe()}",
            )
        return T("integer" if item.types - {"null"} == {"integer"} else "number")


def _literal_type(value: Any) -> Type:
    if value is None:
        return T("null", null=True)
    if isinstance(value, bool):
        return T("boolean")
    if isinstance(value, int):
        return T("integer")
    if isinstance(value, float):
        return T("number")
    return T("string")


def _union(kinds: list[Type], null: bool) -> Type:
    if any(not k.types for k in kinds):
        return Type(frozenset(), null=null)
    types = frozenset().union(*(k.types for k in kinds)) - {"null"}
    if types == NUMBERS:
        types = frozenset({"number"})
    formats = {k.fmt for k in kinds if k.types - {"null"}}
    return Type(
        types or frozenset({"null"}), formats.pop() if len(formats) == 1 else "", null
    )


# ---------------------------------------------------------------- code

# Python precedence of what `to_python` writes, lowest first
_CHOICE, _OR, _AND, _NOT, _ATOM = 0, 1, 2, 3, 9


def to_python(node: Node, data: str) -> str:
    """Python source for an expression over the record or item in variable `data`
    (`$record.` paths read `src`)."""
    return _code(node, data)[0]


def _code(node: Node, data: str) -> tuple[str, int]:
    if isinstance(node, PathRef):
        rest = from_record(node.path)
        if rest is not None:
            return f"_get(src, {py_literal(rest)})", _ATOM
        return f"_get({data}, {py_literal(node.path)})", _ATOM
    if isinstance(node, Literal):
        return py_literal(node.value), _ATOM
    if isinstance(node, Unary):
        operand = _code(node.operand, data)
        if node.op == "not":
            return f"not {_wrap(operand, _NOT)}", _NOT
        if node.op == "+":
            return operand
        return f"_calc(0, '-', {operand[0]})", _ATOM
    if isinstance(node, Binary):
        left, right = _code(node.left, data)[0], _code(node.right, data)[0]
        return f"_calc({left}, {py_literal(node.op)}, {right})", _ATOM
    if isinstance(node, Compare):
        operands = [_code(n, data)[0] for n in (node.left, *node.rights)]
        parts = [
            f"_compare({a}, {py_literal(op)}, {b})"
            for op, (a, b) in zip(node.ops, pairwise(operands), strict=True)
        ]
        return " and ".join(parts), _ATOM if len(parts) == 1 else _AND
    if isinstance(node, Logic):
        level = _AND if node.op == "and" else _OR
        values = [_wrap(_code(v, data), level + 1) for v in node.values]
        return f" {node.op} ".join(values), level
    if isinstance(node, Choice):
        then = _code(node.then, data)
        otherwise = _code(node.otherwise, data)
        if then == otherwise:  # the test cannot change the value
            return then
        test = _wrap(_code(node.test, data), _CHOICE + 1)
        return f"{_wrap(then, _CHOICE + 1)} if {test} else {otherwise[0]}", _CHOICE
    assert isinstance(node, Call)
    args = ", ".join(_code(a, data)[0] for a in node.args)
    return f"{FUNCTIONS[node.name].helper}({args})", _ATOM


def _wrap(code: tuple[str, int], least: int) -> str:
    text, level = code
    return text if level >= least else f"({text})"
