"""`p2pgen links`: the fleet of links in a repository and whether each is current."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.fleet import LinkStatus, Run, as_mermaid, as_table

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "contacts_to_customers",
    "crm_to_mailer",
    "invoices_to_crm",
    "pos_sales_webhook",
    "pos_to_inventory",
    "treatments_to_billing",
]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(ROOT / "generated", tmp_path / "generated")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def links(*args: str) -> str:
    result = CliRunner().invoke(cli, ["links", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_example_link_is_listed_current(repo: Path) -> None:
    rows = json.loads(links("--format", "json"))
    assert sorted(r["name"] for r in rows) == NAMES
    assert {r["status"] for r in rows} == {"current"}
    crm = next(r for r in rows if r["name"] == "crm_to_mailer")
    assert crm["source_api"].startswith("Acme CRM")
    assert crm["source_operation"] == "listContacts"
    assert crm["target_operation"] == "setListMember"


def test_stale_and_missing_links_and_the_last_run_are_shown(repo: Path) -> None:
    script = repo / "generated" / "crm_to_mailer" / "crm_to_mailer.py"
    script.write_text(
        script.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8"
    )
    shutil.rmtree(repo / "generated" / "pos_to_inventory")
    state = repo / "generated" / "invoices_to_crm" / "invoices_to_crm.state.json"
    last_run = {
        "finished": "2026-11-28T04:00:00Z",
        "exit_code": 1,
        "read": 30,
        "written": 29,
        "failed": 1,
    }
    state.write_text(json.dumps({"last_run": last_run}), encoding="utf-8")
    table = links()
    lines = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "stale" in lines["crm_to_mailer"]
    assert "not generated" in lines["pos_to_inventory"]
    assert "read 30, written 29, failed 1" in lines["invoices_to_crm"]
    assert "current" in lines["treatments_to_billing"]


def test_a_broken_mapping_is_listed_not_fatal(repo: Path) -> None:
    mapping = repo / "specs" / "links" / "crm_to_mailer.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8").replace(
            "email_address: email", "email_address: emial"
        ),
        encoding="utf-8",
    )
    rows = json.loads(links("--format", "json"))
    broken = next(r for r in rows if r["name"] == "crm_to_mailer")
    assert broken["status"] == "broken" and broken["problems"] == 1


def test_mermaid_draws_one_arrow_per_link(repo: Path) -> None:
    chart = links("--format", "mermaid")
    assert chart.startswith("flowchart LR")
    assert chart.count("-->|") == len(NAMES)
    assert '["Acme CRM' in chart


def run(finished: str, exit_code: int, written: int, failed: int = 0) -> dict[str, Any]:
    return {
        "started": finished,
        "finished": finished,
        "exit_code": exit_code,
        "read": written + failed,
        "written": written,
        "failed": failed,
    }


@pytest.fixture
def one_link(repo: Path) -> Path:
    """The repository with crm_to_mailer only (each link costs a regeneration)."""
    for mapping in (repo / "specs" / "links").glob("*.yaml"):
        if mapping.stem != "crm_to_mailer":
            mapping.unlink()
    return repo / "generated" / "crm_to_mailer"


def test_the_history_gives_success_rate_last_failure_and_records_moved(
    one_link: Path,
) -> None:
    history = [
        run("2026-11-28T01:00:00Z", 0, 10),
        run("2026-11-28T02:00:00Z", 2, 3),
        run("2026-11-28T03:00:00Z", 1, 29, failed=1),
        run("2026-11-28T04:00:00Z", 0, 5),
    ]
    state = {"link": "crm_to_mailer", "last_run": history[-1], "history": history}
    (one_link / "crm_to_mailer.state.json").write_text(json.dumps(state), "utf-8")

    [row] = json.loads(links("--format", "json"))

    assert row["success_rate"] == 0.5
    assert row["records_moved"] == 47
    assert row["last_failure"]["finished"] == "2026-11-28T03:00:00Z"
    assert row["last_failure"]["exit_code"] == 1
    assert [r["written"] for r in row["history"]] == [10, 3, 29, 5]
    assert row["health"] == "ok"


def test_the_table_and_the_chart_show_the_history() -> None:
    runs = tuple(
        Run.read_from(r)
        for r in (run("t1", 0, 10), run("t2", 1, 29, failed=1), run("t3", 0, 5))
    )
    status = LinkStatus(
        "crm_to_mailer",
        "specs/links/crm_to_mailer.yaml",
        "Acme CRM",
        "listContacts",
        "Mailer",
        "addListMember",
        "current",
        0,
        runs[-1],
        history=tuple(r for r in runs if r is not None),
    )
    header, line = as_table([status]).splitlines()
    assert header.split()[-4:] == ["SUCCESS", "MOVED", "LAST", "FAILURE"]
    assert line.endswith("66% of 3 runs  44     t2 exit 1")
    assert (
        '|"crm_to_mailer (current): 66% of 3 runs ok, 44 moved, last failure t2 exit 1"|'
        in (as_mermaid([status]))
    )


def test_a_link_that_never_ran_shows_dashes() -> None:
    status = LinkStatus("a", "a.yaml", "A", "op", "B", "op", "current", 0, None)
    assert as_table([status]).splitlines()[1].split()[-3:] == ["-", "-", "-"]
    assert status.health == "never run" and status.success_rate is None


def test_a_hostile_state_file_is_read_as_far_as_it_is_sane(one_link: Path) -> None:
    state = {
        "last_run": {"finished": "\x1b[31mred\nline", "exit_code": True, "read": -5},
        "history": [
            "not a run",
            {"written": "many", "exit_code": 0, "error": "x" * 5000},
            {"written": 7, "exit_code": 2, "error": "line one\r\nline two\x07"},
        ],
    }
    (one_link / "crm_to_mailer.state.json").write_text(json.dumps(state), "utf-8")

    [row] = json.loads(links("--format", "json"))

    assert row["last_run"]["finished"] == "[31mred line"
    assert row["last_run"]["exit_code"] is None and row["last_run"]["read"] == 0
    assert [r["written"] for r in row["history"]] == [0, 7]
    assert len(row["history"][0]["error"]) == 300
    assert row["last_failure"]["error"] == "line one line two"
    assert row["health"] == "failing"  # a last run that did not end 0 or 1


def test_state_files_that_are_no_object_or_too_deep_are_ignored(
    one_link: Path,
) -> None:
    state = one_link / "crm_to_mailer.state.json"
    for text in ("[1, 2]", "[" * 100_000 + "]" * 100_000, "\xff not json"):
        state.write_text(text, "utf-8")
        [row] = json.loads(links("--format", "json"))
        assert row["last_run"] is None and row["history"] == []


def test_stubs_still_unimplemented_are_listed(one_link: Path) -> None:
    [row] = json.loads(links("--format", "json"))
    assert row["open_stubs"] == ["tags_for"]

    script = one_link / "crm_to_mailer.py"
    source = script.read_text(encoding="utf-8")
    start = source.index("    raise NotImplementedError(")
    end = source.index("# p2pgen:end stub tags_for")
    script.write_text(source[:start] + "    return []\n\n\n" + source[end:], "utf-8")

    [row] = json.loads(links("--format", "json"))
    assert row["open_stubs"] == []
    assert row["status"] == "current"  # a filled-in region is no edit
