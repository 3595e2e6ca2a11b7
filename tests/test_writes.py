"""Writes beyond one POST per record, through real HTTP on loopback: the demo
APIs (SQLite) serve the target. Upsert (target.match/update/on_missing), writes
of any method with path parameters from the record, body-less writes, and
the located errors of each key at generation time."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.demo.apis import DemoApis
from generator.demo.http import Faults
from generator.errors import Code, Problem
from generator.resolve import resolve
from tests.runtime_helpers import Loopback, answer

ROOT = Path(__file__).resolve().parent.parent
NAME = "writes_probe"
SPEC_FILES = ("crm.yaml", "common.yaml", "mailer.yaml", "invoicing.json")

INVOICES_SOURCE = """\
spec: ../invoicing.json
operation: listInvoices
records: invoices
pagination: {style: page, param: page, limit_param: per_page, limit: 20}
filter: {status: paid}
auth:
  scheme: basicAuth
  env: {username: LEDGER_USERNAME, password: LEDGER_PASSWORD}
"""
CRM_AUTH = "auth: {scheme: bearerAuth, env: {token: CRM_TOKEN}}\n"
UPSERT = """\
operation: createCustomer
match:
  operation: listCustomers
  params: {external_ref: customer.id}
  records: data
update:
  operation: updateCustomer
  params: {customer_id: {match: id}}
"""
CUSTOMER_FIELDS = """\
external_ref: customer.id
name: customer.name
email: customer.email
lifetime_value_cents: amount_cents
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A repository with copies of the example specs; forgets the probe module after."""
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "specs" / "links").mkdir(parents=True)
    for name in SPEC_FILES:
        shutil.copy(ROOT / "specs" / name, tmp_path / "specs" / name)
    yield tmp_path
    sys.modules.pop(NAME, None)


@pytest.fixture
def demo() -> Iterator[DemoApis]:
    with DemoApis(ROOT / "specs") as apis:
        yield apis


def mapping(
    project: Path,
    target: str,
    fields: str = CUSTOMER_FIELDS,
    source: str = INVOICES_SOURCE,
    target_spec: str = "crm.yaml",
) -> Path:
    """A link with the given source, target (less its spec and auth) and fields."""
    auth = (
        CRM_AUTH
        if target_spec == "crm.yaml"
        else "auth: {scheme: apiKeyAuth, env: {api_key: MAILER_API_KEY}}\n"
    )
    text = (
        f"version: 1\nname: {NAME}\nsource:\n{textwrap.indent(source, '  ')}"
        f"target:\n  spec: ../{target_spec}\n{textwrap.indent(target + auth, '  ')}"
        f"fields:{' {}' if not fields else ''}\n{textwrap.indent(fields, '  ')}"
    )
    path = project / "specs" / "links" / f"{NAME}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def generate(project: Path, path: Path) -> ModuleType:
    """Generate the link's script and import it."""
    out = project / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(path), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    sys.modules.pop(NAME, None)
    sys.path.insert(0, str(out / NAME))
    try:
        return importlib.import_module(NAME)
    finally:
        sys.path.remove(str(out / NAME))


def drive(
    module: ModuleType,
    demo: DemoApis,
    project: Path,
    source: str = "invoicing",
    target: str = "crm",
    fresh: bool = True,
    **options: Any,
) -> Any:
    """One run of the script over real HTTP against the demo APIs."""
    state = project / "state.json"
    if fresh:
        state.unlink(missing_ok=True)
    config = module.Config(
        source_url=demo.base_url(source),
        target_url=demo.base_url(target),
        state_path=state,
        dead_letter_path=project / "dead.jsonl",
        **options,
    )
    with pytest.MonkeyPatch.context() as env:
        for name, value in demo.env().items():
            env.setenv(name, value)
        env.setattr(module, "retry_delay", lambda attempt, response: 0.0)
        return module.run(config)


def dead_letters(project: Path) -> list[dict[str, Any]]:
    path = project / "dead.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def paid(demo: DemoApis) -> list[dict[str, Any]]:
    return [i for i in demo.records("invoicing", "invoices") if i["status"] == "paid"]


def problems(path: Path) -> list[Problem]:
    return resolve(path, path.parents[2]).errors


# --- upsert ---------------------------------------------------------------


