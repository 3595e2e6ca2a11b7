"""The link declaration, the run loop and the script's command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic, sleep
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from generator.runtime.auth import EnvAuth, NoAuth
from generator.runtime.core import (
    MAX_BODY,
    PROGRESS_EVERY,
    SECRETS,
    Config,
    FatalError,
    Summary,
    WriteFailed,
    _brief,
    _json_line,
    _now,
    log,
    redact,
)
from generator.runtime.files import (
    DeadLetter,
    LockHeld,
    RunLock,
    load_state,
    read_replay,
    save_state,
    write_atomically,
)
from generator.runtime.http import _safe_url, _same_origin, _url, send
from generator.runtime.mapping import _get
from generator.runtime.notify import keep_notify_url_secret, notify
from generator.runtime.pagination import NoPagination, Paginator
from generator.runtime.params import (
    BODY_PREFIX,
    ParamStyle,
    json_body,
    place_params,
    put_path,
)
from generator.runtime.write import outcome, write

MAX_EMPTY_PAGES = 100
HISTORY_SIZE = 100
FOLLOW_EVERY = 60.0  # --follow: seconds between runs


@dataclass(frozen=True)
class Incremental:
    """Only records changed since the last complete run: `param` gets the high-water mark."""

    param: str
    field: str


@dataclass(frozen=True)
class IdempotencyKey:
    """A per-record key sent in `header` on every try of a write, from record field `source`."""

    header: str
    source: str


@dataclass(frozen=True, kw_only=True)
class Source:
    method: str
    path: str
    default_url: str
    records: str = (
        ""  # dotted path of the list of records in the answer ("": the answer)
    )
    params: Callable[[], dict[str, Any]] | None = None  # sent with every request
    locations: dict[str, ParamStyle] = field(default_factory=dict)  # by parameter
    body: Callable[[], dict[str, Any]] | None = None  # source.body, with every request
    encode: Callable[[Any], dict[str, Any]] = json_body  # by the body's media type
    paginator: Paginator = field(default_factory=NoPagination)
    incremental: Incremental | None = None
    auth: EnvAuth = field(default_factory=NoAuth)
    filter: Callable[[Any], bool] | None = None  # whether a record is sent (None: all)

    def sends(self, record: BaseModel) -> bool:
        """Whether a validated record passes `filter` (source.filter)."""
        return self.filter is None or self.filter(record)


@dataclass(frozen=True, kw_only=True)
class Target:
    method: str
    path: str
    default_url: str
    params: Callable[[Any], dict[str, Any]] | None = None  # from each record
    locations: dict[str, ParamStyle] = field(default_factory=dict)
    encode: Callable[[Any], dict[str, Any]] = json_body  # by the body's media type
    idempotency: IdempotencyKey | None = None
    auth: EnvAuth = field(default_factory=NoAuth)
    body: bool = True  # False: the operation takes no request body (a DELETE...)
    # write.Match: match-then-write (client, config, record, its write, place_params)
    match: Callable[[httpx.Client, Config, Any, httpx.Request, Any], str] | None = None
    batch: Any = None  # write.Batch: several records per request
    delete: Any = None  # write.Delete: records meeting its `when` are deleted


@dataclass(frozen=True, kw_only=True)
class Link:
    name: str
    source: Source
    target: Target
    record_model: type[BaseModel]
    transform: Callable[[Any], BaseModel]
    before_send: Callable[[Any, Any], BaseModel] | None = None
    after_run: Callable[[Summary], None] | None = None
    required_env: tuple[str, ...] = ()
    # write.Lookups: (source, target, config, record, place_params) -> send it
    lookups: Callable[[httpx.Client, httpx.Client, Config, Any, Any], bool] | None = (
        None
    )


# --- reading the source ---------------------------------------------------


def source_request(
    client: httpx.Client, source: Source, position: dict[str, Any], high_water: Any
) -> httpx.Request:
    """The request for the page at `position` (empty: the first page)."""
    if "url" in position:
        url = _url(client.base_url, position["url"])
        if not _same_origin(url, client.base_url):
            raise FatalError(
                f"the next page {_safe_url(url)} is not on the source API's origin"
                f" {_safe_url(client.base_url)}; not following it (the credentials would go there)"
            )
        return client.build_request(source.method, url)
    values = source.params() if source.params is not None else {}
    if source.incremental is not None and high_water is not None:
        values[source.incremental.param] = high_water
    values.update(source.paginator.request_params(position))
    body = source.body() if source.body is not None else None
    for name in [n for n in values if n.startswith(BODY_PREFIX)]:
        body = body if body is not None else {}
        put_path(body, name[len(BODY_PREFIX) :], values.pop(name))
    try:
        path, params, headers = place_params(source.path, values, source.locations)
    except (ValueError, TypeError) as exc:
        raise FatalError(f"source request: {exc}") from None
    encoded = {} if body is None else source.encode(body)
    headers.update(encoded.pop("headers", {}))
    request = client.build_request(
        source.method, path, params=params, headers=headers, **encoded
    )
    request.read()  # a multipart body streams: read, its bytes tell pages apart
    return request


@dataclass
class Reading:
    """Whether the source was read to its end (not cut short by max_pages)."""

    complete: bool = False


def read_source(
    client: httpx.Client,
    source: Source,
    config: Config,
    start: dict[str, Any],
    high_water: Any,
    reading: Reading,
) -> Iterator[tuple[dict[str, Any], int, Any]]:
    """Yield (page position, index in page, raw record), one page in memory at a time."""
    position = dict(start.get("position") or {})
    skip = int(start.get("done", 0))
    seen: set[str] = set()
    empty = 0
    for _ in range(source.paginator.max_pages):
        request = source_request(client, source, position, high_water)
        key = f"{request.url} {request.content!r}"  # a body position: same URL
        if key in seen:
            reading.complete = True
            return
        seen.add(key)
        try:
            response, _attempts = send(client, request, config)
        except WriteFailed as exc:
            raise FatalError(
                f"reading {_safe_url(request.url)} failed: {exc}"
            ) from None
        if response.status_code >= 300:
            what = (
                " (a redirect, which is not followed)"
                if response.status_code < 400
                else ""
            )
            raise FatalError(
                f"reading {_safe_url(request.url)} failed: HTTP {response.status_code}{what}"
                f" {redact(response.text[:200])}"
            )
        try:
            body = response.json()
        except (ValueError, RecursionError):
            raise FatalError(
                f"{_safe_url(request.url)} did not return readable JSON"
            ) from None
        records = _get(body, source.records) if source.records else body
        if not isinstance(records, list):
            raise FatalError(
                f"{_safe_url(request.url)}: no list of records at {source.records!r}"
            )
        empty = 0 if records else empty + 1
        if empty >= MAX_EMPTY_PAGES:
            raise FatalError(
                f"the source answered {empty} empty pages in a row and still points to a"
                " next one; stopping (its pagination looks broken)"
            )
        for index, raw in enumerate(records):
            if index >= skip:
                yield position, index, raw
        skip = 0
        following = source.paginator.next_position(position, response, body, records)
        if following is None:
            reading.complete = True
            return
        position = following
    log.warning(
        "stopped after %d pages (max_pages); the checkpoint is kept, so the next run"
        " goes on from here",
        source.paginator.max_pages,
    )


# --- checkpoint -----------------------------------------------------------


def _storable(position: dict[str, Any]) -> dict[str, Any]:
    """A position without secrets: a URL loses its user info and secret query values."""
    url = position.get("url")
    if not isinstance(url, str):
        return position
    parsed = httpx.URL(url)
    kept: list[tuple[str, str | int | float | bool | None]] = [
        (k, v) for k, v in parsed.params.multi_items() if not SECRETS.is_secret(v)
    ]
    clean = parsed.copy_with(userinfo=b"", params=httpx.QueryParams(kept))
    return {**position, "url": str(clean)}


class Checkpoint:
    """Advances only past records that, with every record before them, are done.

    The state file is rewritten at most every SAVE_INTERVAL seconds, and by
    flush() at the end: a killed run redoes at most that much work, which the
    idempotency key makes safe to send again.
    """

    SAVE_INTERVAL = 0.1

    def __init__(self, path: Path | None, state: dict[str, Any]) -> None:
        self.path = path
        self.state = state
        self.lock = threading.Lock()
        self.save_lock = threading.Lock()
        self.next_seq = 0
        self.done: set[int] = set()
        self.places: dict[int, dict[str, Any]] = {}
        self.saved_at = 0.0
        self.unsaved = False

    def track(self, seq: int, position: dict[str, Any], index: int) -> None:
        with self.lock:
            self.places[seq] = {"position": position, "done": index + 1}

    def finish(self, seq: int) -> None:
        with self.lock:
            self.done.add(seq)
            place = None
            while self.next_seq in self.done:
                self.done.discard(self.next_seq)
                place = self.places.pop(self.next_seq, place)
                self.next_seq += 1
            if place is None or "replay" in place["position"]:
                return
            self.state["checkpoint"] = {
                **place,
                "position": _storable(place["position"]),
            }
            self.unsaved = True
            if monotonic() - self.saved_at < self.SAVE_INTERVAL:
                return
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the latest checkpoint, if it moved since the last write."""
        if self.path is None:
            return
        with self.save_lock:
            with self.lock:
                if not self.unsaved:
                    return
                text = redact(json.dumps(self.state, indent=2, sort_keys=True))
                self.unsaved = False
                self.saved_at = monotonic()
            write_atomically(self.path, text)


