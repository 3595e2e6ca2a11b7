"""The build stage: a checked mapping becomes a Link (compiled expressions, models,
samples), the data the templates render. Problems found only here (models that
cannot be built, stubs that clash) are raised as P2pgenError.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from generator import __version__
from generator.check import Checked, handled_by_source
from generator.errors import Code, P2pgenError, Problem
from generator.expressions import Compiler
from generator.kinds.expressions import EXPRESSIONS
from generator.kinds.pagination import STYLES
from generator.link import (
    AuthModel,
    BatchModel,
    CallModel,
    DeleteModel,
    Link,
    LookupModel,
    MatchModel,
    PaginationModel,
    Param,
    ParamPlace,
    Side,
    StubModel,
    WebhookModel,
)
from generator.literals import py_literal
from generator.load import Loaded
from generator.mapping import (
    DEFAULT_TOLERANCE,
    Endpoint,
    FieldMap,
    TargetCall,
    json_safe,
)
from generator.models import Need, build_models, source_need, target_need
from generator.parameters import ParamRef, find_param
from generator.runtime.mapping import path_keys
from generator.samples import fitted, sample
from generator.schemas import Walker, value_type
from generator.specs import Operation, Schema, api_title, first_server

RUNTIME_DEPENDENCIES = ("httpx>=0.27", "pydantic>=2.7")
WEBHOOK_DEPENDENCIES = ("uvicorn>=0.30",)  # the server of a webhook link
PYTHON_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "object": "dict[str, Any]",
}


def build(loaded: Loaded, checked: Checked, root: Path) -> Link:
    """The Link of a mapping that passed its checks."""
    return _Builder(loaded, checked, root).build()


def annotation(walker: Walker, schema: Schema) -> str:
    """The Python type a stub returns for a target field."""
    shape = walker.shape(schema)
    types = sorted(shape.types - {"null"})
    if len(types) != 1:
        return "Any"
    if types[0] == "array":
        inner = annotation(walker, shape.items) if shape.items is not None else "Any"
        return f"list[{inner}]"
    base = PYTHON_TYPES.get(types[0], "Any")
    return f"{base} | None" if shape.nullable and base != "Any" else base


class _Builder:
    def __init__(self, loaded: Loaded, checked: Checked, root: Path) -> None:
        assert checked.ok and checked.record is not None and checked.body is not None
        assert checked.source_auth is not None and checked.target_auth is not None
        self.loaded = loaded
        self.mapping = loaded.mapping
        self.walker = Walker(loaded.specs)
        self.record: Schema = checked.record
        self.body: Schema = checked.body
        self.source_auth: AuthModel = checked.source_auth
        self.target_auth: AuthModel = checked.target_auth
        self.writes = checked.writes
        self.root = root

    def build(self) -> Link:
        m = self.mapping
        inc, key = m.source.incremental, m.target.idempotency_key
        pagination = _pagination(m.source)
        compiler = Compiler()
        source_params = self._params(m.source, self.loaded.source, compiler)
        target_params = self._params(m.target, self.loaded.target, compiler)
        body_code = compiler.fields(m.fields, "src", 0)
        source_body = (
            _body_code(m.source.body, compiler) if m.source.body is not None else ""
        )
        predicate = m.source.filter
        models = build_models(
            self.walker,
            (self.record, self._record_need(pagination)),
            (self.body, target_need(m.fields)),
            m.path,
        )
        stubs = self._one_signature_per_stub(
            [
                *self._stubs(m.fields, self.body, False),
                *self._param_stubs(m.target.params, self.loaded.target),
            ]
        )
        self._stubs_apart_from_models(stubs, models.code, models.imports)
        record_sample = fitted(
            self.walker,
            self.record,
            sample(self.walker, self.record, "record"),
            [
                (fm.expr.path, found)
                for fm in m.fields
                if fm.expr.kind == "path"
                and fm.expr.table is None
                and not fm.expr.convert
                and (found := self.walker.get(self.body, fm.target)) is not None
            ],
        )
        idem_from = key.source if key else ""
        incremental_field = inc.field if inc else ""
        return Link(
            name=m.name,
            description=m.description,
            generator_version=__version__,
            mapping_file=self._display(m.path),
            mapping_sha256=m.sha256,
            source=self._side(
                self.loaded.source,
                self.source_auth,
                source_params,
                (
                    *(fm.target for fm in m.source.params),
                    *sorted(handled_by_source(m.source)),
                ),
            ),
            target=self._side(
                self.loaded.target,
                self.target_auth,
                (),
                tuple(fm.target for fm in m.target.params),
                frozenset(path_keys(fm.target)[0] for fm in m.fields),
            ),
            records_path="" if m.source.webhook is not None else m.source.records or "",
            pagination=pagination,
            incremental_param=inc.param if inc else "",
            incremental_field=incremental_field,
            idempotency_header=key.header if key else "",
            idempotency_from=idem_from,
            models_code=models.code,
            imports=models.imports,
            source_record=models.source_record,
            target_body=models.target_body,
            body_code=body_code,
            target_params=target_params,
            stubs=stubs,
            env_vars=tuple(sorted(compiler.env_vars)),
            sample_records=(record_sample,),
            expected=tuple(self._expected(m.fields, record_sample)),
            distinct_fields=tuple(
                dict.fromkeys(
                    f
                    for f in (
                        idem_from,
                        pagination.next_from_last,
                        incremental_field,
                        "id",
                    )
                    if f and self.walker.get(self.record, f) is not None
                )
            ),
            dependencies=RUNTIME_DEPENDENCIES
            + (WEBHOOK_DEPENDENCIES if m.source.webhook is not None else ()),
            filter_conditions=compiler.filter(predicate, "src") if predicate else (),
            filter_stub=predicate.stub if predicate else "",
            source_body_code=source_body,
            webhook=self._webhook(record_sample),
            target_body_sent=self.loaded.target.request_body is not None,
            match=self._match(compiler),
            lookups=tuple(self._lookups(compiler)),
            batch=(
                BatchModel(b.size, b.path or "", b.results or "")
                if (b := m.target.batch) is not None
                else None
            ),
            delete=self._delete(compiler),
        )

    def _webhook(self, record_sample: Any) -> WebhookModel | None:
        """A webhook source's settings, and a sample event holding the sample record."""
        source = self.mapping.source
        signature = source.signature
        event = self.loaded.source.request_body
        if source.webhook is None or signature is None or event is None:
            return None
        sample_event = sample(self.walker, event, "event")
        if source.records:
            sample_event = _placed(
                sample_event, path_keys(source.records), record_sample
            )
        else:
            sample_event = record_sample
        if source.event_id and _at(sample_event, source.event_id) is None:
            sample_event = _placed(sample_event, path_keys(source.event_id), "evt_1")
        return WebhookModel(
            name=source.webhook,
            scheme=signature.scheme,
            secret_env=signature.secret_env,
            header=signature.header or "",
            tolerance=signature.tolerance or DEFAULT_TOLERANCE,
            records=source.records or "",
            event_id=source.event_id or "",
            sample_event=sample_event,
        )

    def _delete(self, compiler: Compiler) -> DeleteModel | None:
        delete, op = self.mapping.target.delete, self.writes.delete
        if delete is None or op is None or delete.when is None:
            return None
        call = _call(delete, op, compiler, "delete_params", "target.delete")
        return DeleteModel(call, compiler.filter(delete.when, "src"))

    def _lookups(self, compiler: Compiler) -> Iterable[LookupModel]:
        for lookup in self.mapping.lookups:
            op = self.writes.lookups[lookup.name]
            function = f"lookup_{lookup.name}_params"
            item = self.writes.looked_up.get(lookup.name)
            yield LookupModel(
                name=lookup.name,
                api=lookup.api,
                call=_call(lookup, op, compiler, function, f"lookups.{lookup.name}"),
                records=lookup.records or "",
                on_missing=lookup.on_missing,
                sample=(
                    sample(self.walker, item, "record") if item is not None else None
                ),
            )

    def _match(self, compiler: Compiler) -> MatchModel | None:
        """target.match, on_match, update and on_missing, as the script declares them."""
        t, writes = self.mapping.target, self.writes
        if t.match is None or writes.match is None:
            return None
        update = None
        if t.update is not None and writes.update is not None:
            update = _call(
                t.update, writes.update, compiler, "update_params", "target.update"
            )
        return MatchModel(
            call=_call(t.match, writes.match, compiler, "match_params", "target.match"),
            records=t.match.records or "",
            update=update,
            on_missing=t.on_missing,
            sample=(
                sample(self.walker, writes.match_record, "record")
                if writes.match_record is not None
                else None
            ),
        )

    def _record_need(self, pagination: PaginationModel) -> Need:
        """What the source model holds: what the fields and target parameters read,
        the fields the filter compares, and the fields the runtime reads from a record.
        """
        m = self.mapping
        inc, key = m.source.incremental, m.target.idempotency_key
        conditions = m.source.filter.conditions if m.source.filter else ()
        when = m.target.delete.when if m.target.delete else None
        conditions += when.conditions if when else ()
        calls = [call for call in (m.target.match, m.target.update) if call]
        calls += m.lookups
        calls += [m.target.delete] if m.target.delete is not None else []
        predicates = [f.expr for f in (m.source.filter, when) if f and f.expr]
        return source_need(
            (
                *m.fields,
                *m.target.params,
                *(p for c in calls for p in c.params),
                *(FieldMap("", e, e.loc) for e in predicates),
            ),
            (
                pagination.next_from_last,
                inc.field if inc else "",
                key.source if key else "",
                *(condition.field for condition in conditions),
            ),
        )

    def _display(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.name

    def _side(
        self,
        op: Operation,
        auth: AuthModel,
        params: tuple[Param, ...],
        used: Iterable[str],
        body_roots: frozenset[str] = frozenset(),
    ) -> Side:
        """`used`: the parameters the link sets; `body_roots`: the body's properties."""
        places: dict[str, ParamPlace] = {}
        for name in used:
            found = find_param(self.walker, op, name)
            if isinstance(found, ParamRef):
                p = found.param
                plain = p.style in ("", "form") and p.explode in (None, True)
                if p.location != "query" or not plain:
                    places[p.name] = ParamPlace(p.name, p.location, p.style, p.explode)
        return Side(
            places=tuple(places.values()),
            media=op.request_media or "application/json",
            body_places=tuple(
                ParamPlace(name, "query", style, explode)
                for name, style, explode in op.body_encoding
                if name in body_roots
            ),
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

    def _params(
        self, endpoint: Endpoint, op: Operation, compiler: Compiler
    ) -> tuple[Param, ...]:
        refs = [find_param(self.walker, op, fm.target) for fm in endpoint.params]
        return tuple(
            Param(
                fm.target,
                ref.param.location if isinstance(ref, ParamRef) else "query",
                compiler.expr(fm.expr, "src", 0),
                uses_record=EXPRESSIONS[fm.expr.kind].reads_record,
            )
            for fm, ref in zip(endpoint.params, refs, strict=True)
        )

    def _expected(
        self, fields: Iterable[FieldMap], raw: Any
    ) -> Iterable[tuple[str, Any]]:
        """Values a correct transform must give for the sample record (simple lines)."""
        for fm in fields:
            found = self.walker.get(self.body, fm.target)
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
                for part in path_keys(fm.expr.path):
                    value = value.get(part) if isinstance(value, dict) else None
                if (
                    isinstance(value, str | int | bool)
                    and value_type(value) in tshape.types
                ):
                    yield fm.target, value

    @staticmethod
    def _one_signature_per_stub(
        uses: Iterable[StubModel],
    ) -> tuple[StubModel, ...]:
        """Each stub once; a name used for fields of different types is an error."""
        stubs: dict[str, StubModel] = {}
        problems: list[Problem] = []
        for stub in uses:
            first = stubs.setdefault(stub.name, stub)
            if (first.returns, first.in_each) != (stub.returns, stub.in_each):
                problems.append(
                    stub.loc.problem(
                        f"{stub.target}: stub '{stub.name}' already fills '{first.target}'"
                        f" ({first.returns}{', per list item' if first.in_each else ''}),"
                        f" but this one needs {stub.returns}"
                        f"{', per list item' if stub.in_each else ''}; give it its own name",
                        code=Code.STUB_SIGNATURE,
                    )
                )
        if problems:
            raise P2pgenError(problems)
        return tuple(stubs.values())

    def _stubs_apart_from_models(
        self, stubs: tuple[StubModel, ...], code: str, imports: tuple[str, ...]
    ) -> None:
        """Stubs (of fields, parameters and auth.stub) named like a model class or
        a name the models import; the check refuses runtime names and builtins."""
        names: set[str] = set()
        for node in ast.parse("\n".join([*imports, code])).body:
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        named = [(stub.target, stub.name, stub.loc) for stub in stubs]
        for side, endpoint in (
            ("source", self.mapping.source),
            ("target", self.mapping.target),
        ):
            if endpoint.auth is not None and endpoint.auth.stub:
                named.append((f"{side}.auth", endpoint.auth.stub, endpoint.auth.loc))
        problems = [
            loc.problem(
                f"{what}: stub '{name}' is a name the script already uses;"
                " give the stub another name",
                code=Code.STUB_NAME_TAKEN,
            )
            for what, name, loc in named
            if name in names
        ]
        if problems:
            raise P2pgenError(problems)

    def _param_stubs(
        self, params: Iterable[FieldMap], op: Operation
    ) -> Iterable[StubModel]:
        """Stubs that fill a target parameter from the record (e.g. a target
        record's own key that no source field holds)."""
        for fm in params:
            ref = find_param(self.walker, op, fm.target)
            if fm.expr.kind != "stub" or not isinstance(ref, ParamRef):
                continue
            schema = ref.param.schema
            yield StubModel(
                name=fm.expr.text,
                target=fm.target,
                fills=f"target {ref.param.location} parameter",
                returns="str" if schema is None else annotation(self.walker, schema),
                in_each=False,
                sample=(
                    "sample"
                    if schema is None
                    else sample(self.walker, schema, fm.target, 1)
                ),
                loc=fm.expr.loc,
            )

    def _stubs(
        self, fields: Iterable[FieldMap], body: Schema, in_each: bool
    ) -> Iterable[StubModel]:
        for fm in fields:
            found = self.walker.get(body, fm.target)
            if fm.expr.kind == "stub" and found is not None:
                yield StubModel(
                    name=fm.expr.text,
                    target=fm.target,
                    returns=annotation(self.walker, found),
                    in_each=in_each,
                    sample=sample(self.walker, found, path_keys(fm.target)[-1], 1),
                    loc=fm.expr.loc,
                )
            elif fm.expr.kind == "each" and found is not None:
                items = self.walker.shape(found).items
                if items is not None:
                    yield from self._stubs(fm.expr.fields, items, in_each=True)


def _call(
    call: TargetCall, op: Operation, compiler: Compiler, name: str, what: str
) -> CallModel:
    """A target call; `{match: PATH}` reads the matched target record."""
    locations = {p.name: p.location for p in op.parameters}
    params = tuple(
        Param(
            fm.target,
            locations[fm.target],
            (
                f"_get(matched, {py_literal(fm.expr.path)})"
                if fm.expr.kind == "match"
                else compiler.expr(fm.expr, "src", 0)
            ),
            uses_record=fm.expr.kind != "match"
            and EXPRESSIONS[fm.expr.kind].reads_record,
        )
        for fm in call.params
    )
    return CallModel(name, what, op.method.upper(), op.path, params)


def _at(value: Any, path: str) -> Any:
    for key in path_keys(path):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _placed(value: Any, keys: list[str], item: Any) -> dict[str, Any]:
    """A copy of the object `value` with `item` at the path of `keys`."""
    head, *rest = keys
    copy = dict(value) if isinstance(value, dict) else {}
    copy[head] = _placed(copy.get(head), rest, item) if rest else item
    return copy


def _body_code(tree: Any, compiler: Compiler) -> str:
    """The Python literal of a `source.body` tree; its leaves are compiled expressions."""
    if isinstance(tree, dict):
        items = ", ".join(
            f"{py_literal(key)}: {_body_code(value, compiler)}"
            for key, value in tree.items()
        )
        return "{" + items + "}"
    if isinstance(tree, list):
        return "[" + ", ".join(_body_code(item, compiler) for item in tree) + "]"
    return compiler.expr(tree, "src", 0)


def _pagination(source: Endpoint) -> PaginationModel:
    p = source.pagination
    if p is None:
        return PaginationModel("none")
    start = p.start if p.start is not None else STYLES[p.style].default_start
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
