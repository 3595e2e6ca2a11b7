"""OpenAPI documents: load them (via spec_files), follow `$ref`s and find operations."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from generator.errors import P2pgenError, Problem, did_you_mean
from generator.literals import py_literal
from generator.spec_files import YamlLoader, parse_text, read_text

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEMA_HOMES = ("/components/schemas/", "/definitions/")


@dataclass(frozen=True, eq=False)
class Document:
    """One parsed spec file with what we need to report problems in it."""

    path: Path
    data: Any
    text: str
    sha256: str
    warnings: tuple[Problem, ...] = ()  # found while parsing, e.g. duplicate keys
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_swagger2(self) -> bool:
        return isinstance(self.data, dict) and "swagger" in self.data

    def line_of(self, pointer: str) -> int:
        """Return the 1-based line of a JSON pointer in a YAML/JSON file, or 0."""
        if "\n" not in self.text.rstrip():
            return (
                1  # one line (minified JSON, as every APIs.guru spec): no parse needed
            )
        if "tree" not in self.cache:
            try:
                self.cache["tree"] = yaml.compose(self.text, Loader=YamlLoader)
            except yaml.YAMLError:
                self.cache["tree"] = None
        node = self.cache["tree"]
        if node is None:
            return 0
        for part in split_pointer(pointer):
            if isinstance(node, yaml.MappingNode):
                found = None
                for key, value in node.value:
                    if key.value == part:
                        found = value
                        break
                if found is None:
                    break
                node = found
            elif isinstance(node, yaml.SequenceNode) and part.isdigit():
                if int(part) >= len(node.value):
                    break
                node = node.value[int(part)]
            else:
                break
        return int(node.start_mark.line) + 1 if node is not None else 0

    def problem(self, message: str, pointer: str = "") -> Problem:
        return Problem(
            str(self.path), self.line_of(pointer) if pointer else 0, 0, message, pointer
        )


def split_pointer(pointer: str) -> list[str]:
    if pointer in ("", "#", "/", "#/"):
        return []
    parts = pointer.lstrip("#").lstrip("/").split("/")
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in parts]


def escape_pointer_part(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def join_pointer(*parts: str | int) -> str:
    return "/" + "/".join(escape_pointer_part(str(p)) for p in parts)


def load_document(path: Path) -> Document:
    text = read_text(path)
    warnings: list[Problem] = []
    data = parse_text(path, text, warnings)
    return Document(
        path, data, text, hashlib.sha256(text.encode()).hexdigest(), tuple(warnings)
    )


@dataclass(frozen=True, eq=False)
class Schema:
    """A schema node together with the document it lives in (to follow refs)."""

    doc: Document
    node: Any  # a mapping, or a list while copying combinators
    pointer: str

    def problem(self, message: str) -> Problem:
        return self.doc.problem(message, self.pointer)


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path | query | header | cookie
    required: bool
    schema: Schema | None
    style: str = ""  # OpenAPI style ("": the location's default)
    explode: bool | None = None  # None: the style's default


@dataclass(frozen=True)
class SecurityScheme:
    name: str
    type: str  # apiKey | http | oauth2 | openIdConnect | basic (Swagger 2)
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    doc: Document
    method: str
    path: str
    operation_id: str
    summary: str
    pointer: str
    parameters: tuple[Parameter, ...]
    request_body: Schema | None
    response: Schema | None
    security: tuple[tuple[str, ...], ...]
    request_media: str = ""  # the request body's media type ("" without a body)
    request_required: bool = False  # whether the operation requires a body
    # a form body's `encoding`: property -> (style, explode)
    body_encoding: tuple[tuple[str, str, bool | None], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass
class SpecSet:
    """Every document read while handling one mapping, keyed by absolute path."""

    documents: dict[Path, Document] = field(default_factory=dict)

    def load(self, path: Path) -> Document:
        path = path.resolve()
        if path not in self.documents:
            self.documents[path] = load_document(path)
        return self.documents[path]

    def deref(self, schema: Schema) -> Schema:
        """Follow `$ref` chains until a schema without `$ref`."""
        if not (isinstance(schema.node, Mapping) and "$ref" in schema.node):
            return schema
        return self.chase(schema.doc, schema.node["$ref"], f"{schema.pointer}/$ref")

    def chase(self, doc: Document, ref: Any, at: str) -> Schema:
        """Follow a `$ref` and the `$ref`s it lands on, to an object without one.

        Every problem, a cycle included, is reported at `at` in `doc`, where the
        first `$ref` is written.
        """
        chain: list[str] = []
        seen: set[tuple[Path, str]] = set()
        here = doc
        while True:
            target = self.follow(doc, ref, at, base=here)
            key = (target.doc.path, target.pointer)
            chain.append(
                f"{'' if target.doc is doc else target.doc.path.name}#{target.pointer}"
            )
            if key in seen or (target.doc is doc and f"{target.pointer}/$ref" == at):
                raise P2pgenError(
                    [
                        doc.problem(
                            f"$ref {ref!r}: $ref cycle ({' -> '.join(chain)}): the $refs "
                            "lead back to themselves and never reach a definition; point "
                            "one of them at a real schema",
                            at,
                        )
                    ]
                )
            seen.add(key)
            if "$ref" not in target.node:
                return target
            ref, here = target.node["$ref"], target.doc

    def follow(
        self, doc: Document, ref: Any, at: str, base: Document | None = None
    ) -> Schema:
        """The object one `$ref` points to; problems are reported at `at` in `doc`.

        `base` is the document the `$ref` is written in (default `doc`): its file
        part is relative to that document's folder.
        """
        if not isinstance(ref, str):
            raise P2pgenError([doc.problem("$ref must be a string", at)])
        shown = f"$ref {ref!r}"
        file_part, _, pointer = ref.partition("#")
        if "://" in file_part:
            raise P2pgenError(
                [
                    doc.problem(
                        f"remote {shown} is not supported; download the file and refer "
                        "to it by a relative path",
                        at,
                    )
                ]
            )
        here = base or doc
        target = (
            self._ref_file(doc, at, shown, here.path.parent / unquote(file_part))
            if file_part
            else here
        )
        node: Any = target.data
        walked = ""
        for part in split_pointer(pointer):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                options = node.keys() if isinstance(node, Mapping) else ()
                hint = did_you_mean(part, [str(o) for o in options])
                where = f" in {target.path.name}" if target is not doc else ""
                raise P2pgenError(
                    [
                        doc.problem(
                            f"{shown}: pointer not found{where}: nothing named {part!r} "
                            f"under {walked or '/'}; fix the $ref{hint}",
                            at,
                        )
                    ]
                )
            walked += "/" + escape_pointer_part(part)
        if not isinstance(node, Mapping):
            kind = "a list" if isinstance(node, list) else "a single value"
            if node is None:
                kind = "an empty value"
            raise P2pgenError(
                [
                    doc.problem(
                        f"{shown}: it points to {kind}, not an object; refer to a schema, "
                        "parameter or response object",
                        at,
                    )
                ]
            )
        return Schema(target, node, "/" + pointer.lstrip("/") if pointer else "")

    def _ref_file(self, doc: Document, at: str, shown: str, path: Path) -> Document:
        """The document a `$ref`'s file part names; problems reported at `at` in `doc`."""
        path = path.resolve()
        if not path.exists():
            problem = (
                f"{shown}: file {str(path)!r} not found; fix the path (relative to the "
                "file holding the $ref) or add the file"
            )
            raise P2pgenError([doc.problem(problem, at)])
        try:
            target = self.load(path)
        except P2pgenError as exc:
            inner = "; ".join(str(p) for p in exc.problems[:3])
            problem = f"{shown}: the file it refers to cannot be used: {inner}"
            raise P2pgenError([doc.problem(problem, at)]) from None
        if target.data is None:
            problem = (
                f"{shown}: the file it refers to, {target.path.name}, is empty; "
                "fill it or fix the $ref"
            )
            raise P2pgenError([doc.problem(problem, at)])
        return target