def test_upsert_creates_once_per_key_and_updates_after(
    project: Path, demo: DemoApis
) -> None:
    module = generate(project, mapping(project, UPSERT))
    invoices = paid(demo)
    customers = {i["customer"]["id"] for i in invoices}
    assert len(customers) < len(invoices)  # several invoices per customer

    # Four writes at once: invoices of one customer still never create it twice.
    first = drive(module, demo, project, concurrency=4)
    assert (first.read, first.written, first.failed) == (45, 30, 0)
    assert (first.created, first.updated) == (len(customers), 30 - len(customers))
    assert first.skipped == 15  # not paid: source.filter
    stored = demo.records("crm", "customers")
    assert sorted(c["external_ref"] for c in stored) == sorted(customers)

    second = drive(module, demo, project, concurrency=4)  # a rerun from scratch
    assert (second.created, second.updated, second.written) == (0, 30, 30)
    assert len(demo.records("crm", "customers")) == len(customers)
    # Each customer holds what its last paid invoice says (updates in source order).
    last = {i["customer"]["id"]: i["amount_cents"] for i in invoices}
    assert {
        c["external_ref"]: c["lifetime_value_cents"]
        for c in demo.records("crm", "customers")
    } == last
    summary = json.loads((project / "state.json").read_text())["last_run"]
    assert (summary["created"], summary["updated"], summary["deleted"]) == (0, 30, 0)


def test_a_rerun_after_lost_answers_and_503s_never_creates_twice(
    project: Path,
) -> None:
    faults = Faults(seed=3, error_503=0.15, lost_response=0.15)
    module = generate(project, mapping(project, UPSERT))
    with DemoApis(ROOT / "specs", faults) as demo:
        customers = {i["customer"]["id"] for i in paid(demo)}
        first = drive(module, demo, project, concurrency=4)
        assert faults.injected["lost"] and faults.injected["503"]
        assert first.failed == 0, dead_letters(project)
        drive(module, demo, project, concurrency=4)
        refs = [c["external_ref"] for c in demo.records("crm", "customers")]
    # a write whose answer was lost is retried; the retry's match finds the record
    assert sorted(refs) == sorted(customers)


def test_two_matches_are_dead_lettered_as_ambiguous(
    project: Path, demo: DemoApis
) -> None:
    module = generate(project, mapping(project, UPSERT))
    twice = paid(demo)[0]["customer"]
    for n in (1, 2):
        demo.apis["crm"].store.add(
            "customers",
            {"id": f"cus_dup{n}", "external_ref": twice["id"], "name": "x"},
        )
    summary = drive(module, demo, project)
    ambiguous = [d for d in dead_letters(project) if "ambiguous" in d["reason"]]
    invoices = [i for i in paid(demo) if i["customer"]["id"] == twice["id"]]
    assert summary.failed == len(ambiguous) == len(invoices)
    assert "2 target records match" in ambiguous[0]["reason"]
    assert f"external_ref={twice['id']}" in ambiguous[0]["reason"]
    untouched = [c for c in demo.records("crm", "customers") if c["name"] == "x"]
    assert len(untouched) == 2


@pytest.mark.parametrize(
    ("options", "created", "updated", "skipped", "failed"),
    [
        ("on_missing: skip\n", 0, 0, 45, 0),  # the CRM starts empty
        ("on_missing: dead_letter\n", 0, 0, 15, 30),
    ],
)
def test_on_missing(
    project: Path,
    demo: DemoApis,
    options: str,
    created: int,
    updated: int,
    skipped: int,
    failed: int,
) -> None:
    module = generate(project, mapping(project, UPSERT + options))
    summary = drive(module, demo, project)
    counts = (summary.created, summary.updated, summary.skipped, summary.failed)
    assert counts == (created, updated, skipped, failed)
    assert demo.records("crm", "customers") == []
    if failed:
        assert "no target record matches" in dead_letters(project)[0]["reason"]


def test_on_match_skip_creates_the_missing_and_leaves_the_others(
    project: Path, demo: DemoApis
) -> None:
    target = """\
operation: createCustomer
match:
  operation: listCustomers
  params: {external_ref: customer.id}
  records: data
on_match: skip
"""
    module = generate(project, mapping(project, target))
    first = drive(module, demo, project)
    customers = {i["customer"]["id"] for i in paid(demo)}
    assert (first.created, first.updated) == (len(customers), 0)
    assert first.skipped == 45 - len(customers)
    before = demo.records("crm", "customers")
    second = drive(module, demo, project)
    assert (second.created, second.written, second.skipped) == (0, 0, 45)
    assert demo.records("crm", "customers") == before


