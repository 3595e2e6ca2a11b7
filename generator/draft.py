"""Draft a mapping file from two operations: `p2pgen init`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from generator.auth import operation_auth
from generator.errors import Code, P2pgenError, Problem
from generator.kinds.auth import KINDS
from generator.kinds.pagination import KEY_KINDS, DraftFacts, draft_guess
from generator.literals import comment
from generator.load import validate_once
from generator.mapping import Loc
from generator.resolve import resolve
from generator.runtime.mapping import path_keys, path_of
from generator.samples import sample
from generator.schemas import Shape, Walker, takes
from generator.specs import (
    Operation,
    Schema,
    SpecSet,
    find_operation,
    iter_operations,
    own_key,
    schema_name,
)

# The property names a draft maps; a dot in one is written `\.` in its path
# (Microsoft Graph's `@odata.type`).
DRAFTED_NAME = r"[A-Za-z0-9_\-@.]+"
# Groups of field names that mean the same thing in different APIs.
SYNONYMS = (
    {"email", "emailaddress", "mail", "emailaddr", "primaryemail"},
    {"firstname", "givenname", "fname", "forename"},
    {"lastname", "familyname", "surname", "lname"},
    {"name", "fullname", "displayname", "title", "subject"},
    {"phone", "phonenumber", "telephone", "mobile", "tel"},
    {"company", "companyname", "organization", "organisation", "org", "employer"},
    {"createdat", "created", "createdon", "creationdate", "datecreated", "signedupat"},
    {"updatedat", "updated", "modifiedat", "modified", "lastmodified", "updatedon"},
    {"id", "externalid", "externalref", "sourceid", "sourceref", "reference", "ref"},
    {"quantity", "qty", "units", "count"},
    {"sku", "productcode", "itemcode"},
    {"amount", "amountcents", "total", "price"},
    {"postcode", "zip", "zipcode", "postalcode"},
    {"country", "countrycode"},
    {"city", "town", "locality"},
    {"description", "desc", "notes", "note", "summary", "body", "content"},
)
# Groups of object names that stand for the same kind of thing: a nested source
# field is matched only under an object related to the target (customer.email for
# a contact's email), never across unrelated objects (application.name).
RELATED = (
    {
        "customer",
        "contact",
        "member",
        "person",
        "people",
        "user",
        "client",
        "subscriber",
        "lead",
        "profile",
        "owner",
    },
    {"address", "billingaddress", "shippingaddress", "location"},
    {"task", "issue", "ticket", "card", "item", "todo"},
    {"company", "organization", "organisation", "account", "business"},
    {"order", "invoice", "sale", "purchase", "transaction", "charge", "payment"},
    {"product", "item", "article", "variant"},
)
RECORD_LISTS = ("data", "items", "results", "records", "entries", "values", "list")
NOT_RECORD_LISTS = ("errors", "warnings", "messages", "notices", "links")
LIMIT_PARAMS = ("limit", "perpage", "pagesize", "count", "maxresults")
INCREMENTAL_PARAMS = (
    "updated_since",
    "modified_since",
    "updated_after",
    "since",
    "changed_since",
    "updated_at_min",
    "modified_after",
)
INCREMENTAL_FIELDS = (
    "updated_at",
    "updatedAt",
    "modified_at",
    "modified",
    "updated",
    "last_modified",
    "lastModified",
)
CONVERSION_FOR_FORMAT = {"date-time": "datetime", "date": "date"}


def normalise(name: str) -> str:
    """Compare names across case, `_`, `-` and camelCase: firstName == first_name."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _synonyms(name: str) -> set[str]:
    key = normalise(name)
    for group in SYNONYMS:
        if key in group:
            return group
    return {key}


