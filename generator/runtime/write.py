"""Writes to the target: one record, upserts, batches, deletes; and lookups."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from time import sleep
from typing import Any

import httpx

from generator.runtime.core import RETRY_STATUSES, Config, WriteFailed, redact
from generator.runtime.http import _safe_url, retry_delay, send
from generator.runtime.mapping import _get, path_keys
from generator.runtime.params import ParamStyle

# params.place_params: (path, values, styles) -> (path, query pairs, headers)
Place = Callable[
    [str, dict[str, Any], dict[str, ParamStyle]],
    tuple[str, tuple[tuple[str, str], ...], dict[str, str]],
]


def write(
    client: httpx.Client, request: httpx.Request, config: Config
) -> httpx.Response:
    """Send one write; an answer that is not 2xx after the retries is a WriteFailed."""
    response, attempts = send(client, request, config)
    if response.status_code >= 300:
        raise WriteFailed(
            f"HTTP {response.status_code}: {response.text[:500]}",
            response.status_code,
            attempts,
        )
    return response


def outcome(method: str, status: int) -> str:
    """What a successful write did, for the summary: created, updated or deleted."""
    if method == "DELETE":
        return "deleted"
    if status == 201 or method == "POST":
        return "created"
    return "updated"


@dataclass(frozen=True, kw_only=True)
class Call:
    """A request of the target API besides the record's own write: a match or an update."""

    method: str
    path: str
    # (source record, matched target record or None) -> path, query and header values
    params: Callable[[Any, Any], dict[str, Any]] | None = None
    locations: dict[str, ParamStyle] = field(default_factory=dict)

    def request(
        self,
        client: httpx.Client,
        place: Place,
        record: Any,
        matched: Any = None,
        body: httpx.Request | None = None,
    ) -> httpx.Request:
        """This call for one record; `body`: the record's write, whose body it sends."""
        values = self.params(record, matched) if self.params is not None else {}
        path, query, headers = place(self.path, values, self.locations)
        if body is not None and body.content:
            headers["Content-Type"] = body.headers.get(
                "Content-Type", "application/json"
            )
        return client.build_request(
            self.method,
            path,
            params=query,
            headers=headers,
            content=body.content if body is not None else None,
        )


