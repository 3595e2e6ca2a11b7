"""A catalogue of bad inputs: exit 1 (2 for usage), a located message, no traceback,
nothing written. Fixtures are small files in tmp_path, independent of the examples.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.errors import P2pgenError

ROOT = Path(__file__).resolve().parents[1]


class Outcome:
    def __init__(self, code: int, output: str) -> None:
        self.code = code
        self.output = output

    def __repr__(self) -> str:
        return f"exit {self.code}:\n{self.output}"


def run(args: list[str]) -> Outcome:
    """Run the CLI in-process the way `generator.cli.main` does."""
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    exc = result.exception
    if isinstance(exc, P2pgenError):  # main() turns this into exit 1
        return Outcome(1, result.output + "\n".join(str(p) for p in exc.problems))
    if exc is not None and not isinstance(exc, SystemExit):
        raise AssertionError(f"traceback for bad input:\n{result.output}") from exc
    return Outcome(result.exit_code, result.output)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny repository: copies of the example specs and an empty links folder."""
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("crm.yaml", "common.yaml", "mailer.yaml"):
        shutil.copy(ROOT / "specs" / name, specs / name)
    (specs / "links").mkdir()
    return tmp_path


GOOD = """\
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
"""


def write_mapping(project: Path, text: str, name: str = "link.yaml") -> Path:
    path = project / "specs" / "links" / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def assert_rejected(
    project: Path, mapping: Path, *needles: str, code: int = 1
) -> Outcome:
    out = project / "out"
    outcome = run(["generate", str(mapping), "--out", str(out)])
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.output, outcome
    for needle in needles:
        assert needle in outcome.output, (needle, outcome)
    assert not out.exists() or not any(out.rglob("*")), "something was written"
    return outcome


def test_good_mapping_generates(project: Path) -> None:
    mapping = write_mapping(project, GOOD)
    outcome = run(["generate", str(mapping), "--out", str(project / "out")])
    assert outcome.code == 0, outcome
    assert (project / "out" / "contacts_out" / "contacts_out.py").is_file()


# Mapping files ------------------------------------------------------------------------


def test_malformed_yaml(project: Path) -> None:
    mapping = write_mapping(
        project, GOOD.replace("  records: data", "  records: [data")
    )
    assert_rejected(project, mapping, f"{mapping}:")
    outcome = run(["generate", str(mapping), "--out", str(project / "out")])
    # file:line:col
    assert any(
        line.startswith(f"{mapping}:") and line[len(str(mapping)) + 1].isdigit()
        for line in outcome.output.splitlines()
    ), outcome


def test_empty_mapping(project: Path) -> None:
    mapping = write_mapping(project, "")
    assert_rejected(project, mapping, str(mapping))


def test_unknown_top_level_key(project: Path) -> None:
    mapping = write_mapping(project, GOOD + "feilds:\n  a: b\n")
    assert_rejected(project, mapping, f"{mapping}:15:1", "did you mean 'fields'?")


def test_unknown_operation(project: Path) -> None:
    mapping = write_mapping(
        project, GOOD.replace("operation: listContacts", "operation: listContact")
    )
    assert_rejected(project, mapping, "did you mean 'listContacts'?")
    assert_rejected(project, mapping, f"{mapping}:5:")


def test_unknown_source_field(project: Path) -> None:
    mapping = write_mapping(
        project, GOOD.replace("email_address: email", "email_address: emial")
    )
    assert_rejected(project, mapping, f"{mapping}:13:", "did you mean 'email'?")


def test_unknown_target_field(project: Path) -> None:
    mapping = write_mapping(project, GOOD + "  emial_address: email\n")
    assert_rejected(project, mapping, f"{mapping}:15:", "emial_address")


def test_read_only_target_field(project: Path) -> None:
    mapping = write_mapping(project, GOOD + "  id: id\n")
    outcome = assert_rejected(project, mapping, f"{mapping}:15:")
    assert "readOnly" in outcome.output or "read-only" in outcome.output, outcome


def test_required_target_field_not_mapped(project: Path) -> None:
    mapping = write_mapping(
        project, GOOD.replace("  status: {const: subscribed}\n", "")
    )
    outcome = assert_rejected(project, mapping, str(mapping), "status")
    assert "required" in outcome.output, outcome