# --- writing the target ---------------------------------------------------


def target_request(
    client: httpx.Client, link: Link, record: Any, body: BaseModel, raw: Any
) -> httpx.Request:
    """The write of one record: its parameters, idempotency key and body."""
    target = link.target
    values = target.params(record) if target.params is not None else {}
    path, params, headers = place_params(target.path, values, target.locations)
    if target.idempotency is not None:
        key = _get(raw, target.idempotency.source)
        if key is None:
            raise ValueError(
                f"idempotency key field {target.idempotency.source!r} is missing"
            )
        value = f"{link.name}:{key}"
        # HTTP headers are ASCII: percent-encode other characters, the same way on every try
        headers[target.idempotency.header] = (
            value if value.isascii() else quote(value, safe=":@")
        )
    payload = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    encoded = target.encode(payload) if target.body else {}
    headers.update(encoded.pop("headers", {}))
    return client.build_request(
        target.method, path, params=params, headers=headers, **encoded
    )


def api_client(
    base_url: str,
    auth: EnvAuth,
    transport: httpx.BaseTransport | None,
    config: Config,
) -> httpx.Client:
    """A client of one side's API: the run's timeout, redirects never followed."""
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        transport=transport,
        timeout=config.timeout,
        follow_redirects=False,
    )


@dataclass
class Pipeline:
    """One record's way from the source to the target: validated, filtered,
    looked up, transformed, then written, or dead-lettered at the stage that failed.

    Polling runs and webhook receivers both send every record through it.
    """

    link: Link
    config: Config
    target: httpx.Client
    summary: Summary
    dead: DeadLetter
    source: httpx.Client | None = None  # for lookups of the source API

    def prepare(self, seq: int, raw: Any) -> tuple[BaseModel, BaseModel] | None:
        """(record, body) to send, or None when the record was skipped or dead-lettered."""
        link, summary, dead = self.link, self.summary, self.dead
        try:
            record = link.record_model.model_validate(raw)
        except ValidationError as exc:
            summary.count("failed")
            dead.add("read", _brief(exc), raw)
            return None
        try:
            if not link.source.sends(record):
                summary.count("skipped")  # never sent, never dead-lettered
                return None
            if link.lookups is not None and not link.lookups(
                self.source or self.target,
                self.target,
                self.config,
                record,
                place_params,
            ):
                summary.count("skipped")  # a lookup found nothing (skip)
                return None
            body = link.transform(record)
            if link.before_send is not None:
                body = link.before_send(record, body)
        except FatalError:
            raise
        except Exception as exc:  # any failure of one record dead-letters it
            log.debug("record %d: transform failed", seq, exc_info=True)
            summary.count("failed")
            dead.add("transform", _brief(exc), raw)
            return None
        return record, body

    def settle(self, raw: Any, done: str | Exception) -> None:
        """Count one record's write, or dead-letter it."""
        if isinstance(done, WriteFailed):
            self.summary.count("failed")
            self.dead.add("write", str(done), raw, done.status, done.attempts)
        elif isinstance(done, Exception):
            self.summary.count("failed")
            self.dead.add("write", _brief(done), raw)
        else:
            self.summary.count(done)
            if done != "skipped":
                self.summary.count("written")

    def deliver(self, seq: int, record: BaseModel, body: BaseModel, raw: Any) -> None:
        """Write one record, or dead-letter it; a FatalError is raised to the caller."""
        link, target, config = self.link, self.target, self.config
        done: str | Exception
        try:
            if link.target.delete is not None and link.target.delete.when(record):
                done = link.target.delete(
                    target, config, record, place_params, link.target.match
                )
            elif link.target.match is not None:
                request = target_request(target, link, record, body, raw)
                done = link.target.match(target, config, record, request, place_params)
            else:
                request = target_request(target, link, record, body, raw)
                response = write(target, request, config)
                done = outcome(request.method, response.status_code)
        except FatalError:
            raise
        except WriteFailed as exc:  # the answer is in it: no traceback to log
            done = exc
        except Exception as exc:  # any failure of one record dead-letters it
            log.debug("record %d: write failed", seq, exc_info=True)
            done = exc
        self.settle(raw, done)

    def deliver_batch(self, items: list[tuple[int, BaseModel, BaseModel, Any]]) -> None:
        """Write records in one request (target.batch); each is settled alone."""
        results: list[str | Exception]
        try:
            results = self.link.target.batch(
                self.target,
                self.config,
                self.link.target,
                [i[1:3] for i in items],
                place_params,
            )
        except FatalError:
            raise
        except WriteFailed as exc:  # refused: each record with the answer
            results = [exc] * len(items)
        except Exception as exc:  # the whole batch failed: each record with it
            log.debug("batch of %d: write failed", len(items), exc_info=True)
            results = [exc] * len(items)
        for (_, _, _, raw), done in zip(items, results, strict=True):
            self.settle(raw, done)


