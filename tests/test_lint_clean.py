"""Generated scripts are clean under ruff's own defaults whatever the mapping uses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli

DATA = Path(__file__).resolve().parent / "data" / "transform"

# No line reads the record as data: transform() must not dump it (ruff F841).
NO_RECORD_FIELDS = """\
version: 1
name: consts_only
source:
  spec: ../shop.yaml
  operation: listOrders
target:
  spec: ../sink.yaml
  operation: createThing
fields:
  email: {stub: email_for}
  kind: {const: order}
"""


def _ruff_clean(folder: Path) -> None:
    """ruff's defaults and our selection both pass on the generated files."""
    for lint in (
        ["--isolated"],
        ["--config", str(Path(__file__).parents[1] / "pyproject.toml")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "check", *lint, str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout


TYPED_EXTRAS = """\
version: 1
name: typed_extras
source: {spec: ../typed_extras.yaml, operation: listThings}
target: {spec: ../typed_extras.yaml, operation: createThing}
fields:
  name: name
  metadata: metadata
"""


def test_an_object_with_typed_extra_properties_passes_ruff(tmp_path: Path) -> None:
    """`properties` and `additionalProperties: {type: string}` together: DCG types
    the extras with typing's Dict, which ruff refuses (UP006, UP035)."""
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(
        Path(__file__).parent / "data" / "lint" / "typed_extras.yaml",
        tmp_path / "specs",
    )
    mapping = links / "typed_extras.yaml"
    mapping.write_text(TYPED_EXTRAS, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["generate", str(mapping), "--out", str(out)])
    assert result.exit_code == 0, result.output
    script = (out / "typed_extras" / "typed_extras.py").read_text(encoding="utf-8")
    assert '"__pydantic_extra__": dict[str, str]' in script
    _ruff_clean(out / "typed_extras")


@pytest.mark.slow
def test_a_link_whose_fields_read_no_record_data_passes_ruff_isolated(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    for name in ("shop.yaml", "sink.yaml"):
        shutil.copy(DATA / name, tmp_path / "specs" / name)
    mapping = links / "consts_only.yaml"
    mapping.write_text(NO_RECORD_FIELDS, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["generate", str(mapping), "--out", str(out)])
    assert result.exit_code == 0, result.output
    script = out / "consts_only" / "consts_only.py"
    assert "src = record.model_dump" not in script.read_text(encoding="utf-8")
    _ruff_clean(out / "consts_only")