def test_wrong_type_without_as(project: Path) -> None:
    # `created` is integer epoch seconds; signed_up_at is a date-time string.
    mapping = write_mapping(project, GOOD + "  signed_up_at: created\n")
    outcome = assert_rejected(project, mapping, f"{mapping}:15:", "signed_up_at")
    assert "as" in outcome.output, outcome


def test_bad_pagination_style(project: Path) -> None:
    mapping = write_mapping(
        project,
        GOOD.replace(
            "  records: data\n",
            "  records: data\n  pagination:\n    style: cursr\n    param: cursor\n"
            "    next: next_cursor\n",
        ),
    )
    assert_rejected(project, mapping, f"{mapping}:8:", "did you mean 'cursor'?")


def test_unknown_auth_scheme(project: Path) -> None:
    mapping = write_mapping(
        project,
        GOOD.replace(
            "  records: data\n", "  records: data\n  auth:\n    scheme: bearer\n"
        ),
    )
    assert_rejected(project, mapping, f"{mapping}:8:", "did you mean 'bearerAuth'?")


# Specs ------------------------------------------------------------------------------------


def test_missing_spec_file(project: Path) -> None:
    mapping = write_mapping(project, GOOD.replace("../crm.yaml", "../crm2.yaml"))
    assert_rejected(project, mapping, "crm2.yaml")


def test_invalid_openapi_spec(project: Path) -> None:
    spec = project / "specs" / "crm.yaml"
    text = spec.read_text(encoding="utf-8")
    # `required` must be a boolean on a parameter.
    spec.write_text(
        text.replace("          required: false\n", "          required: maybe\n", 1),
        encoding="utf-8",
    )
    mapping = write_mapping(project, GOOD)
    outcome = assert_rejected(project, mapping, "crm.yaml")
    assert "/paths/~1contacts/get/parameters/0" in outcome.output, outcome


def test_spec_that_is_not_openapi(project: Path) -> None:
    (project / "specs" / "crm.yaml").write_text(
        "name: not an api\nitems: [1, 2, 3]\n", encoding="utf-8"
    )
    mapping = write_mapping(project, GOOD)
    outcome = assert_rejected(project, mapping, "crm.yaml")
    assert "OpenAPI" in outcome.output or "openapi" in outcome.output, outcome


def test_usage_error_without_mapping(project: Path) -> None:
    outcome = run(["generate", "--out", str(project / "out")])
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.output
    assert not (project / "out").exists()