class Progress:
    """Progress on stderr: a live line on a terminal, a log line every few seconds otherwise."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self.started = monotonic()
        self.last = self.started
        self.live = sys.stderr.isatty()

    def tick(self, final: bool = False) -> None:
        now = monotonic()
        if not final and now - self.last < (0.2 if self.live else PROGRESS_EVERY):
            return
        self.last = now
        s = self.summary
        rate = s.read / max(now - self.started, 1e-9)
        done = f"created {s.created}, updated {s.updated}, deleted {s.deleted}"
        text = (
            f"read {s.read}, written {s.written} ({done}), failed {s.failed}"
            f" ({rate:.0f} records/s)"
        )
        if self.live:
            sys.stderr.write("\r" + text + ("\n" if final else ""))
            sys.stderr.flush()
        else:
            log.info(text)


# --- the run --------------------------------------------------------------


def _later(a: Any, b: Any) -> bool:
    """Whether high-water value a is after b: as numbers, as instants, else as text."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a > b
    when_a, when_b = _instant(a), _instant(b)
    if when_a is not None and when_b is not None:
        return when_a > when_b
    return str(a) > str(b)


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time as an aware datetime (UTC when no offset), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _same(a: Any, b: Any) -> bool:
    """Equality by `_later`'s rules: numbers as numbers, instants as instants."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    when_a, when_b = _instant(a), _instant(b)
    if when_a is not None and when_b is not None:
        return when_a == when_b
    return bool(a == b)


def _holds(value: Any, op: str, operand: Any) -> bool:
    """Whether a record's value meets one source.filter condition.

    A missing (or null) value meets only `ne` and `exists: false`.
    """
    if op == "exists":
        return (value is not None) is operand
    if value is None:
        return op == "ne"
    if op in ("in", "not_in"):
        return any(_same(value, item) for item in operand) is (op == "in")
    if op in ("eq", "ne"):
        return _same(value, operand) is (op == "eq")
    if op in ("gte", "lte") and _same(value, operand):
        return True
    return _later(value, operand) if op in ("gt", "gte") else _later(operand, value)


def run_link(
    link: Link,
    config: Config,
    source_transport: httpx.BaseTransport | None = None,
    target_transport: httpx.BaseTransport | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Read, transform and write every record; return the counts.

    Pass `summary` to keep the counts so far when a fatal error stops the run.
    """
    summary = summary if summary is not None else Summary()
    summary.link = link.name
    # httpx logs every URL at INFO, and a URL can carry an API key in its query.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    summary.started = _now()
    for auth in (link.source.auth, link.target.auth):
        auth.register_secrets()
        auth.keep_tokens(config.token_store)
    with RunLock(None if config.dry_run else config.state_path):
        _run_locked(link, config, source_transport, target_transport, summary)
    if link.after_run is not None:
        link.after_run(summary)
    return summary


