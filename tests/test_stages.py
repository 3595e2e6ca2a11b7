"""The front end's stages: checks import no later stage, reserved names come from the
code itself, pagination styles come from one registry."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_golden import _mypy

from generator.cli import cli
from generator.kinds.pagination import STYLES
from generator.link import PaginationModel
from generator.reserved import reserved_names, template_names

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "generator"
# modules that only check: they must not reach the build, its compilers or render
CHECK_MODULES = ("load.py", "validation.py", "check.py", "checks.py", "auth.py")
LATER_STAGES = {
    "generator.build",
    "generator.render",
    "generator.models",
    "generator.expressions",
    "generator.samples",
    "generator.resolve",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _reachable(module: str) -> set[str]:
    """The generator modules `module` imports, directly or through others."""
    seen: set[str] = set()
    queue = [module]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")[1:]
        path = GENERATOR.joinpath(*parts).with_suffix(".py")
        if not path.is_file():
            path = GENERATOR.joinpath(*parts, "__init__.py")
        if path.is_file():
            queue += [m for m in _imports(path) if m.startswith("generator.")]
    return seen


@pytest.mark.parametrize("module", CHECK_MODULES)
def test_a_check_imports_no_later_stage(module: str) -> None:
    reached = _reachable(f"generator.{module.removesuffix('.py')}")
    assert not reached & LATER_STAGES, sorted(reached & LATER_STAGES)


def test_reserved_names_come_from_the_script_template() -> None:
    names = reserved_names()
    # defined by the runtime or the script template, bound in transform(), imported, builtin
    for name in ("Checkpoint", "Progress", "FatalError", "Config", "Summary"):
        assert name in names
    for name in ("src", "record", "body", "transform", "httpx", "json", "list"):
        assert name in names
    assert {"declaration", "before_send", "after_run", "run_link", "main_link"} <= names


def test_template_names_skip_text_attributes_keywords_and_local_functions() -> None:
    text = (
        "{% for side in ('source', 'target') %}\n"
        "def {{ side }}_auth(token: str) -> None:\n"
        '    """Docstring naming docword."""\n'
        "    def inner(x: int) -> int:  # comment naming commentword\n"
        "        return x\n"
        "    client.attribute(keyword=inner(1), other={{ link.value | py }})\n"
        "{% endfor %}\n"
    )
    assert template_names(text) == {
        *("source_auth", "target_auth", "token", "str", "x", "int", "client")
    }


TARGET_SPEC = """\
openapi: 3.0.3
info: {title: Clash, version: "1"}
servers: [{url: "http://127.0.0.1:9"}]
paths:
  /things:
    post:
      operationId: createThing
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Checkpoint"}
      responses:
        "201": {description: ok}
components:
  schemas:
    Checkpoint:
      type: object
      required: [progress]
      properties:
        progress: {$ref: "#/components/schemas/Progress"}
        fatal: {$ref: "#/components/schemas/FatalError"}
        config: {$ref: "#/components/schemas/Config"}
        summary: {$ref: "#/components/schemas/Summary"}
    Progress: {type: object, properties: {done: {type: integer}}}
    FatalError: {type: object, properties: {reason: {type: string}}}
    Config: {type: string, enum: [a, b]}
    Summary: {type: object, properties: {text: {type: string}}}
"""
MAPPING = """\
version: 1
name: clashing_names
source: {spec: ../shop.yaml, operation: listOrders}
target: {spec: ../clash.yaml, operation: createThing}
fields:
  progress.done: {const: 1}
  fatal.reason: email
  config: {const: a}
  summary.text: email
"""


@pytest.mark.slow
def test_schemas_named_like_runtime_classes_pass_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "data" / "transform" / "shop.yaml", tmp_path / "specs")
    (tmp_path / "specs" / "clash.yaml").write_text(TARGET_SPEC, encoding="utf-8")
    (links / "clashing_names.yaml").write_text(MAPPING, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(links / "clashing_names.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    folder = out / "clashing_names"
    script = (folder / "clashing_names.py").read_text(encoding="utf-8")
    for name in ("Checkpoint", "Progress", "FatalError", "Config", "Summary"):
        assert f"class Target{name}(" in script
    _mypy(folder, ["clashing_names.py"], tmp_path / "mypy_cache")


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_style_declares_its_runtime_class_with_its_own_keys(style: str) -> None:
    model = PaginationModel(style, param="p", next="n", limit_param="l", limit=5)
    name, kwargs = model.declaration
    assert name == STYLES[style].runtime_class
    assert set(kwargs) <= set(STYLES[style].keys)


def test_a_cursor_declaration_passes_the_mapping_keys() -> None:
    model = PaginationModel(
        "cursor", param="cursor", next="next_cursor", has_more="more"
    )
    # max_pages at the runtime's own default is left out
    assert model.declaration == (
        "CursorPaginator",
        {"param": "cursor", "next": "next_cursor", "has_more": "more"},
    )
    guarded = PaginationModel("page", param="p", start=0, max_pages=50)
    assert guarded.declaration == (
        "PagePaginator",
        {"param": "p", "start": 0, "max_pages": 50},
    )
