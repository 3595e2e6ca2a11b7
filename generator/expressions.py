"""Compile mapping expressions to Python source for the generated transform.

Every literal that comes from a mapping or a spec reaches the code through
`py_literal()` (an ASCII `repr()`), so no text in those files can change the code's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator.literals import py_literal
from generator.mapping import Expr, FieldMap, json_safe


@dataclass
class Uses:
    """What the compiled code needs from the script: helpers, env vars, stubs."""

    helpers: set[str] = field(default_factory=set)
    env_vars: set[str] = field(default_factory=set)


def compile_expr(expr: Expr, data: str, depth: int, uses: Uses) -> str:
    """Python source for one expression; `data` is the variable holding the record."""
    if expr.kind == "const":
        code = py_literal(json_safe(expr.value))
    elif expr.kind == "path":
        uses.helpers.add("get")
        code = f"_get({data}, {py_literal(expr.path)})"
        if expr.table is not None:
            uses.helpers.add("lookup")
            table = {json_safe(k): json_safe(v) for k, v in expr.table}
            default = (
                py_literal(json_safe(expr.default)) if expr.has_default else "_MISSING"
            )
            if not expr.has_default:
                uses.helpers.add("missing")
            code = f"_lookup({code}, {py_literal(table)}, {default}, {py_literal(expr.path)})"
        elif expr.has_default:
            code = f"_get({data}, {py_literal(expr.path)}, default={py_literal(json_safe(expr.default))})"
    elif expr.kind == "template":
        uses.helpers.add("render")
        code = f"_render({py_literal(expr.text)}, {data})"
    elif expr.kind == "env":
        if not expr.has_default:
            uses.env_vars.add(expr.text)  # required at start-up
        if expr.has_default:
            code = f"os.environ.get({py_literal(expr.text)}, {py_literal(json_safe(expr.default))})"
        else:
            code = f"os.environ[{py_literal(expr.text)}]"
    elif expr.kind == "stub":
        code = f"{expr.text}(record)" if depth == 0 else f"{expr.text}(record, {data})"
    else:  # each
        uses.helpers.add("items")
        item = "item" if depth == 0 else f"item{depth + 1}"
        inner = compile_fields(expr.fields, item, depth + 1, uses)
        return f"[{inner} for {item} in _items({data}, {py_literal(expr.path)})]"
    if expr.convert:
        uses.helpers.add(f"as_{expr.convert}")
        code = f"_as_{expr.convert}({code})"
    return code


def compile_fields(
    fields: tuple[FieldMap, ...], data: str, depth: int, uses: Uses
) -> str:
    """A dict literal for target fields, nesting dotted target paths."""
    tree: dict[str, Any] = {}
    for fm in fields:
        node = tree
        parts = fm.target.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break  # a key inside a field mapped whole: the checker reports it
            node = child
        else:
            node[parts[-1]] = compile_expr(fm.expr, data, depth, uses)
    return _dict_source(tree)


def _dict_source(tree: dict[str, Any]) -> str:
    entries = []
    for key, value in tree.items():
        code = _dict_source(value) if isinstance(value, dict) else value
        entries.append(f"{py_literal(key)}: {code}")
    return "{" + ", ".join(entries) + ",}" if entries else "{}"