def _run_locked(
    link: Link,
    config: Config,
    source_transport: httpx.BaseTransport | None,
    target_transport: httpx.BaseTransport | None,
    summary: Summary,
) -> None:
    state = load_state(config.state_path, link.name)
    state["link"] = link.name
    resume = state.get("checkpoint") or {}
    high_water = state.get("high_water")
    incremental = link.source.incremental
    signpost = _now()
    newest: Any = None
    # A dry run writes no file: failures are only logged, the checkpoint stays.
    dead = DeadLetter(None if config.dry_run else config.dead_letter_path, link.name)
    checkpoint = Checkpoint(None if config.dry_run else config.state_path, state)
    progress = Progress(summary)
    with (
        checkpoint,  # leaves last: a fatal error still saves where the run got to
        api_client(
            config.source_url, link.source.auth, source_transport, config
        ) as source,
        api_client(
            config.target_url, link.target.auth, target_transport, config
        ) as target,
        ThreadPoolExecutor(max_workers=max(config.concurrency, 1)) as pool,
    ):
        pending: set[Future[None]] = set()
        pipeline = Pipeline(link, config, target, summary, dead, source)

        def deliver(seq: int, record: BaseModel, body: BaseModel, raw: Any) -> None:
            """Write one record, or dead-letter it; then let the checkpoint pass it.

            A FatalError (refused credentials, an unwritable dead-letter file)
            leaves the checkpoint before this record and stops the run.
            """
            pipeline.deliver(seq, record, body, raw)
            checkpoint.finish(seq)
            progress.tick()

        def deliver_batch(items: list[tuple[int, BaseModel, BaseModel, Any]]) -> None:
            """Write a batch; the checkpoint passes its records once it is answered."""
            pipeline.deliver_batch(items)
            for seq, _, _, _ in items:
                checkpoint.finish(seq)
            progress.tick()

        def submit(job: Callable[..., None], *args: Any) -> None:
            """Start a write, once fewer than twice --concurrency are in flight."""
            nonlocal pending
            if len(pending) >= config.concurrency * 2:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                _raise_first_error(finished)
            with STOP_SIGNALS.held():  # a write thread the pool waits for
                pending.add(pool.submit(job, *args))

        batched: list[tuple[int, BaseModel, BaseModel, Any]] = []

        reading = Reading(complete=bool(config.replay_path))
        records = (
            read_replay(config.replay_path)
            if config.replay_path
            else read_source(source, link.source, config, resume, high_water, reading)
        )
        try:
            for seq, (position, index, raw) in enumerate(records):
                if config.limit is not None and seq >= config.limit:
                    break
                summary.read += 1
                checkpoint.track(seq, position, index)
                if incremental is not None:
                    value = _get(raw, incremental.field)
                    if value is not None and (newest is None or _later(value, newest)):
                        newest = value
                prepared = pipeline.prepare(seq, raw)
                if prepared is None:  # skipped or dead-lettered
                    checkpoint.finish(seq)
                    continue
                record, body = prepared
                if config.dry_run:
                    payload = body.model_dump(
                        mode="json", by_alias=True, exclude_unset=True
                    )
                    print(_json_line({"would_send": payload}))
                    summary.skipped += 1
                    checkpoint.finish(
                        seq
                    )  # saves nothing in a dry run; keeps memory flat
                    continue
                if link.target.batch is None:
                    submit(deliver, seq, record, body, raw)
                    continue
                batched.append((seq, record, body, raw))
                if len(batched) >= link.target.batch.size:
                    submit(deliver_batch, batched)
                    batched = []
            if batched:
                submit(deliver_batch, batched)
            _raise_first_error(wait(pending).done)
        except BaseException:  # a fatal error, Ctrl-C or SIGTERM: start no more writes
            for future in pending:
                future.cancel()
            raise
    progress.tick(final=True)
    summary.finished = _now()
    summary.exit_code = 1 if summary.failed else 0
    if reading.complete and not config.dry_run and not config.replay_path:
        state.pop("checkpoint", None)
        if incremental is not None and newest is not None:
            cap = signpost if isinstance(newest, str) else datetime.now(UTC).timestamp()
            state["high_water"] = cap if _later(newest, cap) else newest
    _record_run(state, summary.as_dict())
    if not config.dry_run:
        save_state(config.state_path, state)


