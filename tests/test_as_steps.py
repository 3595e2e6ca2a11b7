"""`as` lists: conversions and string steps applied in order, type-checked as a chain."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_filter import contact, drive, generate, mapping, problems, project

from generator.errors import Code
from generator.kinds.expressions import As
from generator.runtime import mapping as helpers

__all__ = ["project"]  # the fixture, shared with test_filter


def test_mailchimps_subscriber_hash_is_the_md5_of_the_lowercased_email() -> None:
    # the example of Mailchimp's API documentation ("subscriber_hash")
    email = "Urist.McVankab@freddiesjokes.com"
    digest = helpers._as_md5(helpers._as_lowercase(email))
    assert digest == "62eeb292278cc15f5817cb78f7790b08"


def test_every_step_has_its_runtime_helper() -> None:
    for step in As.results:
        assert callable(getattr(helpers, f"_as_{step}", None)), step


def test_string_steps_on_text_null_and_other_values() -> None:
    assert helpers._as_strip("  Ada \n") == "Ada"
    assert helpers._as_uppercase("straße") == "STRASSE"
    assert helpers._as_sha256("é") == hashlib.sha256("é".encode()).hexdigest()
    assert helpers._as_lowercase(None) is None
    with pytest.raises(TypeError, match="as: md5 needs text, not int"):
        helpers._as_md5(5)


def test_steps_run_in_order_in_the_generated_script(project: Path) -> None:
    path = mapping(
        project,
        fields="""\
        merge_fields.HASH: {from: email, as: [strip, lowercase, md5]}
        merge_fields.CREATED: {from: created, as: [string, sha256]}
        language: {from: company, as: [strip, uppercase]}
        """,
    )
    module = generate(project, path)
    record = contact(1, email="  Ada@Example.COM ", company=" en ")
    summary, sent = drive(module, project, [record])
    assert summary.written == 1, summary
    assert sent[0]["merge_fields"] == {
        "HASH": hashlib.md5(b"ada@example.com").hexdigest(),
        "CREATED": hashlib.sha256(b"1704067200").hexdigest(),
    }
    assert sent[0]["language"] == "EN"
    script = (project / "out" / "filter_probe" / "filter_probe.py").read_text(
        encoding="utf-8"
    )
    assert '_as_md5(_as_lowercase(_as_strip(_get(src, "email"))))' in script


@pytest.mark.parametrize(
    ("line", "code", "at", "message"),
    [
        (
            "language: {from: created, as: [lowercase]}",
            Code.TYPE_MISMATCH,
            "{from",
            "`as: lowercase` needs a string but source 'created' is integer; "
            "put `string` before it, as in `as: [string, lowercase]`",
        ),
        (
            "vip: {from: email, as: [lowercase, md5]}",
            Code.TYPE_MISMATCH,
            "{from",
            "source 'email' is string but the target expects boolean",
        ),
        (
            "language: {from: email, as: [lowercase, md55]}",
            Code.INVALID_VALUE,
            "md55",
            "unknown conversion 'md55'; did you mean 'md5'?",
        ),
        (
            "language: {from: email, as: []}",
            Code.INVALID_VALUE,
            "[]",
            "the list of steps is empty",
        ),
        (
            "language: {from: tier, map: {gold: 1}, default: 0, as: [md5]}",
            Code.TYPE_MISMATCH,
            "{from",
            "`as: md5` needs a string but map is integer",
        ),
    ],
    ids=["string-step-on-integer", "chain-result", "unknown-step", "empty", "map"],
)
def test_a_chain_that_cannot_work_is_a_located_error(
    project: Path, line: str, code: Code, at: str, message: str
) -> None:
    found = problems(mapping(project, fields=line + "\n"))
    column = len("  ") + line.index(at) + 1
    where = [(p.code, p.line, p.column) for p in found]
    assert where == [(code, 16, column)], found
    assert message in found[0].message, found[0].message
