"""Webhook links: signed deliveries received, journaled, then written to the target."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import sqlite3
import threading
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn

from generator.runtime.core import (
    SECRETS,
    Config,
    FatalError,
    Summary,
    _brief,
    _now,
    log,
)
from generator.runtime.files import DeadLetter, RunLock, open_private
from generator.runtime.mapping import _get
from generator.runtime.run import (
    STOP_SIGNALS,
    Link,
    Pipeline,
    _finish,
    _save_last_run,
    _unstarted,
    api_client,
    argument_parser,
    command_setup,
    guarded_run,
    missing_env,
    run_link,
)

MAX_DELIVERY = 1024 * 1024  # webhook links' --max-body default: the largest delivery
SHUTDOWN_GRACE = 10  # seconds deliveries in progress get to finish on a stop
STANDARD_WEBHOOKS_PREFIX = "whsec_"

AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """How deliveries are checked, and where the record and its event id are.

    scheme: standard-webhooks | stripe | hmac-sha256; the secret comes from
    the environment variable `secret_env`. `header` names hmac-sha256's
    header; `tolerance` is how many seconds a signed timestamp may be off.
    """

    scheme: str
    secret_env: str
    header: str = ""
    tolerance: int = 300
    records: str = ""  # dotted path of the record in the event ("": the event)
    event_id: str = ""  # dotted path of the event's id ("": the webhook-id header)


class Refused(Exception):
    """A delivery answered with a 4xx status and a reason, and not journaled."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# --- signatures -----------------------------------------------------------