# --- any method, path parameters from the record -----------------------------

CONTACTS_SOURCE = """\
spec: ../crm.yaml
operation: listContacts
records: data
params: {status: active}
pagination: {style: cursor, param: cursor, next: next_cursor, has_more: has_more}
auth:
  scheme: bearerAuth
  env: {token: CRM_TOKEN}
"""
MEMBER_FIELDS = """\
email_address: email
status: {const: subscribed}
merge_fields.FNAME: name.first
"""


def test_a_put_with_the_subscriber_hash_upserts(project: Path, demo: DemoApis) -> None:
    target = """\
operation: setListMember
params:
  list_id: {env: MAILER_LIST_ID}
  subscriber_hash: {from: email, as: [lowercase, md5]}
"""
    path = mapping(project, target, MEMBER_FIELDS, CONTACTS_SOURCE, "mailer.yaml")
    module = generate(project, path)
    first = drive(module, demo, project, "crm", "mailer")
    active = [c for c in demo.records("crm", "contacts") if c["status"] == "active"]
    assert (first.created, first.updated, first.failed) == (len(active), 0, 0)
    second = drive(module, demo, project, "crm", "mailer")
    assert (second.created, second.updated) == (0, len(active))
    members = demo.records("mailer", "members")
    # some contacts' addresses are upper case: the hash is of the lowercased one
    assert sorted(m["email_address"] for m in members) == sorted(
        c["email"] for c in active
    )


def test_a_delete_without_a_body_is_a_write(project: Path, demo: DemoApis) -> None:
    target = """\
operation: deleteListMember
params:
  list_id: {env: MAILER_LIST_ID}
  subscriber_hash: {from: email, as: [lowercase, md5]}
"""
    add = """\
operation: setListMember
params:
  list_id: {env: MAILER_LIST_ID}
  subscriber_hash: {from: email, as: [lowercase, md5]}
"""
    path = mapping(project, add, MEMBER_FIELDS, CONTACTS_SOURCE, "mailer.yaml")
    drive(generate(project, path), demo, project, "crm", "mailer")
    path = mapping(project, target, "", CONTACTS_SOURCE, "mailer.yaml")
    module = generate(project, path)
    script = (project / "out" / NAME / f"{NAME}.py").read_text("utf-8")
    assert "body=False" in script and "class Match" not in script
    summary = drive(module, demo, project, "crm", "mailer")
    assert (summary.deleted, summary.written, summary.failed) == (48, 48, 0)
    assert demo.records("mailer", "members") == []


def test_a_link_without_match_copies_no_upsert_runtime(project: Path) -> None:
    generate(project, mapping(project, "operation: createCustomer\n"))
    script = (project / "out" / NAME / f"{NAME}.py").read_text("utf-8")
    for name in ("class Match", "class Call", "class KeyLocks", "def matches"):
        assert name not in script
    assert "def write(" in script and "def outcome(" in script


# --- located errors ---------------------------------------------------------


def only(found: list[Problem], code: Code) -> Problem:
    assert [p.code for p in found] == [code], [str(p) for p in found]
    return found[0]


def test_a_match_operation_that_is_not_a_get(project: Path) -> None:
    target = UPSERT.replace("operation: listCustomers", "operation: createCustomers")
    path = mapping(project, target)
    problem = only(problems(path), Code.MATCH_OPERATION)
    assert "POST /customers/batch is not a GET" in problem.message
    assert "listCustomers" in problem.message  # the GETs it could be
    line = path.read_text("utf-8").splitlines()[problem.line - 1]
    assert line[problem.column - 1 :] == "createCustomers"


def test_match_records_that_are_not_a_list(project: Path) -> None:
    target = UPSERT.replace("records: data", "records: has_more")
    problem = only(problems(mapping(project, target)), Code.NO_RECORDS)
    assert "target.match.records: 'has_more' is not a list" in problem.message
    assert "set `records:` to 'data'" in problem.message