def schema_name(pointer: str) -> str | None:
    """The name of a reusable schema (`components/schemas` or `definitions`)."""
    for home in SCHEMA_HOMES:
        if pointer.startswith(home) and "/" not in pointer[len(home) :]:
            return split_pointer(pointer)[-1]
    return None


def iter_operations(doc: Document) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    paths = doc.data.get("paths") or {}
    for path, item in paths.items():
        if not isinstance(item, Mapping):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, Mapping):
                yield method, path, op


def own_key(op: Operation) -> str:
    """The path parameter naming the record an operation writes (its last path
    segment, `/customers/{id}`), or ""."""
    last = op.path.rstrip("/").rsplit("/", 1)[-1]
    return last[1:-1] if last.startswith("{") and last.endswith("}") else ""


def find_operation(specs: SpecSet, doc: Document, wanted: str) -> Operation:
    """Find an operation by operationId or by "METHOD /path"."""
    # a path may hold spaces (API Setu's "/Your Pull DOC Request API Path")
    method_path = re.fullmatch(r"\s*([A-Za-z]+)\s+(/.*?)\s*", wanted)
    labels = []
    found: list[tuple[str, str, Mapping[str, Any]]] = []
    for method, path, op in iter_operations(doc):
        op_id = str(op.get("operationId", ""))
        labels.append(op_id or f"{method.upper()} {path}")
        if op_id == wanted or (
            method_path
            and method_path.group(1).lower() == method
            and method_path.group(2) == path
        ):
            found.append((method, path, op))
    if len(found) > 1:
        both = " and ".join(f"{m.upper()} {p}" for m, p, _ in found[:3])
        raise P2pgenError(
            [
                doc.problem(
                    f"operationId {wanted!r} names {len(found)} operations ({both}); "
                    "operationIds must be unique: name the one you mean as "
                    "'METHOD /path'",
                    join_pointer("paths", found[1][1], found[1][0], "operationId"),
                )
            ]
        )
    if found:
        return _build_operation(specs, doc, *found[0])
    raise P2pgenError(
        [
            doc.problem(
                f"operation {wanted!r} not found{did_you_mean(wanted, labels)}; "
                "run `p2pgen ops SPEC` to list the operations"
            )
        ]
    )


