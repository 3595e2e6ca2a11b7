"""Copy the runtime pieces a link uses, verbatim, from `generator/runtime/`."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from generator.runtime import RUNTIME_VERSION

# Dependency order: a module may use at import time (base classes, defaults)
# only what an earlier one defines.
RUNTIME_MODULES = (
    "core",
    "mapping",
    "http",
    "notify",
    "auth",
    "pagination",
    "files",
    "params",
    "write",
    "run",
    "webhook",
)
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
MARKER = (
    f"# ---- p2pgen runtime {RUNTIME_VERSION} below: identical in every link,"
    " tested in p2pgen itself; edits here are refused ----"
)


@dataclass(frozen=True)
class Piece:
    """One top-level definition of a runtime module, as its source has it."""

    module: str
    is_block: bool  # a def or class, set apart by two blank lines
    defines: frozenset[str]
    uses: frozenset[str]
    source: str


@dataclass(frozen=True)
class RuntimeModule:
    name: str
    title: str  # the first line of its docstring
    imports: dict[str, str]  # bound name -> the import statement that binds it
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class RuntimeCopy:
    imports: tuple[str, ...]
    code: str
    defines: frozenset[str]


@cache
def runtime_modules() -> tuple[RuntimeModule, ...]:
    return tuple(_read_module(name) for name in RUNTIME_MODULES)


def runtime_names() -> frozenset[str]:
    """Every name a runtime piece defines at the top level of a script."""
    return frozenset(n for m in runtime_modules() for p in m.pieces for n in p.defines)


def copy_for(link_code: str, also: frozenset[str] = frozenset()) -> RuntimeCopy:
    """The pieces `link_code` needs (and the names `also`), and those they need, in
    the runtime's own order."""
    wanted = _names_used(ast.parse(link_code)) | also
    pieces = [p for m in runtime_modules() for p in m.pieces]
    chosen: set[int] = set()
    grew = True
    while grew:
        grew = False
        for index, piece in enumerate(pieces):
            if index not in chosen and piece.defines & wanted:
                chosen.add(index)
                wanted |= piece.uses
                grew = True
    sections: list[str] = []
    imports: set[str] = set()
    position = 0
    for module in runtime_modules():
        mine = [
            pieces[i]
            for i in range(position, position + len(module.pieces))
            if i in chosen
        ]
        position += len(module.pieces)
        if not mine:
            continue
        text = f"# --- {module.title} ---"
        for before, piece in zip([None, *mine], mine, strict=False):
            blank = before is None or before.is_block or piece.is_block
            text += ("\n\n\n" if blank else "\n") + piece.source
        sections.append(text)
        for piece in mine:
            imports |= {module.imports[n] for n in piece.uses if n in module.imports}
    defines = frozenset(n for i in chosen for n in pieces[i].defines)
    return RuntimeCopy(tuple(sorted(imports)), "\n\n\n".join(sections) + "\n", defines)


def _read_module(name: str) -> RuntimeModule:
    text = (RUNTIME_DIR / f"{name}.py").read_text(encoding="utf-8")
    lines = text.splitlines()
    tree = ast.parse(text)
    title = (ast.get_docstring(tree) or name).splitlines()[0].rstrip(".")
    imports: dict[str, str] = {}
    pieces: list[Piece] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and (
                node.module == "__future__"
                or (node.module or "").startswith("generator")
            ):
                continue
            for alias in node.names:
                bound = (alias.asname or alias.name).split(".")[0]
                if isinstance(node, ast.Import):
                    imports[bound] = f"import {alias.name}"
                else:
                    imports[bound] = f"from {node.module} import {alias.name}"
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        first = min(
            [node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]
        )
        while first > 1 and lines[first - 2].lstrip().startswith("#"):
            first -= 1  # a comment that explains the definition goes with it
        source = "\n".join(lines[first - 1 : node.end_lineno])
        block = isinstance(node, ast.FunctionDef | ast.ClassDef)
        uses = frozenset(_names_used(node))
        pieces.append(Piece(name, block, _names_defined(node), uses, source))
    return RuntimeModule(name, title, imports, tuple(pieces))


def _names_defined(node: ast.stmt) -> frozenset[str]:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return frozenset({node.name})
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [getattr(node, "target", None)]
    )
    return frozenset(t.id for t in targets if isinstance(t, ast.Name))


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