def test_an_update_whose_body_lacks_a_mapped_field(project: Path) -> None:
    target = UPSERT.replace("operation: updateCustomer", "operation: setListMember")
    problem = only(problems(mapping(project, target)), Code.OPERATION_NOT_FOUND)
    assert "setListMember" in problem.message
    spec = project / "specs" / "crm.yaml"
    spec.write_text(
        spec.read_text("utf-8").replace(
            "      description: What a client sends to change a customer; every field"
            " is optional.\n      properties:\n        external_ref:\n"
            "          type: string\n          example: ledger-cus-0042\n",
            "      description: What a client sends to change a customer.\n"
            "      properties:\n",
        ),
        "utf-8",
    )
    path = mapping(project, UPSERT)
    problem = only(problems(path), Code.UPDATE_BODY)
    assert problem.message.startswith(
        "fields.external_ref: target.update PATCH /customers/{customer_id} sends"
    )
    assert "'external_ref' not found in its body" in problem.message
    lines = path.read_text("utf-8").splitlines()
    assert lines[problem.line - 1].strip().startswith("external_ref:")


def test_a_match_field_the_target_record_lacks(project: Path) -> None:
    target = UPSERT.replace("{match: id}", "{match: idd}")
    problem = only(problems(mapping(project, target)), Code.MATCH_FIELD)
    assert "{match: idd}" in problem.message
    assert "did you mean 'id'?" in problem.message


def test_match_outside_update_params(project: Path) -> None:
    target = UPSERT.replace(
        "{external_ref: customer.id}", "{external_ref: {match: id}}"
    )
    problem = only(problems(mapping(project, target)), Code.MATCH_FIELD)
    assert "only in target.update.params" in problem.message


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        (
            "operation: createCustomer\non_missing: skip\n",
            Code.MISSING_KEY,
            "target.on_missing needs target.match",
        ),
        (
            UPSERT.split("update:", maxsplit=1)[0] + "on_match: update\n",
            Code.MISSING_KEY,
            "on_match: update needs target.update",
        ),
        (UPSERT + "on_match: skip\n", Code.CONFLICTING_KEYS, "never used"),
        (UPSERT + "on_missing: upsert\n", Code.INVALID_VALUE, "not one of create"),
        (
            UPSERT.replace("  params: {customer_id: {match: id}}\n", ""),
            Code.REQUIRED_PARAMETER_UNMAPPED,
            "`customer_id: {match: id}`",
        ),
        (
            UPSERT.replace("operation: updateCustomer", "operation: listCustomers"),
            Code.UPDATE_BODY,
            "is a GET, which changes nothing",
        ),
    ],
)
def test_write_key_errors(project: Path, target: str, code: Code, words: str) -> None:
    found = problems(mapping(project, target))
    assert code in [p.code for p in found], [str(p) for p in found]
    assert any(words in p.message for p in found), [str(p) for p in found]
    assert all(p.line for p in found)


def test_fields_for_an_operation_without_a_body(project: Path) -> None:
    target = "operation: deleteCustomer\nparams: {customer_id: customer.id}\n"
    problem = only(problems(mapping(project, target)), Code.NO_REQUEST_BODY)
    assert "write `fields: {}`" in problem.message


# --- lookups ----------------------------------------------------------------

LOOKUP = """\
lookups:
  known:
    api: target
    operation: listCustomers
    params: {email: customer.email}
    records: data
    on_missing: ON_MISSING
"""


def lookup_mapping(project: Path, on_missing: str) -> Path:
    path = mapping(
        project,
        "operation: createCustomer\n",
        CUSTOMER_FIELDS + "company: {lookup: known, field: company}\n",
    )
    text = path.read_text("utf-8").replace(
        "fields:", LOOKUP.replace("ON_MISSING", on_missing) + "fields:"
    )
    path.write_text(text, "utf-8")
    return path


class CountingCrm:
    """Counts the demo CRM's GET /customers requests."""

    def __init__(self, demo: DemoApis) -> None:
        api = demo.apis["crm"]
        self.seen: list[str] = []
        handler = api.list_customers

        def counted(req: Any, match: Any) -> Any:
            self.seen.append(req.query.get("email", ""))
            return handler(req, match)

        api.routes = [
            (m, pattern, counted if h == handler else h, public)
            for m, pattern, h, public in api.routes
        ]


