"""Checks of the target's writes beyond one request per record: match and update.

`target.match` must be a GET of the target API whose answer holds a list of
records; `target.update` an operation whose body takes every mapped field;
`{match: PATH}` must name a field of the matched record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.checks import TypeChecker
from generator.errors import Code, P2pgenError, Problem, did_you_mean
from generator.kinds.expressions import EXPRESSION, EXPRESSIONS
from generator.load import Loaded
from generator.mapping import ON_MATCH, Block, Expr, FieldMap, Loc, TargetCall
from generator.schemas import Miss, Walker
from generator.specs import (
    Document,
    Operation,
    Schema,
    find_operation,
    iter_operations,
)


@dataclass
class Writes:
    """What the checks found: the operations the build stage declares."""

    match: Operation | None = None
    match_record: Schema | None = None  # one record of the match answer
    update: Operation | None = None
    lookups: dict[str, Operation] = field(default_factory=dict)  # by name
    looked_up: dict[str, Schema] = field(default_factory=dict)  # what each finds
    delete: Operation | None = None


def records_items(
    walker: Walker,
    op: Operation,
    records: str | None,
    block: Block,
    what: str,
    problems: list[Problem],
) -> Schema | None:
    """The schema of one record in the answer of `op` (at `records`), or a problem.

    `block` is where the operation is named (source, target.match) and `what`
    its name in messages.
    """
    if op.response is None:
        problems.append(
            block.loc.problem(
                f"{what} operation {op.label} has no JSON response schema for a 2xx"
                " status; choose an operation that returns records",
                code=Code.NO_RECORDS,
            )
        )
        return None
    schema: Schema = op.response
    if records:
        found = walker.find(schema, records)
        if isinstance(found, Miss):
            problems.append(
                block.at("records").problem(
                    f"{what}.records: "
                    + found.describe(f" in the response of {op.label}"),
                    code=Code.NO_RECORDS,
                )
            )
            return None
        schema = found
    shape = walker.shape(schema)
    if "array" in shape.types and shape.items is not None:
        return shape.items
    where = f"'{records}'" if records else "the response body"
    arrays = [
        name
        for name, s in walker.shape(op.response).properties.items()
        if name and "array" in walker.shape(s).types  # nic.at names one ''
    ]
    hint = f"; set `records:` to {arrays[0]!r}" if arrays else ""
    problems.append(
        block.at("records").problem(
            f"{what}.records: {where} is not a list of records{hint}",
            code=Code.NO_RECORDS,
        )
    )
    return None


class WriteChecker:
    """Collects the problems of target.match, on_match, update and on_missing."""

    def __init__(self, loaded: Loaded, types: TypeChecker) -> None:
        self.loaded = loaded
        self.target = loaded.mapping.target
        self.types = types
        self.walker = types.walker
        self.problems = types.problems
        self.writes = Writes()

    def error(self, loc: Loc, message: str, code: Code) -> None:
        self.problems.append(loc.problem(message, code=code))

    def batch_body(self, body: Schema | None) -> Schema | None:
        """With target.batch, the body of one record: an item of the list at `path`."""
        batch, op = self.target.batch, self.loaded.target
        if batch is None or body is None:
            return body
        for key, conflict in (
            ("match", "a match is one request per record"),
            ("idempotency_key", "one header cannot carry a key per record"),
        ):
            if key in self.target.locs:
                self.error(
                    self.target.at(key),
                    f"target.{key} cannot be used with target.batch: {conflict}",
                    Code.CONFLICTING_KEYS,
                )
        for fm in self.target.params:
            if EXPRESSIONS[fm.expr.kind].reads_record:
                self.error(
                    fm.loc,
                    f"target.params.{fm.target}: a batch request holds several"
                    " records, so its parameters cannot read one; use {const: ...}"
                    " or {env: ...}",
                    Code.CONFLICTING_KEYS,
                )
        found = self.walker.find(body, batch.path) if batch.path else body
        shape = None if isinstance(found, Miss) else self.walker.shape(found)
        if shape is None or "array" not in shape.types or shape.items is None:
            arrays = [
                name
                for name, s in self.walker.shape(body).properties.items()
                if "array" in self.walker.shape(s).types
            ]
            where = f"{batch.path!r}" if batch.path else "the request body"
            problem = (
                found.describe(" in the request body")
                if isinstance(found, Miss)
                else f"{where} is not a list"
            )
            hint = f"; set `path:` to {arrays[0]!r}" if arrays else ""
            self.error(
                batch.at("path"),
                f"target.batch.path: {op.label}: {problem}{hint}",
                Code.BATCH,
            )
            return None
        assert not isinstance(found, Miss)
        most = self.walker.specs.deref(found).node.get("maxItems")
        if isinstance(most, int) and batch.size > most:
            self.error(
                batch.at("size"),
                f"target.batch.size: {op.label} takes at most {most} records per"
                f" request; set `size: {most}` or less",
                Code.BATCH,
            )
        if batch.results:
            self._batch_results(batch.results, batch.at("results"))
        return shape.items

    def _batch_results(self, path: str, loc: Loc) -> None:
        op = self.loaded.target
        found = self.walker.find(op.response, path) if op.response else None
        if found is None or isinstance(found, Miss):
            problem = (
                found.describe(f" in the response of {op.label}")
                if isinstance(found, Miss)
                else f"{op.label} has no JSON response schema"
            )
            self.error(loc, f"target.batch.results: {problem}", Code.BATCH)
        elif "array" not in self.walker.shape(found).types:
            self.error(
                loc,
                f"target.batch.results: {path!r} in the response of {op.label} is"
                " not a list (one result per record)",
                Code.BATCH,
            )

    def _delete(self, record: Schema | None) -> None:
        """target.delete: its conditions against the record, its operation's params."""
        delete = self.target.delete
        if delete is None:
            return
        if "batch" in self.target.locs:
            self.error(
                self.target.at("batch"),
                "target.batch cannot be used with target.delete: a delete is one"
                " request per record",
                Code.CONFLICTING_KEYS,
            )
        if record is not None and delete.when is not None:
            for condition in delete.when.conditions:
                self.types.check_condition(condition, record, "target.delete.when")
            if delete.when.expr is not None:
                EXPRESSION.check_predicate(
                    self.types, delete.when.expr, record, "target.delete.when"
                )
        op = self._operation(delete, "target.delete")
        if op is None:
            return
        self.writes.delete = op
        if op.method == "get":
            self.error(
                delete.at("operation"),
                f"target.delete: {op.label} is a GET, which deletes nothing; choose"
                " the operation that deletes one record (a DELETE)",
                Code.UPDATE_BODY,
            )
        uses_match = any(fm.expr.kind == "match" for fm in delete.params)
        if uses_match and self.target.match is None:
            self.error(
                delete.loc,
                "target.delete.params: {match: PATH} needs target.match (the"
                " record it reads is the one the match finds)",
                Code.MATCH_FIELD,
            )
        self._params(delete, op, "target.delete", record, self.writes.match_record)

    def run(self, record: Schema | None, body: Schema | None) -> Writes:
        self._lookups(record, body)
        self.writes = self._upsert(record)
        self._delete(record)
        return self.writes

    def _upsert(self, record: Schema | None) -> Writes:
        t, found, what = self.target, self.writes, "target.match"
        if t.match is None:
            for key in ("update", "on_match", "on_missing"):
                if key in t.locs:
                    self.error(
                        t.at(key),
                        f"target.{key} needs target.match: it says what to do with"
                        " the target record that the match finds (or does not find)",
                        Code.MISSING_KEY,
                    )
            return found
        if t.on_match == ON_MATCH[0] and t.update is None:
            self.error(
                t.at("on_match"),
                "target.on_match: update needs target.update (the operation that"
                " changes the matched record, e.g. a PATCH); or write on_match: skip",
                Code.MISSING_KEY,
            )
        elif t.on_match == "skip" and t.update is not None:
            self.error(
                t.at("update"),
                "target.update is never used with on_match: skip; remove one of them",
                Code.CONFLICTING_KEYS,
            )
        found.match = self._operation(t.match, "target.match")
        if found.match is not None and self._is_get(found.match, t.match, what):
            found.match_record = records_items(
                self.walker,
                found.match,
                t.match.records,
                t.match,
                "target.match",
                self.problems,
            )
            self._params(t.match, found.match, "target.match", record, None)
        if t.update is not None:
            found.update = self._operation(t.update, "target.update")
            if found.update is not None:
                self._update_operation(found.update, t.update)
                self._params(
                    t.update, found.update, "target.update", record, found.match_record
                )
        return found

    def _operation(
        self, call: TargetCall, what: str, doc: Document | None = None
    ) -> Operation | None:
        """The operation a call names in `doc` (default: the target's spec)."""
        doc = doc or self.loaded.target.doc
        try:
            return find_operation(self.loaded.specs, doc, call.operation)
        except P2pgenError as exc:
            message = exc.problems[0].message
            self.error(
                call.at("operation"),
                f"{what}.operation: {message} in {doc.path.name}",
                Code.OPERATION_NOT_FOUND,
            )
            return None

    def _is_get(self, op: Operation, call: TargetCall, what: str) -> bool:
        """Whether a match or lookup operation is a GET (the search it needs)."""
        if op.method == "get":
            return True
        searches = [
            str(o.get("operationId") or f"{m.upper()} {p}")
            for m, p, o in iter_operations(op.doc)
            if m == "get"
        ]
        hint = f"; the GET operations of {op.doc.path.name}: {', '.join(searches[:8])}"
        self.error(
            call.at("operation"),
            f"{what}: {op.label} is not a GET; it must search the API's records"
            " (e.g. GET /customers?email=...)" + (hint if searches else ""),
            Code.MATCH_OPERATION,
        )
        return False

    def _lookups(self, record: Schema | None, body: Schema | None) -> None:
        """Each lookup's operation, and the fields that read what it finds."""
        found: dict[str, Schema | None] = {}
        for lookup in self.loaded.mapping.lookups:
            what = f"lookups.{lookup.name}"
            side = self.loaded.source if lookup.api == "source" else self.loaded.target
            op = self._operation(lookup, what, side.doc)
            found[lookup.name] = None
            if op is None or not self._is_get(op, lookup, what):
                continue
            self.writes.lookups[lookup.name] = op
            item = records_items(
                self.walker, op, lookup.records, lookup, what, self.problems
            )
            found[lookup.name] = item
            if item is not None:
                self.writes.looked_up[lookup.name] = item
            self._params(lookup, op, what, record, None)
        for fm, expr in _looked_up(self.loaded.mapping.fields):
            what = f"fields.{fm.target}"
            if expr.text not in found:
                self.error(
                    expr.loc,
                    f"{what}: no lookup named {expr.text!r}"
                    f"{did_you_mean(expr.text, found)}; declare it under `lookups:`",
                    Code.LOOKUP,
                )
                continue
            schema = found[expr.text]
            if schema is None:
                continue  # the lookup's own problem is reported
            value = self.walker.find(schema, expr.path)
            if isinstance(value, Miss):
                self.error(
                    expr.loc,
                    f"{what}: the record lookup {expr.text!r} finds has no such"
                    f" field: {value.describe()}",
                    Code.LOOKUP,
                )
                continue
            target = self.walker.find(body, fm.target) if body is not None else None
            if target is not None and not isinstance(target, Miss):
                shape = self.walker.shape(value)
                self.types.check_types(
                    set(shape.types),
                    shape.format,
                    self.walker.shape(target),
                    expr.loc,
                    what,
                    f"lookup {expr.text}.{expr.path}",
                    expr,
                )

    def _update_operation(self, op: Operation, call: TargetCall) -> None:
        fields = self.loaded.mapping.fields
        if op.method == "get":
            self.error(
                call.at("operation"),
                f"target.update: {op.label} is a GET, which changes nothing; choose"
                " the operation that updates one record (a PATCH or a PUT)",
                Code.UPDATE_BODY,
            )
            return
        if op.request_body is None:
            if fields:
                self.error(
                    call.at("operation"),
                    f"target.update: {op.label} has no JSON request body, but the"
                    " update sends the mapped fields; choose an operation that"
                    " accepts them",
                    Code.UPDATE_BODY,
                )
            return
        for fm in fields:
            miss = self.walker.find(op.request_body, fm.target)
            if isinstance(miss, Miss):
                self.error(
                    fm.loc,
                    f"fields.{fm.target}: target.update {op.label} sends the same"
                    f" body as target.operation, but {miss.describe(' in its body')};"
                    " remove the field or choose another update operation",
                    Code.UPDATE_BODY,
                )

    def _params(
        self,
        call: TargetCall,
        op: Operation,
        what: str,
        record: Schema | None,
        matched: Schema | None,
    ) -> None:
        known = {p.name: p for p in op.parameters}
        for fm in call.params:
            if fm.target not in known:
                self.error(
                    fm.loc,
                    f"{what}.params: {op.label} has no parameter {fm.target!r}"
                    f"{did_you_mean(fm.target, known)}",
                    Code.UNKNOWN_PARAMETER,
                )
            elif fm.expr.kind == "match":
                self._matched_field(fm, matched, what)
            elif not EXPRESSIONS[fm.expr.kind].makes_parameter:
                self.error(
                    fm.loc,
                    f"{what}.params.{fm.target}: {fm.expr.kind!r} cannot produce a"
                    " request parameter",
                    Code.PARAMETER_VALUE,
                )
            elif record is not None and fm.expr.kind == "path":
                self.types.source_field(
                    record, fm.expr.path, fm.expr.loc, f"{what}.params"
                )
        mapped = {fm.target for fm in call.params}
        for param in op.parameters:
            if param.required and param.name not in mapped:
                example = "{match: id}" if what == "target.update" else "a source field"
                self.error(
                    call.loc,
                    f"{what}.params: {op.label} requires the {param.location}"
                    f" parameter {param.name!r}; map it, e.g. `{param.name}: {example}`",
                    Code.REQUIRED_PARAMETER_UNMAPPED,
                )

    def _matched_field(self, fm: FieldMap, matched: Schema | None, what: str) -> None:
        if matched is None:
            return  # the match operation's own problem is reported
        found = self.walker.find(matched, fm.expr.path)
        if isinstance(found, Miss):
            self.error(
                fm.expr.loc,
                f"{what}.params.{fm.target}: {{match: {fm.expr.path}}}: the matched"
                f" target record has no such field: {found.describe()}",
                Code.MATCH_FIELD,
            )


def _looked_up(fields: tuple[FieldMap, ...]) -> list[tuple[FieldMap, Expr]]:
    """Every `{lookup: ...}` expression, nested `each` fields included."""
    found: list[tuple[FieldMap, Expr]] = []
    for fm in fields:
        if fm.expr.kind == "lookup":
            found.append((fm, fm.expr))
        elif fm.expr.kind == "each":
            found += _looked_up(fm.expr.fields)
    return found
