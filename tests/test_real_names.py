"""Names and values real specs have, in small specs of our own: each is generated
into a link, imported and run, and the link's generated tests pass under -W error.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from openapi_schema_validator import OAS30Validator
from test_golden import _mypy, _python_m, _ruff

from generator.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SPECS = Path(__file__).resolve().parent / "specs"

pytestmark = pytest.mark.slow

# Names pydantic's BaseModel has as attributes (a field named so warned, or broke)
MODEL_ATTRIBUTES = (
    "model_dump",
    "model_config",
    "model_fields",
    "schema",
    "json",
    "copy",
    "dict",
    "fields",
)
KEYWORDS_AND_BUILTINS = ("class", "from", "list", "type", "id")
COLOURS = [f"c{i:03}" for i in range(300)]
OPERATION_IDS = ("list things.v1/all", "create thing / v2.beta")

SOURCE_SPEC = f"""\
openapi: 3.0.3
info: {{title: Names source, version: "1"}}
servers: [{{url: "http://source.test"}}]
paths:
  /things:
    get:
      operationId: "{OPERATION_IDS[0]}"
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  items:
                    type: array
                    items: {{$ref: "#/components/schemas/Thing"}}
components:
  schemas:
    Thing:
      allOf:
        - $ref: "#/components/schemas/Base"
        - type: object
          required: [id, class]
          properties:
{textwrap.indent(chr(10).join(f"{n}: {{type: string}}" for n in (*MODEL_ATTRIBUTES, *KEYWORDS_AND_BUILTINS)), " " * 12)}
            Name: {{type: string}}
            name: {{type: string}}
            colour: {{$ref: "#/components/schemas/Colour"}}
            born: {{type: string, format: date, example: 2024-01-01}}
            seen: {{type: string, format: date-time, example: 2024-01-01T10:00:00Z}}
            blob: {{type: string, example: !!binary aGVsbG8=}}
            ratio: {{type: number, example: .inf}}
            birth_date: {{type: string, format: date, example: "2024-03-05T09:30:00Z"}}
            tree: {{$ref: "#/components/schemas/Node"}}
            pet: {{$ref: "#/components/schemas/pet"}}
            Pet: {{$ref: "#/components/schemas/Pet"}}
    Base:
      allOf:
        - $ref: "#/components/schemas/Root"
        - type: object
          properties:
            base_note: {{type: string}}
    Root:
      type: object
      properties:
        root_note: {{type: string}}
        unused_note: {{type: integer}}
    Colour:
      type: string
      enum: {json.dumps(COLOURS)}
    Node:
      type: object
      properties:
        label: {{type: string}}
        children:
          type: array
          items: {{$ref: "#/components/schemas/Node"}}
    pet:
      type: object
      properties:
        kind: {{type: string}}
    Pet:
      type: object
      properties:
        Kind: {{type: string}}
"""

TARGET_FIELDS = (*MODEL_ATTRIBUTES, *KEYWORDS_AND_BUILTINS, "Name", "name")
TARGET_SPEC = f"""\
openapi: 3.0.3
info: {{title: Names target, version: "1"}}
servers: [{{url: "http://target.test"}}]
paths:
  /things:
    post:
      operationId: "{OPERATION_IDS[1]}"
      requestBody:
        required: true
        content:
          application/json:
            schema: {{$ref: "#/components/schemas/NewThing"}}
      responses:
        "201": {{description: created}}
components:
  schemas:
    NewThing:
      type: object
      required: [class]
      properties:
{textwrap.indent(chr(10).join(f"{n}: {{type: string}}" for n in TARGET_FIELDS), " " * 8)}
        colour:
          type: string
          enum: {json.dumps(COLOURS)}
        notes: {{type: string}}
        born: {{type: string, format: date}}
        labels:
          type: array
          items:
            type: object
            properties:
              label: {{type: string}}
        pet_kind: {{type: string}}
        Pet_kind: {{type: string}}
"""

MAPPING = f"""\
version: 1
name: names_link
source:
  spec: ../source.yaml
  operation: "{OPERATION_IDS[0]}"
  records: items
target:
  spec: ../target.yaml
  operation: "{OPERATION_IDS[1]}"
  idempotency_key:
    header: Idempotency-Key
    from: id
fields:
{textwrap.indent(chr(10).join(f"{n}: {n}" for n in TARGET_FIELDS), "  ")}
  colour: colour
  notes: {{template: "{{root_note}} {{base_note}}"}}
  born: born
  labels:
    each: tree.children
    fields:
      label: label
  pet_kind: pet.kind
  Pet_kind: Pet.Kind