def webhook_entries(doc: Document) -> tuple[str, dict[str, Any]]:
    """The spec's webhooks: OpenAPI 3.1's `webhooks`, else 3.0's `x-webhooks`."""
    for key in ("webhooks", "x-webhooks"):
        entries = doc.data.get(key)
        if isinstance(entries, Mapping) and entries:
            return key, dict(entries)
    return "webhooks", {}


def find_webhook(specs: SpecSet, doc: Document, wanted: str) -> Operation:
    """The operation of a webhook entry: the request its sender makes."""
    key, entries = webhook_entries(doc)
    if wanted not in entries:
        if not entries:
            message = (
                f"webhook {wanted!r} not found: {doc.path.name} has no webhooks"
                " (OpenAPI 3.1 `webhooks`, or `x-webhooks` in 3.0); name an operation"
                " to poll with `operation:` instead"
            )
        else:
            message = (
                f"webhook {wanted!r} not found{did_you_mean(wanted, list(entries))};"
                f" {doc.path.name} has: {', '.join(sorted(map(str, entries)))}"
            )
        raise P2pgenError([doc.problem(message)])
    item = specs.deref(Schema(doc, entries[wanted], join_pointer(key, wanted)))
    methods = [m for m in HTTP_METHODS if isinstance(item.node.get(m), Mapping)]
    if not methods:
        raise P2pgenError(
            [item.problem(f"webhook {wanted!r} has no operation (e.g. `post:`)")]
        )
    op = item.node[methods[0]]
    pointer = f"{item.pointer}/{methods[0]}"
    body = None
    if "requestBody" in op:
        request = specs.deref(
            Schema(item.doc, op["requestBody"], pointer + "/requestBody")
        )
        body = _json_media_schema(request)
    return Operation(
        doc=item.doc,
        method=methods[0],
        path=wanted,
        operation_id=str(op.get("operationId", "")),
        summary=str(op.get("summary", "")),
        pointer=pointer,
        parameters=(),
        request_body=body,
        response=None,
        security=(),
    )


