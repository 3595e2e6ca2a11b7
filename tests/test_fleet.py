"""`p2pgen links`: the fleet of links in a repository and whether each is current."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "crm_to_mailer",
    "invoices_to_crm",
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
    assert crm["target_operation"] == "addListMember"


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
    assert chart.count("-->|") == 4
    assert '["Acme CRM' in chart
