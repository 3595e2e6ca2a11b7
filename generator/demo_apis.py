"""The bundled demo APIs: the example specs served for real on loopback.

Each API runs its own `ThreadingHTTPServer` in a background thread, keeps its
records in SQLite (see `demo_store`), checks credentials and request bodies as
its spec says, and can misbehave on purpose (`Faults`) so that the generated
scripts' retry, dead-letter and resume paths meet a real network.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import math
import random
import re
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from generator import demo_store
from generator.demo_store import (
    BadParam,
    Json,
    Request,
    Response,
    Store,
    decode_cursor,
    encode_cursor,
    enum_param,
    int_param,
    moment_param,
    same_secret,
)

API_NAMES = ("crm", "mailer", "invoicing", "pos", "inventory", "patients", "billing")
SPEC_PORTS = {
    "crm": 8701,
    "mailer": 8702,
    "invoicing": 8703,
    "pos": 8704,
    "inventory": 8705,
    "patients": 8706,
    "billing": 8707,
}

# Obvious demo values, not secrets: the names are the ones the example mapping
# files in specs/links/ read their credentials from.
DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "crm": {"CRM_TOKEN": "demo-crm-token"},
    "mailer": {"MAILER_API_KEY": "demo-mailer-key", "MAILER_LIST_ID": "news2024"},
    "invoicing": {
        "LEDGER_USERNAME": "demo-ledger",
        "LEDGER_PASSWORD": "demo-ledger-password",
    },
    "pos": {"POS_API_KEY": "demo-pos-key"},
    "inventory": {
        "STOCK_CLIENT_ID": "demo-stock-client",
        "STOCK_CLIENT_SECRET": "demo-stock-secret",
        "STOCK_WAREHOUSE_ID": "wh-bristol-1",
    },
    "patients": {"CAREPOINT_TOKEN": "demo-carepoint-token"},
    "billing": {"BILLING_TOKEN": "demo-billing-token"},
}

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
        faults: Faults | None,
        token_ttl: float,
        seed_count: int | None = None,
    ):
        self.seed_count = seed_count
        self.spec = demo_store.load_spec(specs_dir / self.spec_file)
        self.creds = DEMO_CREDENTIALS[self.name]
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
            self.invalid_ids = demo_store.corrupt(
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
                "code": _code(status),
                "message": message,
                "details": [{"problem": d} for d in details],
            },
        )

    def parse(self, req: Request, validate: demo_store.Validate, status: int) -> Json:
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


def _code(status: int) -> str:
    return {
        400: "invalid_request",
        401: "unauthorized",
        404: "not_found",
        409: "conflict",
        422: "invalid_body",
        429: "rate_limited",
        503: "unavailable",
    }.get(status, "error")


class CrmApi(Api):
    """Acme CRM: cursor-paged contacts (source) and customers (target)."""

    name, spec_file, collections = "crm", "crm.yaml", ("contacts", "customers")

    def setup(self) -> None:
        self.seed("contacts", demo_store.seed_contacts(random.Random(1), self.n(60)))
        self.check = demo_store.body_validator(self.spec, "POST", "/customers")
        self.route("GET", "/contacts", self.list_contacts)
        self.route("GET", "/customers", self.list_customers)
        self.route("POST", "/customers", self.create_customer)

    def authorised(self, req: Request) -> bool:
        return same_secret(req.bearer(), self.creds["CRM_TOKEN"])

    def page(self, req: Request, records: list[Json], key: str) -> Response:
        limit = int_param(req, "limit", 25, 1, 100)
        after = (
            decode_cursor("cursor", req.query["cursor"])
            if req.query.get("cursor")
            else ""
        )
        rest = [r for r in records if str(r.get("id", "")) > after]
        data, more = rest[:limit], len(rest) > limit
        next_cursor = encode_cursor(str(data[-1]["id"])) if more else None
        return Response(200, {key: data, "next_cursor": next_cursor, "has_more": more})

    def list_contacts(self, req: Request, _: re.Match[str]) -> Response:
        status = enum_param(req, "status", ("active", "archived"))
        since = moment_param(req.query.get("updated_since"), "updated_since")
        contacts = [
            c
            for c in self.store.all("contacts")
            if (status is None or c.get("status") == status)
            and (since is None or _updated(c) >= since)
        ]
        return self.page(req, contacts, "data")

    def list_customers(self, req: Request, _: re.Match[str]) -> Response:
        return self.page(req, self.store.all("customers"), "data")

    def create_customer(self, req: Request, _: re.Match[str]) -> Response:
        def apply() -> Response:
            body = self.parse(req, self.check, 422)
            number = self.store.count("customers") + 1
            customer = {
                **body,
                "id": f"cus_{number:06x}",
                "created_at": demo_store.now_iso(),
            }
            self.store.add("customers", customer)
            return Response(201, customer)

        return self.write(req, apply)


class MailerApi(Api):
    """Mailer: list members (target), API key in `X-API-Key`, RFC 9457 errors."""

    name, spec_file, collections = "mailer", "mailer.yaml", ("members",)

    def setup(self) -> None:
        self.check = demo_store.body_validator(
            self.spec, "POST", "/lists/{list_id}/members"
        )
        members = r"/lists/(?P<list_id>[^/]+)/members"
        self.route("GET", members, self.list_members)
        self.route("POST", members, self.add_member)

    def authorised(self, req: Request) -> bool:
        return same_secret(
            req.headers.get("X-API-Key") or "", self.creds["MAILER_API_KEY"]
        )

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        titles = {
            400: "Invalid Resource",
            401: "API Key Invalid",
            404: "Resource Not Found",
            405: "Method Not Allowed",
        }
        return Response(
            status,
            {
                "type": f"https://mailer.example/docs/errors#{_code(status)}",
                "title": titles.get(status, "Error"),
                "status": status,
                "detail": message,
                "errors": [
                    {"field": d.partition(":")[0], "message": d} for d in details
                ],
            },
            {"Content-Type": "application/problem+json"},
        )

    def members(self, match: re.Match[str]) -> list[Json]:
        if match["list_id"] != self.creds["MAILER_LIST_ID"]:
            raise LookupError(match["list_id"])
        return [
            m for m in self.store.all("members") if m["list_id"] == match["list_id"]
        ]

    def list_members(self, req: Request, match: re.Match[str]) -> Response:
        try:
            members = self.members(match)
        except LookupError:
            return self.error(404, f"list {match['list_id']!r} does not exist")
        offset = int_param(req, "offset", 0, 0, 10**9)
        count = int_param(req, "count", 100, 1, 1000)
        return Response(
            200,
            {"members": members[offset : offset + count], "total_items": len(members)},
        )

    def add_member(self, req: Request, match: re.Match[str]) -> Response:
        def apply() -> Response:
            try:
                existing = self.members(match)
            except LookupError:
                return self.error(404, f"list {match['list_id']!r} does not exist")
            body = self.parse(req, self.check, 400)
            email = str(body["email_address"]).lower()
            if any(m["email_address"].lower() == email for m in existing):
                answer = self.error(400, f"{email} is already a list member")
                assert answer.body is not None
                answer.body["title"] = "Member Exists"
                return answer
            member = {
                **body,
                "id": hashlib.md5(email.encode()).hexdigest(),
                "list_id": match["list_id"],
                "last_changed": demo_store.now_iso(),
            }
            self.store.add("members", member)
            return Response(201, member)

        return self.write(req, apply)


class InvoicingApi(Api):
    """Ledger Invoicing: page-numbered invoices (source), HTTP basic auth."""

    name, spec_file, collections = "invoicing", "invoicing.json", ("invoices",)

    def setup(self) -> None:
        self.seed("invoices", demo_store.seed_invoices(random.Random(2), self.n(45)))
        self.route("GET", "/invoices", self.list_invoices)

    def authorised(self, req: Request) -> bool:
        expected = base64.b64encode(
            f"{self.creds['LEDGER_USERNAME']}:{self.creds['LEDGER_PASSWORD']}".encode()
        ).decode()
        return same_secret(req.headers.get("Authorization") or "", f"Basic {expected}")

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="ledger"'} if status == 401 else {}
        return Response(status, {"error": _code(status), "message": message}, headers)

    def list_invoices(self, req: Request, _: re.Match[str]) -> Response:
        page = int_param(req, "page", 1, 1, 10**6)
        per_page = int_param(req, "per_page", 20, 1, 100)
        status = enum_param(req, "status", ("draft", "sent", "paid", "void"))
        invoices = [
            i
            for i in self.store.all("invoices")
            if status is None or i.get("status") == status
        ]
        start = (page - 1) * per_page
        pages = max(1, math.ceil(len(invoices) / per_page))
        return Response(
            200,
            {
                "invoices": invoices[start : start + per_page],
                "page": page,
                "total_pages": pages,
            },
        )


class PosApi(Api):
    """Till POS: offset-paged sales (source), API key in the query string."""

    name, spec_file, collections = "pos", "pos.yaml", ("sales",)

    def setup(self) -> None:
        self.seed("sales", demo_store.seed_sales(random.Random(3), self.n(80)))
        self.route("GET", "/sales", self.list_sales)

    def authorised(self, req: Request) -> bool:
        return same_secret(req.query.get("api_key", ""), self.creds["POS_API_KEY"])

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        return Response(status, {"error": message})

    def list_sales(self, req: Request, _: re.Match[str]) -> Response:
        offset = int_param(req, "offset", 0, 0, 10**9)
        limit = int_param(req, "limit", 50, 1, 200)
        store_id = req.query.get("store_id")
        sales = [
            s
            for s in self.store.all("sales")
            if store_id is None or s.get("store_id") == store_id
        ]
        return Response(
            200, {"sales": sales[offset : offset + limit], "total": len(sales)}
        )


class InventoryApi(Api):
    """Stockroom: adjustments (target) behind OAuth2 client credentials."""

    name, spec_file, collections = "inventory", "inventory.yaml", ("adjustments",)

    def setup(self) -> None:
        self.tokens: dict[str, float] = {}
        self.check = demo_store.body_validator(
            self.spec, "POST", "/warehouses/{warehouse_id}/adjustments"
        )
        self.route("POST", "/oauth/token", self.token, public=True)
        adjustments = r"/warehouses/(?P<warehouse_id>[^/]+)/adjustments"
        self.route("GET", adjustments, self.list_adjustments)
        self.route("POST", adjustments, self.create_adjustment)

    def authorised(self, req: Request) -> bool:
        expires = self.tokens.get(req.bearer())
        return expires is not None and time.monotonic() < expires

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        first = details[0].partition(":")[0] if details else None
        return Response(
            status, {"message": "; ".join([message, *details]), "field": first}
        )

    def token(self, req: Request, _: re.Match[str]) -> Response:
        form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
        # RFC 6749 lets clients send their credentials as HTTP basic instead.
        scheme, _sep, encoded = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _sep, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            form.setdefault("client_id", user)
            form.setdefault("client_secret", password)
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        if not (
            same_secret(form.get("client_id", ""), self.creds["STOCK_CLIENT_ID"])
            and same_secret(
                form.get("client_secret", ""), self.creds["STOCK_CLIENT_SECRET"]
            )
        ):
            return Response(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "unknown client or secret",
                },
            )
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": math.ceil(self.token_ttl),
            },
            {"Cache-Control": "no-store"},
        )

    def list_adjustments(self, req: Request, match: re.Match[str]) -> Response:
        page = int_param(req, "page", 1, 1, 10**6)
        found = [
            a
            for a in self.store.all("adjustments")
            if a["warehouse_id"] == match["warehouse_id"]
        ]
        return Response(200, {"adjustments": found[(page - 1) * 50 : page * 50]})

    def create_adjustment(self, req: Request, match: re.Match[str]) -> Response:
        def apply() -> Response:
            if match["warehouse_id"] != self.creds["STOCK_WAREHOUSE_ID"]:
                return self.error(404, f"no warehouse {match['warehouse_id']!r}")
            body = self.parse(req, self.check, 422)
            number = self.store.count("adjustments") + 1
            adjustment = {
                **body,
                "id": f"adj_{number:08d}",
                "warehouse_id": match["warehouse_id"],
            }
            self.store.add("adjustments", adjustment)
            return Response(201, adjustment)

        return self.write(req, apply)


class PatientsApi(Api):
    """CarePoint PMS: treatments (source) paged by absolute `links.next` URLs."""

    name, spec_file, collections = "patients", "patients.yaml", ("treatments",)

    def setup(self) -> None:
        self.seed(
            "treatments", demo_store.seed_treatments(random.Random(4), self.n(55))
        )
        self.route("GET", "/treatments", self.list_treatments)

    def authorised(self, req: Request) -> bool:
        return same_secret(req.bearer(), self.creds["CAREPOINT_TOKEN"])

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        return Response(status, {"message": "; ".join([message, *details])})

    def list_treatments(self, req: Request, _: re.Match[str]) -> Response:
        limit = int_param(req, "limit", 20, 1, 100)
        since_raw = req.query.get("since")
        try:
            since = date.fromisoformat(since_raw) if since_raw else None
        except ValueError:
            raise BadParam(f"since: {since_raw!r} is not a date") from None
        token = req.query.get("page_token")
        try:
            after = int(decode_cursor("page_token", token)) if token else 0
        except ValueError:
            raise BadParam(f"page_token: {token!r} is not a page token") from None
        # Keyset paging on the store's sequence: cheap even for 100,000 records.
        found, more = self.store.page(
            "treatments",
            after,
            limit,
            ("performed_on", since.isoformat()) if since else None,
        )
        items = [t for _seq, t in found]
        next_url = None
        if more:
            query = {k: v for k, v in req.query.items() if k != "page_token"}
            query["page_token"] = encode_cursor(str(found[-1][0]))
            next_url = f"{self.base_url}/treatments?{urlencode(query)}"
        return Response(200, {"items": items, "links": {"next": next_url}})


class BillingApi(Api):
    """Billable: charges (target), bearer token, one charge per `source_ref`."""

    name, spec_file, collections = "billing", "billing.yaml", ("charges",)

    def setup(self) -> None:
        self.check = demo_store.body_validator(self.spec, "POST", "/charges")
        self.route("GET", "/charges", self.list_charges)
        self.route("POST", "/charges", self.create_charge)

    def authorised(self, req: Request) -> bool:
        return same_secret(req.bearer(), self.creds["BILLING_TOKEN"])

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        return Response(status, {"message": "; ".join([message, *details])})

    def list_charges(self, req: Request, _: re.Match[str]) -> Response:
        limit = int_param(req, "limit", 100, 1, 500)
        return Response(200, {"charges": self.store.all("charges")[:limit]})

    def create_charge(self, req: Request, _: re.Match[str]) -> Response:
        def apply() -> Response:
            body = self.parse(req, self.check, 400)
            ref = body.get("source_ref")
            if isinstance(ref, str) and self.store.exists("charges", "source_ref", ref):
                return self.error(409, f"source_ref {ref!r} was already charged")
            number = self.store.count("charges") + 1
            charge = {
                **body,
                "id": f"ch_{number:06d}",
                "created_at": demo_store.now_iso(),
            }
            self.store.add("charges", charge)
            return Response(201, charge)

        return self.write(req, apply)


def _updated(contact: Json) -> datetime:
    moment = moment_param(contact.get("updated_at"), "updated_at")
    return moment or datetime.min.replace(tzinfo=UTC)


API_CLASSES: dict[str, type[Api]] = {
    cls.name: cls
    for cls in (
        CrmApi,
        MailerApi,
        InvoicingApi,
        PosApi,
        InventoryApi,
        PatientsApi,
        BillingApi,
    )
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: Api


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, so a dropped connection is a real
    # surprise to the client's pool, as it is in production.
    protocol_version = "HTTP/1.1"
    server: _Server

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


class DemoApis:
    """Every demo API on loopback, for the lifetime of a `with` block."""

    def __init__(
        self,
        specs_dir: Path,
        faults: Faults | None = None,
        ports: dict[str, int] | None = None,
        *,
        token_ttl: float = 300.0,
        seed_count: int | None = None,
    ) -> None:
        self.specs_dir = Path(specs_dir)
        self.faults = faults
        self.ports = {name: 0 for name in API_NAMES} | (ports or {})
        self.token_ttl = token_ttl
        # How many records each source API seeds (default: its own small fixed
        # number); the benchmark asks for 100,000.
        self.seed_count = seed_count
        self.apis: dict[str, Api] = {}
        self._servers: list[tuple[_Server, threading.Thread]] = []

    def __enter__(self) -> DemoApis:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Seed every API and start serving it."""
        try:
            for name in API_NAMES:
                api = API_CLASSES[name](
                    self.specs_dir, self.faults, self.token_ttl, self.seed_count
                )
                server = _Server(("127.0.0.1", self.ports[name]), _Handler)
                server.api = api
                api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
                # A short poll keeps `close()` fast: shutdown waits for one poll.
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"demo-{name}",
                    daemon=True,
                )
                thread.start()
                self.apis[name] = api
                self._servers.append((server, thread))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the servers and drop the stores."""
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join()
        self._servers.clear()
        for api in self.apis.values():
            api.store.close()

    def _api(self, api_name: str) -> Api:
        if api_name not in self.apis:
            raise KeyError(
                f"unknown or stopped demo API {api_name!r}; "
                f"expected one of {', '.join(API_NAMES)}"
            )
        return self.apis[api_name]

    def base_url(self, api_name: str) -> str:
        """Return `http://127.0.0.1:PORT` of a running API."""
        return self._api(api_name).base_url

    def env(self) -> dict[str, str]:
        """Return every credential and id variable the example links read."""
        return {
            key: value
            for creds in DEMO_CREDENTIALS.values()
            for key, value in creds.items()
        }

    def records(self, api_name: str, collection: str) -> list[Json]:
        """Return what an API's store holds, in insertion order."""
        api = self._api(api_name)
        if collection not in api.collections:
            raise KeyError(
                f"{api_name} has no collection {collection!r}; "
                f"it has {', '.join(api.collections)}"
            )
        return api.store.all(collection)

    def requests_seen(self, api_name: str) -> int:
        """Return how many HTTP requests an API received, faults included."""
        return self._api(api_name).requests

    def invalid_ids(self, api_name: str) -> list[str]:
        """Return the ids of the source records broken by `Faults.invalid_records`."""
        return list(self._api(api_name).invalid_ids)


