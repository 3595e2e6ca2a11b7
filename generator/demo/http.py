"""HTTP plumbing of the demo APIs: a base `Api`, injected faults, the handler.

`apis` builds the seven example APIs on this base. An `Api` owns a SQLite
store (`store`), its routes, its credential check and its error format;
`Faults` makes requests fail on purpose; `Server` and `Handler` put an `Api` on
a real loopback socket, keep-alive and all, so that a dropped connection is a
real surprise to the client's pool.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from generator.demo.store import (
    BadParam,
    Json,
    Request,
    Response,
    Store,
    Validate,
    corrupt,
    load_spec,
)

FAULT_KINDS = ("503", "429", "drop", "lost")


@dataclass
class Faults:
    """Per-request misbehaviour, drawn from a seeded generator for repeatability.

    Rates are probabilities per request (reads and writes alike, the token
    endpoint included). `lost_response` only applies to writes: the write is
    stored, then the connection is closed before the answer. `invalid_records`
    breaks that many seeded records of every source API so that they no longer
    match their own schema.
    """

    seed: int = 0
    error_503: float = 0.0
    rate_limit_429: float = 0.0
    drop_connection: float = 0.0
    lost_response: float = 0.0
    invalid_records: int = 0
    retry_after: int = 1
    injected: Counter[str] = field(default_factory=Counter, init=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self, *, write: bool) -> str | None:
        """Pick the fault for one request, or None to behave."""
        with self._lock:
            roll = self._rng.random()
            edge = 0.0
            for kind, rate in (
                ("503", self.error_503),
                ("429", self.rate_limit_429),
                ("drop", self.drop_connection),
                ("lost", self.lost_response if write else 0.0),
            ):
                edge += rate
                if roll < edge:
                    self.injected[kind] += 1
                    return kind
        return None


Route = Callable[[Request, re.Match[str]], Response]


class Reject(Exception):
    """Stop handling a request and answer with this response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class Api:
    """One demo API: its store, credentials, routes and error format."""

    name: ClassVar[str]
    spec_file: ClassVar[str]
    collections: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        specs_dir: Path,
        creds: dict[str, str],
        faults: Faults | None,
        token_ttl: float,
        seed_count: int | None = None,
    ):
        self.seed_count = seed_count
        self.spec = load_spec(specs_dir / self.spec_file)
        self.creds = creds
        self.faults = faults
        self.token_ttl = token_ttl
        self.store = Store()
        self.requests = 0
        self.lock = threading.Lock()
        self.base_url = ""
        self.invalid_ids: list[str] = []
        self.routes: list[tuple[str, re.Pattern[str], Route, bool]] = []
        self.setup()

    def setup(self) -> None:
        """Seed data and register routes."""

    def n(self, default: int) -> int:
        """How many source records to seed: `seed_count` if given, else `default`."""
        return default if self.seed_count is None else self.seed_count

    def seed(self, collection: str, records: list[Json]) -> None:
        """Store source records, breaking some when faults ask for it."""
        if self.faults and self.faults.invalid_records:
            rng = random.Random(f"{self.faults.seed}:{collection}")
            self.invalid_ids = corrupt(
                collection, records, self.faults.invalid_records, rng
            )
        for record in records:
            self.store.add(collection, record)

    def route(
        self, method: str, pattern: str, handler: Route, *, public: bool = False
    ) -> None:
        """Register a handler for a method and a full-match path pattern."""
        self.routes.append((method, re.compile(pattern), handler, public))

    def authorised(self, req: Request) -> bool:
        """Check the credentials the spec's security scheme asks for."""
        return False

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        """Answer in this API's own error format."""
        return Response(
            status,
            {
                "code": error_code(status),
                "message": message,
                "details": [{"problem": d} for d in details],
            },
        )

    def parse(self, req: Request, validate: Validate, status: int) -> Json:
        """Return the JSON body if it matches the spec, else answer with `status`."""
        try:
            body = req.json()
        except ValueError:
            raise Reject(self.error(400, "the body is not valid JSON")) from None
        problems = validate(body)
        if problems:
            message = "the body does not match the schema"
            raise Reject(self.error(status, message, problems))
        assert isinstance(body, dict)  # every request schema here is an object
        return body

    def dispatch(self, req: Request) -> Response:
        """Route a request, after the auth check every operation needs."""
        allowed = False
        for method, pattern, handler, public in self.routes:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            allowed = True
            if method != req.method:
                continue
            if not public and not self.authorised(req):
                return self.error(401, "missing or invalid credentials")
            try:
                return handler(req, match)
            except BadParam as exc:
                return self.error(400, str(exc))
            except Reject as exc:
                return exc.response
        return self.error(
            405 if allowed else 404,
            "method not allowed" if allowed else "no such resource",
        )

    def write(self, req: Request, apply: Callable[[], Response]) -> Response:
        """Apply a write once per `Idempotency-Key`; replays get the first answer."""
        key = req.headers.get("Idempotency-Key")
        with self.store.locked():
            if key:
                seen = self.store.remembered(f"{req.path}\n{key}")
                if seen is not None:
                    return Response(seen[0], seen[1], {"Idempotent-Replayed": "true"})
            response = apply()
            # Only successes are remembered, so a corrected record can be resent.
            if key and response.status < 300 and response.body is not None:
                self.store.remember(
                    f"{req.path}\n{key}", response.status, response.body
                )
            return response


def error_code(status: int) -> str:
    """The short machine-readable code the demo APIs put in error bodies."""
    return {
        400: "invalid_request",
        401: "unauthorized",
        404: "not_found",
        409: "conflict",
        422: "invalid_body",
        429: "rate_limited",
        503: "unavailable",
    }.get(status, "error")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    api: Api


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, so a dropped connection is a real
    # surprise to the client's pool, as it is in production.
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's
        # algorithm and delayed ACKs add 40 ms to many responses.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the generated scripts' own logs are what the demo shows."""

    def serve(self) -> None:
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        req = Request(
            self.command, url.path, dict(parse_qsl(url.query)), self.headers, raw
        )
        with api.lock:
            api.requests += 1
        fault = api.faults.draw(write=self.command != "GET") if api.faults else None
        if fault == "drop":
            return self.drop()
        if fault == "503":
            return self.send(api.error(503, "temporarily unavailable, try again"))
        if fault == "429":
            answer = api.error(429, "too many requests")
            assert api.faults is not None
            answer.headers["Retry-After"] = str(api.faults.retry_after)
            return self.send(answer)
        try:
            response = api.dispatch(req)
        except Exception as exc:  # a demo server bug must still answer
            response = api.error(500, f"internal error: {type(exc).__name__}")
        if fault == "lost":
            return self.drop()
        return self.send(response)

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        headers = {"Content-Type": "application/json", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
