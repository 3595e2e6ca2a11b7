"""The seven example APIs of specs/, each a `http.Api` with its own routes.

Each class serves one example spec the way a real vendor would: its own auth
scheme, pagination style, error format and validation of request bodies
against the spec. `apis.DemoApis` puts them all on loopback.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from generator.demo.http import Api, error_code
from generator.demo.store import (
    BadParam,
    Json,
    Request,
    Response,
    body_validator,
    decode_cursor,
    encode_cursor,
    enum_param,
    int_param,
    moment_param,
    now_iso,
    same_secret,
    seed_contacts,
    seed_invoices,
    seed_sales,
    seed_treatments,
)


class CrmApi(Api):
    """Acme CRM: cursor-paged contacts (source) and customers (target)."""

    name, spec_file, collections = "crm", "crm.yaml", ("contacts", "customers")

    def setup(self) -> None:
        self.seed("contacts", seed_contacts(random.Random(1), self.n(60)))
        self.check = body_validator(self.spec, "POST", "/customers")
        self.check_update = body_validator(
            self.spec, "PATCH", "/customers/{customer_id}"
        )
        self.route("GET", "/contacts", self.list_contacts)
        self.route("GET", "/customers", self.list_customers)
        self.route("POST", "/customers", self.create_customer)
        self.route("POST", "/customers/batch", self.create_customers)
        one = r"/customers/(?P<customer_id>[^/]+)"
        self.route("PATCH", one, self.update_customer)
        self.route("DELETE", one, self.delete_customer)

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
        ref, email = req.query.get("external_ref"), req.query.get("email")
        customers = [
            c
            for c in self.store.all("customers")
            if (ref is None or c.get("external_ref") == ref)
            and (email is None or str(c.get("email")).lower() == email.lower())
        ]
        return self.page(req, customers, "data")

    def new_customer(self, body: Json) -> Json:
        """Store a checked input as a new customer (the store is held)."""
        customer = {
            **body,
            "id": f"cus_{self.store.next_number('customers'):06x}",
            "created_at": now_iso(),
        }
        self.store.add("customers", customer)
        return customer

    def create_customer(self, req: Request, _: re.Match[str]) -> Response:
        def apply() -> Response:
            return Response(201, self.new_customer(self.parse(req, self.check, 422)))

        return self.write(req, apply)

    def create_customers(self, req: Request, _: re.Match[str]) -> Response:
        """Each input on its own: one result per input, in order."""

        def envelope(body: Any) -> list[str]:
            """The list itself; each input is checked on its own below."""
            inputs = body.get("inputs") if isinstance(body, dict) else None
            if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
                return ["inputs: must be a list of 1 to 100 customer inputs"]
            return []

        def apply() -> Response:
            body = self.parse(req, envelope, 422)
            results: list[Json] = []
            for item in body["inputs"]:
                problems = self.check(item)
                if problems:
                    error = self.error(422, "the input does not match the schema")
                    assert error.body is not None
                    error.body["details"] = [{"problem": p} for p in problems]
                    results.append({"status": 422, "error": error.body})
                else:
                    results.append({"status": 201, "customer": self.new_customer(item)})
            return Response(200, {"results": results})

        return self.write(req, apply)

    def update_customer(self, req: Request, match: re.Match[str]) -> Response:
        with self.store.locked():
            found = self.store.find("customers", match["customer_id"])
            if found is None:
                return self.error(404, f"no customer {match['customer_id']!r}")
            customer = {**found, **self.parse(req, self.check_update, 422)}
            self.store.replace("customers", match["customer_id"], customer)
            return Response(200, customer)

    def delete_customer(self, req: Request, match: re.Match[str]) -> Response:
        if not self.store.delete("customers", match["customer_id"]):
            return self.error(404, f"no customer {match['customer_id']!r}")
        return Response(204)


class MailerApi(Api):
    """Mailer: list members (target), API key in `X-API-Key`, RFC 9457 errors."""

    name, spec_file, collections = "mailer", "mailer.yaml", ("members",)

    def setup(self) -> None:
        self.check = body_validator(self.spec, "POST", "/lists/{list_id}/members")
        members = r"/lists/(?P<list_id>[^/]+)/members"
        self.route("GET", members, self.list_members)
        self.route("POST", members, self.add_member)
        one = members + r"/(?P<subscriber_hash>[^/]+)"
        self.route("PUT", one, self.set_member)
        self.route("DELETE", one, self.delete_member)

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
                "type": f"https://mailer.example/docs/errors#{error_code(status)}",
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
                "last_changed": now_iso(),
            }
            self.store.add("members", member)
            return Response(201, member)

        return self.write(req, apply)

    def set_member(self, req: Request, match: re.Match[str]) -> Response:
        """Create or replace the member whose hash is in the path."""
        with self.store.locked():
            try:
                self.members(match)
            except LookupError:
                return self.error(404, f"list {match['list_id']!r} does not exist")
            body = self.parse(req, self.check, 400)
            email = str(body["email_address"]).lower()
            member_id = hashlib.md5(email.encode()).hexdigest()
            if member_id != match["subscriber_hash"]:
                return self.error(
                    400, "subscriber_hash is not the MD5 of the lowercased email"
                )
            member = {
                **body,
                "id": member_id,
                "list_id": match["list_id"],
                "last_changed": now_iso(),
            }
            if self.store.replace("members", member_id, member):
                return Response(200, member)
            self.store.add("members", member)
            return Response(201, member)

    def delete_member(self, req: Request, match: re.Match[str]) -> Response:
        try:
            self.members(match)
        except LookupError:
            return self.error(404, f"list {match['list_id']!r} does not exist")
        if not self.store.delete("members", match["subscriber_hash"]):
            return self.error(404, "no such member")
        return Response(204)


class InvoicingApi(Api):
    """Ledger Invoicing: page-numbered invoices (source), HTTP basic auth."""

    name, spec_file, collections = "invoicing", "invoicing.json", ("invoices",)

    def setup(self) -> None:
        self.seed("invoices", seed_invoices(random.Random(2), self.n(45)))
        self.route("GET", "/invoices", self.list_invoices)

    def authorised(self, req: Request) -> bool:
        expected = base64.b64encode(
            f"{self.creds['LEDGER_USERNAME']}:{self.creds['LEDGER_PASSWORD']}".encode()
        ).decode()
        return same_secret(req.headers.get("Authorization") or "", f"Basic {expected}")

    def error(self, status: int, message: str, details: Sequence[str] = ()) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="ledger"'} if status == 401 else {}
        return Response(
            status, {"error": error_code(status), "message": message}, headers
        )

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
    """Till POS: offset-paged sales (source), API key in the query string; and
    the saleCompleted webhook, signed as Standard Webhooks says, on each new sale."""

    name, spec_file, collections = "pos", "pos.yaml", ("sales",)
    RETRIES = 5  # a delivery is sent again until it is answered 2xx

    def setup(self) -> None:
        self.seed("sales", seed_sales(random.Random(3), self.n(80)))
        self.route("GET", "/sales", self.list_sales)
        self.subscribers: list[str] = []

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

    def subscribe(self, url: str) -> None:
        """Send a saleCompleted webhook to `url` for every sale from now on."""
        self.subscribers.append(url)

    def ring_up(self, count: int, seed: int = 7) -> list[Json]:
        """Complete `count` new sales: each is stored, then delivered to every
        subscriber (retried until answered 2xx). Returns the sales."""
        known = len(self.store.all("sales"))
        fresh = seed_sales(random.Random(seed), known + count)[known:]
        with httpx.Client(timeout=10) as client:
            for sale in fresh:
                self.store.add("sales", sale)
                event = {"type": "sale.completed", "timestamp": _now(), "data": sale}
                for url in self.subscribers:
                    self.deliver(client, url, f"msg_{sale['id']}", event)
        return fresh

    def deliver(
        self, client: httpx.Client, url: str, event_id: str, event: Json
    ) -> None:
        body = json.dumps(event).encode()
        for attempt in range(self.RETRIES):
            # a fresh timestamp on each try, as senders do
            headers = standard_webhook_headers(
                self.creds["POS_WEBHOOK_SECRET"], event_id, body
            )
            try:
                if client.post(url, content=body, headers=headers).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1 * 2**attempt)


def standard_webhook_headers(secret: str, event_id: str, body: bytes) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (v1: the base64
    HMAC-SHA256 of "id.timestamp.body" keyed with the secret's base64 after whsec_)."""
    stamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256)
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class InventoryApi(Api):
    """Stockroom: adjustments (target) behind OAuth2 client credentials."""

    name, spec_file, collections = "inventory", "inventory.yaml", ("adjustments",)

    def setup(self) -> None:
        self.tokens: dict[str, float] = {}
        self.check = body_validator(
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
        self.seed("treatments", seed_treatments(random.Random(4), self.n(55)))
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
        self.check = body_validator(self.spec, "POST", "/charges")
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
                "created_at": now_iso(),
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
