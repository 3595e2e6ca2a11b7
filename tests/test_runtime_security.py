"""One test per security hole the runtime had, each failing on the runtime before its fix.

A few companions check that a fix keeps what worked (a slash in a path
parameter, a compressed answer within --max-body). Where the hole is on the wire, the test talks real HTTP to a small server on
127.0.0.1 (port 0) that it starts and that stops by itself.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from runtime_helpers import (
    SECRETS,
    FakeSource,
    FakeTarget,
    Loopback,
    Seen,
    answer,
    command_line,
    config,
    dead_letters,
    isolate,
    make_link,
    rows,
    run,
    state,
)

from generator.runtime.auth import ApiKeyAuth, ClientCredentialsAuth
from generator.runtime.core import FatalError
from generator.runtime.files import LockHeld
from generator.runtime.params import ParamStyle
from generator.runtime.run import StopSignals, main_link, run_link

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


def forms(secret: str) -> list[str]:
    """A secret as set, percent-encoded and JSON-escaped with \\/."""
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        secret.replace("/", "\\/"),
    ]


# --- path parameters ------------------------------------------------------


def account_link() -> Any:
    return make_link(
        target={
            "path": "/accounts/{account}/items",
            "params": lambda row: {"account": row.name},
            "locations": {"account": ParamStyle("path")},
        }
    )


def write_to_loopback(tmp_path: Path, link: Any, records: list[Any]) -> Loopback:
    """Run `link` over `records`, writing to a real server; the server, stopped."""
    with Loopback(lambda handler, seen: answer(handler, 201, {"ok": True})) as server:
        run_link(
            link,
            config(tmp_path, target_url=server.url),
            source_transport=httpx.MockTransport(FakeSource(records)),
        )
    return server


@pytest.mark.parametrize("value", ["..", ".", ""], ids=["dotdot", "dot", "empty"])
def test_a_path_parameter_that_would_leave_its_segment_is_dead_lettered_not_sent(
    tmp_path: Path, value: str
) -> None:
    records = [{"id": "r0", "name": value}, {"id": "r1", "name": "fine"}]
    server = write_to_loopback(tmp_path, account_link(), records)
    assert [seen.path for seen in server.seen] == ["/accounts/fine/items"]
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert entry["record"] == records[0]
    assert f"the path parameter 'account' is {value!r}" in entry["reason"]
    assert "would change the request's path; not sent" in entry["reason"]


def test_a_missing_path_parameter_value_is_dead_lettered_with_its_reason(
    tmp_path: Path,
) -> None:
    link = make_link(
        target={
            "path": "/accounts/{account}/items",
            "params": lambda row: {"account": row.updated_at},
            "locations": {"account": ParamStyle("path")},
        }
    )
    records = [{"id": "r0", "name": "a"}, {"id": "r1", "name": "b", "updated_at": 7}]
    server = write_to_loopback(tmp_path, link, records)
    assert [seen.path for seen in server.seen] == ["/accounts/7/items"]
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert entry["record"] == records[0]
    assert entry["reason"] == (
        "ValueError: the path parameter 'account' has no value (the field it is"
        " mapped from is missing or null)"
    )


def test_a_slash_in_a_path_parameter_stays_inside_its_segment(tmp_path: Path) -> None:
    records = [{"id": "r0", "name": "../admin/x"}, {"id": "r1", "name": "a b?c#d"}]
    server = write_to_loopback(tmp_path, account_link(), records)
    assert [seen.path for seen in server.seen] == [
        "/accounts/..%2Fadmin%2Fx/items",
        "/accounts/a%20b%3Fc%23d/items",
    ]


# --- secrets --------------------------------------------------------------


def test_a_query_api_key_never_reaches_the_checkpoint(tmp_path: Path) -> None:
    records = rows(6)

    def pages(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        # the next link echoes the whole request URL, the key included
        url = httpx.URL(server.url + seen.path)
        start = int(url.params.get("p", "0"))
        following = str(url.copy_merge_params({"p": start + 2}))
        more = start + 2 < len(records)
        body = {
            "data": records[start : start + 2],
            "links": {"next": following if more else None},
        }
        answer(handler, 200, body)

    key = ApiKeyAuth(location="query", name="api_key", key_env="SOURCE_KEY")
    link = make_link("next_url", source={"auth": key})
    target = FakeTarget()
    with Loopback(pages) as server:
        settings = config(tmp_path, source_url=server.url, limit=3)
        run_link(link, settings, target_transport=httpx.MockTransport(target))
        text = (tmp_path / "state.json").read_text()
        assert [form for form in forms(SECRETS["SOURCE_KEY"]) if form in text] == []
        checkpoint = state(tmp_path)["checkpoint"]
        assert checkpoint["position"] == {"url": f"{server.url}/items?p=2"}
        settings = config(
            tmp_path, source_url=server.url
        )  # resume: the key is sent again
        run_link(link, settings, target_transport=httpx.MockTransport(target))
    assert [b["ref"] for b in target.bodies] == [r["id"] for r in records]
    sent = [
        httpx.URL(server.url + seen.path).params.get("api_key") for seen in server.seen
    ]
    assert set(sent) == {SECRETS["SOURCE_KEY"]}


def test_a_fetched_oauth2_token_echoed_by_the_target_is_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok/en-4f9a1c/zz"

    def target(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/oauth/token":
            return answer(handler, 200, {"access_token": token, "expires_in": 3600})
        sent = seen.headers["Authorization"]
        escaped = json.dumps(sent).replace("/", "\\/")  # as PHP's json_encode writes it
        text = f'bad request with {sent}; {{"auth": {escaped}}}'.encode()
        return answer(handler, 400, text, {"Content-Type": "text/plain"})

    auth = ClientCredentialsAuth(
        token_url="/oauth/token",
        client_id_env="CLIENT_ID",
        client_secret_env="CLIENT_SECRET",
    )
    link = make_link(target={"auth": auth})
    with Loopback(target) as server:
        settings = config(tmp_path, target_url=server.url)
        run_link(link, settings, httpx.MockTransport(FakeSource(rows(1))))
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert "bad request with Bearer ***" in entry["reason"]
    assert '"auth": "Bearer ***"' in entry["reason"]
    written = (tmp_path / "dead.jsonl").read_text() + caplog.text
    assert "4f9a1c" not in written


def test_a_huge_oauth2_token_answer_is_refused(tmp_path: Path) -> None:
    def target(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/oauth/token":
            padding = "x" * (2 * 1024 * 1024)
            return answer(handler, 200, {"access_token": "t0k3n", "padding": padding})
        return answer(handler, 201, {"ok": True})

    auth = ClientCredentialsAuth(
        token_url="/oauth/token",
        client_id_env="CLIENT_ID",
        client_secret_env="CLIENT_SECRET",
    )
    link = make_link(target={"auth": auth})
    with Loopback(target) as server, pytest.raises(FatalError, match="larger than"):
        run_link(
            link,
            config(tmp_path, target_url=server.url),
            httpx.MockTransport(FakeSource(rows(1))),
        )


# --- files ----------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read new files, as some servers have."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_state_dead_letter_and_lock_files_are_private(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    dead.write_text("")
    dead.chmod(0o644)  # an older file: made private on the next write
    run(tmp_path, make_link(), FakeSource(rows(2)), FakeTarget([(422, {})]))
    modes = {
        name: stat.S_IMODE((tmp_path / name).stat().st_mode)
        for name in ("state.json", "dead.jsonl", "state.json.lock")
    }
    assert modes == dict.fromkeys(modes, 0o600)


@pytest.mark.parametrize(
    ("planted", "victim_exists"),
    [
        ("dead.jsonl", True),
        ("dead.jsonl", False),
        ("state.json", True),
        ("state.json.lock", True),
        ("state.json.lock", False),
    ],
    ids=["dead-letter", "dead-letter-dangling", "state", "lock", "lock-dangling"],
)
def test_a_symlink_planted_at_a_run_file_is_refused(
    tmp_path: Path, planted: str, victim_exists: bool
) -> None:
    victim = tmp_path / "victim.txt"
    if victim_exists:
        victim.write_text("precious\n")
    (tmp_path / planted).symlink_to(victim)
    with pytest.raises(FatalError, match="symbolic link"):
        run(tmp_path, make_link(), FakeSource(rows(2)), FakeTarget([(422, {})]))
    if victim_exists:
        assert victim.read_text() == "precious\n"
    else:
        assert not victim.exists()
    assert (tmp_path / planted).is_symlink()


def test_the_state_s_temporary_file_is_not_at_a_name_one_can_plant_a_link_at(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    old_name = tmp_path / f".state.json.{os.getpid()}.tmp"
    old_name.symlink_to(victim)
    summary = run(tmp_path, make_link(), FakeSource(rows(2)), FakeTarget())
    assert summary.written == 2
    assert victim.read_text() == "precious\n"
    assert state(tmp_path)["last_run"]["written"] == 2
    assert not (tmp_path / "state.json").is_symlink()
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == sorted(
        [old_name.name, "state.json", "state.json.lock", "victim.txt"]
    )


# --- one run per state file -----------------------------------------------


def test_a_second_run_on_one_state_file_stops_at_once_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = make_link()
    run(tmp_path, link, FakeSource(rows(1)), FakeTarget())  # a state to keep
    writing, release = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        writing.set()
        release.wait(10)
        return httpx.Response(201, json={"ok": True})

    first = threading.Thread(
        target=run, args=(tmp_path, link, FakeSource(rows(3)), slow), daemon=True
    )
    first.start()
    try:
        assert writing.wait(10)
        before = (tmp_path / "state.json").read_bytes()
        argv = [
            "--state",
            str(tmp_path / "state.json"),
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
        ]
        started = time.monotonic()
        with command_line():
            code = main_link(link, argv, "test link")
        elapsed = time.monotonic() - started
        assert (tmp_path / "state.json").read_bytes() == before
    finally:
        release.set()
        first.join(10)
    assert code == 2 and elapsed < 3, f"took {elapsed:.1f}s"
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (
        f"another run of this link holds {tmp_path / 'state.json.lock'} (PID {os.getpid()})"
        in summary["error"]
    )
    assert state(tmp_path)["last_run"]["written"] == 3, "the first run finished"


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from generator.runtime.files import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "state.json")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            with pytest.raises(LockHeld, match=f"PID {holder.pid}"):
                run(tmp_path, make_link(), FakeSource(rows(1)), FakeTarget())
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
    assert (tmp_path / "state.json.lock").read_text() == str(holder.pid), "left behind"
    summary = run(tmp_path, make_link(), FakeSource(rows(1)), FakeTarget())
    assert summary.written == 1


# --- exhaustion -----------------------------------------------------------


def endless_json(
    handler: BaseHTTPRequestHandler, seen: Seen, size: int = 200 * MiB
) -> None:
    """A JSON-looking answer of `size` bytes, made as it is sent."""
    handler.send_response(200 if seen.method == "GET" else 201)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(size))
    handler.end_headers()
    chunk = b'"' + b"x" * (64 * 1024 - 3) + b'",'
    handler.wfile.write(b'{"data": [')
    for _ in range(size // len(chunk)):
        handler.wfile.write(chunk)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """32 MiB of JSON-looking bytes, gzipped to about 32 KiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * MiB
    return b"".join(
        [packer.compress(b'{"data": [')]
        + [packer.compress(block) for _ in range(32)]
        + [packer.flush()]
    )


