"""Every mapping expression, compiled into a real generated module and executed."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli

DATA = Path(__file__).resolve().parent / "data" / "transform"
NAME = "p2pgen_transform_probe"

MAPPING = f"""\
version: 1
name: {NAME}
source:
  spec: ../shop.yaml
  operation: listOrders
target:
  spec: ../sink.yaml
  operation: createThing
fields:
  email: {{from: email, default: nobody@example.com}}
  kind: {{const: order}}
  label: {{template: "{{name.first}} {{name.last}}!"}}
  attrs.first: name.first
  attrs.source: {{const: shop}}
  status: {{from: active, map: {{true: "on", false: "off"}}, default: unknown}}
  qty: {{from: qty_text, as: integer}}
  price: {{from: price_text, as: number}}
  count_str: {{from: count, as: string}}
  flag: {{from: flag_text, as: boolean}}
  created_at: {{from: created, as: datetime}}
  day: {{from: day, as: date}}
  region: {{env: P2PGEN_TX_REGION}}
  note: {{stub: note_for}}
  nick: {{from: nickname, default: anon}}
  lines:
    each: items
    fields:
      sku: sku
      qty: qty
      parts: {{each: parts, fields: {{code: code, n: n}}}}
"""


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("transform")
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    links = root / "specs" / "links"
    links.mkdir(parents=True)
    for name in ("shop.yaml", "sink.yaml"):
        shutil.copy(DATA / name, root / "specs" / name)
    mapping = links / f"{NAME}.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    out = root / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(mapping), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    folder = str(out / NAME)
    sys.path.insert(0, folder)
    try:
        module = importlib.import_module(NAME)
        yield module
    finally:
        sys.path.remove(folder)
        sys.modules.pop(NAME, None)


@pytest.fixture(autouse=True)
def _env(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2PGEN_TX_REGION", "eu-west")
    monkeypatch.setattr(mod, "note_for", lambda record: f"note for {record.id}")


FULL: dict[str, Any] = {
    "id": "o1",
    "email": "ada@example.com",
    "name": {"first": "Ada", "last": "Lovelace"},
    "active": True,
    "qty_text": "42",
    "price_text": "9.5",
    "count": 7,
    "flag_text": "yes",
    "created": 0,
    "day": "2024-03-05T23:30:00-02:00",
    "nickname": "countess",
    "items": [
        {
            "sku": "A",
            "qty": 2,
            "parts": [{"code": "p1", "n": 1}, {"code": "p2", "n": 2}],
        },
        {"sku": "B", "qty": 1, "parts": []},
    ],
}


def out(mod: ModuleType, raw: dict[str, Any]) -> dict[str, Any]:
    body = mod.transform(mod.SourceRecord.model_validate(raw))
    assert isinstance(body, mod.TargetBody)
    dumped: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    return dumped


def test_every_expression(mod: ModuleType) -> None:
    assert out(mod, FULL) == {
        "email": "ada@example.com",
        "kind": "order",
        "label": "Ada Lovelace!",
        "attrs": {"first": "Ada", "source": "shop"},
        "status": "on",
        "qty": 42,
        "price": 9.5,
        "count_str": "7",
        "flag": True,
        "created_at": "1970-01-01T00:00:00Z",
        "day": "2024-03-06",
        "region": "eu-west",
        "note": "note for o1",
        "nick": "countess",
        "lines": [
            {
                "sku": "A",
                "qty": 2,
                "parts": [{"code": "p1", "n": 1}, {"code": "p2", "n": 2}],
            },
            {"sku": "B", "qty": 1, "parts": []},
        ],
    }


def test_minimal_record_uses_defaults_and_leaves_the_rest_out(
    mod: ModuleType,
) -> None:
    assert out(mod, {"id": "o2", "nickname": None}) == {
        "email": "nobody@example.com",
        "kind": "order",
        "label": " !",
        "attrs": {"source": "shop"},
        "status": "unknown",
        "region": "eu-west",
        "note": "note for o2",
        "nick": "anon",
        "lines": [],
    }


def test_template_with_a_missing_part_renders_empty_not_none(mod: ModuleType) -> None:
    body = out(mod, {**FULL, "name": {"first": "Ada"}})
    assert body["label"] == "Ada !"
    assert "None" not in body["label"]


@pytest.mark.parametrize(
    ("active", "status"), [(True, "on"), (False, "off"), (None, "unknown")]
)
def test_map_with_boolean_keys(mod: ModuleType, active: Any, status: str) -> None:
    assert out(mod, {**FULL, "active": active})["status"] == status


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1704067200, "2024-01-01T00:00:00Z"),
    ],
)
def test_as_datetime_from_epoch(mod: ModuleType, created: int, expected: str) -> None:
    assert out(mod, {**FULL, "created": created})["created_at"] == expected


def test_as_datetime_helper_reads_iso_and_writes_rfc3339_z(mod: ModuleType) -> None:
    assert mod._as_datetime("2024-03-01T14:30:00+02:00") == "2024-03-01T12:30:00Z"
    assert mod._as_datetime("2024-03-01T12:30:00") == "2024-03-01T12:30:00Z"
    assert mod._as_datetime(0) == "1970-01-01T00:00:00Z"
    assert mod._as_datetime(None) is None


def test_as_date(mod: ModuleType) -> None:
    assert out(mod, {**FULL, "day": "2024-01-31T00:00:00Z"})["day"] == "2024-01-31"
    assert mod._as_date("2024-02-29") == "2024-02-29"
    assert mod._as_date(0) == "1970-01-01"


@pytest.mark.parametrize(
    ("text", "expected"), [("yes", True), ("0", False), ("TRUE", True), ("off", False)]
)
def test_as_boolean(mod: ModuleType, text: str, expected: bool) -> None:
    assert out(mod, {**FULL, "flag_text": text})["flag"] is expected


def test_as_integer_and_number(mod: ModuleType) -> None:
    assert out(mod, {**FULL, "qty_text": "3.0", "price_text": "2"}) | {} == {
        **out(mod, FULL),
        "qty": 3,
        "price": 2.0,
    }


def test_bad_conversion_raises(mod: ModuleType) -> None:
    with pytest.raises(ValueError):
        out(mod, {**FULL, "qty_text": "3.5"})
    with pytest.raises(ValueError):
        out(mod, {**FULL, "flag_text": "maybe"})


def test_env_is_read_at_run_time(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PGEN_TX_REGION", "us-east")
    assert out(mod, FULL)["region"] == "us-east"
    monkeypatch.delenv("P2PGEN_TX_REGION")
    with pytest.raises(KeyError):
        out(mod, FULL)


def test_unimplemented_stub_raises_with_guidance(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()
    monkeypatch.setenv("P2PGEN_TX_REGION", "eu-west")
    importlib.reload(mod)
    with pytest.raises(NotImplementedError, match="note_for"):
        out(mod, FULL)


def test_each_nested_twice_with_missing_inner_list(mod: ModuleType) -> None:
    body = out(mod, {**FULL, "items": [{"sku": "C"}]})
    assert body["lines"] == [{"sku": "C", "parts": []}]


# Swagger 2.0 source and field names that are not Python identifiers ----------------

WEIRD_NAME = "p2pgen_transform_weird_probe"
WEIRD_MAPPING = f"""\
version: 1
name: {WEIRD_NAME}
source:
  spec: ../swagger2_people.yaml
  operation: listPeople
