"""The Jinja environment, rendering of a Link to source files, and black."""

from __future__ import annotations

import ast
import builtins
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import black
import jinja2
from black.mode import Mode, TargetVersion

from generator.errors import Problem
from generator.expressions import py_literal
from generator.link import Link

BUILTIN_NAMES = frozenset(dir(builtins))
THIRD_PARTY = {"httpx", "pydantic", "pytest"}
SCRIPT_IMPORTS = (
    "import argparse",
    "import base64",
    "import json",
    "import logging",
    "import os",
    "import random",
    "import re",
    "import signal",
    "import sys",
    "import threading",
    "import time",
    "from collections.abc import Iterator",
    "from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait",
    "from dataclasses import dataclass, field",
    "from datetime import UTC, datetime",
    "from email.utils import parsedate_to_datetime",
    "from pathlib import Path",
    "from typing import Any",
    "from urllib.parse import quote, quote_plus",
    "import httpx",
    "from pydantic import ValidationError",
)


def templates_dir() -> Path:
    """The templates: inside the installed package, else the checkout's templates/."""
    here = Path(__file__).resolve().parent
    installed = here / "templates"
    return (
        installed
        if (installed / "script.py.jinja").is_file()
        else here.parent / "templates"
    )


def comment(value: Any) -> str:
    """Text safe inside a `#` comment: one line, no control characters, ASCII.

    Non-ASCII characters are shown as escapes (\\u0441), so no lookalike
    letter can make a comment read as something it is not.
    """
    text = " ".join(str(value).split())
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable.encode("ascii", "backslashreplace").decode("ascii")


def docstring(value: Any) -> str:
    """Text safe inside a triple-quoted docstring: repr-escaped, quotes kept out."""
    return repr(comment(value)).replace('"""', '\\"\\"\\"')


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = py_literal
    env.filters["comment"] = comment
    env.filters["docstring"] = docstring
    return env


def merge_imports(lines: list[str] | tuple[str, ...]) -> str:
    """One import block in isort order: __future__, standard library, third party."""
    plain: dict[bool, set[str]] = {False: set(), True: set()}
    froms: dict[bool, dict[str, set[str]]] = {False: {}, True: {}}
    for line in lines:
        for node in ast.parse(line).body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    plain[alias.name.split(".")[0] in THIRD_PARTY].add(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module:
                third = node.module.split(".")[0] in THIRD_PARTY
                froms[third].setdefault(node.module, set()).update(
                    a.name for a in node.names
                )
    sections = ["from __future__ import annotations"]
    for third in (False, True):
        block = [f"import {name}" for name in sorted(plain[third])]
        block += [
            f"from {module} import {', '.join(sorted(names, key=_name_order))}"
            for module, names in sorted(froms[third].items())
        ]
        if block:
            sections.append("\n".join(block))
    return "\n\n".join(sections)


def _name_order(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then functions."""
    if name.isupper() and len(name) > 1:
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def render_link(link: Link) -> dict[str, str]:
    """Render the script and its tests; return {file name: black-formatted source}."""
    env = environment()
    context = _context(link)
    script = env.get_template("script.py.jinja").render(context)
    tests = env.get_template("test_script.py.jinja").render(context)
    return {
        f"{link.name}.py": format_source(script),
        f"test_{link.name}.py": format_source(tests),
    }


def stub_name_clashes(link: Link) -> list[Problem]:
    """Stubs named like something the script already defines or imports, or a builtin."""
    script = environment().get_template("script.py.jinja").render(_context(link))
    tree = ast.parse(script)
    bound: Counter[str] = Counter()
    for statement in tree.body:
        bound.update(_top_level_names(statement))
    # parameters and variables inside functions: a stub called `src` would be
    # shadowed by transform()'s own `src`
    local = {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)} | {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    problems = []
    for stub in link.stubs:
        if bound[stub.name] > 1 or stub.name in local or stub.name in BUILTIN_NAMES:
            what = (
                "a Python builtin"
                if stub.name in BUILTIN_NAMES
                else "a name the script already uses"
            )
            problems.append(
                stub.loc.problem(
                    f"{stub.target}: stub '{stub.name}' is {what}; give the stub another name"
                )
            )
    return problems


def _top_level_names(statement: ast.stmt) -> Iterator[str]:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield statement.name
    elif isinstance(statement, ast.Import | ast.ImportFrom):
        for alias in statement.names:
            yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = (
            statement.targets
            if isinstance(statement, ast.Assign)
            else [statement.target]
        )
        for target in targets:
            if isinstance(target, ast.Name):
                yield target.id


def _context(link: Link) -> dict[str, Any]:
    """What the script and test templates are rendered with."""
    auth_kinds = {link.source.auth.kind, link.target.auth.kind}
    secret_vars = tuple(
        sorted({var for side in (link.source, link.target) for _, var in side.auth.env})
    )
    imports = [
        line
        for line in SCRIPT_IMPORTS
        if (line != "import re" or link.helpers & {"render", "as_date", "as_datetime"})
    ]
    if auth_kinds - {"none", "basic"}:
        imports.append("from collections.abc import Generator")
    # Pairs sent as HTTP Basic credentials, whose base64 form redact() must know.
    credential_pairs = tuple(
        (side.auth.var(user), side.auth.var(password))
        for side in (link.source, link.target)
        for kind, user, password in (
            ("basic", "username", "password"),
            ("oauth2", "client_id", "client_secret"),
        )
        if side.auth.kind == kind
    )
    # Test secrets carry '/' and '+', which URLs percent-encode, to prove that
    # redaction also catches a secret echoed back inside a URL.
    test_secrets = {}
    for var in sorted(set(secret_vars) | set(link.env_vars)):
        name = var.lower().replace("_", "-")
        test_secrets[var] = (
            f"secret-{name}/+x" if var in secret_vars else f"test-{name}"
        )
    return {
        "link": link,
        "imports": merge_imports([*imports, *link.imports]),
        "expected": dict(link.expected),
        "distinct_fields": list(link.distinct_fields),
        "test_secrets": test_secrets,
        "credential_pairs": credential_pairs,
        "auth_kinds": auth_kinds,
        "secret_vars": secret_vars,
        "required_env": tuple(sorted(set(secret_vars) | set(link.env_vars))),
    }


def format_source(source: str) -> str:
    source = re.sub(r"\n{4,}", "\n\n\n", source)
    return black.format_str(source, mode=Mode(target_versions={TargetVersion.PY311}))
