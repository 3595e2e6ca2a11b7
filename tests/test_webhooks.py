"""Webhook links: signatures against their reference schemes, and the receiver
served for real (uvicorn on loopback, a real SQLite journal, a real SIGTERM and
kill -9) in front of a loopback target.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
from click.testing import CliRunner

from generator.cli import cli
from generator.demo.apis import DEMO_CREDENTIALS, DemoApis
from generator.demo.examples import PosApi
from generator.resolve import resolve
from generator.runtime.core import FatalError
from generator.runtime.webhook import (
    Journal,
    Refused,
    Webhook,
    signing_key,
    verify,
    webhook_args,
)
from tests.runtime_helpers import Loopback, Seen, answer

ROOT = Path(__file__).resolve().parents[1]
# A Standard Webhooks secret as senders show it: whsec_ and base64.
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef-very-secret").decode()
STANDARD = Webhook(scheme="standard-webhooks", secret_env="HOOK_SECRET", records="data")

# --- signatures -----------------------------------------------------------


def standard_headers(
    body: bytes, event_id: str = "msg_1", when: float | None = None
) -> dict[str, str]:
    """Headers signed by the standardwebhooks package itself."""
    moment = datetime.fromtimestamp(int(time.time() if when is None else when), UTC)
    signature = standardwebhooks.Webhook(SECRET).sign(event_id, moment, body.decode())
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def check(webhook: Webhook, secret: str, headers: dict[str, str], body: bytes) -> None:
    lower = {k.lower(): v for k, v in headers.items()}
    verify(webhook, signing_key(webhook, secret), lower, body, time.time())


def test_standard_webhooks_signatures_of_the_reference_package_are_accepted() -> None:
    body = b'{"type": "row.created", "data": {"id": "r1", "name": "row 1"}}'
    headers = standard_headers(body)
    standardwebhooks.Webhook(SECRET).verify(body, headers)  # the package agrees
    check(STANDARD, SECRET, headers, body)
    # any one of several signatures, other versions ignored
    several = {
        **headers,
        "webhook-signature": "v1a,abc v1,"
        + base64.b64encode(b"x" * 32).decode()
        + " "
        + headers["webhook-signature"],
    }
    check(STANDARD, SECRET, several, body)


@pytest.mark.parametrize(
    "change",
    ["body", "id", "signature", "missing", "other secret", "stale", "future"],
)
def test_standard_webhooks_refuses_what_its_spec_refuses(change: str) -> None:
    body = b'{"data": {"id": "r1", "name": "row 1"}}'
    headers = standard_headers(body)
    secret = SECRET
    if change == "body":
        body = body.replace(b"r1", b"r2")
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    elif change == "signature":
        headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif change == "missing":
        del headers["webhook-signature"]
    elif change == "other secret":
        secret = "whsec_" + base64.b64encode(b"another secret").decode()
    elif change in ("stale", "future"):
        when = time.time() + (-301 if change == "stale" else 301)
        headers = standard_headers(body, when=when)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(SECRET).verify(body, headers)
    with pytest.raises(Refused) as refused:
        check(STANDARD, secret, headers, body)
    assert refused.value.status == 401


def test_a_standard_webhooks_secret_that_is_not_base64_is_fatal() -> None:
    with pytest.raises(FatalError, match="HOOK_SECRET is not a Standard Webhooks"):
        signing_key(STANDARD, "whsec_!!!")


def stripe_header(secret: str, body: bytes, when: int, *extra: str) -> str:
    """Stripe-Signature as Stripe documents it: t=<time>,v1=<hex HMAC-SHA256 of "t.body">."""
    signed = hmac.new(secret.encode(), f"{when}.".encode() + body, hashlib.sha256)
    return ",".join([f"t={when}", *extra, f"v1={signed.hexdigest()}"])


def test_stripe_signatures_as_stripe_documents_them() -> None:
    webhook = Webhook(scheme="stripe", secret_env="S", event_id="id")
    secret = "whsec_test_secret"  # used as written, not base64-decoded
    body = b'{\n  "id": "evt_test_webhook",\n  "object": "event"\n}'
    now = int(time.time())
    check(webhook, secret, {"Stripe-Signature": stripe_header(secret, body, now)}, body)
    # a rolled secret: one of several v1 signatures matches; v0 is ignored
    header = stripe_header(secret, body, now, "v1=" + "0" * 64, "v0=" + "1" * 64)
    check(webhook, secret, {"Stripe-Signature": header}, body)
    for headers in (
        {"Stripe-Signature": stripe_header("whsec_other", body, now)},
        {"Stripe-Signature": stripe_header(secret, body + b" ", now)},
        {"Stripe-Signature": stripe_header(secret, body, now - 301)},
        {"Stripe-Signature": stripe_header(secret, body, now + 301)},
        {"Stripe-Signature": "v1=" + "0" * 64},
        {},
    ):
        with pytest.raises(Refused):
            check(webhook, secret, headers, body)


def test_hmac_sha256_hex_digest_in_the_named_header() -> None:
    webhook = Webhook(scheme="hmac-sha256", secret_env="S", header="X-Signature")
    body = b'{"id": 1}'
    digest = hmac.new(b"plain-secret", body, hashlib.sha256).hexdigest()
    check(webhook, "plain-secret", {"X-Signature": digest}, body)
    check(webhook, "plain-secret", {"x-signature": "sha256=" + digest.upper()}, body)
    for headers in ({"X-Signature": digest[:-2] + "00"}, {"X-Other": digest}, {}):
        with pytest.raises(Refused):
            check(webhook, "plain-secret", headers, body)


# --- the receiver, served -------------------------------------------------

SERVER = """
import sys
from generator.runtime.webhook import Webhook, main_webhook
from tests.runtime_helpers import make_link