def _yaml(value: str) -> str:
    """A YAML scalar: plain when that is unambiguous, else a JSON string."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*", value) and value.lower() not in {
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "y",
        "n",
    }:
        return value
    return json.dumps(value)


@dataclass
class Draft:
    """The mapping being drafted: its lines, the target each field line sets, and
    which lines are its frame (top-level keys, `spec:`, `operation:`).

    Structure follows indentation: an entry's children are the lines below it
    indented deeper. Repairs comment out whole entries, never the frame, so the
    draft always stays a mapping its reader accepts.
    """

    lines: list[str] = field(default_factory=list)
    targets: dict[int, str] = field(default_factory=dict)  # line index -> target
    frame: set[int] = field(default_factory=set)  # line indexes never disabled
    parts: set[int] = field(default_factory=set)  # lines whose parent goes with them

    def add(
        self, text: str = "", target: str = "", frame: bool = False, part: bool = False
    ) -> None:
        index = len(self.lines)
        if target:
            self.targets[index] = target
        if frame or not text.startswith(" "):
            self.frame.add(index)
        if part:
            self.parts.add(index)
        self.lines.append(text)

    def add_stub(self, target: str, note: str) -> None:
        stub = re.sub(r"\W+", "_", normalise_snake(target)).strip("_") + "_for"
        at = self._end(self._fields_line())
        self.lines.insert(at, f"  {_yaml(target)}: {{stub: {stub}}}  # {note}")
        self._shift(at)
        self.targets[at] = target

    def disable(self, line: int, reason: str) -> bool:
        """Comment out the drafted entry on `line` (1-based) with its children, and
        a parent left empty; False if the line holds no entry that can go.
        """
        index = line - 1
        if not self._active(index) or index in self.frame:
            return False
        while index in self.parts:  # a pagination key goes with its block
            parent = self._parent(index)
            if parent is None or parent in self.frame:
                return False
            index = parent
        self._comment(index, f"p2pgen init: {' '.join(reason.split())}")
        parent = self._parent(index)
        while parent is not None and parent not in self.frame:
            if any(self._active(i) for i in range(parent + 1, self._end(parent))):
                break
            self._comment(parent, "p2pgen init: nothing left under it")
            parent = self._parent(parent)
        return True

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"

    def _active(self, index: int) -> bool:
        if not 0 <= index < len(self.lines):
            return False
        text = self.lines[index].strip()
        return bool(text) and not text.startswith("#")

    @staticmethod
    def _indent(text: str) -> int:
        return len(text) - len(text.lstrip(" "))

    def _parent(self, index: int) -> int | None:
        indent = self._indent(self.lines[index])
        for i in range(index - 1, -1, -1):
            if self._active(i) and self._indent(self.lines[i]) < indent:
                return i
        return None

    def _end(self, index: int) -> int:
        """The index after the last line of the entry on `index` (its children)."""
        indent = self._indent(self.lines[index])
        end = index + 1
        for i in range(index + 1, len(self.lines)):
            text = self.lines[i]
            if text.strip() and self._indent(text) <= indent:
                break
            if text.strip():
                end = i + 1
        return end

    def _fields_line(self) -> int:
        return next(i for i, text in enumerate(self.lines) if text == "fields:")

    def _comment(self, index: int, reason: str) -> None:
        for i in range(index, self._end(index)):
            if self._active(i):
                text = self.lines[i]
                note = f"  # {reason}" if i == index else ""
                self.lines[i] = f"{' ' * self._indent(text)}# {text.strip()}{note}"
                self.targets.pop(i, None)

    def _shift(self, at: int) -> None:
        """Line indexes at or after `at` move down one (a line was inserted)."""
        self.targets = {i + (i >= at): t for i, t in self.targets.items()}
        self.frame = {i + (i >= at) for i in self.frame}
        self.parts = {i + (i >= at) for i in self.parts}


@dataclass(frozen=True)
class _Candidate:
    path: str  # dotted source path
    shape: Shape
    schema: Schema


MAX_DRAFT_DEPTH = 6  # nested target objects drafted field by field, at most


class Drafter:
    def __init__(
        self, source: Operation, target: Operation, walker: Walker, out_dir: Path
    ) -> None:
        self.source = source
        self.target = target
        self.walker = walker
        self.out_dir = out_dir
        self.used: set[str] = set()
        self.stubs: set[str] = set()
        self.context = self._context()
        self.unmapped: dict[int, tuple[str, Shape]] = {}  # line -> optional target

    def draft(self, name: str) -> Draft:
        d = Draft()
        records_path, record = self._records()
        d.add("version: 1")
        d.add(f"name: {_yaml(name)}")
        d.add(f"description: {_yaml(self._describe())}")
        d.add()
        d.add("source:")
        d.add(f"  spec: {_yaml(self._relative(self.source.doc.path))}", frame=True)
        d.add(f"  operation: {_yaml(self._op_ref(self.source))}", frame=True)
        self._auth_note(d, self.source, "source")
        if records_path:
            d.add(f"  records: {_yaml(records_path)}  # the list found in the response")
        self._source_params(d, record)
        self._source_body(d)
        d.add()
        d.add("target:")
        d.add(f"  spec: {_yaml(self._relative(self.target.doc.path))}", frame=True)
        d.add(f"  operation: {_yaml(self._op_ref(self.target))}", frame=True)
        self._auth_note(d, self.target, "target")
        self._target_params(d, record)
        candidates = list(self._candidates(record, "", 0)) if record else []
        self._upsert(d, candidates)
        d.add()
        d.add("fields:")
        if self.target.request_body is not None:
            self._fields(d, self.target.request_body, "", candidates)
        if not d.targets:
            self._one_field(d)
        unused = [
            c.path
            for c in candidates
            if c.path not in self.used
            and not any(u.startswith(c.path + ".") for u in self.used)
        ]
        if unused:
            d.add()
            d.add(
                "# Source fields not mapped: "
                + ", ".join(unused[:40])
                + (" ..." if len(unused) > 40 else "")
            )
        return d

    def _describe(self) -> str:
        def label(op: Operation) -> str:
            title = str((op.doc.data.get("info") or {}).get("title", op.doc.path.stem))
            return f"{title} {op.operation_id or op.label}"

        return f"{label(self.source)} -> {label(self.target)} (drafted by p2pgen init)"

    def _relative(self, path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), self.out_dir.resolve())).as_posix()

    @staticmethod
    def _op_ref(op: Operation) -> str:
        return op.operation_id or op.label

    def _records(self, op: Operation | None = None) -> tuple[str, Schema | None]:
        """Where the records are in the answer of `op` (default: the source's)."""
        response = (op or self.source).response
        if response is None:
            return "", None
        shape = self.walker.shape(response)
        if "array" in shape.types and shape.items is not None:
            return "", shape.items
        lists = [
            (name, items)
            for name, prop in shape.properties.items()
            if name  # a property named '' (nic.at) is no path to records
            and (items := self.walker.shape(prop).items) is not None
            and "array" in self.walker.shape(prop).types
        ]
        if not lists:
            return "", None
        return min(lists, key=lambda item: (self._record_rank(*item), item[0]))

    def _record_rank(self, name: str, items: Schema) -> tuple[bool, bool, bool, bool]:
        """Lower is likelier the records: a list of objects with an id, named like
        records, not a list of errors, warnings or messages.
        """
        props = self.walker.shape(items).properties
        return (
            normalise(name) in NOT_RECORD_LISTS,
            not any(normalise(p) in ("id", "gid", "uuid", "key") for p in props),
            not props,
            normalise(name) not in RECORD_LISTS,
        )

    def _auth_note(self, d: Draft, op: Operation, side: str) -> None:
        """A comment naming the operation's scheme and the variables it reads; no
        `auth:` block, as the operation's first requirement is the default. A
        scheme p2pgen does not build in gets `auth.stub`, a function to write."""
        stub = ""
        try:
            auth = operation_auth(self.walker.specs, op, side, Loc("", 0, 0))
        except P2pgenError as error:
            if error.problems[0].code != Code.AUTH_UNSUPPORTED:
                return  # the check of the draft reports it
            stub = f"sign_{side}_request"
            auth = operation_auth(self.walker.specs, op, side, Loc("", 0, 0), stub=stub)
        note = comment(KINDS[auth.kind].draft_note(dataclasses.asdict(auth)))
        if stub:
            d.add(f"  auth:  # {note}")
            d.add(f"    stub: {stub}", part=True)
        elif note:
            d.add(f"  # {note}")

    def _source_params(self, d: Draft, record: Schema | None) -> None:
        params = {p.name: p for p in self.source.parameters}
        body_props = (
            self.walker.shape(self.source.request_body).properties
            if self.source.request_body is not None and self.source.method != "get"
            else {}
        )
        # a POST search takes its page position in the body (body.PATH)
        lowered = {normalise(n): f"body.{n}" for n in body_props} | {
            normalise(n): n for n in params
        }
        response_props = (
            self.walker.shape(self.source.response).properties
            if self.source.response is not None
            else {}
        )
        guess = draft_guess(
            DraftFacts(
                params=lowered,
                response_fields={normalise(n): n for n in response_props},
                string_fields=frozenset(
                    n
                    for n, prop in response_props.items()
                    if "string" in self.walker.shape(prop).types
                ),
                record_fields=frozenset(
                    self.walker.shape(record).properties if record is not None else ()
                ),
                next_url=self._next_url(),
                limit_param=next(
                    (lowered[k] for k in LIMIT_PARAMS if k in lowered), None
                ),
            )
        )
        keys = dict(guess.keys) if guess else {}
        handled = {
            str(value)
            for key, value in keys.items()
            if KEY_KINDS.get(key) == "parameter"
        }
        required = [
            p for p in self.source.parameters if p.required and p.name not in handled
        ]
        if required:
            d.add("  params:")
            for p in required:
                d.add(
                    f"    {_yaml(p.name)}: {{env: {_env_name(p.name)}}}  # required "
                    f"{p.location} parameter"
                )
        if guess is not None:
            d.add(f"  pagination:  # {guess.basis}; check it against the API's docs")
            for key, value in guess.keys:
                shown = _yaml(value) if isinstance(value, str) else value
                d.add(f"    {key}: {shown}", part=True)
        incremental = next((n for n in params if n.lower() in INCREMENTAL_PARAMS), None)
        record_props = (
            self.walker.shape(record).properties if record is not None else {}
        )
        stamp = next((n for n in INCREMENTAL_FIELDS if n in record_props), None)
        if incremental and stamp and incremental not in handled:
            d.add(
                "  incremental:  # only records changed since the last successful run"
            )
            d.add(f"    param: {_yaml(incremental)}", part=True)
            d.add(f"    field: {_yaml(stamp)}", part=True)

    def _source_body(self, d: Draft) -> None:
        """`source.body` for a source that takes one (a POST search): its required
        properties, strings from the environment and the rest sample constants."""
        if self.source.request_body is None or (
            self.source.method == "get" and not self.source.request_required
        ):
            return  # Stripe declares optional empty form bodies on its GETs
        shape = self.walker.shape(self.source.request_body)
        optional = sorted(set(shape.properties) - shape.required)
        note = f"; optional: {', '.join(optional[:12])}" if optional else ""
        required = [n for n in shape.properties if n in shape.required]
        if not required:
            d.add(f"  body: {{}}  # sent with every request{comment(note)}")
            return
        d.add(f"  body:  # sent with every request{comment(note)}")
        for name in required:
            prop = shape.properties[name]
            prop_shape = self.walker.shape(prop)
            env = f"{{env: {_env_name(name)}}}"
            if "string" in prop_shape.types:
                value = env
            elif (
                "array" in prop_shape.types
                and prop_shape.items is not None
                and ("string" in self.walker.shape(prop_shape.items).types)
            ):
                value = f"[{env}]"
            else:
                value = json.dumps(sample(self.walker, prop, name))
            d.add(f"    {_yaml(name)}: {value}  # required")

    def _next_url(self) -> str | None:
        """A string in the response that holds the next page's URL, if any."""
        if self.source.response is None:
            return None
        for candidate in self._candidates(self.source.response, "", 0):
            parts = [normalise(p) for p in path_keys(candidate.path)]
            url_like = (
                parts[-1] in ("nexturl", "nextlink", "nextpage", "nextpageurl")
                or (
                    parts[-1] == "next"
                    and (len(parts) > 1 or candidate.shape.format == "uri")
                )
                or (parts[-1] == "href" and len(parts) > 1 and parts[-2] == "next")
            )
            if url_like and "string" in candidate.shape.types:
                return candidate.path
        return None

    def _target_params(self, d: Draft, record: Schema | None) -> None:
        required = [
            p for p in self.target.parameters if p.required or p.location == "path"
        ]
        key = own_key(self.target)
        lines = [
            (
                self._own_key(p.name, record)
                if p.location == "path" and key == p.name
                else f"    {_yaml(p.name)}: {{env: {_env_name(p.name)}}}  # "
                f"{p.location} parameter"
            )
            for p in required
        ]
        if lines:
            active = any(not line.lstrip().startswith("#") for line in lines)
            d.add("  params:" if active else "  # params:")
        for line in lines:
            d.add(line)
        header = next(
            (
                p.name
                for p in self.target.parameters
                if normalise(p.name) == "idempotencykey"
            ),
            None,
        )
        record_props = (
            self.walker.shape(record).properties if record is not None else {}
        )
        if header and "id" in record_props:
            d.add("  idempotency_key:  # a retried write is applied once")
            d.add(f"    header: {_yaml(header)}", part=True)
            d.add("    from: id", part=True)

    def _upsert(self, d: Draft, candidates: list[_Candidate]) -> None:
        """target.match, when the target has an obvious search by key: a GET on
        the collection the operation creates in, with a query parameter named
        like a body field the source fills (email, external_ref, sku...).
        """
        body = self.target.request_body
        if self.target.method != "post" or body is None:
            return
        fields = self.walker.shape(body).properties
        for method, path, _ in iter_operations(self.target.doc):
            if method != "get" or path != self.target.path:
                continue
            search = find_operation(self.walker.specs, self.target.doc, f"GET {path}")
            records, item = self._records(search)
            for param in search.parameters:
                if param.location != "query" or param.name not in fields:
                    continue
                found, _, convert, _ = self._match(
                    param.name, fields[param.name], candidates
                )
                if found is None or convert or item is None:
                    continue
                d.add(
                    f"  match:  # p2pgen init: {search.label} searches by"
                    f" {param.name}, a field this link writes: look before creating,"
                    " so a rerun never duplicates"
                )
                d.add(f"    operation: {_yaml(self._op_ref(search))}", part=True)
                d.add(
                    f"    params: {{{_yaml(param.name)}: {_yaml(found.path)}}}",
                    part=True,
                )
                if records:
                    d.add(f"    records: {_yaml(records)}", part=True)
                self._update(d, item)
                return

    def _update(self, d: Draft, matched: Schema) -> None:
        """target.update: a PATCH (else PUT) of one record of the collection."""
        key = next(
            (
                k
                for k in ("id", "uuid", "key")
                if k in self.walker.shape(matched).properties
            ),
            None,
        )
        one = re.compile(re.escape(self.target.path.rstrip("/")) + r"/\{([^/{}]+)\}")
        body = self.target.request_body
        writes = set(self.walker.shape(body).properties) if body is not None else set()
        narrower = ""  # an update whose body lacks fields the create takes
        for wanted in ("patch", "put"):
            for method, path, _ in iter_operations(self.target.doc):
                found = one.fullmatch(path)
                if method != wanted or found is None or key is None:
                    continue
                op = find_operation(
                    self.walker.specs, self.target.doc, f"{method} {path}"
                )
                if op.request_body is None:
                    continue
                if not writes <= set(self.walker.shape(op.request_body).properties):
                    narrower = narrower or op.label
                    continue  # the update sends the create's body: it must fit
                d.add(
                    f"  update:  # p2pgen init: {op.label} changes the record the"
                    " match finds"
                )
                d.add(f"    operation: {_yaml(self._op_ref(op))}", part=True)
                d.add(
                    f"    params: {{{_yaml(found.group(1))}: {{match: {key}}}}}",
                    part=True,
                )
                return
        why = (
            f"{narrower} takes fewer fields than the create"
            if narrower
            else "no update operation found"
        )
        d.add(f"  on_match: skip  # p2pgen init: {why}; found: left as is")

    def _own_key(self, param: str, record: Schema | None) -> str:
        """The line for the path parameter naming the target record: from the
        source field of the same name (not the source's own `id`), else left for
        the user to map, never one {env: ...} value that would make every record
        write the same one.
        """
        fields = self.walker.shape(record).properties if record is not None else {}
        same = next((f for f in fields if normalise(f) == normalise(param)), None)
        if same is not None and normalise(param) != "id":
            return f"    {_yaml(param)}: {_yaml(same)}  # same name: the target's key"
        stub = self._stub_name(param)
        return (
            f"    {_yaml(param)}: {{stub: {stub}}}  # the target record's own key:"
            f" write {stub}() (or map the source field that holds it); one"
            " {env: ...} value would make every record write the same one"
        )

    def _candidates(
        self, schema: Schema, prefix: str, depth: int
    ) -> Iterator[_Candidate]:
        for name, prop in self.walker.shape(schema).properties.items():
            if not re.fullmatch(DRAFTED_NAME, name):
                continue
            shape = self.walker.shape(prop)
            path = prefix + path_of([name])
            yield _Candidate(path, shape, prop)
            if "object" in shape.types and shape.properties and depth < 2:
                yield from self._candidates(prop, path + ".", depth + 1)

    def _fields(
        self,
        d: Draft,
        schema: Schema,
        prefix: str,
        candidates: list[_Candidate],
        inside: frozenset[str] = frozenset(),
    ) -> None:
        """Lines for the target fields of `schema`, nested objects field by field,
        except one that holds itself (Google Slides' pages hold pages) or is one
        of several shapes (Rumble's secret: oneOf nine kinds of credentials,
        whose fields no one record has all of): those are mapped whole. `inside`
        holds the schemas of the objects around it."""
        inside = inside | {self.walker.specs.deref(schema).pointer}
        shape = self.walker.shape(schema)
        for name, prop in shape.properties.items():
            tshape = self.walker.shape(prop)
            if tshape.read_only or not re.fullmatch(DRAFTED_NAME, name):
                continue
            target = prefix + path_of([name])
            required = name in shape.required
            nested = "object" in tshape.types and tshape.properties
            held = self.walker.specs.deref(prop)
            if (
                nested
                and not tshape.free_form
                and len(held.node.get("oneOf") or held.node.get("anyOf") or ()) < 2
                and held.pointer not in inside
                and len(inside) < MAX_DRAFT_DEPTH
            ):
                before = len(d.lines)
                self._fields(d, prop, target + ".", candidates, inside)
                if len(d.lines) > before or not required:
                    continue
            default = self.walker.default(schema, name)
            if required and not nested and isinstance(default, str | int | float):
                # required with a default: a discriminator such as Microsoft Graph's
                # `@odata.type`, which names the target's kind, not the record's
                d.add(
                    f"  {_yaml(target)}: {{const: {json.dumps(default)}}}"
                    "  # required; the schema's default",
                    target,
                )
                continue
            candidate, basis, convert, passed = self._match(target, prop, candidates)
            unsafe = (
                f"; not taken from unrelated {', '.join(passed[:3])}" if passed else ""
            )
            if candidate is not None:
                self.used.add(candidate.path)
                value = _yaml(candidate.path)
                if convert:
                    value = f"{{from: {value}, as: {convert}}}"
                d.add(f"  {_yaml(target)}: {value}  # {basis}", target)
            elif required:
                stub = self._stub_name(target)
                d.add(
                    f"  {_yaml(target)}: {{stub: {stub}}}  # required, no source match"
                    f"{unsafe}: write {stub}() ({tshape.describe()})",
                    target,
                )
            else:
                self.unmapped.setdefault(len(d.lines), (target, tshape))
                d.add(f"  # {target}: not mapped ({tshape.describe()}){unsafe}")

    def _one_field(self, d: Draft) -> None:
        """A mapping sets at least one field: stub the first optional one."""
        if not self.unmapped:  # a body with no fields at all: `{}` is sent
            index = d.lines.index("fields:")
            d.lines[index] = (
                "fields: {}  # the request body has no fields to write; {} is sent"
            )
            return
        index, (target, tshape) = next(iter(self.unmapped.items()))
        stub = self._stub_name(target)
        d.lines[index] = (
            f"  {_yaml(target)}: {{stub: {stub}}}  # no source match, and a link sets"
            f" at least one field: write {stub}() ({tshape.describe()})"
        )
        d.targets[index] = target

    def _stub_name(self, target: str) -> str:
        base = re.sub(r"\W+", "_", normalise_snake(target)).strip("_") or "value"
        name = f"{base}_for" if not base[0].isdigit() else f"field_{base}_for"
        while name in self.stubs:
            name += "_"
        self.stubs.add(name)
        return name

    def _match(
        self, target: str, schema: Schema, candidates: list[_Candidate]
    ) -> tuple[_Candidate | None, str, str, list[str]]:
        """The source field for `target` (dotted), the basis, the conversion, and
        the name-alike fields passed over because they sit in unrelated objects.
        An object or list matches only where its fields fit the target's.
        """
        tshape = self.walker.shape(schema)
        *parents, name = path_keys(target)
        synonyms = _synonyms(name)
        context = self.context | {_singular(p) for p in parents}
        ranked: list[tuple[int, _Candidate, str]] = []
        passed: list[str] = []
        for c in candidates:
            if c.path in self.used:
                continue
            *owners, last = path_keys(c.path)
            if normalise(c.path) == normalise(target):
                ranked.append((0, c, "same name"))
                continue
            if normalise(last) not in synonyms:
                continue
            same = "same name" if normalise(last) == normalise(name) else "synonyms"
            if not owners:
                basis = (
                    "same name" if same == "same name" else f"synonyms: {last} ~ {name}"
                )
                ranked.append((1 if same == "same name" else 2, c, basis))
            elif len(owners) == 1 and _related(owners[0], context):
                ranked.append((4, c, f"{same} as {c.path!r}, under {owners[0]!r}"))
            else:
                passed.append(c.path)
        for c in candidates:  # customer_email for email when customer relates
            prefix, _, rest = normalise_snake(c.path).partition("_")
            if (
                len(path_keys(c.path)) == 1
                and c.path not in self.used
                and rest
                and normalise(rest) in synonyms
                and _related(prefix, context)
            ):
                ranked.append((3, c, f"{c.path!r}: {rest} of the {prefix}"))
        ranked.sort(key=lambda item: (item[0], item[1].path))
        for _, candidate, basis in ranked:
            convert = _conversion(candidate.shape, tshape)
            if convert == "" and self.walker.misfit(candidate.schema, schema):
                convert = None
            if convert is not None:
                typed = f"{basis}, {tshape.describe()}"
                return candidate, typed, convert, passed
        return None, "", "", passed

    def _context(self) -> set[str]:
        """Words naming what the target operation writes (customer for
        createCustomer or POST /customers), singular and normalised.
        """
        body = self.target.request_body
        schema = schema_name(body.pointer) if body is not None else None
        named = f"{self.target.operation_id} {self.target.path} {schema or ''}"
        words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", named)
        return {_singular(w) for w in words}


def _singular(word: str) -> str:
    key = normalise(word)
    if key.endswith("ies"):
        return key[:-3] + "y"
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key


def _related(owner: str, context: set[str]) -> bool:
    key = _singular(owner)
    return key in context or any(key in group and group & context for group in RELATED)


def _conversion(source: Shape, target: Shape) -> str | None:
    """'' when the types match, a conversion name when one makes them, else None."""
    src = set(source.types) - {"null"}
    tgt = set(target.types) - {"null"}
    if target.enum is not None:
        if source.enum is None or not set(source.enum) <= set(target.enum):
            return None
    if not src or not tgt:
        return ""
    if target.format in CONVERSION_FOR_FORMAT and "string" in tgt:
        if source.format == target.format:
            return ""
        if src & {"integer", "number"} or source.format in CONVERSION_FOR_FORMAT:
            return CONVERSION_FOR_FORMAT[target.format]
        return None if source.format else ""
    if takes(tgt, src):
        return ""
    if tgt == {"string"} and src <= {"integer", "number", "boolean"}:
        return "string"
    if tgt == {"integer"} and src <= {"number", "string"}:
        return None
    return None


def normalise_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace(".", "_")


def _env_name(param: str) -> str:
    return re.sub(r"\W+", "_", normalise_snake(param)).strip("_").upper() or "PARAM"


def draft_mapping(
    source_spec: Path,
    source_op: str,
    target_spec: Path,
    target_op: str,
    name: str,
    path: Path,
) -> tuple[str, list[Problem]]:
    """The text of a mapping file at `path` for the two operations, checked and
    repaired, and the problems it still has; raises P2pgenError for bad specs.
    """
    specs = SpecSet()
    validated: dict[Path, list[Problem]] = {}
    docs = []
    for spec in (source_spec, target_spec):
        doc = specs.load(spec)
        validate_once(specs, doc, validated)
        docs.append(doc)
    source = find_operation(specs, docs[0], source_op)
    target = find_operation(specs, docs[1], target_op)
    if target.request_body is None:
        raise P2pgenError(
            [
                target.doc.problem(
                    f"target operation {target_op} has no JSON request body; choose"
                    f" one that accepts one (`p2pgen ops {target_spec}` lists them)",
                    target.pointer,
                )
            ]
        )
    draft = Drafter(source, target, Walker(specs), path.parent).draft(name)
    errors = _checked(draft, path)
    return draft.text(), errors


MAX_REPAIRS = 5


def _checked(draft: Draft, path: Path) -> list[Problem]:
    """Resolve the draft; repair what it rejects, a few rounds; the errors left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    trial = path.parent / f".{path.stem}.init.yaml"  # beside it: relative paths hold
    errors: list[Problem] = []
    try:
        for _ in range(MAX_REPAIRS):
            trial.write_text(draft.text(), encoding="utf-8")
            errors = resolve(trial, trial.parent).errors
            if not errors or not repair(draft, errors):
                break
    finally:
        trial.unlink(missing_ok=True)
    return errors


def repair(draft: Draft, problems: list[Problem]) -> bool:
    """Stub the required fields the check misses; comment out drafted lines it
    rejects. Acts on each problem's code and fields; False when nothing changed.
    """
    changed = False
    drafted = list(draft.targets.values())
    for problem in problems:
        if problem.code == Code.REQUIRED_FIELD_UNMAPPED:
            for target in problem.targets:
                draft.add_stub(target, "required")
                changed = True
        elif problem.line:
            changed = draft.disable(problem.line, problem.message) or changed
    if drafted and not draft.targets:  # a mapping needs one field: stub the first
        draft.add_stub(drafted[0], "the link needs one field; write it or map another")
    return changed