target:
  spec: ../weird_names.yaml
  operation: postW
fields:
  first-name: {{from: first-name, default: x}}
  class: class
  1st: 1st
  model_config: model_config
  braces: {{template: "{{{{literal}}}} {{id}}"}}
"""


@pytest.fixture(scope="module")
def weird(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("weird")
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    links = root / "specs" / "links"
    links.mkdir(parents=True)
    for name in ("swagger2_people.yaml", "weird_names.yaml"):
        shutil.copy(DATA / name, root / "specs" / name)
    mapping = links / f"{WEIRD_NAME}.yaml"
    mapping.write_text(WEIRD_MAPPING, encoding="utf-8")
    out = root / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(mapping), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    folder = str(out / WEIRD_NAME)
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(WEIRD_NAME)
    finally:
        sys.path.remove(folder)
        sys.modules.pop(WEIRD_NAME, None)


def test_non_identifier_field_names_and_swagger2(weird: ModuleType) -> None:
    record = weird.SourceRecord.model_validate(
        {"id": "7", "first-name": "Ada", "class": "c", "1st": 1, "model_config": "m"}
    )
    body = weird.transform(record)
    assert body.model_dump(mode="json", by_alias=True, exclude_unset=True) == {
        "first-name": "Ada",
        "class": "c",
        "1st": 1,
        "model_config": "m",
        "braces": "{literal} 7",
    }
    minimal = weird.transform(weird.SourceRecord.model_validate({"id": "8"}))
    assert minimal.model_dump(mode="json", by_alias=True, exclude_unset=True) == {
        "first-name": "x",
        "braces": "{literal} 8",
    }
    # Swagger 2.0: the base URL comes from host + basePath.
    assert weird.declaration().source.default_url == "http://127.0.0.1:9/api"
