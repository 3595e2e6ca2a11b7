"""What the demo APIs share: SQLite store, spec checks, request plumbing, seed data."""

from __future__ import annotations

import base64
import binascii
import json
import random
import secrets
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import (
    OAS30WriteValidator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)

Json = dict[str, Any]
Validate = Callable[[Any], list[str]]

# Source timestamps are fixed so that every demo run and every test sees the
# same data; only records the targets create carry the real clock.
EPOCH = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """Format an aware datetime the way the example APIs do (UTC, `Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    """Return the current time as an API timestamp."""
    return iso(datetime.now(UTC))


# ---------------------------------------------------------------- the store


class Store:
    """One API's records and idempotency keys in an in-memory SQLite database."""

    def __init__(self) -> None:
        # One connection shared by the server's threads, serialised by a lock:
        # the data is tiny and a lock makes check-then-insert (idempotency)
        # atomic without SQLite transactions across requests.
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.RLock()
        self._numbers: dict[str, int] = {}  # the last number given, by collection
        self._db.executescript("""
            CREATE TABLE records (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                collection TEXT NOT NULL,
                id TEXT NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX records_by_collection ON records (collection, seq);
            CREATE TABLE idempotency (
                key TEXT PRIMARY KEY,
                status INTEGER NOT NULL,
                body TEXT NOT NULL
            );
            """)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store for a read-check-write sequence."""
        with self._lock:
            yield

    def add(self, collection: str, record: Json) -> None:
        """Append a record; `id` may be absent on deliberately broken seeds."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO records (collection, id, body) VALUES (?, ?, ?)",
                (collection, str(record.get("id", "")), json.dumps(record)),
            )

    def all(self, collection: str) -> list[Json]:
        """Return a collection in insertion order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM records WHERE collection = ? ORDER BY seq",
                (collection,),
            ).fetchall()
        return [json.loads(body) for (body,) in rows]

    def page(
        self,
        collection: str,
        after: int,
        limit: int,
        at_least: tuple[str, str] | None = None,
    ) -> tuple[list[tuple[int, Json]], bool]:
        """Return up to `limit` (seq, record) pairs after `after`, and whether more follow.

        Keyset paging on the insertion sequence keeps a page cheap however large
        the collection; `at_least` is an optional (top-level field, minimum) filter.
        """
        sql = "SELECT seq, body FROM records WHERE collection = ? AND seq > ?"
        args: list[Any] = [collection, after]
        if at_least is not None:
            sql += " AND json_extract(body, ?) >= ?"
            args += [f"$.{at_least[0]}", at_least[1]]
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit + 1)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        found = [(int(seq), json.loads(body)) for seq, body in rows[:limit]]
        return found, len(rows) > limit

    def exists(self, collection: str, field: str, value: str) -> bool:
        """Whether a record's top-level `field` equals `value`."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM records WHERE collection = ? "
                "AND json_extract(body, ?) = ? LIMIT 1",
                (collection, f"$.{field}", value),
            ).fetchone()
        return row is not None

    def find(self, collection: str, record_id: str) -> Json | None:
        """The record with this id, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM records WHERE collection = ? AND id = ?",
                (collection, record_id),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def replace(self, collection: str, record_id: str, record: Json) -> bool:
        """Replace the record with this id in place; False when there is none."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "UPDATE records SET body = ? WHERE collection = ? AND id = ?",
                (json.dumps(record), collection, record_id),
            )
        return cursor.rowcount > 0

    def delete(self, collection: str, record_id: str) -> bool:
        """Delete the record with this id; False when there is none."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "DELETE FROM records WHERE collection = ? AND id = ?",
                (collection, record_id),
            )
        return cursor.rowcount > 0

    def next_number(self, collection: str) -> int:
        """A number for a new record's id, never one a deleted record had."""
        with self._lock:
            self._numbers[collection] = self._numbers.get(collection, 0) + 1
            return self._numbers[collection]

    def count(self, collection: str) -> int:
        """Return how many records a collection holds."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM records WHERE collection = ?", (collection,)
            ).fetchone()
        return int(n)

    def remembered(self, key: str) -> tuple[int, Json] | None:
        """Return the response first given for an idempotency key, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT status, body FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def remember(self, key: str, status: int, body: Json) -> None:
        """Keep the response of a write under its idempotency key."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)",
                (key, status, json.dumps(body)),
            )

    def close(self) -> None:
        """Release the database."""
        with self._lock:
            self._db.close()


# ------------------------------------------------------- specs and schemas


def _load(path: Path) -> Json:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an OpenAPI document")
    return data


def load_spec(path: Path) -> Json:
    """Load a spec with every `$ref`, local or to another file, inlined."""
    cache: dict[Path, Json] = {}

    def document(file: Path) -> Json:
        if file not in cache:
            cache[file] = _load(file)
        return cache[file]

    def resolve(node: Any, file: Path, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, file, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            target_file, _, pointer = ref.partition("#")
            where = (file.parent / target_file).resolve() if target_file else file
            marker = f"{where}#{pointer}"
            if marker in seen:
                raise ValueError(f"recursive $ref {ref} in {file}")
            target: Any = document(where)
            for part in filter(None, pointer.split("/")):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(target, where, (*seen, marker))
        return {key: resolve(value, file, seen) for key, value in node.items()}

    root = path.resolve()
    resolved = resolve(document(root), root, ())
    assert isinstance(resolved, dict)
    return resolved


def body_validator(spec: Json, method: str, path: str) -> Validate:
    """Build a checker for an operation's JSON request body, as the spec says."""
    operation = spec["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if str(spec.get("openapi", "")).startswith("3.1"):
        checker: Any = OAS31Validator(schema, format_checker=oas31_format_checker)
    else:
        # The write validator ignores required readOnly fields and rejects
        # readOnly fields sent by the client, as a real server would.
        checker = OAS30WriteValidator(schema, format_checker=oas30_format_checker)

    def validate(body: Any) -> list[str]:
        errors = sorted(checker.iter_errors(body), key=lambda e: list(e.path))
        return [
            f"{'.'.join(str(p) for p in error.path) or '(body)'}: {error.message}"
            for error in errors
        ]

    return validate


# ------------------------------------------------- requests and responses


@dataclass
class Request:
    """What a handler needs from one HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes

    def json(self) -> Any:
        """Decode the body; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def bearer(self) -> str:
        """Return the bearer token sent, or an empty string."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""


@dataclass
class Response:
    """A JSON answer."""

    status: int
    body: Json | None = None
    headers: dict[str, str] = field(default_factory=dict)


class BadParam(ValueError):
    """A query parameter outside what the spec allows."""


def int_param(req: Request, name: str, default: int, low: int, high: int) -> int:
    """Read an integer query parameter within the spec's bounds."""
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(f"{name}: {raw!r} is not an integer") from None
    if not low <= value <= high:
        raise BadParam(f"{name}: {value} is not between {low} and {high}")
    return value


def enum_param(req: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """Read an optional enum query parameter."""
    value = req.query.get(name)
    if value is not None and value not in allowed:
        raise BadParam(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def same_secret(given: str, expected: str) -> bool:
    """Compare credentials in constant time; any text, not only ASCII."""
    return secrets.compare_digest(given.encode(), expected.encode())


def encode_cursor(value: str) -> str:
    """Make a position opaque, as real cursor APIs do."""
    return base64.urlsafe_b64encode(value.encode()).decode("ascii").rstrip("=")


def decode_cursor(name: str, raw: str) -> str:
    """Undo `encode_cursor`; a tampered cursor is a bad parameter."""
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadParam(f"{name}: {raw!r} is not a cursor from this API") from None


def moment_param(raw: Any, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise BadParam(f"{name}: {raw!r} is not a date-time") from None
    if moment.tzinfo is None:
        raise BadParam(f"{name}: {raw!r} has no time zone")
    return moment


# ------------------------------------------------------------- seed data

FIRST = (
    "Ada Grace Alan Katherine Linus Margaret Dennis Barbara Ken Frances Zoë Seán "
    "Anne-Marie Tim Radia"
).split()
LAST = (
    "Lovelace,Hopper,Turing,Johnson,Torvalds,Hamilton,Ritchie,Liskov,Thompson,"
    "Allen,O'Brien,Núñez,van Rossum,Berners-Lee,Perlman"
).split(",")
COMPANIES = (
    "Analytical Engines Ltd,Cobol Systems,Bletchley Analytics,Apollo Guidance Co,"
    "Bell Labs Retro,Müller & Söhne GmbH"
).split(",")
CITIES = [
    ("Bristol", "BS1 5TR", "GB"),
    ("Dublin", "D02 X285", "IE"),
    ("Lyon", "69002", "FR"),
    ("Utrecht", "3511 AB", "NL"),
]


def seed_contacts(rng: random.Random, n: int = 60) -> list[Json]:
    """CRM contacts; every fifth archived, some with gaps a real CRM has."""
    contacts: list[Json] = []
    for i in range(1, n + 1):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        created = EPOCH + timedelta(days=i * 3, minutes=rng.randrange(600))
        # Names keep their accents; addresses are ASCII, as the spec's
        # `format: email` (not idn-email) requires.
        plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode(
            "ascii", "ignore"
        )
        slug = plain.decode().lower().replace("'", "").replace(" ", "")
        contact: Json = {
            "id": f"c_{i:04d}",
            "email": f"{slug}{i}@example.com",
            "name": {"first": first, "last": last},
            "tier": ["gold", "silver", "bronze"][rng.randrange(3)],
            "status": "archived" if i % 5 == 0 else "active",
            "created": int(created.timestamp()),
            "updated_at": iso(created + timedelta(days=rng.randrange(1, 90))),
            "phone": None if i % 4 == 0 else f"+44117946{i:04d}",
            "company": COMPANIES[i % len(COMPANIES)],
            "tags": rng.sample(
                ["newsletter", "event-2024", "trial", "partner"], rng.randrange(3)
            ),
        }
        city, postcode, country = CITIES[i % len(CITIES)]
        if i % 6 != 0:
            contact["address"] = {
                "line1": f"{i} Harbour Road",
                "city": city,
                "postcode": postcode,
                "country": country,
            }
        # Valid but awkward: no tier (optional), upper-case mail, a bare name.
        if i % 11 == 0:
            del contact["tier"]
        if i % 13 == 0:
            contact["email"] = contact["email"].upper()
        if i % 17 == 0:
            contact["name"] = {"first": first, "last": ""}
        contacts.append(contact)
    return contacts


def seed_invoices(rng: random.Random, n: int = 45) -> list[Json]:
    """Ledger invoices, about two thirds paid, several per customer."""
    invoices: list[Json] = []
    for i in range(1, n + 1):
        who = i % 18
        issued = EPOCH.date() + timedelta(days=i * 2)
        status = "paid" if i % 3 else ["draft", "sent", "void"][i % 9 // 3]
        lines: list[Json] = [
            {
                "description": desc,
                "quantity": rng.randrange(1, 12),
                "unit_price_cents": rng.choice([1500, 4999, 12500, 80000]),
            }
            for desc in rng.sample(
                ["Consulting", "Licence", "Support plan", "Training day", "Travel"],
                rng.randrange(1, 4),
            )
        ]
        customer: Json = {
            "id": f"cus_{who:04d}",
            "name": f"{FIRST[who % len(FIRST)]} {LAST[who % len(LAST)]}",
            "email": f"billing+{who}@{['acme', 'initech', 'globex'][who % 3]}.example",
            "company": COMPANIES[who % len(COMPANIES)],
        }
        if who % 7 == 0:
            del customer["company"]  # sole traders have none
        invoices.append(
            {
                "id": f"inv_{i:06d}",
                "number": f"2024-{i:04d}",
                "customer": customer,
                "amount_cents": sum(
                    x["quantity"] * x["unit_price_cents"] for x in lines
                ),
                "currency": ["EUR", "GBP", "USD"][who % 3],
                "status": status,
                "issued_on": issued.isoformat(),
                "paid_at": (
                    iso(
                        datetime.combine(issued, datetime.min.time(), UTC)
                        + timedelta(days=rng.randrange(3, 30), hours=10)
                    )
                    if status == "paid"
                    else None
                ),
                "lines": lines,
            }
        )
    return invoices


PRODUCTS = [
    ("TEA-EARLGREY-250", "Earl Grey 250 g", 4.5),
    ("TEA-SENCHA-100", "Sencha 100 g", 7.25),
    ("MUG-STONE-01", "Stoneware mug", 12.0),
    ("POT-CAST-08", "Cast iron teapot 0.8 l", 39.9),
    ("BISC-GINGER", "Ginger biscuits", 2.99),
]


def seed_sales(rng: random.Random, n: int = 80) -> list[Json]:
    """Till sales across three stores; a few refunded, cashier often unknown."""
    sales: list[Json] = []
    for i in range(1, n + 1):
        items = [
            {
                "product": {"sku": sku, "name": name},
                "quantity": rng.randrange(1, 5),
                "unit_price": price,
            }
            for sku, name, price in rng.sample(PRODUCTS, rng.randrange(1, 4))
        ]
        sold = EPOCH + timedelta(hours=i * 5, minutes=rng.randrange(60))
        sales.append(
            {
                "id": f"sale_{i:06d}",
                "store_id": ["store-bristol", "store-bath", "store-cardiff"][i % 3],
                "sold_at": sold.isoformat(),  # +00:00 rather than Z: both are valid
                "items": items,
                "payment_method": ["card", "card", "cash", "voucher"][rng.randrange(4)],
                "refunded": i % 19 == 0,
                "cashier": None if i % 4 == 0 else ["Sam", "Priya", "Olu"][i % 3],
            }
        )
    return sales


CODES = [
    ("D0120", "Periodic oral evaluation"),
    ("D1110", "Prophylaxis, adult"),
    ("D0274", "Bitewings, four films"),
    ("D2391", "Resin composite, one surface"),
    ("D7140", "Extraction, erupted tooth"),
]


def seed_treatments(rng: random.Random, n: int = 55) -> list[Json]:
    """CarePoint treatments; a few with a code the billing system will refuse."""
    treatments: list[Json] = []
    for i in range(1, n + 1):
        pid = i % 21
        code, description = CODES[rng.randrange(len(CODES))]
        performed = EPOCH.date() + timedelta(days=i)
        treatment: Json = {
            "id": f"tr_{i:06d}",
            "patient": {
                "id": f"pt_{pid:04d}",
                "mrn": f"MRN-{4200 + pid:06d}",
                "name": f"{FIRST[pid % len(FIRST)]} {LAST[pid % len(LAST)]}",
            },
            "code": code,
            "description": description,
            "performed_on": performed.isoformat(),
            "clinician": None if i % 8 == 0 else "Dr. Amara Okafor",
            "units": 4 if code == "D0274" else 1,
            "status": "cancelled" if i % 12 == 0 else "completed",
            "updated_at": iso(
                datetime.combine(performed, datetime.min.time(), UTC)
                + timedelta(hours=11, minutes=i)
            ),
        }
        # Legacy entries typed by hand: valid here, but not a code Billable takes.
        if i % 23 == 0:
            treatment["code"] = code.lower()
        if i % 10 == 0:
            del treatment["description"]
        treatments.append(treatment)
    return treatments


def _break_contact(record: Json) -> None:
    record.pop("email", None)


def _break_invoice(record: Json) -> None:
    record["amount_cents"] = f"{record['amount_cents'] / 100:.2f}"


def _break_sale(record: Json) -> None:
    record["items"] = "see paper receipt"


def _break_treatment(record: Json) -> None:
    record["units"] = None


BREAKERS: dict[str, Callable[[Json], None]] = {
    "contacts": _break_contact,
    "invoices": _break_invoice,
    "sales": _break_sale,
    "treatments": _break_treatment,
}


def corrupt(
    collection: str, records: list[Json], n: int, rng: random.Random
) -> list[str]:
    """Make `n` records violate their own schema; return their ids."""
    chosen = rng.sample(range(len(records)), min(n, len(records)))
    for index in chosen:
        BREAKERS[collection](records[index])
    return sorted(str(records[i]["id"]) for i in chosen)
