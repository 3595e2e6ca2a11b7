"""The runtime's part of the fleet: the run history in the state file and --notify."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from generator.runtime.core import Config, FatalError, Summary
from generator.runtime.run import Link, Source, Target, main_link, run_link

TOKEN = "T0001/B0002/s3cr3t-w3bh00k-t0k3n"


class Item(BaseModel):
    id: int


def make_link(required_env: tuple[str, ...] = ()) -> Link:
    return Link(
        name="items",
        source=Source(method="GET", path="/items", default_url="http://source.test"),
        target=Target(method="POST", path="/items", default_url="http://target.test"),
        record_model=Item,
        transform=lambda record: record,
        required_env=required_env,
    )


def test_each_run_is_appended_to_the_history_and_it_keeps_the_last_100(
    tmp_path: Path,
) -> None:
    state = tmp_path / "items.state.json"
    old = [
        {"link": "items", "finished": f"run {n}", "exit_code": 0} for n in range(100)
    ]
    state.write_text(json.dumps({"link": "items", "history": old}), encoding="utf-8")
    source = httpx.MockTransport(
        lambda r: httpx.Response(200, json=[{"id": 1}, {"id": 2}])
    )
    target = httpx.MockTransport(
        lambda r: httpx.Response(201 if json.loads(r.content)["id"] == 1 else 400)
    )
    config = Config("http://source.test", "http://target.test", state_path=state)

    summary = run_link(make_link(), config, source, target)

    saved = json.loads(state.read_text(encoding="utf-8"))
    assert summary.exit_code == 1
    assert len(saved["history"]) == 100
    assert saved["history"][0]["finished"] == "run 1"  # the oldest one went
    assert saved["history"][-1] == saved["last_run"]
    assert saved["last_run"]["written"] == 1 and saved["last_run"]["failed"] == 1


def test_a_fatal_run_joins_the_history_with_its_error(tmp_path: Path) -> None:
    state = tmp_path / "items.state.json"
    checkpoint = {"position": {"cursor": "c2"}, "done": 3}
    state.write_text(
        json.dumps({"link": "items", "checkpoint": checkpoint, "history": "damaged"}),
        encoding="utf-8",
    )

    def stopped(config: Config, summary: Summary) -> Summary:
        summary.read = 3
        raise FatalError("the source answered HTTP 401")

    code = main_link(make_link(), ["--state", str(state)], "", stopped)

    saved = json.loads(state.read_text(encoding="utf-8"))
    assert code == 2
    assert saved["checkpoint"] == checkpoint
    assert [run["exit_code"] for run in saved["history"]] == [2]
    assert saved["history"][0]["error"] == "the source answered HTTP 401"
    assert saved["last_run"] == saved["history"][0]


class Webhook:
    """A chat tool's webhook on loopback: records what arrives, answers as told."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.delay = 0.0
        self.location = ""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append((self.path, dict(self.headers), body))
                time.sleep(hook.delay)
                self.send_response(hook.status)
                if hook.location:
                    self.send_header("Location", hook.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{TOKEN}"

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.received]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def ending(exit_code: int) -> Callable[[Config, Summary], Summary]:
    """A run that ends with `exit_code`: 1 dead-letters a record, 2 is a fatal error."""

    def run(config: Config, summary: Summary) -> Summary:
        summary.read, summary.written = 2, 2 - min(exit_code, 1)
        summary.failed = 2 - summary.written
        if exit_code == 2:
            raise FatalError("the source answered HTTP 503 after 6 attempts")
        summary.exit_code = exit_code
        return summary

    return run


def last_json_line(out: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_run_with_dead_letters_posts_its_summary_with_a_text_line(
    webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main_link(make_link(), ["--notify", webhook.url], "", ending(1))

    assert code == 1
    [(path, headers, _)] = webhook.received
    assert path == f"/services/{TOKEN}"
    assert headers["Content-Type"] == "application/json"
    [posted] = webhook.payloads()
    summary = last_json_line(capsys.readouterr().out)
    assert "text" not in summary
    assert posted == {"text": posted["text"], **summary}
    assert "\n" not in posted["text"]
    assert "items" in posted["text"] and "exit 1" in posted["text"]
    assert "failed 1" in posted["text"]


@pytest.mark.slow
def test_a_fatal_run_notifies_the_url_from_the_environment(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PGEN_NOTIFY_URL", webhook.url)

    assert main_link(make_link(), [], "", ending(2)) == 2

    [posted] = webhook.payloads()
    assert posted["exit_code"] == 2
    assert posted["error"] == "the source answered HTTP 503 after 6 attempts"
    assert "exit 2" in posted["text"] and "HTTP 503" in posted["text"]


@pytest.mark.slow
def test_missing_environment_is_a_failure_worth_a_notice(webhook: Webhook) -> None:
    link = make_link(required_env=("ITEMS_TOKEN_UNSET",))

    assert main_link(link, ["--notify", webhook.url], "", ending(0)) == 2

    [posted] = webhook.payloads()
    assert "ITEMS_TOKEN_UNSET" in posted["text"]


@pytest.mark.slow
def test_a_clean_run_posts_nothing(webhook: Webhook) -> None:
    assert main_link(make_link(), ["--notify", webhook.url], "", ending(0)) == 0
    assert webhook.received == []


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_refused_notice_is_logged_without_the_url_and_keeps_the_exit_code(
    webhook: Webhook,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    log_format: str,
) -> None:
    webhook.status = 500
    state = tmp_path / "items.state.json"
    argv = ["--notify", webhook.url, "--state", str(state), "-v"]

    code = main_link(make_link(), [*argv, "--log-format", log_format], "", ending(2))

    err = capsys.readouterr().err
    assert code == 2
    assert len(webhook.received) == 1
    assert f"could not notify http://127.0.0.1:{webhook.server.server_port}" in err
    assert "HTTP 500" in err
    assert "s3cr3t-w3bh00k-t0k3n" not in err
    assert "s3cr3t-w3bh00k-t0k3n" not in state.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_redirect_is_not_followed(
    webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    webhook.status, webhook.location = 307, "/elsewhere"

    assert main_link(make_link(), ["--notify", webhook.url], "", ending(1)) == 1

    assert [path for path, _, _ in webhook.received] == [f"/services/{TOKEN}"]
    assert "a redirect, which is not followed" in capsys.readouterr().err


@pytest.mark.slow
def test_a_slow_webhook_is_given_up_after_the_timeout(
    webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    webhook.delay = 5.0
    started = time.monotonic()

    code = main_link(
        make_link(), ["--notify", webhook.url, "--timeout", "0.5"], "", ending(1)
    )

    assert code == 1
    assert time.monotonic() - started < 3.0
    assert "could not notify" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["ftp://hooks.test/x", "not a url", "http://[::1"])
def test_a_notify_url_that_is_no_http_url_is_logged(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_link(make_link(), ["--notify", url], "", ending(1)) == 1
    assert (
        "--notify (or P2PGEN_NOTIFY_URL) is no http(s) URL" in capsys.readouterr().err
    )


def test_nothing_listens_there_the_exit_code_stays(
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_port
    closed.server_close()

    url = f"http://127.0.0.1:{port}/services/{TOKEN}"
    assert main_link(make_link(), ["--notify", url], "", ending(2)) == 2

    err = capsys.readouterr().err
    assert f"could not notify http://127.0.0.1:{port}: ConnectError" in err
    assert "s3cr3t" not in err
