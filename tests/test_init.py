"""`p2pgen init` drafts a mapping that validates, generates and passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import real_spec

from generator.cli import cli
from generator.draft import Draft, repair
from generator.errors import Code, P2pgenError, Problem

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