def signing_key(webhook: Webhook, secret: str) -> bytes:
    """The HMAC key: Standard Webhooks' secret is base64 after `whsec_`;
    Stripe's and plain HMAC's are used as written (UTF-8)."""
    if webhook.scheme != "standard-webhooks":
        return secret.encode()
    text = secret.removeprefix(STANDARD_WEBHOOKS_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise FatalError(
            f"{webhook.secret_env} is not a Standard Webhooks secret"
            f" ({STANDARD_WEBHOOKS_PREFIX} followed by base64); copy it as the"
            " sender shows it"
        )
    return key


def verify(
    webhook: Webhook, key: bytes, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    """Refuse (401) a delivery not signed with `key` as its scheme says.

    `headers` have lower-case names. Signatures are compared in constant
    time; any one of several signatures may match.
    """
    if webhook.scheme == "standard-webhooks":
        # webhook-signature: space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>"
        event_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        given = headers.get("webhook-signature", "")
        if not (event_id and stamp and given):
            raise Refused(
                401, "missing webhook-id, webhook-timestamp or webhook-signature"
            )
        _fresh(webhook, stamp, now)
        expected = hmac.new(
            key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256
        ).digest()
        candidates = [
            _base64(signature)
            for version, _, signature in (s.partition(",") for s in given.split())
            if version == "v1"
        ]
    elif webhook.scheme == "stripe":
        # Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of t.body>[,v1=...]
        pairs = [
            item.partition("=")
            for item in headers.get("stripe-signature", "").split(",")
        ]
        stamps = [value.strip() for name, _, value in pairs if name.strip() == "t"]
        if len(stamps) != 1:
            raise Refused(401, "missing or malformed Stripe-Signature header")
        _fresh(webhook, stamps[0], now)
        expected = hmac.new(
            key, f"{stamps[0]}.".encode() + body, hashlib.sha256
        ).digest()
        candidates = [
            _hex(value.strip()) for name, _, value in pairs if name.strip() == "v1"
        ]
    else:
        # the header holds the hex HMAC-SHA256 of the body, maybe after "sha256="
        given = headers.get(webhook.header.lower(), "")
        expected = hmac.new(key, body, hashlib.sha256).digest()
        candidates = [
            _hex(item.removeprefix("sha256="))
            for item in given.replace(",", " ").split()
        ]
    if not any(hmac.compare_digest(expected, c) for c in candidates if c):
        raise Refused(401, "no valid signature")


def _fresh(webhook: Webhook, stamp: str, now: float) -> None:
    """Refuse a timestamp that is not whole seconds, or further than tolerance from now."""
    if not stamp.isdigit():
        raise Refused(401, "the signature's timestamp is not a Unix time")
    skew = int(stamp) - now
    if skew < -webhook.tolerance:
        raise Refused(401, "the signature's timestamp is too old (a replay?)")
    if skew > webhook.tolerance:
        raise Refused(401, "the signature's timestamp is in the future")


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


# --- the journal ----------------------------------------------------------


class Journal:
    """The durable queue of received events: SQLite in WAL mode.

    An event is added (and so answered 2xx) once, by its event id, on a
    connection with synchronous=FULL: it is on disk before its answer. Its
    body is dropped once it is done, its id kept to recognise a re-delivery;
    that mark is written with synchronous=NORMAL (a mark lost to a power cut
    only means the event is written again, under the same idempotency key).
    Events not done when the process stopped or was killed are done after a
    restart.
    """

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " event_id TEXT NOT NULL UNIQUE, received TEXT NOT NULL, body BLOB,"
        " done TEXT);"
        " CREATE INDEX IF NOT EXISTS pending ON events (seq) WHERE done IS NULL"
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            open_private(path, "r+").close()  # 0600, never through a symlink
        except OSError as exc:
            raise FatalError(
                f"cannot open the journal {path}: {exc.strerror}"
            ) from None
        self.receiving = self._connect("FULL")
        self.receiving.executescript(self.SCHEMA)
        self.working = self._connect("NORMAL")
        self.receiving_lock = threading.Lock()
        self.working_lock = threading.Lock()

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("SELECT count(*) FROM sqlite_master")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise FatalError(
                f"the journal {self.path} is not a journal of received events"
                f" ({exc}); pass another --journal file"
            ) from None
        return db

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.working.close()
        self.receiving.close()

    def add(self, event_id: str, body: bytes) -> bool:
        """Keep an event durably; False when its id was received before."""
        with self.receiving_lock:
            cursor = self.receiving.execute(
                "INSERT OR IGNORE INTO events (event_id, received, body) VALUES (?, ?, ?)",
                (event_id, _now(), body),
            )
        return cursor.rowcount == 1

    def pending(self, limit: int, busy: Iterable[int]) -> list[tuple[int, bytes]]:
        """Up to `limit` events not done, oldest first, leaving out those `busy`."""
        taken = list(busy)
        marks = ",".join("?" * len(taken))
        with self.working_lock:
            rows = self.working.execute(
                "SELECT seq, body FROM events WHERE done IS NULL"
                + (f" AND seq NOT IN ({marks})" if taken else "")
                + " ORDER BY seq LIMIT ?",
                (*taken, limit),
            ).fetchall()
        return [(int(seq), bytes(body)) for seq, body in rows]

    def finish(self, seq: int) -> None:
        """An event was written or dead-lettered: keep only its id."""
        with self.working_lock:
            self.working.execute(
                "UPDATE events SET done = ?, body = NULL WHERE seq = ?", (_now(), seq)
            )


# --- the receiver ---------------------------------------------------------


class Receiver:
    """The ASGI app: POST at any path is a delivery; GET /healthz answers 200.

    A delivery is read to at most `max_body` bytes (413), its signature
    checked over the raw bytes (401) before it is parsed (400), and it is
    answered 2xx only once it is in the journal.
    """

    def __init__(
        self,
        webhook: Webhook,
        key: bytes,
        journal: Journal,
        max_body: int,
        worker: Worker,
    ) -> None:
        self.webhook = webhook
        self.key = key
        self.journal = journal
        self.max_body = max_body
        self.worker = worker  # woken by each new event

    async def __call__(self, scope: AsgiMessage, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] in ("GET", "HEAD") and scope["path"] == "/healthz":
            await self._answer(send, 200, {"ok": True})
            return
        if scope["method"] != "POST":
            await self._answer(
                send, 405, {"error": "deliveries are POSTed"}, allow="POST"
            )
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        try:
            body = await self._body(headers, receive)
            verify(self.webhook, self.key, headers, body, datetime.now(UTC).timestamp())
            event_id = self._event_id(headers, body)
            new = await asyncio.get_running_loop().run_in_executor(
                None, self.journal.add, event_id, body
            )
        except Refused as exc:
            log.warning("delivery refused (%d): %s", exc.status, exc)
            await self._answer(send, exc.status, {"error": str(exc)})
            return
        if new:
            self.worker.wake.set()
        await self._answer(send, 200, {"received": event_id, "duplicate": not new})

    @staticmethod
    async def _answer(send: Send, status: int, body: Any, allow: str = "") -> None:
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json")]
        if allow:
            headers.append((b"allow", allow.encode()))
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": data})

    async def _body(self, headers: Mapping[str, str], receive: Receive) -> bytes:
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            raise Refused(413, f"the delivery is larger than {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(400, "the sender went away before the body ended")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise Refused(413, f"the delivery is larger than {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        try:
            event = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError included
            raise Refused(400, "the delivery is not JSON") from None
        if not self.webhook.event_id:
            if not headers.get("webhook-id"):
                raise Refused(400, "the delivery has no webhook-id header")
            return headers["webhook-id"]
        value = _get(event, self.webhook.event_id)
        if value is None or isinstance(value, dict | list) or value == "":
            raise Refused(400, f"the event has no id at {self.webhook.event_id!r}")
        return str(value)


# --- the worker -----------------------------------------------------------


class Worker:
    """Drains the journal, `concurrency` events at a time, through the link's Pipeline.

    An event is marked done once its record was written or dead-lettered; a
    FatalError leaves it in the journal and stops the worker (`fatal`).
    """

    def __init__(
        self, webhook: Webhook, journal: Journal, pipeline: Pipeline, concurrency: int
    ) -> None:
        self.webhook = webhook
        self.journal = journal
        self.pipeline = pipeline
        self.concurrency = max(concurrency, 1)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.fatal: Exception | None = None
        self.thread = threading.Thread(target=self.run, name="worker", daemon=True)

    def stop(self) -> None:
        """Take no more events; the thread ends once those in progress are done."""
        self.stopping.set()
        self.wake.set()
        self.thread.join()

    def run(self) -> None:
        busy: dict[int, Future[None]] = {}
        with ThreadPoolExecutor(self.concurrency) as pool:
            while True:
                self.wake.clear()
                for seq, future in list(busy.items()):
                    if future.done():
                        del busy[seq]
                        error = future.exception()
                        if isinstance(error, Exception) and self.fatal is None:
                            self.fatal = error
                if self.stopping.is_set() or self.fatal is not None:
                    break
                room = self.concurrency - len(busy)
                events = self.journal.pending(room, busy) if room else []
                for seq, body in events:
                    busy[seq] = pool.submit(self.handle, seq, body)
                    busy[seq].add_done_callback(lambda _: self.wake.set())
                if not events:
                    self.wake.wait(1.0)

    def handle(self, seq: int, body: bytes) -> None:
        """One event: its record transformed and written, or dead-lettered."""
        event = json.loads(body)
        raw = _get(event, self.webhook.records) if self.webhook.records else event
        self.pipeline.summary.count("read")
        prepared = self.pipeline.prepare(seq, raw)
        if prepared is not None:
            record, payload = prepared
            self.pipeline.deliver(seq, record, payload, raw)
        self.journal.finish(seq)


# --- serving --------------------------------------------------------------


def listen(address: str) -> socket.socket:
    """A listening socket for --serve HOST:PORT (PORT 0: any free port)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise FatalError(
            f"--serve {address!r}: give HOST:PORT, e.g. 0.0.0.0:8080 or 127.0.0.1:0"
        )
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    except OSError as exc:
        raise FatalError(f"cannot listen on {address}: {exc.strerror}") from None
    sock.listen(128)
    return sock


@contextmanager
def receiving(
    link: Link,
    webhook: Webhook,
    config: Config,
    journal_path: Path,
    summary: Summary,
    target_transport: httpx.BaseTransport | None = None,
) -> Iterator[Receiver]:
    """The ASGI app that --serve serves, with its journal and worker, for the block.

    One receiver per journal (its lock). At the end of the block the events in
    progress are finished; a FatalError of the target is raised then, and the
    events not done stay in the journal for the next start.
    """
    summary.link = link.name
    summary.started = _now()
    for noisy in ("httpx", "httpcore", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    secret = os.environ.get(webhook.secret_env, "")
    SECRETS.add(secret)
    link.target.auth.register_secrets()
    key = signing_key(webhook, secret)
    with (
        RunLock(journal_path),
        Journal(journal_path) as journal,
        api_client(
            config.target_url, link.target.auth, target_transport, config
        ) as target,
    ):
        dead = DeadLetter(config.dead_letter_path, link.name)
        pipeline = Pipeline(link, config, target, summary, dead)
        worker = Worker(webhook, journal, pipeline, config.concurrency)
        worker.thread.start()
        try:
            yield Receiver(webhook, key, journal, config.max_body, worker)
        finally:
            worker.stop()
    if isinstance(worker.fatal, FatalError):
        raise worker.fatal
    if worker.fatal is not None:  # not one of a record's failures, which dead-letter it
        raise FatalError(f"processing the journal failed: {_brief(worker.fatal)}")
    summary.finished = _now()
    summary.exit_code = 1 if summary.failed else 0


def serve_link(
    link: Link,
    webhook: Webhook,
    config: Config,
    address: str,
    journal_path: Path,
    summary: Summary,
) -> Summary:
    """Receive deliveries on `address` until SIGTERM or SIGINT, writing each
    event's record to the target; then finish the writes in progress.
    """
    stop = threading.Event()
    with receiving(link, webhook, config, journal_path, summary) as app:
        sock = listen(address)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=SHUTDOWN_GRACE,
            )
        )
        previous = {
            number: signal.signal(number, lambda *_: stop.set())
            for number in (signal.SIGTERM, signal.SIGINT)
        }
        serving = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="receiver", daemon=True
        )
        try:
            serving.start()
            host, port = sock.getsockname()[:2]
            log.info(
                "receiving deliveries on http://%s:%d/ (journal %s); SIGTERM stops",
                host,
                port,
                journal_path,
            )
            while not stop.wait(0.2):
                if app.worker.fatal is not None or not serving.is_alive():
                    break
        finally:
            server.should_exit = True
            serving.join()
            sock.close()
            for number, handler in previous.items():
                signal.signal(number, handler)
        if not stop.is_set() and app.worker.fatal is None:
            raise FatalError("the server stopped by itself; see the log above")
    if config.state_path is not None:
        _save_last_run(config.state_path, summary.as_dict())
    if link.after_run is not None:
        link.after_run(summary)
    return summary


def webhook_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    """A webhook link's command line: the common flags, --serve and --journal."""
    parser = argument_parser(description, max_body=MAX_DELIVERY)
    add = parser.add_argument
    add(
        "--serve",
        metavar="HOST:PORT",
        help="receive deliveries here (POST at any path; GET /healthz answers 200)",
    )
    add(
        "--journal",
        type=Path,
        metavar="PATH",
        help="the durable queue of received events (SQLite); needed with --serve",
    )
    args = parser.parse_args(argv)
    if args.serve and not args.journal:
        parser.error("--serve needs --journal PATH (where received events are kept)")
    if bool(args.serve) == bool(args.replay):
        parser.error("give --serve HOST:PORT to receive deliveries, or --replay FILE")
    if args.serve and (args.dry_run or args.limit is not None):
        parser.error("--dry-run and --limit go with --replay, not --serve")
    return args


def main_webhook(
    link: Link, webhook: Webhook, argv: list[str] | None, description: str
) -> int:
    """A webhook link's command line: serve deliveries, or replay dead letters."""
    args = webhook_args(argv, description)
    config, notify_url = command_setup(link, args)
    problem = missing_env(link)
    if problem:
        return _finish(_unstarted(link, problem), config, notify_url)

    def once(summary: Summary) -> None:
        if args.replay:
            STOP_SIGNALS.install()
            run_link(link, config, summary=summary)
        else:
            serve_link(link, webhook, config, args.serve, args.journal, summary)

    return guarded_run(link, once, config, notify_url, args.verbose)