def main(argv: list[str] | None = None) -> int:
    """Serve every demo API on its spec port until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m generator.demo_apis", description=main.__doc__
    )
    parser.add_argument(
        "--specs", type=Path, default=Path(__file__).resolve().parent.parent / "specs"
    )
    parser.add_argument("--seed", type=int, default=0)
    for flag in ("error-503", "rate-limit-429", "drop-connection", "lost-response"):
        parser.add_argument(f"--{flag}", type=float, default=0.0, metavar="RATE")
    parser.add_argument("--invalid-records", type=int, default=0, metavar="N")
    parser.add_argument(
        "--seed-count",
        type=int,
        metavar="N",
        help="records per source API (default: a few dozen each)",
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="bind free loopback ports instead of the spec ports (the URLs are "
        "printed as usual)",
    )
    args = parser.parse_args(argv)
    faults = Faults(
        seed=args.seed,
        error_503=args.error_503,
        rate_limit_429=args.rate_limit_429,
        drop_connection=args.drop_connection,
        lost_response=args.lost_response,
        invalid_records=args.invalid_records,
    )
    ports = None if args.free_ports else SPEC_PORTS
    with DemoApis(args.specs, faults, ports, seed_count=args.seed_count) as demo:
        for name in API_NAMES:
            print(f"{name:<10} {demo.base_url(name)}")
        print()
        for key, value in demo.env().items():
            print(f"export {key}={value}")
        print("\nServing; Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
