"""Hostile and broken specs: a located message and exit 1, or a located warning; never
a traceback, an internal error (exit 3), a hang, or a script that does not import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_cli_errors import GOOD, Outcome, project, run, write_mapping
from test_golden import _mypy, _pytest, _ruff

from generator.literals import py_literal
from generator.render import merge_imports

__all__ = ["project"]  # the fixture, shared with test_cli_errors

BOMB = "\n".join(
    ["x-bomb:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
)
PERSON_REF = '$ref: "#/components/schemas/PersonName"'
ADDRESS_REF = '$ref: "./common.yaml#/components/schemas/Address"'


def _edit(old: str, new: str) -> Callable[[Path], None]:
    def edit(specs: Path) -> None:
        crm = specs / "crm.yaml"
        text = crm.read_text(encoding="utf-8")
        assert old in text, old
        crm.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


def _append(extra: str) -> Callable[[Path], None]:
    def edit(specs: Path) -> None:
        with (specs / "crm.yaml").open("a", encoding="utf-8") as out:
            out.write("\n" + extra + "\n")

    return edit


def _as_json(change: Callable[[str], str]) -> Callable[[Path], None]:
    """crm.yaml rewritten as indented crm.json, changed, and the mapping pointed at it."""

    def edit(specs: Path) -> None:
        data = yaml.safe_load((specs / "crm.yaml").read_text(encoding="utf-8"))
        text = json.dumps(data, indent=1, default=str)
        (specs / "crm.json").write_text(change(text), encoding="utf-8")
        link = specs / "links" / "link.yaml"
        link.write_text(
            link.read_text(encoding="utf-8").replace("../crm.yaml", "../crm.json"),
            encoding="utf-8",
        )

    return edit


def _validate(project: Path, change: Callable[[Path], None]) -> tuple[int, str]:
    mapping = write_mapping(project, GOOD)
    change(project / "specs")
    outcome = run(["validate", str(mapping)])
    assert "Traceback" not in outcome.output, outcome
    return outcome.code, outcome.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_append(BOMB), "crm.yaml: anchors and aliases expand it to more than"),
        (
            _append("x-loop: &loop\n  again: *loop"),
            "crm.yaml: an alias refers to a value that contains it (a recursive "
            "alias); remove the loop",
        ),
        (
            _edit("example: 1704067200", "example: " + "9" * 5000),
            "crm.yaml:362:20: a number with 5000 digits is too long; write it as a "
            "string or a smaller number",
        ),
        (
            _as_json(lambda t: t.replace("1704067200", "9" * 5000, 1)),
            "crm.json:569:18: a number with 5000 digits is too long",
        ),
        (
            _as_json(lambda t: t.replace("1704067200", "NaN", 1)),
            "crm.json:569:18: invalid JSON: NaN is not a JSON number; write a "
            "number or a string",
        ),
        (
            _as_json(lambda t: t.replace("1704067200", "-Infinity", 1)),
            "crm.json:569:18: invalid JSON: -Infinity is not a JSON number",
        ),
    ],
    ids=["alias_bomb", "recursive_alias", "huge_int", "json_huge_int", "nan", "inf"],
)
def test_unparseable_spec_values(
    project: Path, change: Callable[[Path], None], message: str
) -> None:
    code, output = _validate(project, change)
    assert code == 1, output
    assert message in output, output


def test_duplicate_keys_in_yaml_and_json_name_the_line(project: Path) -> None:
    code, output = _validate(
        project,
        _edit("        email:\n", "        email:\n          type: integer\n"),
    )
    assert code == 0, output
    assert (
        "crm.yaml:346:11: warning: duplicate key 'type' (first at line 345); the "
        "last one wins"
    ) in output, output
    code, output = _validate(
        project,
        _as_json(lambda t: t.replace('"summary":', '"summary": "x", "summary":', 1)),
    )
    assert code == 0, output
    assert re.search(
        r"crm\.json:\d+:\d+: warning: duplicate key 'summary' \(first at line \d+\); "
        "the last one wins",
        output,
    ), output


def _write(name: str, text: str) -> Callable[[Path], None]:
    def edit(specs: Path) -> None:
        (specs / name).write_text(text, encoding="utf-8")

    return edit


def _both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(specs: Path) -> None:
        for one in edits:
            one(specs)

    return edit


REF_AT = "crm.yaml:376:1: at /components/schemas/Contact/properties/address/$ref: "


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _edit(ADDRESS_REF, '$ref: "./nothere.yaml#/A"'),
            REF_AT + "$ref './nothere.yaml#/A': file '",
        ),
        (
            _edit(PERSON_REF, '$ref: "#/components/schemas/PersonNam"'),
            "crm.yaml:349:1: at /components/schemas/Contact/properties/name/$ref: "
            "$ref '#/components/schemas/PersonNam': pointer not found: nothing named "
            "'PersonNam' under /components/schemas; fix the $ref; did you mean "
            "'PersonName'?",
        ),
        (
            _edit(
                "    PersonName:\n", "    PersonName:\n      $ref: '#/x/y'\n    P2:\n"
            ),
            "$ref '#/x/y': pointer not found: nothing named 'x' under /",
        ),
        (
            _edit(
                "    PersonName:\n",
                "    PersonName:\n      $ref: '#/components/schemas/PersonName'\n"
                "    P2:\n",
            ),
            "crm.yaml:325:1: at /components/schemas/PersonName/$ref: $ref "
            "'#/components/schemas/PersonName': $ref cycle (#/components/schemas/"
            "PersonName): the $refs lead back to themselves",
        ),
        (
            _both(
                _write("a.yaml", "A:\n  $ref: './b.yaml#/B'\n"),
                _write("b.yaml", "B:\n  $ref: './a.yaml#/A'\n"),
                _edit(ADDRESS_REF, '$ref: "./a.yaml#/A"'),
            ),
            REF_AT + "$ref './a.yaml#/A': $ref cycle (a.yaml#/A -> b.yaml#/B -> "
            "a.yaml#/A)",
        ),
        (
            _both(_write("c.yaml", ""), _edit(ADDRESS_REF, '$ref: "./c.yaml#/A"')),
            REF_AT + "$ref './c.yaml#/A': the file it refers to, c.yaml, is empty",
        ),
        (
            _both(_write("c.yaml", "- 1\n"), _edit(ADDRESS_REF, '$ref: "./c.yaml#/0"')),
            REF_AT + "$ref './c.yaml#/0': it points to a single value, not an object",
        ),
        (
            _both(
                _write("c.yaml", "A:\n  type: objekt\n  properties: 7\n"),
                _edit(ADDRESS_REF, '$ref: "./c.yaml#/A"'),
            ),
            "c.yaml:3:1: at /A/properties: invalid schema (used by $ref "
            "'./c.yaml#/A' in crm.yaml): 7 is not of type 'object'",
        ),
        (
            _edit(ADDRESS_REF, '$ref: "./links#/A"'),
            REF_AT + "$ref './links#/A': the file it refers to cannot be used: ",
        ),
    ],
    ids=[
        "missing_file",
        "missing_pointer",
        "missing_pointer_root",
        "self",
        "cross_file_cycle",
        "empty_file",
        "not_a_mapping",
        "invalid_external",
        "directory",
    ],
)
def test_ref_problems_are_located(
    project: Path, change: Callable[[Path], None], message: str
) -> None:
    code, output = _validate(project, change)
    assert code == 1, output
    assert message in output, output
    assert "recursion" not in output, output


def test_deep_nesting_gives_a_limit_message(project: Path) -> None:
    # the shape of a fuzzed case: each level's `properties` holds the next level
    lines = ["        deep:"]
    for level in range(400):
        indent = " " * (10 + 2 * level)
        lines += [f"{indent}type: object", f"{indent}properties:", f"{indent}  p:"]
    nested = "\n".join(lines) + "\n"
    code, output = _validate(
        project, _edit("        tags:\n", nested + "        tags:\n")
    )
    assert code == 1, output
    assert "crm.yaml:" in output, output
    assert "levels deep, more than the OpenAPI validator can follow" in output, output


def test_ref_to_something_that_is_not_a_file(project: Path) -> None:
    code, output = _validate(project, _edit(ADDRESS_REF, '$ref: "/dev/null#/A"'))
    assert code == 1, output
    assert (
        REF_AT + "$ref '/dev/null#/A': the file it refers to cannot be used: "
        "/dev/null: not a regular file, so it cannot be read as a spec; give the "
        "path of a YAML or JSON file"
    ) in output, output


# Spec values pydantic or ruff cannot take (items checked on one generated script) ---

HOSTILE_PROPERTIES = """\
        Field:
          type: string
          pattern: "([a-"
        Annotated:
          type: integer
          maximum: .inf
          minimum: -1.0e+400
        été:
          type: string
          maxLength: 99999999999999999999999999
        färg:
          type: string
          enum: [名前, "é", plain]
        slug:
          type: string
          description: "\u0441lient slug (a Cyrillic es for the c)"
          example: "\u0441lient"
        secret:
          type: string
          format: password
        ident:
          type: string
          format: ulid
        breaks:
          type: string
          description: "one\\Ltwo\\Pthree\\Nfour\\vfive\\x1csix\\x1dseven\\x1eeight\\fnine"
          enum: [plain, "a\\Lb", "a\\Pb", "a\\Nb", "a\\vb", "a\\x1cb", "a\\x1db", "a\\x1eb", "a\\fb", "a\\rb", "a\\tb"]
        tier:
"""
HOSTILE_NAMES = (
    "Field",
    "Annotated",
    "été",
    "färg",
    "slug",
    "secret",
    "ident",
    "breaks",
)
# line breaks to str.splitlines() (U+2028, U+2029, U+0085, \v, \x1c-\x1e, \f), \r, \t
BREAKS = (
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x0c",
    "\r",
    "\t",
)


def _generate_reading(
    project: Path, properties: str, names: tuple[str, ...], out: Path
) -> Outcome:
    """Add `properties` to crm.yaml's contact and generate a link whose template
    reads each of `names` (the models hold only what the mapping reads)."""
    reads = " ".join(f"{{{name}}}" for name in names)
    mapping = write_mapping(
        project, GOOD + f"  merge_fields.ALL: {{template: '{reads}'}}\n"
    )
    _edit("        tier:\n", properties)(project / "specs")
    outcome = run(["generate", str(mapping), "--out", str(out)])
    assert outcome.code == 0, outcome
    return outcome


@pytest.mark.slow
def test_hostile_spec_values_give_a_working_script(
    project: Path, tmp_path: Path
) -> None:
    out = project / "out"
    outcome = _generate_reading(project, HOSTILE_PROPERTIES, HOSTILE_NAMES, out)
    for needle in (
        '/properties/Field/pattern: warning: pattern "([a-" is not a valid '
        "regular expression",
        "/properties/Annotated/maximum: warning: maximum .inf is not a finite number",
        "/properties/Annotated/minimum: warning: minimum -.inf is not a finite number",
        "maxLength 99999999999999999999999999 is not between 0 and 2**63-1; "
        "pydantic cannot build it, so p2pgen ignores it",
    ):
        assert needle in outcome.output, (needle, outcome)
    folder = out / "contacts_out"
    script = (folder / "contacts_out.py").read_text(encoding="utf-8")
    assert "_aliased" not in script
    assert 'Field(alias="Field")' in script
    # names are ASCII; JSON names and values are kept, written as escapes
    assert 'Field(alias="\\xe9t\\xe9")' in script
    assert '"\\u540d\\u524d"' in script
    for char in BREAKS:
        assert py_literal(f"a{char}b").replace("'", '"') in script, char
    assert re.fullmatch(r"[\x20-\x7e\n]*", script), "not printable ASCII"
    assert "    secret: str | None = None" in script  # not SecretStr, sent as ***
    assert "    ident: str | None = None" in script  # not ULID, from another package
    files = ["contacts_out.py", "test_contacts_out.py"]
    _ruff(folder, files)
    _mypy(folder, files, tmp_path / "mypy_cache")
    _pytest(folder)


RUST_REGEX_PROPERTIES = """\
        ahead:
          type: string
          pattern: "^a(?!b)"
          example: ac
        nested:
          type: string
          pattern: "[[A-Z0-9]{1,18}"
        tier:
"""


@pytest.mark.slow
def test_patterns_pydantic_cannot_run_are_dropped(
    project: Path, tmp_path: Path
) -> None:
    """Python compiles these; the Rust regex engine pydantic's models run has no
    look-around and refuses what Python reads as a nested set (Amadeus' fare basis),
    so a model holding them could not even be defined."""
    out = project / "out"
    outcome = _generate_reading(
        project, RUST_REGEX_PROPERTIES, ("ahead", "nested"), out
    )
    for needle in (
        '/properties/ahead/pattern: warning: pattern "^a(?!b)" is not a regular '
        "expression pydantic can run (look-around",
        '/properties/nested/pattern: warning: pattern "[[A-Z0-9]{1,18}" is not a '
        "regular expression pydantic can run (unclosed character class)",
    ):
        assert needle in outcome.output, (needle, outcome)
    assert "FutureWarning" not in outcome.output
    folder = out / "contacts_out"
    _mypy(folder, ["contacts_out.py", "test_contacts_out.py"], tmp_path / "cache")
    _pytest(folder)


# Extension keys of datamodel-code-generator -----------------------------------------

CANARY = "p2pgen_canary"
# Every schema key datamodel-code-generator 0.89 reads beyond what p2pgen hands it
# (its JsonSchemaObject aliases, the extras its parsers and models read, the keys it
# writes into Field(), the subschema keywords it walks), each with a value that would
# show in the script if it were honoured: spec-chosen imports, base classes, types,
# names, ClassVars, Field options, extra models.
DCG_KEYS: dict[str, object] = {
    "customBasePath": f"{CANARY}.Base",
    "customTypePath": f"{CANARY}.Thing",
    "x-python-type": f"{CANARY}.Thing",
    "x-python-import": {"module": CANARY, "name": "Thing"},
    "x-is-base-class": True,
    "x-is-classvar": True,
    "is_classvar": True,
    "x-enum-varnames": ["CANARY_A", "CANARY_B", "CANARY_C"],
    "x-enumNames": ["CANARY_A", "CANARY_B", "CANARY_C"],
    "x-enum-descriptions": ["canary a", "canary b", "canary c"],
    "x-enum-field-as-literal": True,
    "x-propertyNames": {"pattern": "^canary"},
    "x-datamodel-code-generator-read-as-const": True,
    "x-datamodel-code-generator-field-name": "canary",
    "x-python-unserializable": True,
    "x-python-union-branch": "canary",
    "default_factory": "list",
    "deprecated": True,
    "kw_only": True,
    "init": False,
    "validate_default": True,
    "contentEncoding": "base64",
    "contentMediaType": "application/canary",
    "contentSchema": {"type": "integer"},
    "externalDocs": {"url": "https://canary.example/"},
    "xml": {"name": "canary"},
    "$id": "https://canary.example/schema",
    "$anchor": "canary",
    "$dynamicAnchor": "canary",
    "$recursiveAnchor": True,
    "$dynamicRef": "#canary",
    "$recursiveRef": "#",
    "$defs": {"Canary": {"type": "integer"}},
    "definitions": {"Canary": {"type": "integer"}},
    "extends": {"type": "integer"},
    "contains": {"type": "integer"},
    "if": {"type": "integer"},
    "then": {"type": "integer"},
    "else": {"type": "integer"},
    "dependentSchemas": {"name": {"type": "integer"}},
    "dependentRequired": {"name": ["canary"]},
    "unevaluatedProperties": False,
    "additionalItems": False,
    "x-avro-logicalType": "decimal",
    "x-avro-precision": 5,
    "x-avro-scale": 2,
    "x-avro-name": "Canary",
    "x-avro-namespace": CANARY,
    "x-avro-fullname": f"{CANARY}.Canary",
    "x-avro-aliases": ["Canary"],
    "x-avro-order": "descending",
    "x-xsd-totalDigits": 5,
    "x-xsd-fractionDigits": 2,
    "x-xsd-abstract": True,
    "x-xsd-occurs-array": True,
}


def _openapi_31(specs: Path, extra: dict[str, object] | None) -> None:
    """crm.yaml as OpenAPI 3.1 (which allows any key in a schema), `extra` in schemas.

    The keys go on an object model, a string, an enum, array items, a schema reached
    by $ref and one in another file, so every schema handed over is covered.
    """
    crm = yaml.safe_load((specs / "crm.yaml").read_text(encoding="utf-8"))
    common = yaml.safe_load((specs / "common.yaml").read_text(encoding="utf-8"))
    crm["openapi"] = "3.1.0"
    if extra:
        contact = crm["components"]["schemas"]["Contact"]
        props = contact["properties"]
        for schema in (
            contact,
            props["tier"],
            props["company"],
            props["tags"]["items"],
            crm["components"]["schemas"]["PersonName"],
            common["components"]["schemas"]["Address"],
        ):
            schema.update(extra)
        # the type whose module record data would choose when the script runs
        props["company"]["customTypePath"] = "pydantic.ImportString"
    for name, data in (("crm.yaml", crm), ("common.yaml", common)):
        (specs / name).write_text(yaml.safe_dump(data), encoding="utf-8")


def _generated(project: Path, out: Path) -> str:
    outcome = run(
        ["generate", str(project / "specs/links/link.yaml"), "--out", str(out)]
    )
    assert outcome.code == 0, outcome
    script = (out / "contacts_out" / "contacts_out.py").read_text(encoding="utf-8")
    # the spec hashes in the header and the checksum differ; nothing else may
    return "\n".join(
        line
        for line in script.split("\n")
        if not line.startswith(("# sha256 ", "# p2pgen checksum "))
    )


@pytest.mark.slow
def test_extension_keys_of_datamodel_code_generator_are_inert(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mapping(project, GOOD)
    _openapi_31(project / "specs", None)
    plain = _generated(project, tmp_path / "plain")
    canary_dir = tmp_path / "canary"
    canary_dir.mkdir()
    marker = tmp_path / "imported"
    (canary_dir / f"{CANARY}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "class Base: pass\nThing = str\nCanary = str\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(canary_dir))
    _openapi_31(project / "specs", DCG_KEYS)
    assert run(["validate", str(project / "specs/links/link.yaml")]).code == 0
    hostile = _generated(project, tmp_path / "hostile")
    assert CANARY not in sys.modules
    assert CANARY not in hostile and "ImportString" not in hostile
    assert hostile == plain
    folder = tmp_path / "hostile" / "contacts_out"
    subprocess.run(
        [sys.executable, "-c", "import contacts_out, test_contacts_out"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(canary_dir)},
        check=True,
    )
    assert not marker.exists()


def _edit_file(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(specs: Path) -> None:
        text = (specs / name).read_text(encoding="utf-8")
        assert old in text, old
        (specs / name).write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _edit_file("crm.yaml", "  /contacts:\n", '  "/contacts\\n":\n'),
            "crm.yaml:22:1: at /paths/~1contacts\\n: the path '/contacts\\n' holds the "
            "control or invisible character U+000A, which no URL can hold; remove it "
            "from the path in the spec",
        ),
        (
            _edit_file(
                "mailer.yaml",
                "  /lists/{list_id}/members:\n",
                '  "/lists/{list_id}\\L/members":\n',
            ),
            "mailer.yaml:16:1: at /paths/~1lists~1{list_id}\\u2028~1members: the path "
            "'/lists/{list_id}\\u2028/members' holds the control or invisible "
            "character U+2028",
        ),
    ],
    ids=["newline_in_source_path", "line_separator_in_target_path"],
)
def test_a_path_no_url_can_hold_is_refused(
    project: Path, change: Callable[[Path], None], message: str
) -> None:
    code, output = _validate(project, change)
    assert code == 1, output
    assert message in output, output


def test_a_time_of_day_field_does_not_shadow_the_clock(
    project: Path, tmp_path: Path
) -> None:
    """A `format: time` field makes the models import `datetime.time`; the
    script's retries and progress use the clock, which must still be the clock
    (it was `import time`, shadowed: every run failed on `time.monotonic`)."""
    _edit_file(
        "mailer.yaml",
        "        vip:\n          type: boolean\n",
        "        quiet_from:\n          type: string\n          format: time\n"
        "        vip:\n          type: boolean\n",
    )(project / "specs")
    mapping = write_mapping(project, GOOD + "  quiet_from: {const: '22:30:00'}\n")
    out = project / "out"
    outcome = run(["generate", str(mapping), "--out", str(out)])
    assert outcome.code == 0, outcome
    folder = out / "contacts_out"
    script = (folder / "contacts_out.py").read_text(encoding="utf-8")
    assert re.search(r"^from datetime import .*\btime\b", script, re.M), script[:3000]
    assert "quiet_from: time | None" in script
    _mypy(folder, ["contacts_out.py", "test_contacts_out.py"], tmp_path / "cache")
    _pytest(folder)


def test_two_imports_of_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two imports bind 'time'"):
        merge_imports(["import time", "from datetime import time"])
    assert merge_imports(["from datetime import date", "from datetime import date"])


DOTTED = GOOD + """\
  '@odata\\.type': {const: '#mailer.member'}
  'source\\.etag': '@odata\\.etag'
"""


def test_a_field_with_a_dot_in_its_name_is_read_and_written_as_backslash_dot(
    project: Path, tmp_path: Path
) -> None:
    """Microsoft Graph requires `@odata.type` in 1,419 schemas: a dot inside a key is
    `\\.` in a path, on both sides; the body model requires the field, the
    transform reads and writes the dotted keys, and init drafts the required one
    from its default. A source record may lack one (`@odata.*` is OData control
    information, which answers leave out)."""
    specs = project / "specs"
    _edit_file(
        "crm.yaml",
        "        company:\n          type: string\n",
        "        '@odata.etag':\n          type: string\n          example: W/1\n"
        "        company:\n          type: string\n",
    )(specs)
    _edit_file(
        "crm.yaml",
        "      required: [id, email, name, status, created, updated_at]\n",
        "      required: [id, email, name, status, created, updated_at, '@odata.etag']\n",
    )(specs)
    _edit_file(
        "mailer.yaml",
        "      required: [email_address, status]\n",
        "      required: [email_address, status, '@odata.type']\n",
    )(specs)
    _edit_file(
        "mailer.yaml",
        "        vip:\n          type: boolean\n",
        "        '@odata.type':\n          type: string\n          default: '#mailer.member'\n"
        "        source.etag:\n          type: string\n"
        "        vip:\n          type: boolean\n",
    )(specs)
    out = project / "out"
    unmapped = run(["generate", str(write_mapping(project, GOOD)), "--out", str(out)])
    assert unmapped.code == 1, unmapped
    assert "required target field(s) not mapped: @odata\\.type" in unmapped.output
    outcome = run(["generate", str(write_mapping(project, DOTTED)), "--out", str(out)])
    assert outcome.code == 0, outcome
    assert "warning" not in outcome.output, outcome.output
    folder = out / "contacts_out"
    _mypy(folder, ["contacts_out.py", "test_contacts_out.py"], tmp_path / "cache")
    _pytest(folder)
    record = {"id": "c_1", "email": "ada@example.com", "@odata.etag": "W/7"}
    probe = (
        "import json, sys, contacts_out as link\n"
        "record = link.SourceRecord.model_validate(json.loads(sys.argv[1]))\n"
        "body = link.transform(record)\n"
        "print(json.dumps(body.model_dump(mode='json', by_alias=True,"
        " exclude_unset=True), sort_keys=True))\n"
        "try:\n"
        "    link.TargetBody.model_validate({'email_address': 'a@b.test',"
        " 'status': 'subscribed'})\n"
        "except ValueError:\n"
        "    print('@odata.type required')\n"
        "bare = {k: v for k, v in json.loads(sys.argv[1]).items() if k[0] != '@'}\n"
        "link.SourceRecord.model_validate(bare)\n"
        "print('read without @odata.etag')\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(record)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    body, required, lenient = ran.stdout.splitlines()
    assert json.loads(body) == {
        "@odata.type": "#mailer.member",
        "email_address": "ada@example.com",
        "source.etag": "W/7",
        "status": "subscribed",
    }
    assert required == "@odata.type required"
    assert lenient == "read without @odata.etag"  # OData control information
    drafted = project / "specs" / "links" / "drafted.yaml"
    init = run(
        [
            "init",
            "--source",
            str(specs / "crm.yaml"),
            "--source-op",
            "listContacts",
            "--target",
            str(specs / "mailer.yaml"),
            "--target-op",
            "addListMember",
            "--output",
            str(drafted),
        ]
    )
    assert init.code == 0, init
    text = drafted.read_text(encoding="utf-8")
    assert "'@odata\\.type': {const: \"#mailer.member\"}" in text or (
        '"@odata\\\\.type": {const: "#mailer.member"}' in text
    ), text
    assert run(["validate", str(drafted)]).code == 0