"""


def _generate(project: Path, name: str, specs: dict[str, str], mapping: str) -> Path:
    """Write the specs and the mapping into `project`, generate; the link's folder."""
    (project / "pyproject.toml").write_text("", encoding="utf-8")
    links = project / "specs" / "links"
    links.mkdir(parents=True, exist_ok=True)
    for file, text in specs.items():
        (project / "specs" / file).write_text(text, encoding="utf-8")
    (links / f"{name}.yaml").write_text(mapping, encoding="utf-8")
    out = project / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(links / f"{name}.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out / name


def _generated_tests_pass(folder: Path) -> None:
    _python_m(folder, "pytest", "-q", "-p", "no:cacheprovider", "-W", "error")


def _sample_records(folder: Path, name: str) -> list[Any]:
    tree = ast.parse((folder / f"test_{name}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "SAMPLE_RECORDS"
            and node.value is not None
        ):
            records: list[Any] = ast.literal_eval(node.value)
            return records
    raise AssertionError("no SAMPLE_RECORDS in the generated tests")


def _full_schema_validator(spec_text: str, name: str) -> OAS30Validator:
    """A JSON-schema validator (formats checked) for an unpruned schema of a spec."""
    spec = yaml.safe_load(spec_text)
    if "swagger" in spec:
        schema = {"$ref": f"#/definitions/{name}", "definitions": spec["definitions"]}
    else:
        schema = {
            "$ref": f"#/components/schemas/{name}",
            "components": spec["components"],
        }
    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


def _run_script(folder: Path, code: str) -> str:
    """Run `code` in a fresh interpreter (warnings are errors) beside the script."""
    (folder / "check_run.py").write_text(textwrap.dedent(code), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-W", "error", "check_run.py"],
        cwd=folder,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def names_link(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("names")
    return _generate(
        project,
        "names_link",
        {"source.yaml": SOURCE_SPEC, "target.yaml": TARGET_SPEC},
        MAPPING,
    )


def test_hostile_names_give_a_working_link(names_link: Path) -> None:
    script = (names_link / "names_link.py").read_text(encoding="utf-8")
    for op in OPERATION_IDS:  # the operations are named as the specs write them
        assert op in script
    _generated_tests_pass(names_link)


def test_hostile_names_pass_ruff_and_mypy(names_link: Path, tmp_path: Path) -> None:
    files = ["names_link.py", "test_names_link.py"]
    _ruff(names_link, files)
    _mypy(names_link, files, tmp_path / "mypy_cache")


def test_samples_are_json_and_valid_against_the_full_schema(names_link: Path) -> None:
    (record,) = _sample_records(names_link, "names_link")
    _full_schema_validator(SOURCE_SPEC, "Thing").validate(record)
    assert record["born"] == "2024-01-01"  # a YAML date example, as its text
    assert record["seen"] == "2024-01-01T10:00:00+00:00"
    assert isinstance(record["blob"], str)  # not the binary example
    assert record["ratio"] == 2.5  # not .inf
    assert record["birth_date"] == "2024-03-01"  # not the date-time example


def test_models_keep_only_what_the_mapping_uses(names_link: Path) -> None:
    script = (names_link / "names_link.py").read_text(encoding="utf-8")
    models = script.split("# Models:")[1].split("# Transform:")[0]
    for unused in ("blob", "ratio", "birth_date", "unused_note", "seen"):
        assert f" {unused}:" not in models, unused


def test_unused_fields_never_dead_letter_a_record(names_link: Path) -> None:
    # the spec's example for birth_date (unused) is a date-time under format: date;
    # real records like it, and with any other junk in unused fields, are moved
    output = _run_script(
        names_link,
        """\
        import json
        import tempfile
        from pathlib import Path

        import httpx

        import names_link as link

        record = {
            "id": "t1", "class": "first", "name": "n", "Name": "N", "colour": "c042",
            "root_note": "r", "base_note": "b", "born": "2024-01-02",
            "birth_date": "2024-03-05T09:30:00Z", "ratio": "not a number",
            "unused_note": {"deep": [1, 2]}, "blob": None, "brand_new_field": 7,
            "tree": {"label": "root", "children": [{"label": "a", "junk": "x"}]},
            "pet": {"kind": "cat", "age": "old"}, "Pet": {"Kind": "Dog"},
        }
        sent = []

        def source(request):
            return httpx.Response(200, json={"items": [record]})

        def target(request):
            sent.append(json.loads(request.content))
            return httpx.Response(201, json={})

        parsed = link.SourceRecord.model_validate(record)
        assert parsed.model_extra["birth_date"] == "2024-03-05T09:30:00Z"
        assert parsed.model_dump(by_alias=True)["brand_new_field"] == 7
        with tempfile.TemporaryDirectory() as folder:
            config = link.Config(
                source_url="http://source.test",
                target_url="http://target.test",
                state_path=Path(folder) / "state.json",
                dead_letter_path=Path(folder) / "dead.jsonl",
            )
            summary = link.run(
                config, httpx.MockTransport(source), httpx.MockTransport(target)
            )
            assert not (Path(folder) / "dead.jsonl").exists()
        assert (summary.read, summary.written, summary.failed) == (1, 1, 0)
        print(json.dumps(sent[0], sort_keys=True))
        """,
    )
    body = json.loads(output)
    assert body["class"] == "first" and body["Name"] == "N" and body["name"] == "n"
    assert body["colour"] == "c042" and body["notes"] == "r b"
    assert body["labels"] == [{"label": "a"}]
    assert (body["pet_kind"], body["Pet_kind"]) == ("cat", "Dog")


def test_swagger_2_as_source_and_as_target(tmp_path: Path) -> None:
    spec = (SPECS / "swagger2.yaml").read_text(encoding="utf-8")
    folder = _generate(
        tmp_path,
        "swagger_link",
        {"swagger2.yaml": spec},
        (SPECS / "swagger_link.yaml").read_text(encoding="utf-8"),
    )
    _generated_tests_pass(folder)
    (record,) = _sample_records(folder, "swagger_link")
    _full_schema_validator(spec, "Contact").validate(record)