def _build_operation(
    specs: SpecSet, doc: Document, method: str, path: str, op: Mapping[str, Any]
) -> Operation:
    pointer = join_pointer("paths", path, method)
    unsendable = next((ch for ch in path if not ch.isprintable()), None)
    if unsendable is not None:
        raise P2pgenError(
            [
                doc.problem(
                    f"the path {py_literal(path)} holds the control or invisible "
                    f"character U+{ord(unsendable):04X}, which no URL can hold; "
                    "remove it from the path in the spec",
                    join_pointer("paths", path),
                )
            ]
        )
    path_item = doc.data["paths"][path]
    params: dict[tuple[str, str], Parameter] = {}
    body: Schema | None = None
    required = False
    form: dict[str, Mapping[str, Any]] = {}
    raw_params = [
        (join_pointer("paths", path, "parameters", i), p)
        for i, p in enumerate(path_item.get("parameters") or [])
    ] + [
        (f"{pointer}/parameters/{i}", p)
        for i, p in enumerate(op.get("parameters") or [])
    ]
    for at, raw in raw_params:
        param = specs.deref(Schema(doc, raw, at))
        node = param.node
        if node.get("in") == "body":  # Swagger 2.0
            body = Schema(
                param.doc, node.get("schema") or {}, param.pointer + "/schema"
            )
            required = bool(node.get("required"))
            continue
        if node.get("in") == "formData":  # Swagger 2.0: a form body, field by field
            form[str(node.get("name"))] = node
            continue
        schema_node = node.get("schema")
        content = node.get("content")
        if schema_node is None and isinstance(content, Mapping) and content:
            media = next(iter(content.values()))  # OpenAPI allows exactly one
            schema_node = media.get("schema") if isinstance(media, Mapping) else None
        if schema_node is None and "type" in node:  # Swagger 2.0 inline typing
            schema_node = {k: v for k, v in node.items() if k not in ("name", "in")}
        schema = (
            Schema(param.doc, schema_node, param.pointer + "/schema")
            if isinstance(schema_node, Mapping)
            else None
        )
        style, explode = _style(node, doc.is_swagger2)
        params[(node["name"], node["in"])] = Parameter(
            node["name"], node["in"], bool(node.get("required")), schema, style, explode
        )
    media = "application/json" if body is not None else ""
    encoding: tuple[tuple[str, str, bool | None], ...] = ()
    if body is None and form:
        media, body, encoding = _form_parameters(doc, op, form, pointer)
        required = any(bool(node.get("required")) for node in form.values())
    undeclared = [
        name
        for name in re.findall(r"{([^{}/]+)}", path)
        if (name, "path") not in params
    ]
    if undeclared:
        raise P2pgenError(
            [
                doc.problem(
                    f"the path {path!r} has the parameter {{{undeclared[0]}}}, but "
                    f"{method.upper()} {path} declares no path parameter "
                    f"{undeclared[0]!r}; add it to the operation's `parameters` "
                    "(`in: path`, `required: true`)",
                    pointer,
                )
            ]
        )
    if "requestBody" in op:
        request = specs.deref(Schema(doc, op["requestBody"], pointer + "/requestBody"))
        media, body, encoding = request_media(request)
        required = body is not None and bool(request.node.get("required"))
    return Operation(
        doc=doc,
        method=method,
        path=path,
        operation_id=str(op.get("operationId", "")),
        summary=str(op.get("summary", "")),
        pointer=pointer,
        parameters=tuple(params.values()),
        request_body=body,
        response=_success_response(specs, doc, op, pointer),
        security=_security(doc, op),
        request_media=media,
        request_required=required,
        body_encoding=encoding,
    )


# Collection formats of Swagger 2.0 as OpenAPI 3 styles: (style, explode).
COLLECTION_FORMATS = {
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "tsv": ("form", False),  # no OpenAPI 3 style; a tab is rare enough
    "pipes": ("pipeDelimited", False),
    "multi": ("form", True),
}
# The request body media types a script can send, in the order one is chosen.
REQUEST_MEDIA = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
)


def _style(node: Mapping[str, Any], swagger2: bool) -> tuple[str, bool | None]:
    """A parameter's style and explode as written ("", None: the defaults)."""
    if swagger2 and node.get("type") == "array":
        style, explode = COLLECTION_FORMATS.get(
            str(node.get("collectionFormat", "csv")), ("form", False)
        )
        return ("simple" if node.get("in") in ("path", "header") else style), explode
    content = node.get("content")
    if isinstance(content, Mapping) and any("json" in str(m) for m in content):
        return "json", None  # sent as JSON text (runtime/params.py JSON_TEXT)
    written = node.get("explode")
    return str(node.get("style") or ""), (
        written if isinstance(written, bool) else None
    )


def _form_parameters(
    doc: Document,
    op: Mapping[str, Any],
    form: dict[str, Mapping[str, Any]],
    pointer: str,
) -> tuple[str, Schema, tuple[tuple[str, str, bool | None], ...]]:
    """Swagger 2.0 `in: formData` parameters as one object body: multipart when the
    operation consumes it or sends a file, else form-urlencoded."""
    consumes = op.get("consumes", doc.data.get("consumes")) or []
    files = any(node.get("type") == "file" for node in form.values())
    multipart = files or (
        "multipart/form-data" in consumes
        and "application/x-www-form-urlencoded" not in consumes
    )
    schema = {
        "type": "object",
        "properties": {
            name: {k: v for k, v in node.items() if k not in ("name", "in", "required")}
            for name, node in form.items()
        },
        "required": [name for name, node in form.items() if node.get("required")],
    }
    encoding = tuple(
        (name, *_style(node, True))
        for name, node in form.items()
        if node.get("type") == "array"
    )
    media = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
    return media, Schema(doc, schema, pointer + "/parameters"), encoding