class KeyLocks:
    """A lock per key in use: records sharing a match key are written one at a time.

    Only keys in use are kept, so memory stays flat however many keys a run sees.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        with self.lock:
            lock, users = self.locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self.lock:
                users[0] -= 1
                if not users[0]:
                    del self.locks[key]


def matches(
    client: httpx.Client,
    request: httpx.Request,
    records: str,
    config: Config,
    what: str = "match",
) -> list[Any]:
    """The records a match or lookup request finds (the first page of its answer)."""
    response, attempts = send(client, request, config)
    where = f"{what} {_safe_url(request.url)}"
    if response.status_code >= 300:
        raise WriteFailed(
            f"{where}: HTTP {response.status_code}: {response.text[:500]}",
            response.status_code,
            attempts,
        )
    try:
        body = response.json()
    except (ValueError, RecursionError):
        raise WriteFailed(
            f"{where}: the answer is not JSON", response.status_code, attempts
        ) from None
    found = _get(body, records) if records else body
    if not isinstance(found, list):
        raise WriteFailed(
            f"{where}: no list of records at {records or 'the answer'!r}",
            response.status_code,
            attempts,
        )
    return found


@dataclass(frozen=True, kw_only=True)
class Match:
    """Upsert (target.match): look for the record at the target, then write.

    No match: `on_missing` (create sends the record's own write). One match:
    `update` with the matched record, or skip. Two or more: dead-lettered as
    ambiguous. A rerun after a kill finds what the killed run created, so it
    never creates a record twice.
    """

    call: Call
    records: str = ""  # the list in the match answer ("": the answer is the list)
    update: Call | None = None  # None: on_match is skip
    on_missing: str = "create"  # create | skip | dead_letter
    locks: KeyLocks = field(default_factory=KeyLocks, compare=False, repr=False)

    def find(
        self, client: httpx.Client, config: Config, look: httpx.Request
    ) -> list[Any]:
        """The target records the match request finds: none or one, else ambiguous."""
        found = matches(client, look, self.records, config)
        if len(found) > 1:
            raise WriteFailed(
                f"ambiguous: {len(found)} target records match"
                f" {_safe_url(look.url)}{_query(look)}; not guessing which one",
                None,
                1,
            )
        return found

    def __call__(
        self,
        client: httpx.Client,
        config: Config,
        record: Any,
        request: httpx.Request,
        place: Place,
    ) -> str:
        """Write one record; return the count it adds to: created, updated or skipped.

        A create whose answer is lost (or refused with 429/5xx) is not sent
        again blindly: the match runs again first, and finds the record if
        the create went through.
        """
        look = self.call.request(client, place, record)
        once = replace(config, max_retries=0)
        with self.locks.held(str(look.url)):
            attempt = 0
            while True:
                attempt += 1
                found = self.find(client, config, look)
                if found and attempt > 1:
                    return "created"  # the create whose answer was lost
                if found and self.update is None:
                    return "skipped"
                if found and self.update is not None:
                    update = self.update.request(
                        client, place, record, found[0], request
                    )
                    write(client, update, config)
                    return "updated"
                if self.on_missing == "skip":
                    return "skipped"
                if self.on_missing == "dead_letter":
                    raise WriteFailed(
                        f"no target record matches {_safe_url(look.url)}{_query(look)}"
                        " (on_missing: dead_letter)",
                        None,
                        1,
                    )
                try:
                    response = write(client, request, once)
                except WriteFailed as exc:
                    lost = exc.status is None or exc.status in RETRY_STATUSES
                    if not lost or attempt > config.max_retries:
                        raise WriteFailed(str(exc), exc.status, attempt) from None
                    sleep(retry_delay(attempt, None))
                    continue
                return outcome(request.method, response.status_code)


@dataclass(frozen=True, kw_only=True)
class Batch:
    """target.batch: up to `size` records in one request to a bulk endpoint.

    A refused batch dead-letters its records with the answer; with `results`,
    the answer's per-record results (in request order) settle each record
    alone: one whose result has a 4xx/5xx `status` or an `error` fails.
    """

    size: int
    path: str = ""  # where the list of bodies goes ("": the body is the list)
    results: str = ""  # the list of per-record results in the answer

    def __call__(
        self,
        client: httpx.Client,
        config: Config,
        target: Any,
        items: list[tuple[Any, ...]],
        place: Place,
    ) -> list[str | Exception]:
        """Write (record, body) pairs; per record: the count it adds to, or why not."""
        values = target.params(items[0][0]) if target.params is not None else {}
        path, query, headers = place(target.path, values, target.locations)
        payload: Any = [
            body.model_dump(mode="json", by_alias=True, exclude_unset=True)
            for _, body in items
        ]
        for key in reversed(path_keys(self.path) if self.path else []):
            payload = {key: payload}
        encoded = target.encode(payload)
        headers.update(encoded.pop("headers", {}))
        request = client.build_request(
            target.method, path, params=query, headers=headers, **encoded
        )
        response = write(client, request, config)
        status = response.status_code
        if not self.results:
            return [outcome(target.method, status)] * len(items)
        try:
            results = _get(response.json(), self.results)
        except (ValueError, RecursionError):
            results = None
        if not isinstance(results, list) or len(results) != len(items):
            count = len(results) if isinstance(results, list) else "no list of"
            problem = WriteFailed(
                f"the batch was answered HTTP {status} with {count} results at"
                f" {self.results!r} for {len(items)} records; whether each was"
                f" written is unknown: {response.text[:300]}",
                status,
                1,
            )
            return [problem] * len(items)
        return [_item_outcome(item, target.method, status) for item in results]


def _item_outcome(item: Any, method: str, status: int) -> str | Exception:
    """One per-record result of a batch: what it did, or why it failed."""
    if not isinstance(item, dict):
        return outcome(method, status)
    code = item.get("status", item.get("status_code"))
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if (code is not None and code >= 400) or item.get("error") or item.get("errors"):
        return WriteFailed(f"batch item: {json.dumps(item)[:500]}", code, 1)
    return outcome(method, code or status)


# what each lookup found for the record being transformed (set by Lookups)
LOOKED_UP: ContextVar[dict[str, Any]] = ContextVar("LOOKED_UP")


def _looked_up(name: str, path: str, default: Any = None) -> Any:
    """In transform(): a field of the record that lookup `name` found (None: none)."""
    found = LOOKED_UP.get({}).get(name)
    value = _get(found, path) if found is not None else None
    return default if value is None else value


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """One `lookups` entry: a GET of the source or target API."""

    name: str
    call: Call
    api: str = "target"  # source | target: which client (base URL and auth)
    records: str = ""
    on_missing: str = "dead_letter"  # dead_letter | omit | skip


class LookupCache:
    """What each distinct lookup request found, the last MAX_KEYS of them."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self.found: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Any]:
        if key not in self.found:
            return False, None
        self.found.move_to_end(key)
        return True, self.found[key]

    def put(self, key: str, value: Any) -> None:
        self.found[key] = value
        if len(self.found) > self.MAX_KEYS:
            self.found.popitem(last=False)


@dataclass(frozen=True)
class Lookups:
    """`lookups`: what each record needs from other records, one request per key.

    Called in the read loop before transform(); a lookup that finds nothing
    dead-letters the record, leaves its fields out, or skips it (on_missing).
    """

    lookups: tuple[Lookup, ...]
    cache: LookupCache = field(default_factory=LookupCache, compare=False)

    def __call__(
        self,
        source: httpx.Client,
        target: httpx.Client,
        config: Config,
        record: Any,
        place: Place,
    ) -> bool:
        """Look up what `record` needs; False: skip the record (on_missing: skip)."""
        found: dict[str, Any] = {}
        for lookup in self.lookups:
            client = source if lookup.api == "source" else target
            request = lookup.call.request(client, place, record)
            where = f"{_safe_url(request.url)}{_query(request)}"
            cached, value = self.cache.get(f"{lookup.api} {request.url}")
            if not cached:
                records = matches(client, request, lookup.records, config, "lookup")
                if len(records) > 1:
                    raise WriteFailed(
                        f"lookup {lookup.name}: ambiguous: {len(records)} records"
                        f" match {where}",
                        None,
                        1,
                    )
                value = records[0] if records else None
                self.cache.put(f"{lookup.api} {request.url}", value)
            if value is None and lookup.on_missing == "skip":
                return False
            if value is None and lookup.on_missing == "dead_letter":
                raise WriteFailed(
                    f"lookup {lookup.name}: nothing found at {where}", None, 1
                )
            found[lookup.name] = value
        LOOKED_UP.set(found)
        return True


@dataclass(frozen=True, kw_only=True)
class Delete:
    """target.delete: a record meeting `when` is deleted at the target, not written.

    With target.match, the record to delete is the one the match finds (none:
    nothing to delete). An answer 404 counts as deleted: it is gone already.
    """

    when: Callable[[Any], bool]
    call: Call

    def __call__(
        self,
        client: httpx.Client,
        config: Config,
        record: Any,
        place: Place,
        match: Match | None,
    ) -> str:
        """Delete one record's target record; return the count it adds to."""
        if match is None:
            return self.delete(client, config, record, place, None)
        look = match.call.request(client, place, record)
        with match.locks.held(str(look.url)):
            found = match.find(client, config, look)
            if not found:
                return "skipped"
            return self.delete(client, config, record, place, found[0])

    def delete(
        self,
        client: httpx.Client,
        config: Config,
        record: Any,
        place: Place,
        matched: Any,
    ) -> str:
        try:
            write(client, self.call.request(client, place, record, matched), config)
        except WriteFailed as exc:
            if exc.status != 404:
                raise
        return "deleted"


def _query(request: httpx.Request) -> str:
    """The match request's query, for a dead letter: what was looked for."""
    query = request.url.query.decode("ascii", "replace")
    return redact(f"?{query}") if query else ""
