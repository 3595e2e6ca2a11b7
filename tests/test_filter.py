"""source.filter: records that fail a condition are skipped (counted, never sent),
and a condition that cannot hold is a located error at generation time."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.errors import Code, Problem
from generator.resolve import resolve

ROOT = Path(__file__).resolve().parent.parent
NAME = "filter_probe"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A repository with copies of the example specs; forgets the probe module after."""
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "specs" / "links").mkdir(parents=True)
    for name in ("crm.yaml", "common.yaml", "mailer.yaml"):
        shutil.copy(ROOT / "specs" / name, tmp_path / "specs" / name)
    yield tmp_path
    sys.modules.pop(NAME, None)


def mapping(project: Path, source: str = "", fields: str = "") -> Path:
    """A CRM-to-mailer link with extra source keys and fields (YAML, 2-space indent)."""
    text = f"""\
version: 1
name: {NAME}
source:
  spec: ../crm.yaml
  operation: listContacts
  records: data
{textwrap.indent(textwrap.dedent(source), "  ")}
target:
  spec: ../mailer.yaml
  operation: addListMember
  params:
    list_id: {{const: news2024}}
fields:
  email_address: email
  status: {{const: subscribed}}
{textwrap.indent(textwrap.dedent(fields), "  ")}
"""
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


def contact(n: int, **values: Any) -> dict[str, Any]:
    return {
        "id": f"c_{n}",
        "email": f"person{n}@example.com",
        "name": {"first": "Ada", "last": f"L{n}"},
        "status": "active",
        "created": 1704067200,
        "updated_at": "2024-03-05T09:30:00Z",
        **values,
    }