@pytest.mark.parametrize("on_missing", ["omit", "skip", "dead_letter"])
def test_lookups_ask_once_per_key_and_fill_fields(
    project: Path, demo: DemoApis, on_missing: str
) -> None:
    module = generate(project, lookup_mapping(project, on_missing))
    emails = [i["customer"]["email"] for i in paid(demo)]
    known = list(dict.fromkeys(emails))[:2]
    for n, email in enumerate(known):
        record = {"id": f"cus_k{n}", "email": email, "company": f"Known {n}"}
        demo.apis["crm"].store.add("customers", {**record, "external_ref": "x"})
    counting = CountingCrm(demo)
    summary = drive(module, demo, project)
    found = len([e for e in emails if e in known])
    missing = len(emails) - found
    assert (summary.written, summary.skipped, summary.failed) == {
        "omit": (30, 15, 0),
        "skip": (found, 15 + missing, 0),
        "dead_letter": (found, 15, missing),
    }[on_missing]
    # one request per distinct email, however many invoices share it
    assert sorted(counting.seen) == sorted(set(emails))
    created = [c for c in demo.records("crm", "customers") if c["external_ref"] != "x"]
    assert {c["email"]: c.get("company") for c in created if c["email"] in known} == {
        known[0]: "Known 0",
        known[1]: "Known 1",
    }
    if on_missing == "omit":
        assert {c.get("company") for c in created if c["email"] not in known} == {None}
    if on_missing == "dead_letter":
        assert "lookup known: nothing found at" in dead_letters(project)[0]["reason"]


def test_lookup_errors_are_located(project: Path) -> None:
    path = lookup_mapping(project, "omit")
    text = path.read_text("utf-8")
    path.write_text(text.replace("field: company}", "field: compny}"), "utf-8")
    problem = only(problems(path), Code.LOOKUP)
    assert "no such field: 'compny' not found" in problem.message
    assert "did you mean 'company'?" in problem.message
    path.write_text(text.replace("{lookup: known,", "{lookup: knwn,"), "utf-8")
    problem = only(problems(path), Code.LOOKUP)
    assert "no lookup named 'knwn'; did you mean 'known'?" in problem.message
    path.write_text(
        text.replace("operation: listCustomers", "operation: createCustomer"), "utf-8"
    )
    problem = only(problems(path), Code.MATCH_OPERATION)
    assert problem.message.startswith("lookups.known: POST /customers is not a GET")


# --- batches ----------------------------------------------------------------

BATCH = """\
operation: createCustomers
batch: {size: 10, path: inputs, results: results}
"""
CONTACT_FIELDS = """\
external_ref: id
name: {template: "{name.first} {name.last}"}
email: email
"""


def batch_link(project: Path, target: str = BATCH) -> ModuleType:
    return generate(project, mapping(project, target, CONTACT_FIELDS, CONTACTS_SOURCE))


def test_a_batch_sends_size_records_per_request(project: Path, demo: DemoApis) -> None:
    module = batch_link(project)
    before = demo.requests_seen("crm")
    summary = drive(module, demo, project, "crm", "crm", concurrency=2)
    active = [c for c in demo.records("crm", "contacts") if c["status"] == "active"]
    assert (summary.created, summary.written, summary.failed) == (48, 48, 0)
    pages = 2  # listContacts, 25 a page
    assert demo.requests_seen("crm") - before == pages + 5  # 48 records, 10 a batch
    assert sorted(
        c["external_ref"] for c in demo.records("crm", "customers")
    ) == sorted(c["id"] for c in active)
    assert "checkpoint" not in json.loads((project / "state.json").read_text())


def test_a_failed_item_is_dead_lettered_alone(project: Path, demo: DemoApis) -> None:
    module = batch_link(project)
    contacts = demo.apis["crm"].store
    bad = {**demo.records("crm", "contacts")[0], "id": "c_9999", "email": "nobody"}
    contacts.add("contacts", bad)
    summary = drive(module, demo, project, "crm", "crm")
    assert (summary.created, summary.failed) == (48, 1)
    (entry,) = dead_letters(project)
    assert entry["record"]["id"] == "c_9999" and entry["status"] == 422
    assert "email" in entry["reason"]