webhook = Webhook(scheme="standard-webhooks", secret_env="HOOK_SECRET", records="data")
link = make_link("none", required_env=("HOOK_SECRET",))
raise SystemExit(main_webhook(link, webhook, sys.argv[1:], "receiver"))
"""


class Target:
    """The loopback target: keeps each write; `hold` makes writes wait."""

    def __init__(self) -> None:
        self.writes: list[Seen] = []
        self.hold = threading.Event()
        self.hold.set()
        self.writing = threading.Event()
        self.delay = 0.0

    def __call__(self, handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        self.writing.set()
        self.hold.wait(30)
        time.sleep(self.delay)
        self.writes.append(seen)
        answer(handler, 201, {"ok": True})

    def refs(self) -> list[str]:
        return sorted(json.loads(w.body)["ref"] for w in self.writes)


class Served:
    """The receiver in a child process, and a client for it."""

    def __init__(self, tmp_path: Path, target: Loopback, *flags: str) -> None:
        self.tmp_path = tmp_path
        self.journal = tmp_path / "journal.sqlite"
        self.dead = tmp_path / "dead.jsonl"
        argv = [
            "--serve",
            "127.0.0.1:0",
            "--journal",
            str(self.journal),
            "--dead-letter",
            str(self.dead),
            "--target-url",
            target.url,
            "--state",
            str(tmp_path / "state.json"),
            *flags,
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HOOK_SECRET": SECRET},
        )
        assert self.process.stderr is not None
        self.log: list[str] = []
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r"receiving deliveries on (http://\S+/)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise AssertionError("the receiver did not start: " + "".join(self.log))
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(
        self, event: Any, event_id: str = "msg_1", **changes: Any
    ) -> httpx.Response:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = {**standard_headers(body, event_id, changes.pop("when", None))}
        headers.update(changes.pop("headers", {}))
        return self.client.post("/hooks/rows", content=body, headers=headers)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[str, str]:
        self.client.close()
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=30)
        return out, "".join(self.log) + err


def event(number: int, **data: Any) -> dict[str, Any]:
    return {
        "type": "row.created",
        "data": {"id": f"r{number}", "name": f"row {number}", **data},
    }


@pytest.fixture
def target() -> Iterator[tuple[Target, Loopback]]:
    fake = Target()
    with Loopback(fake) as server:
        yield fake, server
    fake.hold.set()


def until(condition: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_signed_deliveries_reach_the_target_once_and_bad_ones_are_refused(
    tmp_path: Path, target: tuple[Target, Loopback]
) -> None:
    fake, server = target
    served = Served(tmp_path, server)
    try:
        assert served.client.get("/healthz").status_code == 200
        assert served.client.get("/").status_code == 405
        first = served.post(event(1), "msg_1")
        assert first.status_code == 200 and first.json()["duplicate"] is False
        until(lambda: len(fake.writes) == 1)
        again = served.post(event(1), "msg_1")  # a re-delivery
        assert again.status_code == 200 and again.json()["duplicate"] is True
        bad = [
            served.post(event(2), "msg_2", headers={"webhook-signature": "v1,AAAA"}),
            served.post(event(3), "msg_3", when=time.time() - 600),  # stale
            served.post(event(4), "msg_4", when=time.time() + 600),  # future-dated
            served.client.post("/", content=json.dumps(event(5))),  # unsigned
        ]
        assert [r.status_code for r in bad] == [401, 401, 401, 401]
        assert served.post(b"{not json", "msg_6").status_code == 400
        huge = {"data": {"id": "r7", "name": "x" * (1024 * 1024)}}
        assert served.post(huge, "msg_7").status_code == 413
        # one that fails the record model is dead-lettered and done with
        assert served.post({"data": {"id": "r8"}}, "msg_8").status_code == 200
        assert served.post(event(9), "msg_9").status_code == 200
        until(lambda: len(fake.writes) == 2 and served.dead.exists())
        time.sleep(0.3)
    finally:
        out, err = served.stop()
    assert served.process.returncode == 1, err  # one record dead-lettered
    assert "Traceback" not in err
    summary = json.loads(out.splitlines()[-1])
    assert (summary["read"], summary["written"], summary["failed"]) == (3, 2, 1)
    assert fake.refs() == ["r1", "r9"]
    keys = [w.headers["Idempotency-Key"] for w in fake.writes]
    assert sorted(keys) == ["test_link:r1", "test_link:r9"]
    dead = [json.loads(line) for line in served.dead.read_text().splitlines()]
    assert [(d["stage"], d["record"]) for d in dead] == [("read", {"id": "r8"})]
    with sqlite3.connect(served.journal) as db:
        rows = db.execute("SELECT event_id, body, done FROM events").fetchall()
    assert sorted(r[0] for r in rows) == ["msg_1", "msg_8", "msg_9"]
    assert all(body is None and done for _, body, done in rows), "done, body dropped"
    assert served.journal.stat().st_mode & 0o777 == 0o600
    secret_forms = (SECRET, SECRET.removeprefix("whsec_"))
    for text in (
        err,
        out,
        served.dead.read_text(),
        served.journal.read_bytes().decode("latin-1"),
        (tmp_path / "state.json").read_text(),
    ):
        assert not any(form in text for form in secret_forms)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["last_run"]["written"] == 2


@pytest.mark.slow
def test_events_survive_kill_9_and_are_written_after_a_restart(
    tmp_path: Path, target: tuple[Target, Loopback]
) -> None:
    fake, server = target
    fake.hold.clear()  # the target takes the writes but does not answer
    served = Served(tmp_path, server, "--concurrency", "2")
    for number in range(1, 6):
        assert served.post(event(number), f"msg_{number}").status_code == 200
    assert fake.writing.wait(15)
    served.client.close()
    served.process.send_signal(signal.SIGKILL)
    served.process.communicate(timeout=15)
    assert fake.writes == []
    fake.hold.set()
    again = Served(tmp_path, server)
    try:
        until(lambda: len({json.loads(w.body)["ref"] for w in fake.writes}) == 5)
        assert again.post(event(3), "msg_3").json()["duplicate"] is True
        time.sleep(0.3)
    finally:
        _, err = again.stop()
    assert again.process.returncode == 0, err
    # the 2 writes in flight at the kill reached the target and are sent again:
    # with the same idempotency key, so the target applies them once
    written = {json.loads(w.body)["ref"] for w in fake.writes}
    assert written == {f"r{n}" for n in range(1, 6)}
    assert len(fake.writes) <= 5 + 2
    assert {w.headers["Idempotency-Key"] for w in fake.writes} == {
        f"test_link:{ref}" for ref in written
    }
    with sqlite3.connect(again.journal) as db:
        left = db.execute("SELECT count(*) FROM events WHERE done IS NULL").fetchone()
    assert left == (0,)


@pytest.mark.slow
def test_sigterm_finishes_the_write_in_flight_and_prints_the_summary(
    tmp_path: Path, target: tuple[Target, Loopback]
) -> None:
    fake, server = target
    fake.delay = 1.0
    served = Served(tmp_path, server, "--concurrency", "1")
    assert served.post(event(1), "msg_1").status_code == 200
    assert fake.writing.wait(15)
    out, err = served.stop()
    assert served.process.returncode == 0, err
    assert fake.refs() == ["r1"], "the write in flight finished"
    assert json.loads(out.splitlines()[-1])["written"] == 1
    with sqlite3.connect(served.journal) as db:
        assert db.execute("SELECT done FROM events").fetchone()[0] is not None


def test_a_journal_through_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real.sqlite").write_bytes(b"")
    (tmp_path / "journal.sqlite").symlink_to(tmp_path / "real.sqlite")
    with pytest.raises(FatalError, match="symbolic link"):
        Journal(tmp_path / "journal.sqlite")


# --- the mapping: source.webhook and its checks ---------------------------

WEBHOOK_MAPPING = (ROOT / "specs" / "links" / "pos_sales_webhook.yaml").read_text()


def problems_of(tmp_path: Path, text: str, spec: str | None = None) -> list[str]:
    """The located problems `p2pgen generate` reports for a mapping, as text."""
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    for name in ("pos.yaml", "inventory.yaml"):
        shutil.copy(ROOT / "specs" / name, tmp_path / "specs" / name)
    if spec is not None:
        (tmp_path / "specs" / "pos.yaml").write_text(spec)
    path = links / "hook.yaml"
    path.write_text(text)
    return [str(p) for p in resolve(path).errors]


def test_the_example_webhook_mapping_is_clean(tmp_path: Path) -> None:
    assert problems_of(tmp_path, WEBHOOK_MAPPING) == []


@pytest.mark.parametrize(
    ("old", "new", "where", "needles"),
    [
        (
            "webhook: saleCompleted",
            "webhook: saleComplete",
            "9:",
            [
                "webhook 'saleComplete' not found",
                "did you mean 'saleCompleted'",
                "has: saleCompleted",
            ],
        ),
        (
            "scheme: standard-webhooks",
            "scheme: standard-webhook",
            "13:",
            ["unknown scheme 'standard-webhook'", "did you mean 'standard-webhooks'"],
        ),
        (
            "scheme: standard-webhooks",
            "scheme: hmac-sha256",
            "",
            ["hmac-sha256 needs 'header'", "tolerance: hmac-sha256 signs no timestamp"],
        ),
        (
            "scheme: standard-webhooks",
            "scheme: stripe",
            "",
            ["stripe deliveries carry no webhook-id header", "event_id: id"],
        ),
        (
            "  records: data  ",
            "  records: dta  ",
            "10:",
            ["source.records: 'dta' not found in the event of webhook 'saleCompleted'"],
        ),
        (
            "  records: data  ",
            "  records: data.items  ",
            "10:",
            ["'data.items' is a list; a webhook's `records` names the one record"],
        ),
        (
            "  # event_id: omitted",
            "  event_id: data.idd  #",
            "11:",
            ["source.event_id: 'idd' not found in the event", "did you mean 'id'"],
        ),
        (
            "  webhook: saleCompleted\n",
            "  webhook: saleCompleted\n  pagination: {style: offset, param: offset}\n",
            "10:",
            ["source.pagination: a webhook source is not paged"],
        ),
        (
            "  webhook: saleCompleted\n",
            "  webhook: saleCompleted\n  incremental: {param: since, field: sold_at}\n",
            "10:",
            ["source.incremental: a webhook source is not polled"],
        ),
        (
            "  webhook: saleCompleted\n",
            "  webhook: saleCompleted\n  operation: listSales\n",
            "",
            ["give either 'operation' (a source that is polled) or 'webhook'"],
        ),
    ],
)
def test_webhook_mapping_errors_are_located_with_a_hint(
    tmp_path: Path, old: str, new: str, where: str, needles: list[str]
) -> None:
    assert old in WEBHOOK_MAPPING
    found = "\n".join(problems_of(tmp_path, WEBHOOK_MAPPING.replace(old, new)))
    assert f"hook.yaml:{where}" in found, found
    for needle in needles:
        assert needle in found, found


def test_a_webhook_source_needs_a_signature(tmp_path: Path) -> None:
    start = WEBHOOK_MAPPING.index("  signature:")
    end = WEBHOOK_MAPPING.index("target:")
    found = "\n".join(
        problems_of(tmp_path, WEBHOOK_MAPPING[:start] + "\n" + WEBHOOK_MAPPING[end:])
    )
    assert "source needs the key 'signature' for a webhook" in found, found


def test_signature_keys_belong_to_a_webhook_source(tmp_path: Path) -> None:
    polled = (ROOT / "specs" / "links" / "pos_to_inventory.yaml").read_text()
    text = polled.replace(
        "  records: sales\n",
        "  records: sales\n  signature: {scheme: stripe, env: {secret: S}}\n",
    )
    found = "\n".join(problems_of(tmp_path, text))
    assert "source.signature belongs to a webhook source" in found, found


def test_a_spec_without_webhooks_says_so(tmp_path: Path) -> None:
    spec = (ROOT / "specs" / "pos.yaml").read_text()
    spec = spec[: spec.index("webhooks:\n")] + spec[spec.index("components:\n") :]
    found = "\n".join(problems_of(tmp_path, WEBHOOK_MAPPING, spec))
    assert "pos.yaml has no webhooks (OpenAPI 3.1 `webhooks`, or `x-webhooks`" in found


def test_a_webhook_without_a_json_body_is_refused(tmp_path: Path) -> None:
    spec = (ROOT / "specs" / "pos.yaml").read_text()
    start = spec.index(
        '      requestBody:\n        required: true\n        content:\n          application/json:\n            schema:\n              $ref: "#/components/schemas/SaleEvent"\n'
    )
    end = spec.index("      responses:", start)
    found = "\n".join(problems_of(tmp_path, WEBHOOK_MAPPING, spec[:start] + spec[end:]))
    assert "webhook 'saleCompleted' has no JSON request body" in found, found


# --- the demo POS sends signed webhooks -----------------------------------


def test_the_demo_pos_signs_each_sale_as_standard_webhooks_says() -> None:
    received: list[Seen] = []

    def keep(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        received.append(seen)
        # the first try is refused: the POS sends it again
        answer(handler, 500 if len(received) == 1 else 200, {})

    with DemoApis(ROOT / "specs") as demo, Loopback(keep) as receiver:
        pos = demo.apis["pos"]
        assert isinstance(pos, PosApi)
        pos.subscribe(receiver.url + "/hooks")
        sales = pos.ring_up(2)
        stored = demo.records("pos", "sales")
    assert stored[-2:] == sales
    secret = DEMO_CREDENTIALS["pos"]["POS_WEBHOOK_SECRET"]
    events = [
        standardwebhooks.Webhook(secret).verify(seen.body, seen.headers)
        for seen in received
    ]
    assert [e["data"] for e in events] == [sales[0], sales[0], sales[1]]
    ids = [seen.headers["webhook-id"] for seen in received]
    assert ids[0] == ids[1] != ids[2], "a retry keeps its webhook-id"


def test_deploy_leaves_a_webhook_link_out_with_a_warning(tmp_path: Path) -> None:
    links = ROOT / "specs" / "links"
    result = CliRunner().invoke(
        cli,
        [
            *("deploy", "kubernetes"),
            str(links / "pos_sales_webhook.yaml"),
            str(links / "pos_to_inventory.yaml"),
            *("-o", str(tmp_path), "--generated", str(ROOT / "generated")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pos_sales_webhook is a webhook link, a server" in result.output
    assert (tmp_path / "pos_to_inventory.yaml").exists()
    assert not (tmp_path / "pos_sales_webhook.yaml").exists()


def test_the_command_line_of_a_webhook_link(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--serve", "127.0.0.1:0"], "--serve needs --journal PATH"),
        ([], "give --serve HOST:PORT to receive deliveries, or --replay FILE"),
        (
            ["--serve", "127.0.0.1:0", "--journal", "j", "--dry-run"],
            "--dry-run and --limit go with --replay, not --serve",
        ),
    ):
        with pytest.raises(SystemExit):
            webhook_args(argv, "test")
        assert message in capsys.readouterr().err
    args = webhook_args(["--serve", "127.0.0.1:0", "--journal", "j"], "test")
    assert args.max_body == 1024 * 1024


# --- OpenAPI 3.0 x-webhooks, Stripe and plain HMAC links, generated --------

PAYMENTS_30 = """\
openapi: 3.0.3
info: {title: Payments, version: "1.0"}
servers: [{url: "http://127.0.0.1:9"}]
paths: {}
x-webhooks:
  chargeSucceeded:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [id, data]
              properties:
                id: {type: string, example: evt_1}
                type: {type: string}
                data:
                  type: object
                  required: [object]
                  properties:
                    object:
                      type: object
                      required: [id, email]
                      properties:
                        id: {type: string}
                        email: {type: string}
                        amount: {type: integer}
      responses:
        "200": {description: ok}
