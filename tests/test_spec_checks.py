"""Spec validation that is fast on large specs and strict where a link reaches.

A spec that conforms to the OpenAPI schema is checked in milliseconds; one that does not
is handed to openapi-spec-validator for its located messages. The semantic checks a link
needs (path parameters declared, operationIds unique) are made on the operations it uses.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_validation_cache import SPEC

from generator import validation
from generator.cli import cli
from generator.errors import P2pgenError
from generator.samples import _pattern_sample, sample
from generator.schemas import Walker
from generator.specs import Schema, SpecSet, find_operation


def _write(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2PGEN_NO_CACHE", "1")


def test_a_conforming_spec_never_reaches_the_slow_validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(version: str) -> None:
        raise AssertionError("openapi-spec-validator was called")

    monkeypatch.setattr(validation, "_validator", refuse)
    specs = SpecSet()
    warnings = validation.validate_document(specs, specs.load(_write(tmp_path, SPEC)))
    # p2pgen's own checks still run: the default of the wrong type is a warning
    assert any("default 5 is not a string" in str(w) for w in warnings), warnings


def test_a_path_ending_in_ref_is_no_reference_to_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Microsoft Graph's paths end in `/$ref` (its 20 MB once took minutes in the
    slow validator, as if it referred to other files)."""

    def refuse(version: str) -> None:
        raise AssertionError("openapi-spec-validator was called")

    monkeypatch.setattr(validation, "_validator", refuse)
    spec = copy.deepcopy(SPEC)
    spec["paths"]["/things/{id}/owners/$ref"] = {
        "delete": {
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {"204": {"description": "gone"}},
        }
    }
    specs = SpecSet()
    validation.validate_document(specs, specs.load(_write(tmp_path, spec)))


