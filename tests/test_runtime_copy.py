"""The runtime copy: verbatim, minimal, black-stable and importable in any selection."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from generator.render import format_source, merge_imports
from generator.runtime_copy import RUNTIME_DIR, RUNTIME_MODULES, copy_for, runtime_names


def module_text(link_code: str, formatted: bool = True) -> str:
    """A module of the pieces `link_code` needs, with their imports."""
    copy = copy_for(link_code)
    text = merge_imports(list(copy.imports)) + "\n\n\n" + copy.code
    return format_source(text) if formatted else text


def test_every_runtime_module_is_copied_in_order() -> None:
    files = {p.stem for p in RUNTIME_DIR.glob("*.py")} - {"__init__"}
    assert set(RUNTIME_MODULES) == files


def test_the_whole_copy_is_black_stable_and_imports() -> None:
    copy = copy_for("\n".join(sorted(runtime_names())))
    assert (
        format_source(copy.code) == copy.code
    )  # scripts carry it unformatted by black
    text = module_text("\n".join(sorted(runtime_names())))
    namespace: dict[str, object] = {}
    exec(compile(text, "<runtime copy>", "exec"), namespace)
    assert {"run_link", "CursorPaginator", "ClientCredentialsAuth"} <= set(namespace)


@pytest.mark.parametrize("name", sorted(runtime_names()))
def test_each_piece_alone_imports_with_what_it_needs(name: str) -> None:
    namespace: dict[str, object] = {}
    text = module_text(name, formatted=False)  # black's layout is tested above
    exec(compile(text, f"<copy for {name}>", "exec"), namespace)
    assert name in namespace


def test_a_link_gets_only_the_pieces_it_uses() -> None:
    text = module_text("x = (run_link, CursorPaginator, BearerAuth)")
    tree = ast.parse(text)
    defined = {
        n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)
    }
    assert {"CursorPaginator", "BearerAuth", "run_link", "Checkpoint"} <= defined
    assert (
        not {"OffsetPaginator", "ClientCredentialsAuth", "BasicAuth", "_as_date"}
        & defined
    )


def test_runtime_modules_import_siblings_only_by_name() -> None:
    for path in RUNTIME_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("generator") for a in node.names), path
            if isinstance(node, ast.ImportFrom) and node.module == "generator.runtime":
                modules = {a.name for a in node.names} & set(RUNTIME_MODULES)
                assert not modules, f"{path} imports the module(s) {modules}"


@pytest.mark.slow
def test_the_whole_copy_passes_mypy_strict_and_both_ruff_rule_sets(
    tmp_path: Path,
) -> None:
    script = tmp_path / "runtime_copy.py"
    script.write_text(module_text("\n".join(sorted(runtime_names()))), encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    for command in (
        [sys.executable, "-m", "mypy", "--strict", str(script)],
        [sys.executable, "-m", "ruff", "check", "--isolated", str(script)],
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(root / "pyproject.toml"),
            str(script),
        ],
    ):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