def _raise_first_error(futures: set[Future[None]]) -> None:
    """Re-raise, in the main thread, the first error that stopped a write."""
    for future in futures:
        future.result()


def _record_run(state: dict[str, Any], run: dict[str, Any]) -> None:
    """Keep a run's summary as `last_run` and at the end of `history` (the last 100)."""
    history = state.get("history")
    state["last_run"] = run
    state["history"] = [*(history if isinstance(history, list) else []), run][
        -HISTORY_SIZE:
    ]


def _save_last_run(path: Path | None, result: dict[str, Any]) -> None:
    """Keep a fatal run's summary, with its error, in the state file beside its checkpoint."""
    try:
        state = load_state(path, result["link"])
        _record_run(state, result)
        save_state(path, state)
    except (FatalError, OSError):
        log.warning("could not record the run in the state file %s", path)


# --- command line ---------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _now(),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        return redact(json.dumps(entry))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def argument_parser(
    description: str, max_body: int = MAX_BODY
) -> argparse.ArgumentParser:
    """The flags every link's script takes."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--source-url",
        help="source base URL (else SOURCE_BASE_URL, else the spec's server)",
    )
    add(
        "--target-url",
        help="target base URL (else TARGET_BASE_URL, else the spec's server)",
    )
    add("--state", type=Path, help="checkpoint and high-water mark file (JSON)")
    add("--dead-letter", type=Path, help="JSON Lines file for records that failed")
    add("--replay", type=Path, help="send the records of a dead-letter file again")
    add(
        "--dry-run",
        action="store_true",
        help="read and transform, print, write nothing",
    )
    add("--limit", type=int, help="stop after N records")
    add("--concurrency", type=int, default=4, help="writes in flight (default 4)")
    add(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds for each whole request (default 30)",
    )
    add("--max-retries", type=int, default=5, help="retries per request (default 5)")
    add(
        "--max-body",
        type=int,
        default=max_body,
        help=f"largest answer accepted, in bytes, decoded (default {max_body})",
    )
    add(
        "--notify",
        metavar="URL",
        help="POST the summary here when a run ends with exit 1 or 2"
        " (else P2PGEN_NOTIFY_URL)",
    )
    add("--token-store", type=Path, help="OAuth2 refresh tokens kept between runs")
    add("--log-format", choices=("text", "json"), default="text")
    add("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    return parser


def parse_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    """A polling link's command line: the common flags, and --follow/--every."""
    parser = argument_parser(description)
    add = parser.add_argument
    add(
        "--follow",
        action="store_true",
        help="run again every --every seconds until stopped (SIGTERM or Ctrl-C),"
        " each run incremental from the last",
    )
    add(
        "--every",
        type=float,
        metavar="SECONDS",
        help="with --follow: seconds from the end of one run to the start of the next"
        f" (default {FOLLOW_EVERY:g})",
    )
    args = parser.parse_args(argv)
    if args.every is not None and not args.follow:
        parser.error("--every needs --follow")
    if args.every is not None and not args.every > 0:
        parser.error("--every must be a number of seconds above 0")
    if args.follow and (args.replay or args.limit is not None):
        parser.error("--follow cannot be used with --replay or --limit")
    args.every = FOLLOW_EVERY if args.every is None else args.every
    return args