def test_a_broken_spec_is_still_located_by_the_slow_validator(tmp_path: Path) -> None:
    spec = copy.deepcopy(SPEC)
    schema = spec["paths"]["/things"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    schema["properties"]["n"]["type"] = "strin"
    specs = SpecSet()
    with pytest.raises(P2pgenError) as caught:
        validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    problem = caught.value.problems[0]
    assert problem.pointer.startswith("/paths/~1things/get/responses/200"), problem
    assert "invalid OpenAPI document" in problem.message


def test_a_key_the_document_may_not_hold_is_located_at_that_key(
    tmp_path: Path,
) -> None:
    """Google's cloudbuild.json has a top-level `source`: the error names it, not
    the whole document (which has no line of its own to show)."""
    spec = {**copy.deepcopy(SPEC), "source": {"url": {}}}
    specs = SpecSet()
    with pytest.raises(P2pgenError) as caught:
        validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    problem = caught.value.problems[0]
    assert problem.pointer == "/source", problem
    assert "remove it or call it x-source" in problem.message


def _openapi_31(change: dict[str, Any]) -> dict[str, Any]:
    """SPEC as OpenAPI 3.1, with `change` merged into the listed thing's schema and
    a components schema that holds the same change."""
    spec = copy.deepcopy(SPEC)
    spec["openapi"] = "3.1.0"
    schema = spec["paths"]["/things"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    schema["properties"]["n"].update(change)
    spec["components"] = {"schemas": {"Thing": {"type": "object", **change}}}
    return spec


def test_a_31_schema_error_is_located_where_it_is(tmp_path: Path) -> None:
    """OpenAPI 3.1 leaves Schema Objects to JSON Schema 2020-12: `type: strin` there
    passes the OpenAPI schema, and is caught against the dialect's meta-schema."""
    spec = _openapi_31({"type": "strin"})
    specs = SpecSet()
    with pytest.raises(P2pgenError) as caught:
        validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    found = {p.pointer: p.message for p in caught.value.problems}
    inline = "/paths/~1things/get/responses/200/content/application~1json/schema"
    assert set(found) == {
        f"{inline}/properties/n/type",
        "/components/schemas/Thing/type",
    }, found
    assert all("'strin' is not a JSON Schema type" in m for m in found.values())


@pytest.mark.parametrize(
    ("change", "keyword"),
    [
        ({"examples": {"one": {"value": 1}}}, "examples"),  # Codat: a mapping
        ({"$recursiveAnchor": True}, "$recursiveAnchor"),  # a 2019-09 keyword
        ({"definitions": {"kind": {"type": {"enum": ["a"]}}}}, "definitions"),
    ],
)
def test_a_31_mistake_outside_what_models_use_is_a_warning(
    tmp_path: Path, change: dict[str, Any], keyword: str
) -> None:
    spec = _openapi_31(change)
    specs = SpecSet()
    warnings = validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    assert any(
        f"/components/schemas/Thing/{keyword}" in str(w)
        and "p2pgen ignores it" in str(w)
        for w in warnings
    ), warnings


def test_a_31_spec_without_schema_mistakes_has_no_such_warning(
    tmp_path: Path,
) -> None:
    spec = _openapi_31({"type": ["string", "null"], "examples": ["a"]})
    specs = SpecSet()
    warnings = validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    assert not any(
        "2020-12" in str(w) or "ignores it" in str(w) for w in warnings
    ), warnings


def test_a_pattern_python_cannot_compile_is_accepted(tmp_path: Path) -> None:
    """AWS specs use ECMA `\\p{L}` classes; openapi-spec-validator refuses the whole
    spec, p2pgen drops the pattern with a warning and generates."""
    spec = copy.deepcopy(SPEC)
    schema = spec["paths"]["/things"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    schema["properties"]["tag"] = {"type": "string", "pattern": "^[\\p{L}\\p{N}]+$"}
    specs = SpecSet()
    warnings = validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    assert any(
        "/properties/tag/pattern" in str(w) and "p2pgen ignores it" in str(w)
        for w in warnings
    ), warnings


def _with_operation(path: str, op: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["paths"][path] = {"post": op}
    return spec


def test_an_undeclared_path_parameter_of_the_linked_operation_is_located(
    tmp_path: Path,
) -> None:
    spec = _with_operation(
        "/lists/{list_id}/members",
        {"operationId": "addMember", "responses": {"200": {"description": "ok"}}},
    )
    specs = SpecSet()
    doc = specs.load(_write(tmp_path, spec))
    with pytest.raises(P2pgenError) as caught:
        find_operation(specs, doc, "addMember")
    problem = caught.value.problems[0]
    assert problem.pointer == "/paths/~1lists~1{list_id}~1members/post"
    assert "declares no path parameter 'list_id'" in problem.message
    assert "in: path" in problem.message


def test_a_duplicate_operation_id_is_refused_naming_both(tmp_path: Path) -> None:
    spec = _with_operation(
        "/other",
        {"operationId": "listThings", "responses": {"200": {"description": "ok"}}},
    )
    spec["paths"]["/things"]["get"]["operationId"] = "listThings"
    specs = SpecSet()
    doc = specs.load(_write(tmp_path, spec))
    with pytest.raises(P2pgenError) as caught:
        find_operation(specs, doc, "listThings")
    message = caught.value.problems[0].message
    assert "GET /things and POST /other" in message
    assert "'METHOD /path'" in message
    assert find_operation(specs, doc, "POST /other").path == "/other"


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[a-z]{2}-\d{3}$",
        r"^\+?[1-9]\d{1,14}$",
        r"^(draft|sent|paid)$",
        r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
        r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        r"^SKU-[A-Z0-9]{4,8}$",
    ],
)
def test_made_up_strings_match_the_schema_pattern(pattern: str) -> None:
    text = _pattern_sample(pattern)
    assert text is not None and re.search(pattern, text), text


def test_samples_meet_lengths_and_bounds_behind_allof(tmp_path: Path) -> None:
    """AWS's ARNs: a pattern whose shortest match is shorter than the `minLength` of
    the same schema, behind `allOf: [$ref]`; numbers with exclusive bounds."""
    spec = copy.deepcopy(SPEC)
    arn = r"arn:[\w+=/,.@-]+:acm:[\w+=/,.@-]*:[0-9]+:[\w+=,.@-]+(/[\w+=,.@-]+)*"
    spec["components"] = {
        "schemas": {
            "Arn": {"type": "string", "pattern": arn, "minLength": 20},
            "Name": {"type": "string", "maxLength": 8},
        }
    }
    body = {
        "type": "object",
        "properties": {
            "arn": {"allOf": [{"$ref": "#/components/schemas/Arn"}, {"title": "x"}]},
            "name": {"allOf": [{"$ref": "#/components/schemas/Name"}]},
            "ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "count": {"type": "integer", "exclusiveMinimum": 3},
        },
    }
    specs = SpecSet()
    doc = specs.load(_write(tmp_path, spec))
    value = sample(Walker(specs), Schema(doc, body, "/body"))
    assert re.search(arn, value["arn"]) and len(value["arn"]) >= 20, value
    assert len(value["name"]) <= 8, value
    assert 0 <= value["ratio"] < 1 and value["count"] > 3, value


def test_a_pattern_with_no_simple_sample_gives_none() -> None:
    assert _pattern_sample(r"(a)\1b") is None


def test_samples_keep_to_patterns_the_spec_examples_break(tmp_path: Path) -> None:
    """Amadeus' guest example has an email its own (double-escaped) pattern refuses,
    and AWS puts patterns behind `allOf: [$ref]`: the generated tests' samples must
    still validate against the schema."""
    email = {
        "type": "string",
        "format": "email",
        "pattern": "^[a-z]+@[a-z]+\\\\.[a-z]+$",
    }
    spec = copy.deepcopy(SPEC)
    spec["components"] = {
        "schemas": {
            "Arn": {"type": "string", "pattern": "^arn:aws:[a-z]+$"},
            "Guest": {
                "type": "object",
                "required": ["email"],
                "properties": {"email": email},
                "example": {"email": "bob@example.com"},
            },
        }
    }
    body = {
        "type": "object",
        "properties": {
            "guests": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Guest"},
            },
            "stream": {"allOf": [{"$ref": "#/components/schemas/Arn"}]},
        },
    }
    specs = SpecSet()
    doc = specs.load(_write(tmp_path, spec))
    value = sample(Walker(specs), Schema(doc, body, "/body"))
    assert re.search(email["pattern"], value["guests"][0]["email"]), value
    assert re.search("^arn:aws:[a-z]+$", value["stream"]), value


SHOP_LINK = """\
version: 1
name: orders_to_payments
source: {spec: ../shop.yaml, operation: listOrders}
target: {spec: ../shop.yaml, operation: createPayment}
fields:
  currency: currency
  sku: sku
"""


@pytest.mark.slow
def test_a_copied_sample_value_fits_the_target_fields_enum_and_pattern(
    tmp_path: Path,
) -> None:
    """The source's example (`usd`, `widget 7`) breaks the target's enum and pattern:
    the generated tests' sample record carries values both sides accept, so the
    link's own tests pass out of the box."""
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data" / "samples" / "shop.yaml", links.parent)
    mapping = links / "orders_to_payments.yaml"
    mapping.write_text(SHOP_LINK, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["generate", str(mapping), "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / "orders_to_payments"
    tests = (folder / "test_orders_to_payments.py").read_text(encoding="utf-8")
    assert '"currency": "EUR"' in tests and '"sku": "AAA-0000"' in tests
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_refs_inside_specification_extensions_are_the_vendors_business(
    tmp_path: Path,
) -> None:
    """Spotify's `x-spotify-policy-list: {$ref: ...}` points to a list under
    `components/x-spotify-policy`; a property *named* `x-...` is still checked."""
    spec = copy.deepcopy(SPEC)
    spec["components"] = {"x-policy": {"list": [{"name": "a"}]}}
    spec["paths"]["/things"]["get"]["x-policy-list"] = {
        "$ref": "#/components/x-policy/list"
    }
    specs = SpecSet()
    validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    schema = spec["paths"]["/things"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    schema["properties"]["x-rate"] = {"$ref": "#/components/schemas/Nowhere"}
    specs = SpecSet()
    with pytest.raises(P2pgenError) as caught:
        validation.validate_document(specs, specs.load(_write(tmp_path, spec)))
    assert caught.value.problems[0].pointer.endswith("/properties/x-rate/$ref")


def test_a_sample_list_has_the_items_min_items_asks_for(tmp_path: Path) -> None:
    specs = SpecSet()
    doc = specs.load(_write(tmp_path, SPEC))
    matrix = {
        "type": "array",
        "minItems": 2,
        "items": {"type": "array", "minItems": 2, "items": {"type": "number"}},
    }
    assert sample(Walker(specs), Schema(doc, matrix, "/m")) == [[2.5, 2.5]] * 2


@pytest.mark.slow
def test_a_target_whose_body_has_no_fields_gets_an_empty_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google's `POST /v1/{name}:cancel` takes `{}`: init drafts `fields: {}`, and
    the link sends an empty object, type-checked and tested."""
    monkeypatch.chdir(tmp_path)
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data" / "samples" / "shop.yaml", links.parent)
    runner = CliRunner()
    args = ["init", "--source", "specs/shop.yaml", "--source-op", "listOrders"]
    args += ["--target", "specs/shop.yaml", "--target-op", "cancelOrder"]
    result = runner.invoke(cli, [*args, "--name", "cancel_orders"])
    assert result.exit_code == 0, result.output
    mapping = links / "cancel_orders.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "fields: {}  # the request body has no fields" in text
    result = runner.invoke(cli, ["generate", str(mapping), "--out", "out"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "cancel_orders"
    for check in (["mypy", "--strict", "cancel_orders.py"], ["pytest", "-q"]):
        done = subprocess.run(
            [sys.executable, "-m", *check],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:]


ODDITIES_LINK = """\
version: 1
name: rules_copy
source: {spec: ../oddities.yaml, operation: listRules}
target: {spec: ../oddities.yaml, operation: createRule}
fields:
  name: name
  target: target
  every: every
  labels: labels
  gender: gender
  expires: expires
"""


@pytest.mark.slow
def test_real_spec_oddities_generate_a_clean_link(tmp_path: Path) -> None:
    """What the corpus found: `required` naming a property never defined (it
    stopped the check with exit 3), an inline enum DCG names `Target` like the
    runtime's class (ruff F811), a duration example pydantic cannot read, a
    required `id` readOnly behind its $ref, a map with `minProperties`."""
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(
        Path(__file__).parent / "data" / "samples" / "oddities.yaml", links.parent
    )
    mapping = links / "rules_copy.yaml"
    mapping.write_text(ODDITIES_LINK, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["generate", str(mapping), "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / "rules_copy"
    script = (folder / "rules_copy.py").read_text(encoding="utf-8")
    assert "class TargetModel(StrEnum):" in script
    tests = (folder / "test_rules_copy.py").read_text(encoding="utf-8")
    assert '"every": "PT1H30M"' in tests
    assert "    id: Id | None = None" in script  # the server's, never sent
    assert '"labels": {"key1": "sample key1"}' in tests
    for check in (
        ["ruff", "check", "--isolated", "."],
        ["mypy", "--strict", "rules_copy.py"],
        ["pytest", "-q", "-p", "no:cacheprovider"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", *check],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:]


def test_a_property_named_ref_and_a_ref_in_an_example_are_no_refs(
    tmp_path: Path,
) -> None:
    """GitHub's SCIM groups have a property called `$ref`; Shutterstock's example
    values show `$ref`s of its own API. Neither is a reference to follow."""
    spec = copy.deepcopy(SPEC)
    schema = spec["paths"]["/things"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]
    schema["schema"]["properties"]["$ref"] = {"type": "string"}
    schema["examples"] = {"one": {"value": {"$ref": "https://api.example/x"}}}
    schema["schema"]["example"] = {"$ref": "#/nowhere"}
    specs = SpecSet()
    validation.validate_document(specs, specs.load(_write(tmp_path, spec)))


def test_an_operation_path_may_hold_spaces(tmp_path: Path) -> None:
    spec = copy.deepcopy(SPEC)
    spec["paths"]["/Your Pull DOC Request"] = spec["paths"].pop("/things")
    specs = SpecSet()
    doc = specs.load(_write(tmp_path, spec))
    found = find_operation(specs, doc, "GET /Your Pull DOC Request")
    assert found.path == "/Your Pull DOC Request"
