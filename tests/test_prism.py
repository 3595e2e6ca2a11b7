"""An independent judge of what the generated scripts send: Stoplight Prism.

For each example link the SOURCE side is the bundled demo API (real data) and
the TARGET side is `prism mock --errors` serving the target's OpenAPI document.
Prism validates every request (path, query, headers, security, body) against
that document and answers 4xx/422 when it breaks it, so a write dead-lettered
with a 4xx means the script sent something the target spec rejects.

Needs Node.js: `npm install --prefix .ci/node @stoplight/prism-cli@5`
(`.ci/run` does it when npm is on PATH). Skipped when Prism is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from generator.demo.apis import DemoApis

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
PRISM_LOCAL = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "prism"
INSTALL_HINT = (
    "Prism is not installed: npm install --prefix .ci/node "
    "@stoplight/prism-cli@5 (needs Node.js)"
)
STARTUP_TIMEOUT_S = 45
RUN_TIMEOUT_S = 60
# Enough records to reach the first hand-typed lower-case procedure code of the
# patients demo data (every 23rd treatment), so the computed rejections below are
# exercised and not vacuous; still about a second per link.
LIMIT = 25

# Simple, valid bodies for the stubs of the example links, keyed by stub name.
STUB_BODIES = {
    "tags_for": 'return ["newsletter"]',
    "negative_quantity": 'return -int(item["quantity"])',
}

STUB_REGION = re.compile(
    r"(?P<begin># p2pgen:begin stub (?P<name>\w+)\n)(?P<body>.*?)"
    r"(?P<end># p2pgen:end stub (?P=name)\n)",
    re.DOTALL,
)
RAISE = re.compile(
    r"^(?P<indent>[ \t]+)raise NotImplementedError\(.*?^(?P=indent)\)$",
    re.DOTALL | re.MULTILINE,
)


def prism_binary() -> str | None:
    if PRISM_LOCAL.exists():
        return str(PRISM_LOCAL)
    return shutil.which("prism")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


@dataclass
class Prism:
    spec: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def start_prism(binary: str, spec: str, logs: Path) -> Prism:
    port = free_port()
    log = logs / f"prism-{Path(spec).stem}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "mock",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                str(SPECS / spec),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    return Prism(spec, f"http://127.0.0.1:{port}", process, log)


def wait_ready(prism: Prism) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if prism.process.poll() is not None:
            pytest.fail(
                f"Prism for {prism.spec} exited with {prism.process.returncode}:\n"
                + prism.log_tail()
            )
        try:
            # Any HTTP answer (a 404 for "/" included) means the server is up.
            httpx.get(prism.url + "/", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(
        f"Prism for {prism.spec} did not answer in {STARTUP_TIMEOUT_S}s:\n"
        + prism.log_tail()
    )


def stop_prism(prism: Prism) -> None:
    if prism.process.poll() is None:
        # The Prism process was started in its own session: its group is ours.
        os.killpg(prism.process.pid, signal.SIGTERM)
        try:
            prism.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(prism.process.pid, signal.SIGKILL)
            prism.process.wait(timeout=10)


@pytest.fixture(scope="module")
def prism_for(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], Prism]]:
    """Start (once per module) a Prism mock of a target spec; stop them all after."""
    binary = prism_binary()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    logs = tmp_path_factory.mktemp("prism-logs")
    running: dict[str, Prism] = {}

    def get(spec: str) -> Prism:
        if spec not in running:
            running[spec] = start_prism(binary, spec, logs)
            wait_ready(running[spec])
        return running[spec]

    try:
        yield get
    finally:
        for prism in running.values():
            stop_prism(prism)


# Known source quirks: records the target spec legitimately refuses, computed from
# the demo data and the specs, never hard-coded. `fields` names the request body
# fields Prism may complain about for them; any other violation is a finding.


@dataclass(frozen=True)
class Quirks:
    ids: set[str]
    fields: set[str]


def spec_schema(spec: str, name: str) -> dict[str, Any]:
    document = yaml.safe_load((SPECS / spec).read_text(encoding="utf-8"))
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


# ajv-formats' "email" (what Prism checks `format: email` with): RFC 5321, ASCII
# only; a non-ASCII local part would need `format: idn-email`.
STRICT_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    re.IGNORECASE,
)


def no_quirks(demo: DemoApis, read: int) -> Quirks:
    return Quirks(set(), set())


def non_ascii_emails(demo: DemoApis, read: int) -> Quirks:
    """Contacts whose address breaks `format: email` (the CRM's own spec too)."""
    assert (
        spec_schema("mailer.yaml", "Member")["properties"]["email_address"]["format"]
        == "email"
    )
    # The link reads every contact, in the store's order; archived ones are
    # deleted (no body), active ones sent.
    window = [
        c for c in demo.records("crm", "contacts")[:read] if c.get("status") == "active"
    ]
    return Quirks(
        {c["id"] for c in window if not STRICT_EMAIL.match(str(c.get("email")))},
        {"email_address"},
    )


def lower_case_procedure_codes(demo: DemoApis, read: int) -> Quirks:
    """Hand-typed treatment codes that break ChargeInput.procedure_code's pattern."""
    pattern = spec_schema("billing.yaml", "ChargeInput")["properties"][
        "procedure_code"
    ]["pattern"]
    # The link reads treatments unfiltered, in the store's order.
    window = demo.records("patients", "treatments")[:read]
    return Quirks(
        {t["id"] for t in window if not re.search(pattern, str(t.get("code")))},
        {"procedure_code"},
    )


@dataclass(frozen=True)
class Link:
    name: str
    source_api: str
    target_spec: str
    quirks: Callable[[DemoApis, int], Quirks]
    # A mock answers a batch with its example's one result, whatever it was sent:
    # judge the requests of the same link without per-record results.
    mock_batch: bool = False
    # Requests Prism must have judged ("method /path-prefix"): match, update...
    judged: tuple[str, ...] = ()


LINKS = [
    Link(
        "contacts_to_customers",
        "crm",
        "crm.yaml",
        no_quirks,
        mock_batch=True,
        judged=("post /customers/batch",),
    ),
    Link(
        "crm_to_mailer",
        "crm",
        "mailer.yaml",
        non_ascii_emails,
        judged=("put /lists/news2024/members/", "delete /lists/news2024/members/"),
    ),
    Link(
        "invoices_to_crm",
        "invoicing",
        "crm.yaml",
        no_quirks,
        judged=("get /customers", "patch /customers/"),
    ),
    Link("pos_to_inventory", "pos", "inventory.yaml", no_quirks),
    Link(
        "treatments_to_billing", "patients", "billing.yaml", lower_case_procedure_codes
    ),
]
CASES = [pytest.param(link, id=link.name) for link in LINKS]


def without_batch_results(name: str, out: Path) -> Path:
    """A copy of the example mapping whose batches expect no per-record results."""
    mapping = yaml.safe_load((SPECS / "links" / f"{name}.yaml").read_text("utf-8"))
    del mapping["target"]["batch"]["results"]
    for side in ("source", "target"):
        mapping[side]["spec"] = str((SPECS / "links" / mapping[side]["spec"]).resolve())
    path = out / "mappings" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def generate(name: str, out: Path, mapping: Path | None = None) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "generate",
            str(mapping or SPECS / "links" / f"{name}.yaml"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env({}),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    script = out / name / f"{name}.py"
    assert script.is_file()
    return script


def fill_stubs(script: Path) -> None:
    """Replace each stub's `raise NotImplementedError(...)` with a simple valid return."""
    source = script.read_text(encoding="utf-8")

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in STUB_BODIES:
            pytest.fail(f"{script.name}: no test body for new stub {name!r}")
        body, count = RAISE.subn(
            lambda raised: raised["indent"] + STUB_BODIES[name], match["body"]
        )
        assert count == 1, f"{script.name}: stub {name} has no NotImplementedError"
        return match["begin"] + body + match["end"]

    filled = STUB_REGION.sub(fill, source)
    script.write_text(filled, encoding="utf-8")


def dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


VIOLATION = re.compile(r"Violation: (?P<where>\S+) (?P<what>.*)$")


def violations(log: str) -> list[tuple[str, str]]:
    """Prism's request violations: (location such as request.body.x, message)."""
    found = []
    for line in log.splitlines():
        match = VIOLATION.search(line)
        if match:
            found.append((match["where"], match["what"].strip()))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("link", CASES)
def test_what_the_script_sends_conforms_to_the_target_spec(
    link: Link, prism_for: Callable[[str], Prism], tmp_path: Path
) -> None:
    prism = prism_for(link.target_spec)
    mapping = without_batch_results(link.name, tmp_path) if link.mock_batch else None
    script = generate(link.name, tmp_path, mapping)
    fill_stubs(script)
    dead = tmp_path / "dead.jsonl"

    log_start = prism.log.stat().st_size
    with DemoApis(SPECS) as demo:
        run = subprocess.run(
            [
                sys.executable,
                str(script),
                "--source-url",
                demo.base_url(link.source_api),
                "--target-url",
                prism.url,
                "--state",
                str(tmp_path / "state.json"),
                "--dead-letter",
                str(dead),
                "--limit",
                str(LIMIT),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=child_env(demo.env()),
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        assert lines, f"no summary on stdout; stderr:\n{run.stderr}"
        summary = json.loads(lines[-1])
        quirks = link.quirks(demo, summary["read"])
    with prism.log.open("rb") as log:
        log.seek(log_start)
        text = log.read().decode("utf-8", errors="replace")
        seen = violations(text)
    received = set(re.findall(r"\[HTTP SERVER\] (\w+ \S+) ", text))
    for wanted in link.judged:  # the writes beyond a POST were sent and judged
        assert any(r.startswith(wanted) for r in received), (wanted, received)

    entries = dead_letters(dead)
    refused = [
        e
        for e in entries
        if e.get("stage") == "write"
        and isinstance(e.get("status"), int)
        and 400 <= e["status"] < 500
        and str((e.get("record") or {}).get("id")) not in quirks.ids
    ]
    unexpected = [
        (where, what)
        for where, what in seen
        if where not in {f"request.body.{field}" for field in quirks.fields}
    ]
    assert not refused and not unexpected, (
        f"Prism ({link.target_spec}) refused what the script sent:\n"
        + "\n".join(f"  HTTP {e['status']}: {e['reason'][:300]}" for e in refused[:5])
        + "\nPrism's violations:\n"
        + "\n".join(f"  {where}: {what}" for where, what in unexpected[:10])
    )
    context = f"summary {summary}\nstderr:\n{run.stderr[-3000:]}\ndead: {entries[:5]}"
    assert summary["read"] == LIMIT, context
    rejected_ids = {str((e.get("record") or {}).get("id")) for e in entries}
    assert rejected_ids == quirks.ids, context
    assert summary["written"] == summary["read"] - len(quirks.ids), context
    assert summary["failed"] == len(quirks.ids), context
    assert run.returncode == (1 if quirks.ids else 0), context


@pytest.mark.slow
def test_prism_refuses_a_body_that_breaks_the_target_spec(
    prism_for: Callable[[str], Prism],
) -> None:
    """Negative control: Prism really judges; a bad ChargeInput gets a 4xx."""
    prism = prism_for("billing.yaml")
    headers = {"Authorization": "Bearer any-token"}
    good = {
        "patient_ref": "MRN-004211",
        "procedure_code": "D1110",
        "service_date": "2024-02-14",
        "quantity": 1,
    }
    accepted = httpx.post(prism.url + "/charges", json=good, headers=headers)
    assert accepted.status_code == 201, accepted.text
    log_start = prism.log.stat().st_size
    bad = {**good, "procedure_code": "d1110", "quantity": 0}
    refused = httpx.post(prism.url + "/charges", json=bad, headers=headers)
    assert 400 <= refused.status_code < 500, refused.text
    # The answer is the spec's own 4xx example; Prism's log says what it found.
    with prism.log.open("rb") as log:
        log.seek(log_start)
        seen = {where for where, _ in violations(log.read().decode("utf-8", "replace"))}
    assert {"request.body.procedure_code", "request.body.quantity"} <= seen, seen