class StopSignals:
    """SIGTERM and SIGINT stop the run as Ctrl-C does, where it can stop cleanly.

    A stop raised inside ThreadPoolExecutor.submit() can leave a started write
    thread that the pool never waits for: it writes on after the clients are
    closed and saves its checkpoint over the summary. Inside held() a stop
    waits for the end of the block. Later signals do not break the clean stop.
    """

    def __init__(self) -> None:
        self.holding = 0
        self.pending = False
        self.stopping = False

    def install(self) -> None:
        self.holding, self.pending, self.stopping = 0, False, False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)

    def stop(self, signum: int, frame: object) -> None:
        if self.stopping:
            log.warning("already stopping; please wait")
            return
        self.stopping = True
        if self.holding:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1
        if self.pending and not self.holding:
            self.pending = False
            raise KeyboardInterrupt


STOP_SIGNALS = StopSignals()


def main_link(
    link: Link,
    argv: list[str] | None,
    description: str,
    run: Callable[[Config, Summary], Summary] | None = None,
) -> int:
    """The script's command line: parse, check the environment, run, print the summary."""
    args = parse_args(argv, description)
    config, notify_url = command_setup(link, args)
    problem = missing_env(link)
    if problem:
        return _finish(_unstarted(link, problem), config, notify_url)
    STOP_SIGNALS.install()

    def once(summary: Summary) -> None:
        if run is not None:
            run(config, summary)
        else:
            run_link(link, config, summary=summary)

    if args.follow:
        return follow(link, config, args.every, once, notify_url, args.verbose)
    return guarded_run(link, once, config, notify_url, args.verbose)


