"""The names a generated script binds or reads, taken from the code it is made of.

A spec schema or a stub with one of these names would shadow (or be shadowed by)
the script's own code. The set is computed from the sources, never kept by hand:
the runtime package's modules (parsed with `ast`), the script template and the
templates it includes (Jinja, so read with regular expressions), and builtins.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

GENERATOR = Path(__file__).resolve().parent
SCRIPT_TEMPLATE = "script.py.jinja"

_INCLUDE = re.compile(r"""\{%-?\s*include\s+["']([^"']+)["']""")
# `{% for side in ("source", "target") %}`: a loop over literal values, whose
# variable may appear inside names, as in `def {{ side }}_auth()`
_FOR_LITERALS = re.compile(
    r"\{%-?\s*for\s+([A-Za-z_]\w*)\s+in\s+(\([^()]*\)|\[[^\[\]]*\])\s*-?%\}"
)
_JINJA_TAG = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_JINJA_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_JINJA_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
# string literals (prefixes included), then comments: text, not code
_STRING_OR_COMMENT = re.compile(
    r"""[rbuRBU]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
    r"|#[^\n]*",
    re.DOTALL,
)
_TOP_DEF = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)
# a function or method defined inside another block: local to it, so not reserved
_NESTED_DEF = re.compile(r"^[ \t]+(?:async\s+)?def\s+([A-Za-z_]\w*)", re.MULTILINE)
# a name that is not an attribute (`x.name`), a number's suffix or a keyword
# argument (black writes `f(name=value)`, but `name = value` and `name: T = v`)
_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*(?![\w=]|=[^=])")


@cache
def reserved_names() -> frozenset[str]:
    """Every name a generated script binds or reads, and every builtin."""
    names = set(dir(builtins))
    runtime = GENERATOR / "runtime"
    for module in sorted(runtime.glob("*.py")) if runtime.is_dir() else ():
        names |= python_names(module.read_text(encoding="utf-8"))
    for text in _with_includes(templates_dir(), SCRIPT_TEMPLATE, set()):
        names |= template_names(text)
    return frozenset(names)


def templates_dir() -> Path:
    """The templates: inside the installed package, else the checkout's templates/."""
    installed = GENERATOR / "templates"
    return (
        installed
        if (installed / SCRIPT_TEMPLATE).is_file()
        else GENERATOR.parent / "templates"
    )


def python_names(source: str) -> set[str]:
    """The names of a Python module that a script-level name would clash with.

    Every name it binds or reads (top-level definitions, imports, parameters,
    variables), except functions defined inside a function or class: those
    are local to it.
    """
    tree = ast.parse(source)
    top = {
        s.name
        for s in tree.body
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    names = set(top)
    nested: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            nested.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return names - (nested - top)


def template_names(text: str) -> set[str]:
    """The names in the Python code of a Jinja template, as python_names() takes them.

    Every name but attributes, keyword arguments, text and functions defined
    inside a block. `{{ var }}` inside a name is expanded over a
    `{% for var in (...) %}` of literal values; other `{{ ... }}` are values.
    """
    loops = {var: _literals(values) for var, values in _FOR_LITERALS.findall(text)}
    code = _STRING_OR_COMMENT.sub(" ", _JINJA_TAG.sub(" ", text))
    code = "\n".join(
        _JINJA_EXPRESSION.sub(" ", expanded)
        for line in code.splitlines()
        for expanded in _expand(line, loops)
    )
    top = set(_TOP_DEF.findall(code))
    nested = set(_NESTED_DEF.findall(code))
    names = {n for n in _NAME.findall(code) if not keyword.iskeyword(n)}
    return names - (nested - top)


def _with_includes(folder: Path, name: str, seen: set[str]) -> Iterator[str]:
    """A template's text and the texts of the templates it includes."""
    if name in seen:
        return
    seen.add(name)
    text = (folder / name).read_text(encoding="utf-8")
    yield text
    for included in _INCLUDE.findall(text):
        yield from _with_includes(folder, included, seen)


def _literals(values: str) -> tuple[str, ...]:
    try:
        parsed = ast.literal_eval(values)
    except (ValueError, SyntaxError):
        return ()
    return tuple(str(v) for v in parsed)


def _expand(line: str, loops: dict[str, tuple[str, ...]]) -> list[str]:
    """The line once per value of each loop variable it names."""
    for match in _JINJA_VARIABLE.finditer(line):
        values = loops.get(match.group(1))
        if values:
            return [
                expanded
                for value in values
                for expanded in _expand(
                    line[: match.start()] + value + line[match.end() :], loops
                )
            ]
    return [line]