@pytest.mark.slow
def test_main_entry_point_prints_no_traceback(project: Path) -> None:
    """The real console entry point (a subprocess) for one bad mapping."""
    mapping = write_mapping(project, GOOD + "feilds: {}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "generate", str(mapping), "--out", "out"],
        cwd=project,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "did you mean 'fields'?" in proc.stderr
    assert not (project / "out").exists()


# A hostile spec cannot inject code ---------------------------------------------------------

EVIL = "__import__('os').system('touch MARKER')"
NASTY = f'x""" \'\'\' \\ {{}} \\r \\n\r\nline2 {EVIL} """+{EVIL}+"""'


def hostile_spec(marker: Path) -> str:
    evil = EVIL.replace("MARKER", str(marker))
    nasty = NASTY.replace("MARKER", str(marker))

    def s(value: str) -> str:
        return json.dumps(value)

    return textwrap.dedent(f"""\
        openapi: 3.0.3
        info:
          title: {s("Evil " + nasty)}
          version: {s("1.0" + nasty)}
          description: {s(nasty)}
        servers:
          - url: http://127.0.0.1:9
        paths:
          /things:
            get:
              operationId: {s("listThings")}
              summary: {s(nasty)}
              description: {s(nasty)}
              parameters:
                - name: q
                  in: query
                  description: {s(nasty)}
                  schema:
                    type: string
                    enum: [{s(nasty)}, {s(evil)}, "ok"]
              responses:
                "200":
                  description: {s(nasty)}
                  content:
                    application/json:
                      schema:
                        type: array
                        items:
                          $ref: "#/components/schemas/Thing"
            post:
              operationId: {s("createThing")}
              summary: {s(nasty)}
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      $ref: "#/components/schemas/Thing"
              responses:
                "201":
                  description: {s(nasty)}
        components:
          schemas:
            Thing:
              type: object
              description: {s(nasty)}
              required: [name]
              properties:
                name:
                  type: string
                  description: {s(nasty)}
                  example: {s(nasty)}
                  default: {s(evil)}
                kind:
                  type: string
                  description: {s(nasty)}
                  enum: [{s(nasty)}, {s(evil)}, "a{{b}}", "back\\\\slash"]
        """)


@pytest.mark.slow
def test_hostile_spec_cannot_inject_code(project: Path) -> None:
    marker = project / "MARKER_CREATED"
    (project / "specs" / "evil.yaml").write_text(hostile_spec(marker), encoding="utf-8")
    evil = EVIL.replace("MARKER", str(marker))
    mapping = write_mapping(
        project,
        f"""\
        version: 1
        name: evil_link
        description: {evil!r}
        source:
          spec: ../evil.yaml
          operation: listThings
          params:
            q: {{const: {evil!r}}}
        target:
          spec: ../evil.yaml
          operation: createThing
        fields:
          name: {{template: "{{name}} {{{{}}}} \\\\ \\" ''' {evil}"}}
          kind: {{const: {evil!r}}}
        """,
    )
    out = project / "out"
    outcome = run(["generate", str(mapping), "--out", str(out)])
    assert outcome.code == 0, outcome
    script = out / "evil_link" / "evil_link.py"
    source = script.read_text(encoding="utf-8")
    compile(source, str(script), "exec")
    compile((out / "evil_link" / "test_evil_link.py").read_text(), "t.py", "exec")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-c", "import evil_link; print(evil_link.LINK_NAME)"],
        cwd=script.parent,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "evil_link"
    assert not marker.exists(), "a hostile spec executed code on import"


# Regeneration and customisation regions ----------------------------------------------------


STUB_MAPPING = GOOD + "  tags: {stub: tags_for}\n"


def test_regions_survive_and_outside_edits_are_refused(project: Path) -> None:
    mapping = write_mapping(project, STUB_MAPPING)
    out = project / "out"
    assert run(["generate", str(mapping), "--out", str(out)]).code == 0
    script = out / "contacts_out" / "contacts_out.py"
    original = script.read_text(encoding="utf-8")
    assert "raise NotImplementedError" in original

    # An edit inside the stub region survives regeneration.
    begin = original.index("# p2pgen:begin stub tags_for")
    end = original.index("# p2pgen:end stub tags_for")
    region = original[begin:end]
    implemented = region[: region.index("    raise NotImplementedError")]
    implemented += '    return ["from-crm"]\n\n\n'
    edited = original[:begin] + implemented + original[end:]
    script.write_text(edited, encoding="utf-8")
    outcome = run(["generate", str(mapping), "--out", str(out)])
    assert outcome.code == 0, outcome
    regenerated = script.read_text(encoding="utf-8")
    assert 'return ["from-crm"]' in regenerated
    assert regenerated == edited

    # An edit outside every region is refused, with the diff, and nothing is written.
    tampered = regenerated.replace(
        'LINK_NAME = "contacts_out"', 'LINK_NAME = "contacts_out"  # mine'
    )
    assert tampered != regenerated
    script.write_text(tampered, encoding="utf-8")
    outcome = run(["generate", str(mapping), "--out", str(out)])
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.output
    assert "--force" in outcome.output
    assert '+LINK_NAME = "contacts_out"  # mine' in outcome.output
    assert script.read_text(encoding="utf-8") == tampered

    # --force overwrites the outside edit and still keeps the region.
    outcome = run(["generate", str(mapping), "--out", str(out), "--force"])
    assert outcome.code == 0, outcome
    forced = script.read_text(encoding="utf-8")
    assert "# mine" not in forced
    assert 'return ["from-crm"]' in forced
    assert forced == edited


def _break_company_default(project: Path) -> None:
    """An invalid schema that openapi-spec-validator reports with an empty path."""
    spec = project / "specs" / "crm.yaml"
    text = spec.read_text(encoding="utf-8")
    marker = (
        "        company:\n          type: string\n          example: Cobol Systems\n"
    )
    assert marker in text
    spec.write_text(
        text.replace(
            marker,
            "        company:\n          type: string\n          default: false\n"
            "          example: Cobol Systems\n",
        ),
        encoding="utf-8",
    )


SAME_SPEC = """\
version: 1
name: same_spec
source:
  spec: ../crm.yaml
  operation: listContacts
  records: data
target:
  spec: ../crm.yaml
  operation: createCustomer
fields:
  external_ref: id
  name: {template: "{name.first}"}
  email: email
"""


def test_default_of_the_wrong_type_is_a_located_warning(project: Path) -> None:
    """Real specs (Mailchimp) are full of these; they must not block a link."""
    _break_company_default(project)
    mapping = write_mapping(project, GOOD)
    outcome = run(["generate", str(mapping), "--out", str(project / "out")])
    assert outcome.code == 0, outcome
    assert "warning: default false is not a string" in outcome.output
    assert (
        "/components/schemas/CustomerInput/properties/company/default" in outcome.output
    )
    assert (project / "out" / "contacts_out" / "contacts_out.py").is_file()


def _break_company_type(project: Path) -> None:
    spec = project / "specs" / "crm.yaml"
    text = spec.read_text(encoding="utf-8")
    marker = "        company:\n          type: string\n"
    assert marker in text
    spec.write_text(
        text.replace(marker, "        company:\n          type: strin\n", 1),
        encoding="utf-8",
    )


def test_invalid_schema_type_names_a_pointer(project: Path) -> None:
    _break_company_type(project)
    mapping = write_mapping(project, GOOD)
    assert_rejected(project, mapping, "/properties/company/type: invalid OpenAPI")


def test_a_problem_is_reported_once(project: Path) -> None:
    _break_company_type(project)
    mapping = write_mapping(project, SAME_SPEC)
    outcome = assert_rejected(project, mapping, "invalid OpenAPI document")
    lines = [line for line in outcome.output.splitlines() if "invalid OpenAPI" in line]
    assert len(lines) == len(set(lines)), outcome


def test_validate_reports_every_problem_at_once(project: Path) -> None:
    mapping = write_mapping(
        project,
        GOOD.replace("email_address: email", "email_address: emial")
        + "  vip: {from: tierr, map: {gold: true}, default: false}\n  bogus: id\n",
    )
    outcome = run(["validate", str(mapping)])
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.output
    assert (
        f"{mapping}:13:" in outcome.output and "did you mean 'email'?" in outcome.output
    )
    assert (
        f"{mapping}:15:" in outcome.output and "did you mean 'tier'?" in outcome.output
    )
    assert f"{mapping}:16:" in outcome.output and "'bogus'" in outcome.output


def test_ops_on_missing_and_non_openapi_files(project: Path) -> None:
    missing = run(["ops", str(project / "specs" / "nope.yaml")])
    assert missing.code in (1, 2), missing
    assert "nope.yaml" in missing.output and "Traceback" not in missing.output
    (project / "specs" / "plain.yaml").write_text("a: 1\n", encoding="utf-8")
    plain = run(["ops", str(project / "specs" / "plain.yaml")])
    assert plain.code == 1, plain
    assert "plain.yaml" in plain.output and "OpenAPI" in plain.output


def test_mapping_name_must_be_an_identifier(project: Path) -> None:
    mapping = write_mapping(project, GOOD.replace("name: contacts_out", "name: 1-bad"))
    assert_rejected(project, mapping, f"{mapping}:2:")


def test_unknown_records_path_is_located_at_records(project: Path) -> None:
    mapping = write_mapping(project, GOOD.replace("records: data", "records: dta"))
    assert_rejected(project, mapping, "did you mean 'data'?")
    assert_rejected(project, mapping, f"{mapping}:6:")


def test_pagination_problems_are_located_at_their_key(project: Path) -> None:
    mapping = write_mapping(
        project,
        GOOD.replace(
            "  records: data\n",
            "  records: data\n  pagination:\n    style: cursor\n    param: cursr\n"
            "    next: next_cursor\n",
        ),
    )
    assert_rejected(project, mapping, "did you mean 'cursor'?")
    assert_rejected(project, mapping, f"{mapping}:9:")


def test_ops_lists_webhooks_and_says_when_there_is_nothing(project: Path) -> None:
    listed = run(["ops", str(ROOT / "specs" / "pos.yaml")])
    assert listed.code == 0, listed
    assert re.search(
        r"WEBHOOK +saleCompleted +POST +A sale was completed", listed.output
    )
    (project / "specs" / "empty.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n", encoding="utf-8"
    )
    empty = run(["ops", str(project / "specs" / "empty.yaml")])
    assert empty.code == 0, empty
    assert "empty.yaml: no operations and no webhooks" in empty.output
