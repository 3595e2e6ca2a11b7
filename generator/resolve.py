"""Check a mapping against both specs, collecting every problem, and build the Link."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import __version__
from generator.auth import resolve_auth
from generator.checks import TypeChecker
from generator.errors import P2pgenError, Problem, did_you_mean
from generator.expressions import Uses, compile_expr, compile_fields, json_safe
from generator.link import Link, PaginationModel, Param, Side, StubModel
from generator.mapping import Endpoint, FieldMap, Loc, Mapping
from generator.mapping_reader import load_mapping
from generator.models import build_models
from generator.render import stub_name_clashes
from generator.samples import sample
from generator.schemas import Miss, Walker, value_type
from generator.specs import (
    Document,
    Operation,
    Schema,
    SpecSet,
    api_title,
    find_operation,
    first_server,
)
from generator.validation import validate_document

RUNTIME_DEPENDENCIES = ("httpx>=0.27", "pydantic>=2.7")


@dataclass
class Resolution:
    """The outcome of checking one mapping: the link, or problems, plus warnings."""

    mapping_path: Path
    link: Link | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def _collect(problems: list[Problem], action: Callable[[], Any]) -> Any:
    try:
        return action()
    except P2pgenError as exc:
        problems.extend(exc.problems)
        return None


def resolve(mapping_path: Path, root: Path | None = None) -> Resolution:
    """Read a mapping and its specs; return the Link or every problem found."""
    result = Resolution(mapping_path)
    mapping = _collect(result.problems, lambda: load_mapping(mapping_path))
    if mapping is None:
        return result
    specs = SpecSet()
    endpoints = {"source": mapping.source, "target": mapping.target}
    ops: dict[str, Operation] = {}
    for side, endpoint in endpoints.items():
        try:
            doc, warnings = _load_spec(specs, endpoint, side)
            result.problems.extend(w for w in warnings if w not in result.problems)
            ops[side] = _find(specs, doc, endpoint)
        except P2pgenError as exc:
            result.problems.extend(exc.problems)
    if len(ops) < 2:
        return result
    builder = _LinkBuilder(mapping, specs, ops["source"], ops["target"], root)
    link = _collect(result.problems, builder.build)
    result.problems.extend(builder.problems)
    if link is not None and not result.errors:
        result.problems.extend(stub_name_clashes(link))
    if link is not None and not result.errors:
        result.link = link
    return result


def _load_spec(
    specs: SpecSet, endpoint: Endpoint, side: str
) -> tuple[Document, list[Problem]]:
    try:
        exists, is_file = endpoint.spec.exists(), endpoint.spec.is_file()
    except OSError as exc:  # e.g. a name too long for the file system
        is_file = False
        problem = f"cannot be read ({exc.strerror})"
    else:
        problem = "is not a regular file" if exists else "not found"
    if not is_file:
        raise P2pgenError(
            [
                endpoint.at("spec").problem(
                    f"{side}.spec: file {str(endpoint.spec)[:200]!r} {problem} (paths are "
                    "relative to the mapping file)"
                )
            ]
        )
    doc = specs.load(endpoint.spec)
    return doc, validate_document(specs, doc)


def _find(specs: SpecSet, doc: Document, endpoint: Endpoint) -> Operation:
    try:
        return find_operation(specs, doc, endpoint.operation)
    except P2pgenError as exc:
        if exc.problems[0].pointer:
            raise  # located in the spec, not in the mapping
        message = exc.problems[0].message
        raise P2pgenError(
            [endpoint.at("operation").problem(f"{message} in {doc.path.name}")]
        ) from None


class _LinkBuilder:
    def __init__(
        self,
        mapping: Mapping,
        specs: SpecSet,
        source: Operation,
        target: Operation,
        root: Path | None,
    ) -> None:
        self.mapping = mapping
        self.specs = specs
        self.walker = Walker(specs)
        self.source = source
        self.target = target
        self.root = root or Path.cwd()
        self.problems: list[Problem] = []
        self.types = TypeChecker(self.walker, self.problems)

    def error(self, loc: Loc, message: str) -> None:
        self.problems.append(loc.problem(message))

    def build(self) -> Link | None:
        m = self.mapping
        record = self._record_schema()
        body = self._body_schema()
        pagination = self._pagination(record)
        incremental_param = incremental_field = ""
        if m.source.incremental is not None:
            inc = m.source.incremental
            self._check_param(
                self.source, inc.param, inc.at("param"), "incremental.param"
            )
            if record is not None:
                self._check_path(
                    record, inc.field, inc.at("field"), "incremental.field"
                )
            incremental_param, incremental_field = inc.param, inc.field
        idem_header = idem_from = ""
        if m.target.idempotency_key is not None:
            key = m.target.idempotency_key
            if record is not None:
                self._check_path(
                    record, key.source, key.at("from"), "idempotency_key.from"
                )
            idem_header, idem_from = key.header, key.source
        uses = Uses()
        source_params = self._params(m.source, self.source, None, uses, pagination)
        target_params = self._params(m.target, self.target, record, uses, None)
        if record is not None and body is not None:
            self.types.check_fields(m.fields, record, body, "fields")
        body_code = compile_fields(m.fields, "src", 0, uses)
        source_auth = _collect(
            self.problems,
            lambda: resolve_auth(self.specs, m.source, self.source, "source"),
        )
        target_auth = _collect(
            self.problems,
            lambda: resolve_auth(self.specs, m.target, self.target, "target"),
        )
        if (
            record is None
            or body is None
            or (self.problems and any(p.severity == "error" for p in self.problems))
        ):
            return None
        if source_auth is None or target_auth is None:
            return None
        models = build_models(self.walker, record, body, self.mapping.path)
        stubs = self._one_signature_per_stub(self._stubs(m.fields, body, False))
        record_sample = sample(self.walker, record, "record")
        env_vars = sorted(uses.env_vars)
        return Link(
            name=m.name,
            description=m.description,
            generator_version=__version__,
            mapping_file=self._display(m.path),
            mapping_sha256=m.sha256,
            source=self._side(self.source, source_auth, source_params),
            target=self._side(self.target, target_auth, ()),
            records_path=m.source.records or "",
            pagination=pagination,
            incremental_param=incremental_param,
            incremental_field=incremental_field,
            idempotency_header=idem_header,
            idempotency_from=idem_from,
            models_code=models.code,
            imports=models.imports,
            source_record=models.source_record,
            target_body=models.target_body,
            body_code=body_code,
            target_params=target_params,
            stubs=stubs,
            helpers=frozenset(uses.helpers),
            env_vars=tuple(env_vars),
            sample_records=(record_sample,),
            expected=tuple(self._expected(m.fields, record, body, record_sample)),
            distinct_fields=tuple(
                dict.fromkeys(
                    f
                    for f in (
                        idem_from,
                        pagination.next_from_last,
                        incremental_field,
                        "id",
                    )
                    if f and self.walker.get(record, f) is not None
                )
            ),
            dependencies=RUNTIME_DEPENDENCIES,
        )

    def _display(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.name

    def _side(self, op: Operation, auth: Any, params: tuple[Param, ...]) -> Side:
        return Side(
            title=api_title(op.doc),
            spec_file=self._display(op.doc.path),
            spec_sha256=op.doc.sha256,
            method=op.method.upper(),
            path=op.path,
            operation_id=op.operation_id,
            default_base_url=first_server(op.doc),
            auth=auth,
            params=params,
        )

    def _record_schema(self) -> Schema | None:
        m = self.mapping.source
        if self.source.response is None:
            self.error(
                m.loc,
                f"source operation {self.source.label} has no JSON response "
                "schema for a 2xx status; choose an operation that returns records",
            )
            return None
        schema: Schema = self.source.response
        if m.records:
            found = self.walker.find(schema, m.records)
            if isinstance(found, Miss):
                self.error(
                    m.at("records"),
                    "source.records: "
                    + found.describe(f" in the response of {self.source.label}"),
                )
                return None
            schema = found
        shape = self.walker.shape(schema)
        if "array" not in shape.types or shape.items is None:
            where = f"'{m.records}'" if m.records else "the response body"
            arrays = [
                n
                for n, s in self.walker.shape(self.source.response).properties.items()
                if "array" in self.walker.shape(s).types
            ]
            hint = f"; set `records:` to {arrays[0]!r}" if arrays else ""
            self.error(
                m.at("records"),
                f"source.records: {where} is not a list of records{hint}",
            )
            return None
        return shape.items

    def _body_schema(self) -> Schema | None:
        if self.target.request_body is None:
            self.error(
                self.mapping.target.loc,
                f"target operation {self.target.label} has "
                "no JSON request body; choose an operation that accepts one",
            )
            return None
        shape = self.walker.shape(self.target.request_body)
        if shape.types and "object" not in shape.types:
            self.error(
                self.mapping.target.loc,
                f"target operation {self.target.label}: "
                "the request body is not a JSON object; p2pgen maps fields into "
                "objects",
            )
            return None
        return self.target.request_body

    def _check_path(self, schema: Schema, path: str, loc: Loc, what: str) -> None:
        self.types.source_field(schema, path, loc, what)

    def _check_param(self, op: Operation, name: str, loc: Loc, what: str) -> None:
        names = [p.name for p in op.parameters]
        if name not in names:
            self.error(
                loc,
                f"{what}: {op.label} has no parameter {name!r}"
                f"{did_you_mean(name, names)}",
            )

    def _pagination(self, record: Schema | None) -> PaginationModel:
        p = self.mapping.source.pagination
        if p is None:
            return PaginationModel("none")
        for what, param in (("param", p.param), ("limit_param", p.limit_param)):
            if param:
                self._check_param(self.source, param, p.at(what), f"pagination.{what}")
        response = self.source.response
        for what, path in (
            ("next", p.next),
            ("has_more", p.has_more),
        ):
            if path and response is not None:
                found = self.walker.find(response, path)
                if isinstance(found, Miss):
                    self.error(
                        p.at(what),
                        f"pagination.{what}: {found.describe(' in the response')}",
                    )
        if p.next_from_last and record is not None:
            self._check_path(
                record,
                p.next_from_last,
                p.at("next_from_last"),
                "pagination.next_from_last",
            )
        start = p.start if p.start is not None else (1 if p.style == "page" else 0)
        return PaginationModel(
            style=p.style,
            param=p.param or "",
            next=p.next or "",
            next_from_last=p.next_from_last or "",
            has_more=p.has_more or "",
            limit_param=p.limit_param or "",
            limit=p.limit,
            start=start,
            max_pages=p.max_pages,
        )

    def _params(
        self,
        endpoint: Endpoint,
        op: Operation,
        record: Schema | None,
        uses: Uses,
        pagination: PaginationModel | None,
    ) -> tuple[Param, ...]:
        known = {p.name: p for p in op.parameters}
        given = {fm.target for fm in endpoint.params}
        side = "source" if pagination is not None else "target"
        result = []
        for fm in endpoint.params:
            param = known.get(fm.target)
            if param is None:
                self.error(
                    fm.loc,
                    f"{side}.params: {op.label} has no parameter "
                    f"{fm.target!r}{did_you_mean(fm.target, known)}",
                )
                continue
            if fm.expr.kind in ("each", "stub"):
                self.error(
                    fm.loc,
                    f"{side}.params.{fm.target}: {fm.expr.kind!r} cannot "
                    "produce a request parameter",
                )
                continue
            if fm.expr.kind in ("path", "template") and record is None:
                if side == "source":
                    self.error(
                        fm.loc,
                        f"source.params.{fm.target}: a source request "
                        "cannot use record fields; use {const: ...} or {env: ...}",
                    )
                continue
            if record is not None and fm.expr.kind == "path":
                self._check_path(record, fm.expr.path, fm.expr.loc, f"{side}.params")
            code = compile_expr(fm.expr, "src", 0, uses)
            result.append(Param(fm.target, param.location, code))
        handled = set(given)
        if pagination is not None:
            handled |= {pagination.param, pagination.limit_param}
            if self.mapping.source.incremental is not None:
                handled.add(self.mapping.source.incremental.param)
        for param in op.parameters:
            if param.required and param.name not in handled:
                self.error(
                    endpoint.loc,
                    f"{side}.params: {op.label} requires the "
                    f"{param.location} parameter {param.name!r}; map it, e.g. "
                    f"`{param.name}: {{env: {param.name.upper()}}}`",
                )
        return tuple(result)

    def _expected(
        self, fields: Iterable[FieldMap], record: Schema, body: Schema, raw: Any
    ) -> Iterable[tuple[str, Any]]:
        """Values a correct transform must give for the sample record (simple lines)."""
        for fm in fields:
            found = self.walker.get(body, fm.target)
            if found is None:
                continue
            tshape = self.walker.shape(found)
            if fm.expr.kind == "const" and fm.expr.value is not None:
                yield fm.target, json_safe(fm.expr.value)
            elif (
                fm.expr.kind == "path"
                and fm.expr.table is None
                and not fm.expr.convert
                and not tshape.format
            ):
                value = raw
                for part in fm.expr.path.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if (
                    isinstance(value, str | int | bool)
                    and value_type(value) in tshape.types
                ):
                    yield fm.target, value

    def _one_signature_per_stub(
        self, uses: Iterable[StubModel]
    ) -> tuple[StubModel, ...]:
        """Each stub once; a name used for fields of different types is an error."""
        stubs: dict[str, StubModel] = {}
        for stub in uses:
            first = stubs.setdefault(stub.name, stub)
            if (first.returns, first.in_each) != (stub.returns, stub.in_each):
                self.problems.append(
                    stub.loc.problem(
                        f"{stub.target}: stub '{stub.name}' already fills '{first.target}'"
                        f" ({first.returns}{', per list item' if first.in_each else ''}),"
                        f" but this one needs {stub.returns}"
                        f"{', per list item' if stub.in_each else ''}; give it its own name"
                    )
                )
        return tuple(stubs.values())

    def _stubs(
        self, fields: Iterable[FieldMap], body: Schema, in_each: bool
    ) -> Iterable[StubModel]:
        for fm in fields:
            found = self.walker.get(body, fm.target)
            if fm.expr.kind == "stub" and found is not None:
                yield StubModel(
                    name=fm.expr.text,
                    target=fm.target,
                    returns=self.types.annotation(found),
                    in_each=in_each,
                    sample=sample(self.walker, found, fm.target.split(".")[-1], 1),
                    loc=fm.expr.loc,
                )
            elif fm.expr.kind == "each" and found is not None:
                items = self.walker.shape(found).items
                if items is not None:
                    yield from self._stubs(fm.expr.fields, items, in_each=True)
