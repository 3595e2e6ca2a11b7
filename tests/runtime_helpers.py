"""Shared pieces of the runtime tests: a small link, fake APIs and a loopback server.

The link reads `/items` (records under "data") and writes each record with
POST `/items`; the fake source pages its records in any pagination style.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from generator.runtime import auth, core, http
from generator.runtime.core import Config, Summary
from generator.runtime.pagination import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    NoPagination,
    OffsetPaginator,
    PagePaginator,
    Paginator,
)
from generator.runtime.run import IdempotencyKey, Link, Source, Target, run_link

SOURCE_URL = "http://source.test"
TARGET_URL = "http://target.test"
TOKEN_PATH = "/oauth/token"
SECRETS = {
    "SOURCE_TOKEN": "secret-source-token/+x",
    "SOURCE_KEY": "secret-source-key/+x",
    "TARGET_KEY": "secret-target-key/+x",
    "TARGET_USER": "secret-user@example.com",
    "TARGET_PASSWORD": "secret-pass:w/ord+",
    "CLIENT_ID": "secret-client-id",
    "CLIENT_SECRET": "secret-client/+secret",
}
STYLES = ("none", "cursor", "cursor_last", "offset", "page", "next_url", "link_header")


class Row(BaseModel):
    id: str
    name: str
    updated_at: str | int | None = None


class Body(BaseModel):
    ref: str
    label: str


def transform(row: Row) -> Body:
    if row.name == "unmappable":
        raise ValueError("no label for this row")
    return Body(ref=row.id, label=row.name.upper())


def rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "name": f"row {i}", "updated_at": f"2024-01-01T00:00:{i:02d}Z"}
        for i in range(start, start + count)
    ]


def isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no retry waits, and a fresh set of secrets to redact."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for module in (http, auth):
        monkeypatch.setattr(module, "retry_delay", lambda attempt, response: 0.0)
    monkeypatch.setattr(core.SECRETS, "forms", [])


def paginator(style: str, page_size: int = 2, **options: Any) -> Paginator:
    """The paginator that reads FakeSource(style) pages."""
    if style == "none":
        return NoPagination(**options)
    if style == "cursor":
        return CursorPaginator(param="cursor", next="next_cursor", **options)
    if style == "cursor_last":
        return CursorPaginator(param="after", next_from_last="id", **options)
    if style == "offset":
        return OffsetPaginator(
            param="offset", limit_param="limit", limit=page_size, **options
        )
    if style == "page":
        return PagePaginator(
            param="page", limit_param="per_page", limit=page_size, **options
        )
    if style == "next_url":
        return NextUrlPaginator(next="links.next", **options)
    assert style == "link_header", style
    return LinkHeaderPaginator(**options)


def make_link(
    style: str = "cursor",
    page_size: int = 2,
    source: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    **fields: Any,
) -> Link:
    """The test link; `source`, `target` and `fields` replace the defaults."""
    source_fields: dict[str, Any] = {
        "method": "GET",
        "path": "/items",
        "default_url": SOURCE_URL,
        "records": "data",
        "paginator": paginator(style, page_size),
    }
    target_fields: dict[str, Any] = {
        "method": "POST",
        "path": "/items",
        "default_url": TARGET_URL,
        "idempotency": IdempotencyKey("Idempotency-Key", "id"),
    }
    return Link(
        name="test_link",
        source=Source(**{**source_fields, **(source or {})}),
        target=Target(**{**target_fields, **(target or {})}),
        record_model=Row,
        transform=transform,
        **fields,
    )


class FakeSource:
    """Serves `records` `page_size` at a time, paged in `style` (see paginator())."""

    def __init__(
        self,
        records: list[Any],
        style: str = "cursor",
        page_size: int = 2,
        has_more: bool = False,
    ) -> None:
        self.records = records
        self.style = style
        self.page_size = page_size
        self.has_more = has_more
        self.requests: list[httpx.Request] = []

    def start(self, params: httpx.QueryParams) -> int:
        if self.style == "cursor":
            return int(params.get("cursor", "c0")[1:])
        if self.style == "cursor_last":
            if "after" not in params:
                return 0
            ids = [r.get("id") if isinstance(r, dict) else r for r in self.records]
            return ids.index(params["after"]) + 1
        if self.style == "offset":
            return int(params.get("offset", "0"))
        if self.style == "page":
            return (int(params.get("page", "1")) - 1) * self.page_size
        return int(params.get("p", "0"))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.style == "none":
            start, end = 0, len(self.records)
        else:
            start = self.start(request.url.params)
            end = start + self.page_size
        more = end < len(self.records)
        body: dict[str, Any] = {"data": self.records[start:end]}
        headers = {}
        if self.has_more:
            body["has_more"] = more
        if self.style == "cursor":
            body["next_cursor"] = f"c{end}" if more else None
        elif self.style == "next_url" and more:
            body["links"] = {"next": f"{SOURCE_URL}/items?p={end}"}
        elif self.style == "link_header" and more:
            headers["Link"] = f'<{SOURCE_URL}/items?p={end}>; rel="next"'
        # json.dumps escapes what UTF-8 cannot carry (a lone surrogate), as APIs do
        return httpx.Response(200, content=json.dumps(body).encode(), headers=headers)


class FakeTarget:
    """Accepts writes; `script` lists (status, headers) answers to give first.

    `reply`, when given, answers every write instead. TOKEN_PATH is an OAuth2
    token endpoint that gives token-1, token-2, ... after `token_script`.
    """

    def __init__(
        self,
        script: list[tuple[int, dict[str, str]]] | None = None,
        reply: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.reply = reply
        self.token_script: list[int] = []
        self.tokens = 0
        self.token_requests: list[httpx.Request] = []
        self.requests: list[httpx.Request] = []
        self.authorizations: list[str | None] = []  # as sent, before any retry
        self.bodies: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            self.token_requests.append(request)
            if self.token_script:
                return httpx.Response(self.token_script.pop(0), json={"error": "no"})
            self.tokens += 1
            return httpx.Response(
                200, json={"access_token": f"token-{self.tokens}", "expires_in": 3600}
            )
        self.requests.append(request)
        self.authorizations.append(request.headers.get("Authorization"))
        if self.reply is not None:
            return self.reply(request)
        if self.script:
            status, headers = self.script.pop(0)
            if status >= 300:
                return httpx.Response(status, headers=headers, json={"error": "no"})
        self.bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"ok": True})


def config(tmp_path: Path, **options: Any) -> Config:
    """A run's settings, with a state and a dead-letter file in tmp_path."""
    settings: dict[str, Any] = {
        "source_url": SOURCE_URL,
        "target_url": TARGET_URL,
        "state_path": tmp_path / "state.json",
        "dead_letter_path": tmp_path / "dead.jsonl",
        "concurrency": 1,
    }
    return Config(**{**settings, **options})


def run(
    tmp_path: Path,
    link: Link,
    source: Callable[[httpx.Request], httpx.Response],
    target: Callable[[httpx.Request], httpx.Response],
    **options: Any,
) -> Summary:
    return run_link(
        link,
        config(tmp_path, **options),
        httpx.MockTransport(source),
        httpx.MockTransport(target),
    )


def dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def state(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def with_source(link: Link, **changes: Any) -> Link:
    return dataclasses.replace(link, source=dataclasses.replace(link.source, **changes))


# --- a real HTTP server on loopback ----------------------------------------


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Loopback:
    """A threaded HTTP server on 127.0.0.1; `respond(handler, seen)` answers each request."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, Seen], None]) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                owner.seen.append(seen)
                try:
                    owner.respond(self, seen)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.01,), daemon=True
        )

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def answer(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A whole answer: JSON unless `body` is bytes."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def command_line() -> Iterator[None]:
    """main_link sets up logging and signal handlers: put the test runner's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level
        for number, handler in signals.items():
            signal.signal(number, handler)
