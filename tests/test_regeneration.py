"""Customisation is never lost: a filled-in region that the regenerated script no
longer has (a renamed stub, a dropped field) is kept, commented out, in the custom
region, and `p2pgen generate` says where. Fixtures are small files in tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator.cli import cli
from generator.errors import P2pgenError
from generator.output import plan
from generator.regions import NoPlaceForOrphans, keep_regions, regions

ROOT = Path(__file__).resolve().parents[1]

MAPPING = """\
version: 1
name: contacts_out
source:
  spec: ../crm.yaml
  operation: listContacts
  records: data
target:
  spec: ../mailer.yaml
  operation: addListMember
  params:
    list_id: {const: news2024}
fields:
  email_address: email
  status: {const: subscribed}
  tags: {stub: tags_for}
"""

# Filled in by the user; ContactTags stands for a model the script no longer has.
FILLED = '''\
def tags_for(record: SourceRecord) -> list[ContactTags]:
    """Return the value of target field 'tags'."""
    # one tag per CRM segment
    return [tag.name for tag in ContactTags.of(record)]  # noqa: F821
'''

CUSTOM = '''\
SEGMENT_PREFIX = "crm-"


def segment_tag(name: str) -> str:
    """A mailer tag for a CRM segment."""
    return SEGMENT_PREFIX + name
'''

ORPHAN_MARKER = "# p2pgen:orphan stub tags_for"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny repository: the specs of crm_to_mailer and one mapping with a stub."""
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    specs = tmp_path / "specs"
    (specs / "links").mkdir(parents=True)
    for name in ("crm.yaml", "common.yaml", "mailer.yaml"):
        shutil.copy(ROOT / "specs" / name, specs / name)
    (specs / "links" / "link.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def generate(project: Path) -> Result:
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            str(project / "specs" / "links" / "link.yaml"),
            "--out",
            str(project / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    return result


def script(project: Path) -> Path:
    return project / "out" / "contacts_out" / "contacts_out.py"


def set_region(project: Path, name: str, body: str) -> None:
    """Replace a region's body, as a user editing the script would."""
    path = script(project)
    text = path.read_text(encoding="utf-8")
    begin, end = f"# p2pgen:begin {name}\n", f"# p2pgen:end {name}"
    start = text.index(begin) + len(begin)
    path.write_text(text[:start] + body + text[text.index(end) :], encoding="utf-8")


def change_mapping(project: Path, old: str, new: str) -> None:
    path = project / "specs" / "links" / "link.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def import_script(path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    name = f"regenerated_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


CHANGES = {
    "rename": ("tags: {stub: tags_for}", "tags: {stub: labels_for}"),
    "drop": ("  tags: {stub: tags_for}\n", ""),
}


def orphan_a_filled_stub(project: Path, change: str) -> Result:
    """Generate, fill in tags_for, change the mapping so it goes, regenerate."""
    generate(project)
    set_region(project, "stub tags_for", FILLED + "\n\n")
    change_mapping(project, *CHANGES[change])
    return generate(project)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_filled_in_stub_that_is_no_longer_generated_is_kept(
    project: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = orphan_a_filled_stub(project, change)
    text = script(project).read_text(encoding="utf-8")
    custom = regions(text)["custom"]
    assert "stub tags_for" not in regions(text)
    # The whole body is kept, commented out, in a marked block of the custom region.
    block = custom[custom.index(ORPHAN_MARKER) :]
    assert block.endswith("# p2pgen:orphan end stub tags_for\n")
    for line in FILLED.replace("# noqa", "# [noqa]").splitlines():
        assert f"# {line}".rstrip() + "\n" in block
    assert "no longer generates" in block
    assert "then delete this block" in block
    # One warning on stderr, naming the file, the line of the block and the region.
    lines = text.splitlines()
    warnings = [w for w in result.stderr.splitlines() if "warning" in w]
    assert len(warnings) == 1, result.stderr
    where, message = warnings[0].split(": warning: ")
    path, line, _ = where.rsplit(":", 2)
    assert Path(path) == script(project)
    assert lines[int(line) - 1] == ORPHAN_MARKER
    assert "region 'stub tags_for' is no longer generated" in message
    assert "region 'custom'" in message
    # The script still imports; the orphan is no function of it.
    module = import_script(script(project), monkeypatch)
    assert not hasattr(module, "tags_for")
    assert hasattr(module, "labels_for") == (change == "rename")


def test_an_orphan_is_kept_by_every_later_regeneration(project: Path) -> None:
    orphan_a_filled_stub(project, "rename")
    first = script(project).read_text(encoding="utf-8")
    again = generate(project)
    assert script(project).read_text(encoding="utf-8") == first
    assert "warning" not in again.stderr
    # A later change to the mapping still carries the block along, once.
    change_mapping(project, "status: {const: subscribed}", "status: {const: pending}")
    generate(project)
    later = script(project).read_text(encoding="utf-8")
    assert later != first
    assert regions(later)["custom"] == regions(first)["custom"]
    assert later.count(ORPHAN_MARKER) == 1


def test_an_orphan_never_filled_in_is_dropped_silently(project: Path) -> None:
    generate(project)
    change_mapping(project, "{stub: tags_for}", "{stub: labels_for}")
    result = generate(project)
    text = script(project).read_text(encoding="utf-8")
    assert "tags_for" not in text
    assert "p2pgen:orphan" not in text
    assert "warning" not in result.stderr


def test_regions_still_generated_are_kept_as_they_are(project: Path) -> None:
    generate(project)
    set_region(project, "stub tags_for", FILLED + "\n\n")
    set_region(project, "custom", CUSTOM)
    before = regions(script(project).read_text(encoding="utf-8"))
    change_mapping(project, "status: {const: subscribed}", "status: {const: pending}")
    result = generate(project)
    text = script(project).read_text(encoding="utf-8")
    assert '"pending"' in text
    assert regions(text) == before
    assert regions(text)["custom"] == CUSTOM
    assert "p2pgen:orphan" not in text
    assert "warning" not in result.stderr


def test_orphans_with_no_custom_region_to_go_to_stop_generate(tmp_path: Path) -> None:
    old = "# p2pgen:begin hook\nx = 1\n# p2pgen:end hook\n"
    with pytest.raises(NoPlaceForOrphans):
        keep_regions("y = 2\n", old)
    (tmp_path / "x.py").write_text(old, encoding="utf-8")
    with pytest.raises(P2pgenError) as caught:
        plan({"x.py": "y = 2\n"}, tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "x.py") in message
    assert "(hook)" in message
    assert "nothing was written" in message
    assert (tmp_path / "x.py").read_text(encoding="utf-8") == old


def _python_m(cwd: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_script_holding_an_orphan_passes_black_ruff_and_mypy(
    project: Path, change: str, tmp_path: Path
) -> None:
    orphan_a_filled_stub(project, change)
    folder = script(project).parent
    assert ORPHAN_MARKER in script(project).read_text(encoding="utf-8")
    name = script(project).name
    _python_m(folder, "black", "--check", "--diff", "-q", name)
    config = str(ROOT / "pyproject.toml")
    _python_m(folder, "ruff", "check", "--no-cache", "--config", config, name)
    cache = str(tmp_path / "mypy_cache")
    _python_m(
        folder,
        "mypy",
        "--strict",
        "--cache-dir",
        cache,
        "--config-file",
        os.devnull,
        name,
    )