"""

PAYMENTS_LINK = """\
version: 1
name: charges_out
source:
  spec: ../payments.yaml
  webhook: chargeSucceeded
  records: data.object
  event_id: id
  signature:
    scheme: {scheme}
{extra}    env: {{secret: PAYMENTS_SECRET}}
target:
  spec: ../sink.yaml
  operation: createThing
  idempotency_key: {{header: Idempotency-Key, from: id}}
fields:
  email: email
  kind: {{const: charge}}
  qty: amount
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scheme", "extra"),
    [("stripe", "    tolerance: 600\n"), ("hmac-sha256", "    header: X-Signature\n")],
)
def test_a_generated_x_webhooks_link_is_lint_clean_and_passes_its_tests(
    tmp_path: Path, scheme: str, extra: str
) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    links = tmp_path / "specs" / "links"
    links.mkdir(parents=True)
    (tmp_path / "specs" / "payments.yaml").write_text(PAYMENTS_30)
    shutil.copy(ROOT / "tests" / "data" / "transform" / "sink.yaml", tmp_path / "specs")
    mapping = links / "charges_out.yaml"
    mapping.write_text(PAYMENTS_LINK.format(scheme=scheme, extra=extra))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["generate", str(mapping), "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / "charges_out"
    script = (folder / "charges_out.py").read_text()
    assert '"uvicorn>=0.30"' in script and f'scheme="{scheme}"' in script
    checks = [
        [sys.executable, "-m", "ruff", "check", "--isolated", str(folder)],
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(ROOT / "pyproject.toml"),
            str(folder),
        ],
        [sys.executable, "-m", "mypy", "--strict", str(folder)],
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
    ]
    for argv in checks:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, cwd=folder
        )
        assert done.returncode == 0, done.stdout + done.stderr