def drive(
    module: ModuleType, project: Path, records: list[dict[str, Any]], **options: Any
) -> tuple[Any, list[dict[str, Any]]]:
    """Run the script against a fake CRM holding `records`; the summary and what was sent."""
    sent: list[dict[str, Any]] = []

    def target(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"id": "m1"})

    def source(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": records, "has_more": False})

    config = module.Config(
        source_url="http://crm.test",
        target_url="http://mailer.test",
        state_path=project / "state.json",
        dead_letter_path=project / "dead.jsonl",
        concurrency=1,
        **options,
    )
    with pytest.MonkeyPatch.context() as env:
        for name in module.declaration().required_env:
            env.setenv(name, "test-secret")
        summary = module.run(
            config, httpx.MockTransport(source), httpx.MockTransport(target)
        )
    return summary, sent


def problems(path: Path) -> list[Problem]:
    return resolve(path, path.parents[2]).errors


def test_records_failing_a_condition_are_skipped_counted_and_not_sent(
    project: Path,
) -> None:
    path = mapping(
        project,
        source="""\
        filter:
          status: active
          tier: {in: [gold, silver]}
          phone: {exists: true}
          updated_at: {gte: "2024-03-01T00:00:00+01:00"}
        """,
    )
    module = generate(project, path)
    keep = {"tier": "gold", "phone": "+44", "updated_at": "2024-03-01T00:00:00Z"}
    records = [
        contact(1, **keep),
        contact(2, **{**keep, "status": "archived"}),  # eq fails
        contact(3, **{**keep, "tier": "bronze"}),  # in fails
        contact(4, **{**keep, "phone": None}),  # exists fails on null
        contact(5, **{k: v for k, v in keep.items() if k != "tier"}),  # missing
        contact(6, **{**keep, "updated_at": "2024-02-29T22:59:59Z"}),  # earlier
        # later as an instant (00:30Z), though earlier as text
        contact(
            7, **{**keep, "tier": "silver", "updated_at": "2024-02-29T23:30:00-01:00"}
        ),
    ]
    summary, sent = drive(module, project, records)
    assert [body["email_address"] for body in sent] == [
        "person1@example.com",
        "person7@example.com",
    ]
    assert (summary.read, summary.written, summary.skipped, summary.failed) == (
        7,
        2,
        5,
        0,
    )
    assert not (project / "dead.jsonl").exists() or not (
        project / "dead.jsonl"
    ).read_text(encoding="utf-8")
    script = (project / "out" / NAME / f"{NAME}.py").read_text(encoding="utf-8")
    assert "def source_filter(record: SourceRecord) -> bool:" in script
    assert "filter=source_filter" in script


@pytest.mark.parametrize(
    ("condition", "kept"),
    [
        ("company: {ne: Acme}", ["c_1", "c_3"]),  # missing meets ne
        ("company: {not_in: [Acme, Beta]}", ["c_3"]),  # missing fails not_in
        ("company: {exists: false}", ["c_1"]),
        ("created: {gt: 100}", ["c_3"]),
        ("created: {lte: 100}", ["c_1", "c_2"]),
        ("created: {lt: 5.5}", ["c_1"]),
        ("updated_at: {eq: 2024-03-05}", ["c_2"]),  # a YAML date, as an instant
    ],
)
def test_each_operator(project: Path, condition: str, kept: list[str]) -> None:
    module = generate(project, mapping(project, source=f"filter: {{{condition}}}\n"))
    records = [
        contact(1, created=5),
        contact(2, company="Acme", created=100, updated_at="2024-03-05T00:00:00Z"),
        contact(3, company="Zeta", created=101),
    ]
    _, sent = drive(module, project, records)
    emails = {f"person{n}@example.com": f"c_{n}" for n in (1, 2, 3)}
    assert [emails[body["email_address"]] for body in sent] == kept


def test_the_checkpoint_passes_skipped_records(project: Path) -> None:
    module = generate(project, mapping(project, source="filter: {tier: gold}\n"))
    records = [contact(1, tier="bronze"), contact(2), contact(3, tier="gold")]
    summary, sent = drive(module, project, records, limit=2)
    assert (summary.skipped, sent) == (2, [])
    state = json.loads((project / "state.json").read_text(encoding="utf-8"))
    assert state["checkpoint"] == {"done": 2, "position": {}}
    summary, sent = drive(module, project, records)
    assert [body["email_address"] for body in sent] == ["person3@example.com"]
    assert summary.read == 1  # resumed after the two skipped records


def test_a_stub_predicate(project: Path) -> None:
    path = mapping(project, source="filter: {stub: wanted}\n")
    module = generate(project, path)
    summary, sent = drive(module, project, [contact(1)])
    assert (summary.failed, sent) == (1, [])  # unfinished: dead-lettered, not lost
    module.wanted = lambda record: record.id == "c_2"
    summary, sent = drive(module, project, [contact(1), contact(2)])
    assert [body["email_address"] for body in sent] == ["person2@example.com"]
    assert summary.skipped == 1
    script = (project / "out" / NAME / f"{NAME}.py").read_text(encoding="utf-8")
    assert "# p2pgen:begin stub wanted\ndef wanted(record: SourceRecord) -> bool:" in (
        script
    )


@pytest.mark.parametrize(
    ("condition", "code", "at", "message"),
    [
        (
            "statuss: active",
            Code.SOURCE_FIELD_NOT_FOUND,
            "active",
            "did you mean 'status'?",
        ),
        ("created: {gtt: 1}", Code.FILTER_OPERATOR, "gtt", "did you mean 'gt'?"),
        ("tier: {in: gold}", Code.FILTER_VALUE, "gold", "in must be a list of values"),
        ("phone: {exists: yes please}", Code.FILTER_VALUE, "yes", "true or false"),
        ("phone: {eq: null}", Code.FILTER_VALUE, "null", "cannot be null"),
        ("created: {gt: soon}", Code.FILTER_TYPE, "soon", "it can never match"),
        ("tier: {eq: 1}", Code.FILTER_TYPE, "1", "; quote it"),
        (
            "tier: platinum",
            Code.FILTER_TYPE,
            "platinum",
            "is not one of the values of source 'tier'",
        ),
        ("name: {gt: 1}", Code.FILTER_TYPE, "1", "compares numbers, dates or text"),
    ],
    ids=[
        "unknown-field",
        "operator",
        "in-not-list",
        "exists-not-bool",
        "null",
        "type",
        "number-for-text",
        "enum",
        "order-on-object",
    ],
)
def test_a_condition_that_cannot_hold_is_a_located_error(
    project: Path, condition: str, code: Code, at: str, message: str
) -> None:
    path = mapping(project, source=f"filter: {{{condition}}}\n")
    column = len("  filter: {") + condition.index(at) + 1
    found = problems(path)
    assert [(p.code, p.line, p.column) for p in found] == [(code, 7, column)], found
    assert message in found[0].message, found[0].message


def test_a_stub_predicate_cannot_take_a_name_in_use(project: Path) -> None:
    path = mapping(project, source="filter: {stub: transform}\n")
    found = problems(path)
    assert [(p.code, p.line) for p in found] == [(Code.STUB_NAME_TAKEN, 7)], found


def test_a_stub_predicate_cannot_share_a_field_stubs_name(project: Path) -> None:
    path = mapping(
        project, source="filter: {stub: wanted}\n", fields="tags: {stub: wanted}\n"
    )
    found = problems(path)
    assert [(p.code, p.line) for p in found] == [(Code.STUB_SIGNATURE, 7)], found
