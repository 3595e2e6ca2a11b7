"""A spec that passed validation is not validated again; its warnings come back located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from generator import validation
from generator.specs import SpecSet

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/things": {
            "get": {
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    # a default of the wrong type: a warning
                                    "properties": {
                                        "n": {"type": "string", "default": 5}
                                    },
                                }
                            }
                        },
                    }
                }
            }
        }
    },
}


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("P2PGEN_NO_CACHE", raising=False)
    return tmp_path / "cache"


def validate(path: Path) -> list[str]:
    specs = SpecSet()
    return [str(w) for w in validation.validate_document(specs, specs.load(path))]


def test_a_second_validation_reuses_the_warnings_without_validating(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False), encoding="utf-8")
    first = validate(spec)
    assert any("default 5 is not a string" in w for w in first), first
    assert any(":" in w.split(" ")[0] for w in first)  # located: file:line:col

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validated again")

    monkeypatch.setattr(validation, "ref_problems", refuse)
    monkeypatch.setattr(validation, "_mappings", refuse)
    assert validate(spec) == first
    moved = tmp_path / "moved.yaml"  # the same text elsewhere: the same warnings, there
    moved.write_bytes(spec.read_bytes())
    assert validate(moved) == [w.replace(str(spec), str(moved)) for w in first]


def test_a_damaged_marker_means_validating_again(
    tmp_path: Path, cache_home: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    first = validate(spec)
    (marker,) = (cache_home / "p2pgen" / "valid-specs").iterdir()
    marker.write_text("spec.json", encoding="utf-8")  # an older p2pgen's marker
    assert validate(spec) == first


def test_one_line_json_is_located_without_parsing_it_again(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")  # one line, as APIs.guru's
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: pytest.fail("composed"))
    assert all(w.startswith(f"{spec}:1:") for w in validate(spec))
