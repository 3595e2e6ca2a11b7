"""Hostile and broken mappings and output folders: a located message, exit 1, no hang,
no traceback, and nothing (not even a temporary file) left in the output folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_cli_errors import GOOD, assert_rejected, project, run, write_mapping

from generator.errors import Problem

__all__ = ["project"]  # the fixture, shared with test_cli_errors

BOMB = "\n".join(
    ["x-bomb:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("status: {const: subscribed}", "status: {const: .nan}"),
            ":14:19: .nan is not a finite number",
        ),
        (
            ("status: {const: subscribed}", "status: {const: 1" + "0" * 30 + "}"),
            ":14:19: 10000000000000000000... is larger than a 64-bit integer",
        ),
        (
            ("status: {const: subscribed}", 'status: {const: "\\udc80"}'),
            ":14:19: the text holds a lone surrogate",
        ),
        (
            ("status: {const: subscribed}", "status: {<<: {const: subscribed}}"),
            ":14:11: merge keys (<<) are not supported",
        ),
        (
            ("status: {const: subscribed}", "status: {from: status, map: {[gold]: x}}"),
            ":14:31: a key must be text, a number or true/false",
        ),
        (
            ("status: {const: subscribed}", "status: &r {const: [*r]}"),
            ":1:1: the mapping file is refused: an alias refers to a value that contains it",
        ),
        (
            ("list_id: {const: news2024}", "list_id: {const: news\x002024}"),
            ":11:26: character #x0000 is not allowed in YAML",
        ),
        (("version: 1", "version: true"), ":1:10: unsupported mapping version"),
        (
            ("name: contacts_out", "name: httpx"),
            ":2:7: name 'httpx' is the name of a Python module",
        ),
        (
            ("name: contacts_out", "name: " + "n" * 65),
            ":2:7: name '" + "n" * 64 + "' is longer than 64 characters",
        ),
    ],
    ids=[
        "nan",
        "huge-int",
        "surrogate",
        "merge-key",
        "list-key",
        "recursive-alias",
        "nul",
        "version-true",
        "module-name",
        "long-name",
    ],
)
def test_values_no_mapping_needs_are_refused_with_their_place(
    project: Path, change: tuple[str, str], message: str
) -> None:
    mapping = write_mapping(project, GOOD.replace(*change))
    assert_rejected(project, mapping, f"{mapping}{message}")


def test_an_alias_bomb_is_refused_at_once(project: Path) -> None:
    mapping = write_mapping(project, GOOD)
    mapping.write_text(
        BOMB + "\n" + GOOD.replace("fields:", "fields:\n  tags: {const: *l9}")
    )
    assert_rejected(
        project,
        mapping,
        f"{mapping}:1:1: the mapping file is refused: anchors and aliases expand it",
    )


@pytest.mark.parametrize(
    ("stub", "what"),
    [
        ("transform", "a name the script already uses"),
        ("httpx", "a name the script already uses"),
        ("Member", "a name the script already uses"),
        ("list", "a Python builtin"),
    ],
)
def test_a_stub_cannot_take_a_name_the_script_uses(
    project: Path, stub: str, what: str
) -> None:
    mapping = write_mapping(project, GOOD + f"  tags: {{stub: {stub}}}\n")
    assert_rejected(
        project,
        mapping,
        f"{mapping}:15:9: tags: stub '{stub}' is {what}; give the stub another name",
    )


def test_one_stub_cannot_fill_fields_of_different_types(project: Path) -> None:
    mapping = write_mapping(
        project, GOOD + "  tags: {stub: fill}\n  language: {stub: fill}\n"
    )
    assert_rejected(
        project,
        mapping,
        f"{mapping}:16:13: language: stub 'fill' already fills 'tags' (list[str]), but this one needs str",
    )


def test_unbalanced_template(project: Path) -> None:
    mapping = write_mapping(project, GOOD + "  language: {template: '{first_name'}\n")
    assert_rejected(
        project,
        mapping,
        f"{mapping}:15:13: fields.language: unbalanced '{{' or '}}' in template",
    )


def test_header_name_with_a_newline(project: Path) -> None:
    text = GOOD.replace(
        "  params:\n",
        '  idempotency_key: {header: "Idem\\npotency", from: id}\n  params:\n',
    )
    mapping = write_mapping(project, text)
    assert_rejected(
        project,
        mapping,
        "target.idempotency_key.header: 'Idem\\npotency' is not an HTTP header name",
    )


def test_two_mappings_with_one_name_write_nothing(project: Path) -> None:
    first = write_mapping(project, GOOD)
    second = write_mapping(project, GOOD, name="copy.yaml")
    out = project / "out"
    outcome = run(["generate", str(first), str(second), "--out", str(out)])
    assert outcome.code == 1, outcome
    assert (
        f"{second}: name 'contacts_out' is also the name in {first}" in outcome.output
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "obstacle", ["binary script", "folder as script", "file as folder"]
)
def test_what_is_in_the_way_on_disk_is_named_and_nothing_is_left_behind(
    project: Path, obstacle: str
) -> None:
    mapping = write_mapping(project, GOOD)
    folder = project / "out" / "contacts_out"
    if obstacle == "file as folder":
        folder.parent.mkdir()
        folder.write_text("not a folder")
        blocked, problem = folder, "is a file where a folder belongs"
    else:
        folder.mkdir(parents=True)
        blocked = folder / "contacts_out.py"
        if obstacle == "binary script":
            blocked.write_bytes(b"\xff\xfe\x00 not text")
            problem = "is not UTF-8 text"
        else:
            blocked.mkdir()
            problem = "is not a regular file"
    before = sorted(os.listdir(folder.parent)) + (
        sorted(os.listdir(folder)) if folder.is_dir() else []
    )
    outcome = run(["generate", str(mapping), "--out", str(project / "out")])
    assert outcome.code == 1, outcome
    assert (
        f"{blocked}: {problem}" in outcome.output and "move it away" in outcome.output
    )
    after = sorted(os.listdir(folder.parent)) + (
        sorted(os.listdir(folder)) if folder.is_dir() else []
    )
    assert after == before, "nothing written, no temporary file left"
    links = run(
        ["links", str(project / "specs" / "links"), "--out", str(project / "out")]
    )
    assert links.code == 0 and "broken" in links.output, links


def test_links_without_any_mapping_fail(project: Path) -> None:
    outcome = run(["links", str(project / "nowhere")])
    assert outcome.code == 1
    assert "no mapping files under" in outcome.output


def test_control_characters_from_inputs_cannot_forge_message_lines() -> None:
    problem = Problem("m.yaml", 3, 1, "field 'a\nm.yaml:1:1: ok' not found")
    assert str(problem) == "m.yaml:3:1: field 'a\\nm.yaml:1:1: ok' not found"


def test_init_refuses_a_target_without_a_request_body(project: Path) -> None:
    specs = project / "specs"
    draft = specs / "links" / "draft.yaml"
    outcome = run(
        [
            "init",
            *("--source", str(specs / "crm.yaml"), "--source-op", "listContacts"),
            *("--target", str(specs / "mailer.yaml"), "--target-op", "listListMembers"),
            *("-o", str(draft)),
        ]
    )
    assert outcome.code == 1, outcome
    assert "target operation listListMembers has no JSON request body" in outcome.output
    assert not draft.exists()


@pytest.mark.parametrize("name", ["src", "record", "body"])
def test_a_stub_cannot_take_a_name_of_the_transform(project: Path, name: str) -> None:
    mapping = write_mapping(project, GOOD + f"  tags: {{stub: {name}}}\n")
    assert_rejected(
        project, mapping, f"tags: stub '{name}' is a name the script already uses"
    )


def test_a_mapping_of_a_few_million_values_is_refused(project: Path) -> None:
    levels = [
        "x-levels:",
        "  l0: &l0 [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a]",
    ]
    levels += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 20)}]" for i in range(1, 5)]
    mapping = write_mapping(project, GOOD)
    mapping.write_text(
        "\n".join(levels)
        + "\n"
        + GOOD.replace("fields:", "fields:\n  tags: {const: *l4}")
    )
    outcome = assert_rejected(
        project, mapping, "anchors and aliases expand it to more than 100,000 values"
    )
    assert len(outcome.output) < 5000, "no huge value quoted back"


def test_a_message_quoting_a_huge_value_is_cut() -> None:
    problem = Problem("m.yaml", 1, 1, "constant " + "x" * 10_000 + " is wrong")
    assert len(str(problem)) < 2100 and str(problem).endswith("(10,018 characters)")
