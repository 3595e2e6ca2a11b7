"""Compile mapping expressions to Python source for the generated transform.

Each kind's compile rule is declared in generator/kinds/expressions.py. Every
literal that comes from a mapping or a spec reaches the code through
`py_literal()` (an ASCII `repr()`), so no text in those files can change the code's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator.kinds.expressions import EXPRESSIONS, MODIFIERS
from generator.literals import py_literal
from generator.mapping import Expr, FieldMap, Filter, json_safe
from generator.runtime.mapping import path_keys


@dataclass
class Compiler:
    """Compiles expressions; collects the variables the code needs at start-up."""

    env_vars: set[str] = field(default_factory=set)

    def expr(self, expr: Expr, data: str, depth: int) -> str:
        """Python source for one expression; `data` is the variable holding the record."""
        code = EXPRESSIONS[expr.kind].compile(expr, data, depth, self)
        for modifier in MODIFIERS.values():
            code = modifier.wrap(expr, code)
        return code

    def filter(self, predicate: Filter, data: str) -> tuple[str, ...]:
        """One boolean expression per condition: whether the record `data` meets it."""
        if predicate.expr is not None:
            code = self.expr(predicate.expr, data, 0)
            literal = code in ("True", "False", "None")  # bool(True): a lint error
            return (str(code == "True") if literal else f"bool({code})",)
        return tuple(
            f"_holds(_get({data}, {py_literal(c.field)}), {py_literal(c.op)},"
            f" {py_literal(json_safe(c.value))})"
            for c in predicate.conditions
        )

    def fields(self, fields: tuple[FieldMap, ...], data: str, depth: int) -> str:
        """A dict literal for target fields, nesting dotted target paths."""
        tree: dict[str, Any] = {}
        for fm in fields:
            node = tree
            parts = path_keys(fm.target)
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break  # a key inside a field mapped whole: the checker reports it
                node = child
            else:
                node[parts[-1]] = self.expr(fm.expr, data, depth)
        return _dict_source(tree)


def _dict_source(tree: dict[str, Any]) -> str:
    entries = []
    for key, value in tree.items():
        code = _dict_source(value) if isinstance(value, dict) else value
        entries.append(f"{py_literal(key)}: {code}")
    return "{" + ", ".join(entries) + ",}" if entries else "{}"
