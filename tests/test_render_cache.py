"""Rendered links are reused by content: unchanged inputs are not built again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import render_cache
from generator.resolve import Resolution

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """crm_to_mailer with its specs (crm.yaml reaches common.yaml by $ref) in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("P2PGEN_NO_CACHE", raising=False)
    for name in ("crm.yaml", "common.yaml", "mailer.yaml"):
        shutil.copy(ROOT / "specs" / name, tmp_path / name)
    (tmp_path / "links").mkdir()
    shutil.copy(ROOT / "specs/links/crm_to_mailer.yaml", tmp_path / "links")
    return tmp_path / "links" / "crm_to_mailer.yaml"


def refuse_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> Resolution:
        raise AssertionError("built again")

    monkeypatch.setattr(render_cache, "resolve", refuse)


def test_unchanged_inputs_are_not_built_again(
    link: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = render_cache.rendered(link, link.parents[1])
    assert first.files is not None and first.name == "crm_to_mailer"
    refuse_to_build(monkeypatch)
    again = render_cache.rendered(link, link.parents[1])
    assert (again.files, again.name, again.warnings) == (
        first.files,
        first.name,
        first.warnings,
    )
    assert again.about == first.about
    assert first.about["source_operation"] == "listContacts"


@pytest.mark.parametrize("changed", ["crm_to_mailer.yaml", "crm.yaml", "common.yaml"])
def test_a_change_to_the_mapping_or_any_spec_file_builds_again(
    link: Path, changed: str
) -> None:
    first = render_cache.rendered(link, link.parents[1])
    path = link if changed == "crm_to_mailer.yaml" else link.parents[1] / changed
    path.write_text(
        path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8"
    )
    assert render_cache.cache_key(link, link.parents[1]) is not None
    again = render_cache.rendered(link, link.parents[1])
    assert again.link is not None, "built again, not taken from the cache"
    assert first.files is not None and again.files is not None


def test_no_cache_and_damaged_entries_build_again(
    link: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render_cache.rendered(link, link.parents[1])
    key = render_cache.cache_key(link, link.parents[1])
    assert key is not None
    render_cache._entry(key).write_text("{not json", encoding="utf-8")
    assert render_cache.rendered(link, link.parents[1]).link is not None
    monkeypatch.setenv("P2PGEN_NO_CACHE", "1")
    assert render_cache.cache_key(link, link.parents[1]) is None