def test_a_refused_batch_dead_letters_its_records_with_the_answer(
    project: Path, demo: DemoApis
) -> None:
    module = batch_link(project)

    def refuse(handler: Any, seen: Any) -> None:
        body = json.loads(seen.body)
        status = 400 if len(body["inputs"]) == 8 else 200  # the last, short batch
        results = [{"status": 201}] * len(body["inputs"])
        answer(handler, status, {"results": results} if status == 200 else {"no": 1})

    with Loopback(refuse) as target:
        config = module.Config(
            source_url=demo.base_url("crm"),
            target_url=target.url,
            state_path=project / "state.json",
            dead_letter_path=project / "dead.jsonl",
        )
        with pytest.MonkeyPatch.context() as env:
            for name, value in demo.env().items():
                env.setenv(name, value)
            summary = module.run(config)
    assert (summary.created, summary.failed) == (40, 8)
    entries = dead_letters(project)
    assert {e["status"] for e in entries} == {400}
    assert all('{"no": 1}' in e["reason"] for e in entries)


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        (BATCH.replace("path: inputs", "path: input"), Code.BATCH, "did you mean"),
        (
            BATCH.replace("path: inputs, ", ""),
            Code.BATCH,
            "the request body is not a list; set `path:` to 'inputs'",
        ),
        (BATCH.replace("size: 10", "size: 500"), Code.BATCH, "at most 100 records"),
        (BATCH.replace("results: results", "results: data"), Code.BATCH, "'data'"),
        (BATCH + UPSERT.split("\n", 1)[1], Code.CONFLICTING_KEYS, "target.match"),
    ],
)
def test_batch_errors(project: Path, target: str, code: Code, words: str) -> None:
    path = mapping(project, target, CONTACT_FIELDS, CONTACTS_SOURCE)
    found = problems(path)
    assert code in [p.code for p in found], [str(p) for p in found]
    assert any(words in p.message for p in found), [str(p) for p in found]


# --- deletes ----------------------------------------------------------------

ALL_CONTACTS = CONTACTS_SOURCE.replace("params: {status: active}\n", "")
SYNC = """\
operation: setListMember
params:
  list_id: {env: MAILER_LIST_ID}
  subscriber_hash: {from: email, as: [lowercase, md5]}
delete:
  when: {status: archived}
  operation: deleteListMember
  params:
    list_id: {env: MAILER_LIST_ID}
    subscriber_hash: {from: email, as: [lowercase, md5]}
"""


def test_records_meeting_when_are_deleted_and_a_404_counts_as_done(
    project: Path, demo: DemoApis
) -> None:
    path = mapping(project, SYNC, MEMBER_FIELDS, ALL_CONTACTS, "mailer.yaml")
    module = generate(project, path)
    contacts = demo.records("crm", "contacts")
    archived = [c for c in contacts if c["status"] == "archived"]
    # the list holds two archived contacts already; the others were never on it
    for contact in archived[:2]:
        member_id = hashlib.md5(contact["email"].lower().encode()).hexdigest()
        demo.apis["mailer"].store.add(
            "members",
            {"id": member_id, "list_id": "news2024", "email_address": contact["email"]},
        )
    summary = drive(module, demo, project, "crm", "mailer")
    assert (summary.deleted, summary.created, summary.failed) == (len(archived), 48, 0)
    assert summary.written == len(contacts)
    members = {m["email_address"] for m in demo.records("mailer", "members")}
    assert members == {c["email"] for c in contacts if c["status"] == "active"}


def test_delete_errors(project: Path) -> None:
    target = SYNC.replace("{status: archived}", "{status: gone}")
    path = mapping(project, target, MEMBER_FIELDS, ALL_CONTACTS, "mailer.yaml")
    problem = only(problems(path), Code.FILTER_TYPE)
    assert problem.message.startswith("target.delete.when.status: 'gone' is not one")
    target = SYNC.replace(
        "    subscriber_hash: {from: email, as: [lowercase, md5]}\n", "", 1
    ).replace(
        "  subscriber_hash: {from: email, as: [lowercase, md5]}\n",
        "  subscriber_hash: {match: id}\n",
    )
    path = mapping(project, target, MEMBER_FIELDS, ALL_CONTACTS, "mailer.yaml")
    codes = {p.code for p in problems(path)}
    assert Code.MATCH_FIELD in codes, codes