def command_setup(link: Link, args: argparse.Namespace) -> tuple[Config, str | None]:
    """Logging as the flags ask, the notification URL kept secret, and the run's settings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if args.log_format == "json"
        else RedactingFormatter("%(levelname)s %(message)s")
    )
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        handlers=[handler],
        force=True,
    )
    notify_url = args.notify or os.environ.get("P2PGEN_NOTIFY_URL")
    if notify_url:
        keep_notify_url_secret(notify_url)
    config = Config(
        source_url=args.source_url
        or os.environ.get("SOURCE_BASE_URL")
        or link.source.default_url,
        target_url=args.target_url
        or os.environ.get("TARGET_BASE_URL")
        or link.target.default_url,
        state_path=args.state,
        dead_letter_path=args.dead_letter,
        replay_path=args.replay,
        dry_run=args.dry_run,
        limit=args.limit,
        concurrency=max(args.concurrency, 1),
        timeout=args.timeout,
        max_retries=max(args.max_retries, 0),
        max_body=max(args.max_body, 1),
        token_store=args.token_store,
    )
    return config, notify_url


def missing_env(link: Link) -> str | None:
    """What to set when a variable the link needs is missing from the environment."""
    missing = [name for name in link.required_env if not os.environ.get(name)]
    if not missing:
        return None
    problem = f"set the environment variable(s): {', '.join(missing)}"
    log.error(problem)
    return problem


def _unstarted(link: Link, problem: str) -> dict[str, Any]:
    """The summary of a run that could not start."""
    summary = Summary(link=link.name, started=_now(), exit_code=2)
    return {**summary.as_dict(), "error": problem}


def guarded_run(
    link: Link,
    action: Callable[[Summary], None],
    config: Config,
    notify_url: str | None,
    verbose: bool,
) -> int:
    """Run once; a fatal error or a stop signal is logged, kept in the state file
    and reported in the summary (exit 2). Print the summary; return the exit code.
    """
    summary = Summary(link=link.name, started=_now(), exit_code=2)
    try:
        action(summary)
    except (FatalError, httpx.HTTPError, OSError, KeyboardInterrupt) as exc:
        if verbose:
            log.exception("fatal error")
        if isinstance(exc, KeyboardInterrupt):
            problem = (
                "interrupted; rerun with the same --state to go on from the checkpoint"
            )
        else:
            problem = redact(str(exc))
        log.error("fatal: %s", problem)
        summary.finished = _now()
        summary.exit_code = 2
        result = {**summary.as_dict(), "error": problem}
        if not isinstance(exc, LockHeld):
            _save_last_run(None if config.dry_run else config.state_path, result)
        return _finish(result, config, notify_url)
    return _finish(summary.as_dict(), config, notify_url)


def follow(
    link: Link,
    config: Config,
    every: float,
    once: Callable[[Summary], None],
    notify_url: str | None,
    verbose: bool,
) -> int:
    """--follow: the run again `every` seconds after the last one ended, until a
    stop signal; the state file stays locked in between. A run that fails is
    reported like any run and the next one tries again; a stop during a run
    ends it as Ctrl-C does. Returns the exit code of the last run.
    """
    code = 0
    try:
        with RunLock(None if config.dry_run else config.state_path):
            while not STOP_SIGNALS.stopping:
                try:  # a stop between runs: the signal raises wherever it lands
                    code = guarded_run(link, once, config, notify_url, verbose)
                    if STOP_SIGNALS.stopping:
                        break
                    log.info(
                        "next run in %g s (--every); SIGTERM or Ctrl-C stops", every
                    )
                    sleep(every)
                except KeyboardInterrupt:
                    break
    except FatalError as exc:  # the lock: every run's own errors are handled above
        log.error("fatal: %s", exc)
        return _finish(_unstarted(link, str(exc)), config, notify_url)
    log.info("stopped following")
    return code


def _finish(result: dict[str, Any], config: Config, notify_url: str | None) -> int:
    """Print the summary as stdout's last line; post it when the run did not end clean."""
    print(json.dumps(result), flush=True)
    if notify_url and result["exit_code"] in (1, 2):
        notify(notify_url, result, config)
    return int(result["exit_code"])
