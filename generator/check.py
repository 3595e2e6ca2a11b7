"""The check stage: every problem of a loaded mapping against its specs, and no code.

It finds the schemas and auth the mapping names (data the build stage needs) and
reports problems; it never compiles an expression, builds a model or renders.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from generator.auth import resolve_auth
from generator.checks import TypeChecker
from generator.checks_webhook import webhook_record
from generator.checks_writes import WriteChecker, Writes, records_items
from generator.errors import Code, P2pgenError, Problem
from generator.kinds.expressions import EXPRESSION, EXPRESSIONS
from generator.kinds.pagination import KEY_KINDS, STYLES
from generator.link import AuthModel
from generator.load import Loaded
from generator.mapping import Endpoint, Expr, FieldMap, Loc, body_leaves
from generator.parameters import find_param
from generator.reserved import reserved_names
from generator.runtime.params import BODY_PREFIX
from generator.schemas import Miss, Walker
from generator.specs import Operation, Parameter, Schema, own_key

BUILTINS = frozenset(dir(builtins))


@dataclass
class Checked:
    """What the check found: problems, and the parts of the specs the link uses."""

    problems: list[Problem] = field(default_factory=list)
    record: Schema | None = None
    body: Schema | None = None
    source_auth: AuthModel | None = None
    target_auth: AuthModel | None = None
    writes: Writes = field(default_factory=Writes)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def check(loaded: Loaded) -> Checked:
    """Check the mapping against both operations; collect every problem."""
    return _Checker(loaded).run()


class _Checker:
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.mapping = loaded.mapping
        self.source = loaded.source
        self.target = loaded.target
        self.walker = Walker(loaded.specs)
        self.result = Checked()
        self.types = TypeChecker(self.walker, self.result.problems)

    def error(self, loc: Loc, message: str, code: Code) -> None:
        self.result.problems.append(loc.problem(message, code=code))

    def run(self) -> Checked:
        m = self.mapping
        writes = WriteChecker(self.loaded, self.types)
        record = self.result.record = self._record_schema()
        body = self.result.body = writes.batch_body(self._body_schema())
        self._pagination(record)
        if m.source.incremental is not None:
            inc = m.source.incremental
            self._param(self.source, inc.param, inc.at("param"), "incremental.param")
            if record is not None:
                self.types.source_field(
                    record, inc.field, inc.at("field"), "incremental.field"
                )
        if m.target.idempotency_key is not None and record is not None:
            key = m.target.idempotency_key
            self.types.source_field(
                record, key.source, key.at("from"), "idempotency_key.from"
            )
        self._params(m.source, self.source, record)
        self._source_body()
        self._params(m.target, self.target, record)
        if record is not None and m.source.filter is not None:
            for condition in m.source.filter.conditions:
                self.types.check_condition(condition, record, "source.filter")
            if m.source.filter.expr is not None:
                EXPRESSION.check_predicate(
                    self.types, m.source.filter.expr, record, "source.filter"
                )
        if record is not None and body is not None:
            self.types.check_fields(m.fields, record, body, "fields")
        self.result.source_auth = self._auth(m.source, self.source, "source")
        self.result.target_auth = self._auth(m.target, self.target, "target")
        self._stub_names(m.fields)
        self.result.writes = writes.run(record, body)
        return self.result

    def _auth(self, endpoint: Endpoint, op: Operation, side: str) -> AuthModel | None:
        try:
            return resolve_auth(self.loaded.specs, endpoint, op, side)
        except P2pgenError as exc:
            self.result.problems.extend(exc.problems)
            return None

    def _record_schema(self) -> Schema | None:
        m = self.mapping.source
        if m.webhook is not None:
            return webhook_record(self.walker, m, self.source, self.result.problems)
        return records_items(
            self.walker, self.source, m.records, m, "source", self.result.problems
        )

    def _body_schema(self) -> Schema | None:
        fields_loc = self.mapping.fields_loc or self.mapping.target.loc
        if self.target.request_body is None and not self.mapping.fields:
            # a write without a body (a DELETE, a PUT of path parameters only)
            return Schema(self.target.doc, {"type": "object"}, self.target.pointer)
        if self.target.request_body is None:
            self.error(
                self.mapping.target.loc,
                f"target operation {self.target.label} has "
                "no JSON request body; choose an operation that accepts one"
                " (or, for a write without a body, map its parameters in"
                " target.params and write `fields: {}`)",
                Code.NO_REQUEST_BODY,
            )
            return None
        shape = self.walker.shape(self.target.request_body)
        # a body of readOnly fields only (Google's keys, Azure's monitors): `{}` is sent
        writable = any(map(self._writable, shape.properties.values())) or bool(
            shape.required - set(shape.properties)
        )
        if not self.mapping.fields and writable:
            self.error(
                fields_loc,
                "fields is empty; map at least one target field",
                Code.INVALID_VALUE,
            )
            return None
        # `fields: {}` for a body with no fields to write (Google's `:cancel`): `{}`
        if shape.types and "object" not in shape.types:
            self.error(
                self.mapping.target.loc,
                f"target operation {self.target.label}: "
                "the request body is not a JSON object; p2pgen maps fields into "
                "objects",
                Code.NO_REQUEST_BODY,
            )
            return None
        return self.target.request_body

    def _writable(self, schema: Schema, depth: int = 0) -> bool:
        """Whether a body field can be written: not readOnly, and an object only
        where one of its own fields can be (a few levels deep)."""
        shape = self.walker.shape(schema)
        if shape.read_only:
            return False
        if shape.properties and not shape.free_form and depth < 4:
            return any(self._writable(p, depth + 1) for p in shape.properties.values())
        return True

    def _param(self, op: Operation, name: str, loc: Loc, what: str) -> None:
        if name.startswith(BODY_PREFIX) and op is self.source:
            self._body_position(name[len(BODY_PREFIX) :], loc, what)
            return
        found = find_param(self.walker, op, name)
        if isinstance(found, str):
            self.error(loc, f"{what}: {op.label} has {found}", Code.UNKNOWN_PARAMETER)

    def _body_position(self, path: str, loc: Loc, what: str) -> None:
        """`body.PATH`: a position the source request carries in its body."""
        body = self.source.request_body
        if body is None:
            self.error(
                loc,
                f"{what}: {self.source.label} takes no request body, so "
                f"'{BODY_PREFIX}{path}' has nowhere to go; name a parameter",
                Code.UNKNOWN_PARAMETER,
            )
            return
        found = self.walker.find(body, path)
        if isinstance(found, Miss):
            self.error(
                loc,
                f"{what}: request body field {found.describe(' in the request body')}",
                Code.UNKNOWN_PARAMETER,
            )

    def _pagination(self, record: Schema | None) -> None:
        """Each key of the style, checked against the spec by what it names."""
        p = self.mapping.source.pagination
        if p is None:
            return
        response = self.source.response
        for key in STYLES[p.style].keys:
            value = getattr(p, key)
            if not value or KEY_KINDS[key] == "count":
                continue
            what = f"pagination.{key}"
            if KEY_KINDS[key] == "parameter":
                self._param(self.source, value, p.at(key), what)
            elif KEY_KINDS[key] == "response" and response is not None:
                found = self.walker.find(response, value)
                if isinstance(found, Miss):
                    self.error(
                        p.at(key),
                        f"{what}: {found.describe(' in the response')}",
                        Code.RESPONSE_FIELD_NOT_FOUND,
                    )
            elif KEY_KINDS[key] == "record" and record is not None:
                self.types.source_field(record, value, p.at(key), what)

    def _params(self, endpoint: Endpoint, op: Operation, record: Schema | None) -> None:
        side = "source" if endpoint is self.mapping.source else "target"
        handled: set[str] = set()
        for fm in endpoint.params:
            found = find_param(self.walker, op, fm.target)
            if isinstance(found, str):
                self.error(
                    fm.loc,
                    f"{side}.params: {op.label} has {found}",
                    Code.UNKNOWN_PARAMETER,
                )
                continue
            handled.add(found.param.name)
            if not EXPRESSIONS[fm.expr.kind].makes_parameter:
                self.error(
                    fm.loc,
                    f"{side}.params.{fm.target}: {fm.expr.kind!r} cannot "
                    "produce a request parameter",
                    Code.PARAMETER_VALUE,
                )
            elif EXPRESSIONS[fm.expr.kind].reads_record and side == "source":
                self.error(
                    fm.loc,
                    f"source.params.{fm.target}: a source request "
                    "cannot use record fields; use {const: ...} or {env: ...}",
                    Code.PARAMETER_VALUE,
                )
            elif record is not None and fm.expr.kind == "path":
                self._param_path(fm, found.param, record)
            elif record is not None and fm.expr.kind == "expr":
                EXPRESSION.infer(self.types, fm.expr, record, f"{side}.params")
            elif record is not None and fm.plain:
                self._plain_constant(fm, found.param, record)
        if side == "source":
            for name in handled_by_source(self.mapping.source):
                found = find_param(self.walker, op, name)
                if not isinstance(found, str):
                    handled.add(found.param.name)
        key = own_key(op)
        for param in op.parameters:
            if param.required and param.name not in handled:
                example = (
                    # the written record's own key: one value would write one record
                    f"from the source field that holds it (`{param.name}: FIELD`) or"
                    f" a stub (`{param.name}: {{stub: NAME}}`)"
                    if side == "target" and key == param.name
                    else f"e.g. `{param.name}: {{env: {param.name.upper()}}}`"
                )
                self.error(
                    endpoint.loc,
                    f"{side}.params: {op.label} requires the "
                    f"{param.location} parameter {param.name!r}; map it, {example}",
                    Code.REQUIRED_PARAMETER_UNMAPPED,
                )

    def _param_path(self, fm: FieldMap, param: Parameter, record: Schema) -> None:
        """A target parameter read from a source field (a plain string is a path)."""
        found = self.walker.find(record, fm.expr.path)
        if isinstance(found, Miss):
            self.error(
                fm.expr.loc,
                f"target.params: source field {found.describe()}; in target.params a "
                "plain string is a source field path (in source.params, a constant):"
                f" for the constant, write {{const: {fm.expr.path}}}",
                Code.SOURCE_FIELD_NOT_FOUND,
            )
            return
        if fm.expr.path in self._enum(param):
            self.types.warn(
                fm.expr.loc,
                f"target.params.{fm.target}: {fm.expr.path!r} reads the source field of "
                "that name, although it is also one of the parameter's values: in "
                "target.params a plain string is a source field path (in source.params, "
                f"a constant); for the constant, write {{const: {fm.expr.path}}}",
                Code.PARAMS_PLAIN_STRING,
            )
        self._path_value_may_be_missing(fm, param, record)

    def _enum(self, param: Parameter) -> tuple[object, ...]:
        if param.schema is None:
            return ()
        return self.walker.shape(param.schema).enum or ()

    def _plain_constant(self, fm: FieldMap, param: Parameter, record: Schema) -> None:
        """A plain source.params string that names a source field is still a constant
        (one of the parameter's own values clearly is)."""
        if self.walker.get(record, fm.expr.value) is None:
            return
        if fm.expr.value in self._enum(param):
            return
        self.types.warn(
            fm.expr.loc,
            f"source.params.{fm.target}: the plain string {fm.expr.value!r} is sent as "
            "that constant, although the source record has a field of that name: a "
            "source request is made before any record is read (in target.params a "
            f"plain string is a source field path); write {{const: {fm.expr.value}}} "
            "to say it is meant",
            Code.PARAMS_PLAIN_STRING,
        )

    def _path_value_may_be_missing(
        self, fm: FieldMap, param: Parameter, record: Schema
    ) -> None:
        """A path parameter from a source field the schema does not require."""
        if param.location != "path" or self.types.required(record, fm.expr.path):
            return
        if fm.expr.has_default:
            return
        self.types.warn(
            fm.expr.loc,
            f"target.params.{fm.target}: source field {fm.expr.path!r} is optional in "
            'the source schema; a record without it is dead-lettered ("the path '
            f'parameter {param.name!r} has no value"); add `default:` or filter such '
            "records out with `source.filter`",
            Code.PATH_PARAMETER_MAY_BE_MISSING,
        )

    def _source_body(self) -> None:
        """A source operation that requires a body gets `source.body`."""
        op, source = self.source, self.mapping.source
        if op.request_required and source.body is None:
            body_fields = (
                sorted(self.walker.shape(op.request_body).properties)[:5]
                if op.request_body is not None
                else []
            )
            fields = ", ".join(body_fields)
            self.error(
                source.loc,
                f"source: {op.label} requires a request body; give it as `body:` "
                "(plain values are constants, {env: NAME} reads the environment)"
                + (f", e.g. with some of: {fields}" if fields else ""),
                Code.SOURCE_BODY_UNMAPPED,
            )
        if source.body is None:
            return
        body = op.request_body
        if body is None:
            self.error(
                source.at("body"),
                f"source.body: {op.label} takes no request body; remove `body:`",
                Code.SOURCE_BODY_UNMAPPED,
            )
            return
        for path, expr in body_leaves(source.body):
            found = self.walker.find(body, path)
            if isinstance(found, Miss):
                self.error(
                    expr.loc,
                    f"source.body: field {found.describe(' in the request body')}",
                    Code.TARGET_FIELD_NOT_FOUND,
                )
            elif EXPRESSIONS[expr.kind].reads_record:
                self.error(
                    expr.loc,
                    f"source.body.{path}: a source request cannot use record "
                    "fields; use {const: ...} or {env: ...}",
                    Code.PARAMETER_VALUE,
                )

    def _stub_names(self, fields: tuple[FieldMap, ...]) -> None:
        """Stubs named like something the script binds or reads, or a builtin."""
        named = [(fm.target, expr.text, expr.loc) for fm, expr in _stubs(fields)]
        predicate = self.mapping.source.filter
        if predicate is not None and predicate.stub:
            if predicate.stub in {name for _, name, _ in named}:
                self.error(
                    predicate.loc,
                    f"source.filter: stub '{predicate.stub}' already fills a target"
                    " field; give the filter's predicate its own name",
                    Code.STUB_SIGNATURE,
                )
            named.append(("source.filter", predicate.stub, predicate.loc))
        fills = {name for _, name, _ in named}
        for side, endpoint in (
            ("source", self.mapping.source),
            ("target", self.mapping.target),
        ):
            auth = endpoint.auth
            if auth is None or not auth.stub:
                continue
            if auth.stub in fills:
                self.error(
                    auth.loc,
                    f"{side}.auth.stub: '{auth.stub}' is a stub of a target field or"
                    " the filter; give the signing function its own name",
                    Code.STUB_SIGNATURE,
                )
            named.append((f"{side}.auth", auth.stub, auth.loc))
        for what, name, loc in named:
            if name not in reserved_names():
                continue
            kind = (
                "a Python builtin"
                if name in BUILTINS
                else "a name the script already uses"
            )
            self.error(
                loc,
                f"{what}: stub '{name}' is {kind}; give the stub another name",
                Code.STUB_NAME_TAKEN,
            )


def handled_by_source(source: Endpoint | None) -> set[str]:
    """Source parameters the script sets itself: pagination's and incremental's."""
    if source is None:
        return set()
    handled: set[str] = set()
    if source.pagination is not None:
        p = source.pagination
        handled |= {
            getattr(p, key)
            for key in STYLES[p.style].keys
            if KEY_KINDS[key] == "parameter" and getattr(p, key)
        }
    if source.incremental is not None:
        handled.add(source.incremental.param)
    return handled


def _stubs(fields: tuple[FieldMap, ...]) -> list[tuple[FieldMap, Expr]]:
    """Every stub expression, nested `each` fields included."""
    found: list[tuple[FieldMap, Expr]] = []
    for fm in fields:
        if fm.expr.kind == "stub":
            found.append((fm, fm.expr))
        elif fm.expr.kind == "each":
            found += _stubs(fm.expr.fields)
    return found