def peak_memory(action: Any) -> int:
    """The most memory Python held at once while `action()` ran, in bytes."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bounded_run(tmp_path: Path, answer_with: Any, side: str) -> tuple[int, float]:
    """Read from, or write to, a server giving `answer_with`; peak memory and seconds."""
    if side == "source":
        fakes = {"target_transport": httpx.MockTransport(FakeTarget())}
    else:
        fakes = {"source_transport": httpx.MockTransport(FakeSource(rows(1)))}
    errors: list[FatalError] = []
    with Loopback(answer_with) as server:
        settings = config(tmp_path, max_body=MiB, **{f"{side}_url": server.url})

        def action() -> None:
            try:
                run_link(make_link(), settings, **fakes)
            except FatalError as exc:
                errors.append(exc)

        started = time.monotonic()
        peak = peak_memory(action)
        elapsed = time.monotonic() - started
    if side == "source":
        (error,) = errors
        assert "larger than --max-body (1048576 bytes)" in str(error)
    else:
        assert errors == []
        (entry,) = dead_letters(tmp_path / "dead.jsonl")
        assert "larger than --max-body (1048576 bytes)" in entry["reason"]
        assert entry["attempts"] == 1, "the same answer would come again"
    return peak, elapsed


@pytest.mark.parametrize("side", ["source", "target"])
def test_an_answer_larger_than_max_body_is_refused_without_reading_it_all(
    tmp_path: Path, side: str
) -> None:
    peak, elapsed = bounded_run(tmp_path, endless_json, side)
    assert peak < 8 * MiB, f"held {peak / MiB:.0f} MiB of a 200 MiB answer"
    assert elapsed < 5


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_gzip_bomb_is_refused_without_inflating_it_all(
    tmp_path: Path, side: str, gzip_bomb: bytes
) -> None:
    def bomb(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        headers = {"Content-Encoding": "gzip"}
        answer(handler, 200 if seen.method == "GET" else 201, gzip_bomb, headers)

    peak, _ = bounded_run(tmp_path, bomb, side)
    assert peak < 8 * MiB, f"held {peak / MiB:.0f} MiB of a 32 MiB bomb"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_within_max_body_is_read_whole(
    tmp_path: Path, encoding: str
) -> None:
    records = rows(300)
    data = json.dumps({"data": records}).encode()
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    packed = packer.compress(data) + packer.flush()

    def compressed(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        assert seen.headers["Accept-Encoding"] == "gzip, deflate"
        answer(handler, 200, packed, {"Content-Encoding": encoding})

    target = FakeTarget()
    with Loopback(compressed) as server:
        settings = config(tmp_path, source_url=server.url, max_body=len(data))
        run_link(
            make_link("none"), settings, target_transport=httpx.MockTransport(target)
        )
    assert [b["ref"] for b in target.bodies] == [r["id"] for r in records]


def test_an_answer_in_an_encoding_not_asked_for_is_refused(tmp_path: Path) -> None:
    def brotli(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        answer(handler, 200, b"\x0b\x02\x80{}\x03", {"Content-Encoding": "br"})

    with (
        Loopback(brotli) as server,
        pytest.raises(
            httpx.DecodingError, match="Content-Encoding 'br' is not supported"
        ),
    ):
        run_link(make_link(), config(tmp_path, source_url=server.url))


@pytest.mark.slow
def test_a_source_that_sends_a_byte_every_half_second_is_stopped_by_the_timeout(
    tmp_path: Path,
) -> None:
    def trickle(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):  # 50 s at most; stops when the client hangs up
            if server.stopping.wait(0.5):
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()

    with Loopback(trickle) as server:
        settings = config(tmp_path, source_url=server.url, timeout=2, max_retries=0)
        started = time.monotonic()
        with pytest.raises(FatalError, match="no complete answer within 2s"):
            run_link(
                make_link(),
                settings,
                target_transport=httpx.MockTransport(FakeTarget()),
            )
        elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_endless_empty_pages_stop_with_a_fatal_error(tmp_path: Path) -> None:
    def empty(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) > 1000:  # keep the test bounded whatever the runtime does
            return httpx.Response(500)
        return httpx.Response(
            200, json={"data": [], "next_cursor": f"c{len(requests)}"}
        )

    requests: list[httpx.Request] = []
    with pytest.raises(FatalError, match="100 empty pages in a row"):
        run(tmp_path, make_link(), empty, FakeTarget())
    assert len(requests) == 100


# --- redirects ------------------------------------------------------------


def test_a_redirect_is_fatal_on_a_read_and_dead_letters_a_write(tmp_path: Path) -> None:
    def redirect(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        answer(handler, 302, {}, {"Location": f"{elsewhere.url}/steal"})

    with (
        Loopback(lambda h, s: answer(h, 200, {"data": []})) as elsewhere,
        Loopback(redirect) as server,
    ):
        with pytest.raises(
            FatalError, match=r"HTTP 302 \(a redirect, which is not followed\)"
        ):
            run_link(make_link(), config(tmp_path, source_url=server.url))
        settings = config(tmp_path, target_url=server.url)
        summary = run_link(
            make_link(), settings, httpx.MockTransport(FakeSource(rows(1)))
        )
    assert (summary.written, summary.failed) == (0, 1)
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert entry["status"] == 302
    assert elsewhere.seen == [], "nothing follows the redirect"


# --- signals --------------------------------------------------------------


def test_a_stop_inside_a_held_block_waits_for_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stops = StopSignals()
    steps = []
    with pytest.raises(KeyboardInterrupt), stops.held():
        stops.stop(signal.SIGTERM, None)
        steps.append("the block went on")
        stops.stop(signal.SIGTERM, None)  # a second signal: only a word
    assert steps == ["the block went on"]
    assert "already stopping; please wait" in caplog.text


INVOICE = {
    "number": "2024-0017",
    "customer": {
        "id": "cus_0042",
        "name": "Grace Hopper",
        "email": "grace@example.com",
    },
    "amount_cents": 125000,
    "currency": "EUR",
    "status": "paid",
    "issued_on": "2024-02-01",
    "lines": [{"description": "Consulting", "quantity": 10, "unit_price_cents": 12500}],
}


@pytest.mark.slow
def test_a_second_sigterm_does_not_break_the_clean_stop(tmp_path: Path) -> None:
    """GNU timeout sends SIGTERM twice; the second comes while writes are finishing."""

    def invoices(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        page = int(httpx.URL(seen.path).params.get("page", "1"))
        body = [{**INVOICE, "id": f"inv_{page}_{i}"} for i in range(20)]
        answer(handler, 200, {"invoices": body})

    def slow_writes(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        writing.set()
        target.stopping.wait(1.5)
        answer(handler, 201, {"ok": True})

    writing = threading.Event()
    script = ROOT / "generated" / "invoices_to_crm" / "invoices_to_crm.py"
    env = {
        **os.environ,
        "CRM_TOKEN": "t" * 8,
        "LEDGER_USERNAME": "u" * 8,
        "LEDGER_PASSWORD": "p" * 8,
    }
    with Loopback(invoices) as source, Loopback(slow_writes) as target:
        argv = [
            "--source-url",
            source.url,
            "--target-url",
            target.url,
            "--state",
            str(tmp_path / "state.json"),
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
        ]
        child = subprocess.Popen(
            [sys.executable, str(script), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert writing.wait(20), "the script never wrote"
            child.send_signal(signal.SIGTERM)
            time.sleep(0.3)  # the first stop waits for the writes in flight
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=30)
        finally:
            child.kill()
    assert child.returncode == 2, err
    assert "Traceback" not in err
    assert "already stopping" in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["exit_code"] == 2 and summary["error"].startswith("interrupted")
    # no write ran on past the stop: none cut off by the closed client
    assert dead_letters(tmp_path / "dead.jsonl") == []
    assert state(tmp_path)["last_run"]["exit_code"] == 2, "not overwritten"
