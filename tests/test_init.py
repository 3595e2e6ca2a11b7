"""`p2pgen init` drafts a mapping that validates, generates and passes its own tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import real_spec

from generator.cli import cli
from generator.draft import Draft, repair
from generator.errors import Code, P2pgenError, Problem
from generator.specs import SpecSet, find_operation, iter_operations

ROOT = Path(__file__).resolve().parents[1]

EXAMPLE_PAIRS = [
    ("crm.yaml", "listContacts", "mailer.yaml", "addListMember"),
    ("invoicing.json", "listInvoices", "crm.yaml", "createCustomer"),
    ("pos.yaml", "listSales", "inventory.yaml", "createAdjustment"),
    ("patients.yaml", "listTreatments", "billing.yaml", "POST /charges"),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(
        ROOT / "specs", tmp_path / "specs", ignore=shutil.ignore_patterns("links")
    )
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; bad input ends as exit 1, as `generator.cli.main` does."""
    result = CliRunner().invoke(cli, list(args))
    if isinstance(result.exception, P2pgenError):
        return 1, result.output + str(result.exception)
    assert result.exception is None or isinstance(
        result.exception, SystemExit
    ), result.output
    return result.exit_code, result.output


def run_generated_tests(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def draft_and_generate(
    source: Path, source_op: str, target: Path, target_op: str
) -> Path:
    code, output = invoke(
        "init",
        "--source",
        str(source),
        "--source-op",
        source_op,
        "--target",
        str(target),
        "--target-op",
        target_op,
        "--name",
        "drafted",
    )
    assert code == 0, output
    mapping = Path("specs/links/drafted.yaml")
    assert mapping.is_file()
    code, output = invoke("validate", str(mapping))
    assert code == 0, output
    code, output = invoke("generate", str(mapping), "--out", "out")
    assert code == 0, output
    return Path("out/drafted")


@pytest.mark.slow
@pytest.mark.parametrize(("source", "source_op", "target", "target_op"), EXAMPLE_PAIRS)
def test_draft_of_example_apis_generates_and_passes_its_tests(
    project: Path, source: str, source_op: str, target: str, target_op: str
) -> None:
    folder = draft_and_generate(
        Path("specs") / source, source_op, Path("specs") / target, target_op
    )
    result = run_generated_tests(folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_draft_explains_its_choices(project: Path) -> None:
    code, output = invoke(
        "init",
        "--source",
        "specs/crm.yaml",
        "--source-op",
        "listContacts",
        "--target",
        "specs/mailer.yaml",
        "--target-op",
        "addListMember",
        "-o",
        "-",
    )
    assert code == 0, output
    assert "records: data" in output
    assert "style: cursor" in output and "guessed from the 'cursor' parameter" in output
    assert "email_address: email  # synonyms: email ~ email_address" in output
    assert "status: {stub: status_for}" in output  # required, enums differ
    assert "list_id: {env: LIST_ID}" in output
    assert "# Source fields not mapped:" in output and "name.first" in output
    assert "spec: specs/crm.yaml" in output  # relative to where it was printed


def test_init_never_overwrites(project: Path) -> None:
    mapping = project / "specs" / "links" / "mine.yaml"
    mapping.parent.mkdir(parents=True)
    mapping.write_text("keep me\n", encoding="utf-8")
    code, output = invoke(
        "init",
        "--source",
        "specs/crm.yaml",
        "--source-op",
        "listContacts",
        "--target",
        "specs/mailer.yaml",
        "--target-op",
        "addListMember",
        "--name",
        "mine",
    )
    assert code == 1 and "already exists" in output
    assert mapping.read_text(encoding="utf-8") == "keep me\n"


def test_init_with_unknown_operation_says_what_exists(project: Path) -> None:
    code, output = invoke(
        "init",
        "--source",
        "specs/crm.yaml",
        "--source-op",
        "listContact",
        "--target",
        "specs/mailer.yaml",
        "--target-op",
        "addListMember",
    )
    assert code == 1
    assert "did you mean 'listContacts'?" in output
    assert not (project / "specs" / "links").exists()


@pytest.mark.slow
def test_draft_between_real_specs_stripe_to_mailchimp(project: Path) -> None:
    stripe, mailchimp = real_spec("stripe.com"), real_spec("mailchimp.com")
    folder = draft_and_generate(
        stripe, "GetCustomers", mailchimp, "POST /lists/{list_id}/members"
    )
    text = Path("specs/links/drafted.yaml").read_text(encoding="utf-8")
    assert "email_address: email" in text and "style: cursor" in text
    result = run_generated_tests(folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_repair_acts_on_problem_codes_not_on_their_wording() -> None:
    draft = Draft()
    for text, target in (("fields:", ""), ("  email: mail  # same name", "email")):
        draft.add(text, target)
    problems = [
        Problem("m.yaml", 2, 3, "any wording at all", code=Code.TYPE_MISMATCH),
        Problem(
            "m.yaml",
            1,
            1,
            "reworded: these are missing",
            code=Code.REQUIRED_FIELD_UNMAPPED,
            targets=("name.first", "status"),
        ),
    ]
    assert repair(draft, problems)
    assert draft.text() == (
        "fields:\n"
        "  # email: mail  # same name  # p2pgen init: any wording at all\n"
        "  name.first: {stub: name_first_for}  # required\n"
        "  status: {stub: status_for}  # required\n"
    )
    assert not repair(draft, [Problem("m.yaml", 2, 3, "again", code="type-mismatch")])


def frame_draft() -> Draft:
    """A draft as init writes it: a frame, a pagination block, params, fields."""
    draft = Draft()
    draft.add("version: 1")
    draft.add("source:")
    draft.add("  spec: a.yaml", frame=True)
    draft.add("  operation: listThings", frame=True)
    draft.add("  records: data  # the list found in the response")
    draft.add("  pagination:  # guessed")
    draft.add("    style: next_url", part=True)
    draft.add("    next: links.next", part=True)
    draft.add("target:")
    draft.add("  spec: b.yaml", frame=True)
    draft.add("  operation: addThing", frame=True)
    draft.add("  params:")
    draft.add("    list_id: {env: LIST_ID}  # path parameter")
    draft.add()
    draft.add("fields:")
    draft.add("  email: mail  # same name", "email")
    draft.add("  # phone: not mapped (string)")
    return draft


def test_repair_keeps_the_frame_and_takes_whole_entries() -> None:
    draft = frame_draft()
    problems = [
        Problem("m.yaml", 3, 3, "auth: unsupported scheme", code=Code.INVALID_VALUE),
        Problem("m.yaml", 8, 5, "links.next is not in the response"),
        Problem("m.yaml", 13, 5, "no parameter list_id"),
        Problem("m.yaml", 16, 3, "types differ", code=Code.TYPE_MISMATCH),
    ]
    assert repair(draft, problems)
    text = draft.text()
    assert "  spec: a.yaml\n" in text  # a spec problem is reported, not hidden
    assert "  # pagination:  # guessed  # p2pgen init: links.next" in text
    assert "    # style: next_url\n    # next: links.next\n" in text
    assert "  # params:  # p2pgen init: nothing left under it" in text
    assert "  # email: mail  # same name  # p2pgen init: types differ" in text
    assert "  email: {stub: email_for}  # the link needs one field" in text
    mapping = yaml.safe_load(text)
    assert set(mapping["source"]) == {"spec", "operation", "records"}
    assert set(mapping["target"]) == {"spec", "operation"}
    assert mapping["fields"] == {"email": {"stub": "email_for"}}
    assert not repair(draft, problems[:1])


def test_refusal_of_a_target_without_body_names_the_operation(project: Path) -> None:
    code, output = invoke(
        "init",
        "--source",
        "specs/crm.yaml",
        "--source-op",
        "listContacts",
        "--target",
        "specs/crm.yaml",
        "--target-op",
        "listCustomers",
        "-o",
        "-",
    )
    assert code == 1
    assert re.search(
        r"crm\.yaml:\d+:1: at /paths/~1customers/get: target operation "
        r"listCustomers has no JSON request body",
        output,
    ), output


def init_real(
    source: Path, source_op: str, target: Path, target_op: str
) -> tuple[int, str, str]:
    """`p2pgen init` into specs/links/drafted.yaml: exit code, output, the draft."""
    code, output = invoke(
        "init",
        *("--source", str(source), "--source-op", source_op),
        *("--target", str(target), "--target-op", target_op),
        *("--name", "drafted"),
    )
    mapping = Path("specs/links/drafted.yaml")
    return code, output, mapping.read_text(encoding="utf-8") if mapping.exists() else ""


def test_draft_without_any_match_still_sets_one_field(project: Path) -> None:
    code, output, text = init_real(
        real_spec("1forge.com"),
        "GET /symbols",
        real_spec("apache.org/airflow"),
        "PATCH /dags",
    )
    assert code == 0, output
    assert "  is_paused: {stub: is_paused_for}  # no source match" in text
    assert invoke("validate", "specs/links/drafted.yaml")[0] == 0


@pytest.mark.slow
def test_records_are_the_list_of_objects_with_an_id(project: Path) -> None:
    code, output, text = init_real(
        real_spec("squareup.com"),
        "SearchOrders",
        Path("specs/crm.yaml"),
        "createCustomer",
    )
    assert "  records: orders" in text and "records: errors" not in text
    # Square's OAuth2 declares only authorization code: a static access token; the
    # POST search gets a body and pages by the cursor in it
    assert "# auth: oauth2 (OAuth2 access token), from $SOURCE_TOKEN" in text
    assert "  body: {}" in text
    assert "    param: body.cursor\n    next: cursor" in text
    assert code == 0, output
    assert invoke("validate", "specs/links/drafted.yaml")[0] == 0


@pytest.mark.slow
def test_github_issues_to_asana_tasks_name_the_task_from_the_title(
    project: Path,
) -> None:
    code, output, text = init_real(
        real_spec("github.com/api.github.com"),
        "GET /repos/{owner}/{repo}/issues",
        real_spec("asana.com"),
        "POST /tasks",
    )
    assert code == 0, output
    assert "  data.name: title  # synonyms: title ~ name" in text
    assert "  data.notes: body  # synonyms: body ~ notes" in text
    assert "assignee.name" not in text.split("# Source fields not mapped")[0].replace(
        "not taken from unrelated assignee.name", ""
    )


CONTACTS = """\
openapi: 3.0.3
info: {title: Contacts, version: "1"}
servers: [{url: "https://crm.example.com"}]
paths:
  /contacts/{id}:
    put:
      operationId: updateContact
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Contact"}
      responses:
        "200": {description: updated}
components:
  schemas:
    Contact:
      type: object
      properties:
        first_name: {type: string}
        name: {type: string}
        email: {type: string}
        active: {type: boolean}
"""


@pytest.mark.slow
def test_stripe_invoice_to_contact_takes_no_field_of_an_unrelated_object(
    project: Path,
) -> None:
    contacts = project / "specs" / "contacts.yaml"
    contacts.write_text(CONTACTS, encoding="utf-8")
    code, output, text = init_real(
        real_spec("stripe.com"), "GetInvoices", contacts, "updateContact"
    )
    fields = yaml.safe_load(text)["fields"]
    assert fields == {"name": "customer_name", "email": "customer_email"}
    assert "not taken from unrelated default_source.klarna.first_name" in text
    assert "not taken from unrelated discount.promotion_code.active" in text
    # the contact to update is never one {env: ...} value for every invoice
    # (a stub, written by the user, says which contact an invoice updates)
    assert "{env: ID}" not in text
    assert "    id: {stub: id_for}  # the target record's own key" in text
    assert code == 0, output


# Specs of many styles (OpenAPI 3 and Swagger 2, envelopes, OAuth2, big and small);
# each one's first collection reads feed the next one's first JSON writes.
PROPERTY_SPECS = (
    "1forge.com",
    "apache.org/airflow",
    "trello.com",
    "asana.com",
    "squareup.com",
    "slack.com",
    "zoom.us",
    "mailchimp.com",
    "discourse.local",
    "xero.com/xero_accounting",
    "github.com/api.github.com",
)


def first_operations(spec: Path, write: bool, count: int) -> list[str]:
    """The spec's first `count` list reads (GET of a path not ending in a
    parameter) or JSON writes, in spec order.
    """
    specs = SpecSet()
    doc = specs.load(spec)
    found = []
    for method, path, _ in iter_operations(doc):
        label = f"{method.upper()} {path}"
        if write and method in ("post", "put", "patch"):
            if find_operation(specs, doc, label).request_body is None:
                continue
        elif write or method != "get" or path.rstrip("/").endswith("}"):
            continue
        found.append(label)
        if len(found) == count:
            break
    return found


@pytest.mark.slow
def test_every_draft_between_real_operations_loads(project: Path) -> None:
    specs = [real_spec(name) for name in PROPERTY_SPECS]
    pairs = [
        (source, read, target, write)
        for source, target in zip(specs, specs[1:] + specs[:1], strict=True)
        for read, write in zip(
            first_operations(source, False, 2),
            first_operations(target, True, 2),
            strict=False,
        )
    ]
    assert len(pairs) >= 15
    mapping = "specs/links/drafted.yaml"
    failures = []
    for source, read, target, write in pairs:
        Path(mapping).unlink(missing_ok=True)
        code, output, text = init_real(source, read, target, write)
        if text:
            code, checked = invoke("validate", mapping)
            output += checked
        unlocated = [
            line
            for line in output.splitlines()
            if not re.match(
                r"\S+:\d+:\d+: |\S+: at /|\S+: warning: |wrote |next: ", line
            )
            and line not in ("the draft still has problems:", f"{mapping}: ok")
        ]
        if code not in (0, 1) or "must be a mapping" in output or unlocated:
            failures.append(f"{source.name} {read} -> {target.name} {write}: {output}")
    assert not failures, "\n".join(failures)


def test_draft_upserts_where_the_target_searches_by_a_key(project: Path) -> None:
    folder = draft_and_generate(
        Path("specs/invoicing.json"),
        "listInvoices",
        Path("specs/crm.yaml"),
        "createCustomer",
    )
    drafted = Path("specs/links/drafted.yaml").read_text(encoding="utf-8")
    target = yaml.safe_load(drafted)["target"]
    assert target["match"] == {
        "operation": "listCustomers",
        "params": {"external_ref": "id"},
        "records": "data",
    }
    assert target["update"] == {
        "operation": "updateCustomer",
        "params": {"customer_id": {"match": "id"}},
    }
    assert "GET /customers searches by external_ref" in drafted  # why
    assert "class Match" in (folder / "drafted.py").read_text(encoding="utf-8")


def test_no_match_is_drafted_without_a_search_by_key(project: Path) -> None:
    draft_and_generate(
        Path("specs/crm.yaml"),
        "listContacts",
        Path("specs/mailer.yaml"),
        "addListMember",
    )
    drafted = yaml.safe_load(Path("specs/links/drafted.yaml").read_text("utf-8"))
    assert "match" not in drafted["target"]


@pytest.mark.slow
def test_the_target_records_own_key_is_a_stub_the_link_calls(project: Path) -> None:
    """Azure's PUT .../sqlServerRegistrations/{name}: no source field holds the name,
    so the draft has a stub for it, and the generated link calls it for each record."""
    contacts = project / "specs" / "contacts.yaml"
    contacts.write_text(CONTACTS, encoding="utf-8")
    folder = draft_and_generate(
        real_spec("stripe.com"), "GetInvoices", contacts, "updateContact"
    )
    script = (folder / "drafted.py").read_text(encoding="utf-8")
    assert "def id_for(record: SourceRecord) -> str:" in script
    assert '"id": id_for(record)' in script
    result = run_generated_tests(folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


CORPUS_CASES = [
    pytest.param(  # `properties` holds lists; the target's takes only objects
        ("azure.com/advisor", "GET /providers/Microsoft.Advisor/metadata"),
        (
            "azure.com/advisor",
            "PUT /subscriptions/{subscriptionId}/providers/Microsoft.Advisor/configurations",
        ),
        "  # properties: not mapped (object)",
        id="object-that-does-not-fit",
    ),
    pytest.param(  # secret is oneOf nine credential kinds: no field-by-field mix
        ("rumble.run", "GET /account/agents"),
        ("rumble.run", "PUT /account/credentials"),
        "  # secret: not mapped (object)",
        id="one-of-several-shapes",
    ),
    pytest.param(  # the records are enum strings
        ("googleapis.com/digitalassetlinks", "GET /v1/assetlinks:check"),
        ("googleapis.com/digitalassetlinks", "POST /v1/assetlinks:bulkCheck"),
        "  records: errorCode",
        id="enum-records",
    ),
    pytest.param(  # ids are UUIDs: the test records' ids must stay UUIDs
        ("gsmtasks.com", "GET /account_roles/"),
        ("gsmtasks.com", "POST /account_roles/"),
        "",
        id="uuid-ids",
    ),
    pytest.param(  # a GET with a required multipart body
        ("evemarketer.com", "GET /marketstat/json"),
        ("evetech.net", "PUT /characters/{character_id}/calendar/{event_id}/"),
        "  body:  # sent with every request",
        id="get-with-a-body",
    ),
    pytest.param(  # WireMock: request.basicAuthCredentials requires both its fields
        ("wiremock.org/admin", "GET /__admin/mappings"),
        ("wiremock.org/admin", "POST /__admin/mappings"),
        "request.basicAuthCredentials.password: request.basicAuthCredentials.password",
        id="nested-object-absent-from-a-record",
    ),
    pytest.param(  # the key's sample is "{{BLOCK_ID}}": braces sent escaped in the path
        ("notion.com", "GET /v1/comments"),
        ("notion.com", "PATCH /v1/blocks/{id}"),
        "id: {stub: id_for}",
        id="braces-in-a-path-value",
    ),
    pytest.param(  # PAYONE signs with its own HMAC scheme: a stub signs the requests
        ("pay1.de/link", "GET /v1/payment-links"),
        ("pay1.de/link", "POST /v1/payment-links"),
        "  auth:  # auth: getMultipleAuth (http payone-hmac-sha256) is not built in",
        id="auth-scheme-not-built-in",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("source", "target", "drafted"), CORPUS_CASES)
def test_corpus_shapes_draft_generate_and_pass(
    project: Path, source: tuple[str, str], target: tuple[str, str], drafted: str
) -> None:
    """Links the corpus benchmark once failed on: each drafts, generates and passes
    its own tests."""
    code, output, text = init_real(
        real_spec(source[0]), source[1], real_spec(target[0]), target[1]
    )
    assert code == 0, output
    assert drafted in text
    code, output = invoke("generate", "specs/links/drafted.yaml", "--out", "out")
    assert code == 0, output
    result = run_generated_tests(Path("out/drafted"))
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_name_yaml_reads_as_a_boolean_is_quoted(project: Path) -> None:
    code, output = invoke(
        "init",
        *("--source", "specs/crm.yaml", "--source-op", "listContacts"),
        *("--target", "specs/mailer.yaml", "--target-op", "addListMember"),
        *("--name", "no"),
    )
    assert code == 0, output
    assert yaml.safe_load(Path("specs/links/no.yaml").read_text())["name"] == "no"