def request_media(
    request: Schema,
) -> tuple[str, Schema | None, tuple[tuple[str, str, bool | None], ...]]:
    """The media type a script sends a request body as, its schema and form encoding.

    JSON first (any `...json` type), then a form, then multipart; ("", None, ())
    when the operation takes none of them.
    """
    content = request.node.get("content")
    if not isinstance(content, Mapping):
        return "", None, ()
    found = [m for m in content if isinstance(content[m], Mapping)]
    chosen = next((m for m in found if "json" in m.split(";")[0]), None) or next(
        (m for wanted in REQUEST_MEDIA[1:] for m in found if m.split(";")[0] == wanted),
        None,
    )
    if chosen is None:
        return "", None, ()
    media_obj = content[chosen]
    schema = media_obj.get("schema")
    if not isinstance(schema, Mapping):
        return "", None, ()
    encoding = media_obj.get("encoding") or {}
    styles = tuple(
        (
            str(name),
            str(e.get("style") or ""),
            e["explode"] if isinstance(e.get("explode"), bool) else None,
        )
        for name, e in encoding.items()
        if isinstance(e, Mapping) and (e.get("style") or "explode" in e)
    )
    kind = chosen.split(";")[0].strip()
    return (
        "application/json" if "json" in kind else kind,
        Schema(
            request.doc,
            schema,
            f"{request.pointer}/content/{join_pointer(chosen)[1:]}/schema",
        ),
        styles,
    )


def _json_media_schema(container: Schema) -> Schema | None:
    content = container.node.get("content")
    if isinstance(content, Mapping):
        for media, media_obj in content.items():
            if "json" in media and isinstance(media_obj, Mapping):
                schema = media_obj.get("schema")
                if isinstance(schema, Mapping):
                    return Schema(
                        container.doc,
                        schema,
                        f"{container.pointer}/content/{join_pointer(media)[1:]}/schema",
                    )
    schema = container.node.get("schema")  # Swagger 2.0 response
    if isinstance(schema, Mapping):
        return Schema(container.doc, schema, container.pointer + "/schema")
    return None


def _success_response(
    specs: SpecSet, doc: Document, op: Mapping[str, Any], pointer: str
) -> Schema | None:
    responses = op.get("responses") or {}
    codes = sorted(str(c) for c in responses if str(c).startswith("2"))
    if not codes and "default" in responses:
        codes = ["default"]
    for code in codes:
        raw = responses.get(code, responses.get(int(code) if code.isdigit() else code))
        if not isinstance(raw, Mapping):
            continue
        response = specs.deref(Schema(doc, raw, f"{pointer}/responses/{code}"))
        schema = _json_media_schema(response)
        if schema is not None:
            return schema
    return None


def _security(doc: Document, op: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    requirements = op.get("security", doc.data.get("security")) or []
    return tuple(tuple(req) for req in requirements if isinstance(req, Mapping))


def security_schemes(doc: Document) -> dict[str, SecurityScheme]:
    data = doc.data
    raw = (
        data.get("securityDefinitions")
        if doc.is_swagger2
        else (data.get("components") or {}).get("securitySchemes")
    ) or {}
    return {
        name: SecurityScheme(name, str(s.get("type", "")), s)
        for name, s in raw.items()
        if isinstance(s, Mapping)
    }


def first_server(doc: Document) -> str:
    """The spec's first server URL ('' when none), Swagger 2.0 host included."""
    data = doc.data
    if doc.is_swagger2:
        host = data.get("host")
        if not host:
            return ""
        scheme = (data.get("schemes") or ["https"])[0]
        return f"{scheme}://{host}{data.get('basePath', '')}".rstrip("/")
    for server in data.get("servers") or []:
        if isinstance(server, Mapping) and isinstance(server.get("url"), str):
            url = server["url"]
            for var, spec in (server.get("variables") or {}).items():
                url = url.replace("{" + var + "}", str(spec.get("default", "")))
            return str(url).rstrip("/")
    return ""


def api_title(doc: Document) -> str:
    info = doc.data.get("info") or {}
    return f"{info.get('title', doc.path.stem)} {info.get('version', '')}".strip()
