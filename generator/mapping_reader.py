"""Read a mapping file into its typed model, with line and column kept for every key."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from generator.errors import Code, P2pgenError, Problem, did_you_mean
from generator.kinds.auth import TOKEN_AUTH, env_roles
from generator.kinds.expressions import EXPRESSIONS, MODIFIERS, expression_keys
from generator.kinds.pagination import (
    ALL_KEYS,
    KEY_KINDS,
    MAPPING_STYLES,
    MAX_PAGES,
    STYLES,
)
from generator.mapping import (
    DEFAULT_SCHEDULE,
    ENV_VAR,
    FILTER_OPERATORS,
    LOOKUP_APIS,
    LOOKUP_ON_MISSING,
    ON_MATCH,
    ON_MISSING,
    SIGNATURE_SCHEMES,
    Auth,
    Batch,
    Condition,
    Delete,
    Endpoint,
    Expr,
    FieldMap,
    Filter,
    IdempotencyKey,
    Incremental,
    Loc,
    Lookup,
    Mapping,
    Pagination,
    Signature,
    TargetCall,
    TextAt,
    cron_problem,
    is_identifier,
)
from generator.runtime.mapping import path_keys
from generator.spec_files import read_text
from generator.yaml_limits import unsafe_nodes


class Node:
    """A YAML node with its position, built on PyYAML's composer."""

    def __init__(self, node: yaml.Node, loader: yaml.SafeLoader, file: str) -> None:
        self.node = node
        self.loader = loader
        self.file = file
        self.loc = Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)

    @property
    def is_map(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode)

    @property
    def is_list(self) -> bool:
        return isinstance(self.node, yaml.SequenceNode)

    def elements(self) -> Iterator[Node]:
        assert isinstance(self.node, yaml.SequenceNode)
        for item in self.node.value:
            yield Node(item, self.loader, self.file)

    def items(self) -> Iterator[tuple[str, Node, Loc]]:
        assert isinstance(self.node, yaml.MappingNode)
        for key, value in self.node.value:
            key_value = self.loader.construct_object(key, deep=True)
            loc = Loc(self.file, key.start_mark.line + 1, key.start_mark.column + 1)
            yield key_value, Node(value, self.loader, self.file), loc

    def value(self) -> Any:
        return self.loader.construct_object(self.node, deep=True)

    def text_at(self) -> TextAt:
        """Where this scalar's text is written, to locate positions inside it."""
        start, end = self.node.start_mark, self.node.end_mark
        raw = str(start.buffer or "")[start.index : end.index]
        value = str(self.node.value)
        style = getattr(self.node, "style", None)
        if style == "|":
            lines = raw.split("\n")[1:]
            content = [line for line in lines if line.strip()]
            indent = len(content[0]) - len(content[0].lstrip(" ")) if content else 0
            first = next((i for i, line in enumerate(lines) if line.strip()), 0)
            written = "\n".join(line[indent:] for line in lines[first:])
            if value.strip("\n") == written.strip("\n") and not value.startswith("\n"):
                loc = Loc(self.file, start.line + 2 + first, indent + 1)
                return TextAt(loc, True, indent + 1)
        elif "\n" not in raw:
            quoted = style in ("'", '"')
            if (raw[1:-1] if quoted else raw) == value:
                loc = Loc(self.file, start.line + 1, start.column + 1 + quoted)
                return TextAt(loc, True)
        return TextAt(self.loc, False)


class Parser:
    """Turns the YAML tree into the typed model, collecting every problem."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def error(self, loc: Loc, message: str, code: Code = Code.INVALID_VALUE) -> None:
        self.problems.append(loc.problem(message, code=code))

    def keys(
        self,
        node: Node,
        what: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> dict[str, tuple[Node, Loc]]:
        if not node.is_map:
            self.error(node.loc, f"{what} must be a mapping of keys to values")
            return {}
        found: dict[str, tuple[Node, Loc]] = {}
        for key, value, loc in node.items():
            key_text = str(key)
            if key_text in found:
                self.error(
                    loc, f"duplicate key {key_text!r} in {what}", Code.DUPLICATE_KEY
                )
            elif key_text not in allowed:
                self.error(
                    loc,
                    f"unknown key {key_text!r} in {what}"
                    f"{did_you_mean(key_text, allowed)}; allowed: {', '.join(allowed)}",
                    Code.UNKNOWN_KEY,
                )
            else:
                found[key_text] = (value, loc)
        for key in required:
            if key not in found:
                self.error(node.loc, f"{what} needs the key {key!r}", Code.MISSING_KEY)
        return found

    def string(self, entry: tuple[Node, Loc] | None, what: str) -> str | None:
        if entry is None:
            return None
        node, _ = entry
        value = node.value() if node.is_scalar else None
        if not isinstance(value, str) or not value.strip():
            self.error(node.loc, f"{what} must be a non-empty string")
            return None
        return value

    def function_name(self, name: str, loc: Loc, what: str) -> bool:
        """Whether a stub's name is one Python can define; else a located error."""
        if is_identifier(name):
            return True
        self.error(
            loc,
            f"{what}: stub {name!r} must be a Python function name "
            "(letters, digits and _, not a keyword)",
        )
        return False

    def integer(
        self, entry: tuple[Node, Loc] | None, what: str, minimum: int
    ) -> int | None:
        if entry is None:
            return None
        node, _ = entry
        value = node.value() if node.is_scalar else None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.error(node.loc, f"{what} must be a whole number >= {minimum}")
            return None
        return value

    def schedule(self, entry: tuple[Node, Loc] | None) -> str:
        text = self.string(entry, "schedule")
        if entry is None or text is None:
            return DEFAULT_SCHEDULE
        problem = cron_problem(text)
        if problem:
            self.error(
                entry[0].loc,
                f"schedule {text!r} {problem}; write five cron fields in UTC, "
                "'minute hour day-of-month month day-of-week', "
                "e.g. '*/15 * * * *' (every 15 minutes) or '0 6 * * MON-FRI'",
            )
        return " ".join(text.split())

    def field_maps(
        self,
        node: Node,
        what: str,
        scalars_are_constants: bool = False,
        matched: str = "",
    ) -> tuple[FieldMap, ...]:
        """Target path -> expression; in source params a plain value is a constant.

        `matched` ("update"): `{match: PATH}` reads the matched target record.
        """
        if not node.is_map:
            self.error(node.loc, f"{what} must be a mapping of target paths to values")
            return ()
        result = []
        seen: set[str] = set()
        for key, value, loc in node.items():
            target = str(key)
            if target in seen:
                self.error(
                    loc, f"duplicate key {target!r} in {what}", Code.DUPLICATE_KEY
                )
                continue
            seen.add(target)
            plain = scalars_are_constants and value.is_scalar
            if plain:
                expr: Expr | None = Expr("const", value.loc, value=value.value())
            elif _is_match(value):
                expr = self.match_expr(value, f"{what}.{target}", matched)
            else:
                expr = self.expr(value, f"{what}.{target}")
            if expr is not None:
                text = isinstance(expr.value, str)
                result.append(FieldMap(target, expr, loc, plain=plain and text))
        return tuple(result)

    def match_expr(self, node: Node, what: str, matched: str) -> Expr | None:
        """`{match: PATH}`: a field of the target record `target.match` found."""
        entry = next(node.items())
        path = self.string((entry[1], entry[2]), f"{what}.match")
        if path is None:
            return None
        if matched not in ("update", "delete"):
            self.error(
                node.loc,
                f"{what}: {{match: {path}}} reads the target record found by"
                " target.match, so it can be used only in target.update.params"
                " and target.delete.params",
                Code.MATCH_FIELD,
            )
            return None
        return Expr("match", node.loc, path=path.strip())

    def expr(self, node: Node, what: str) -> Expr | None:
        if node.is_scalar:
            value = node.value()
            if isinstance(value, str) and value.strip():
                return Expr("path", node.loc, path=value.strip())
            self.error(
                node.loc,
                f"{what}: {value!r} is not a source field path; "
                f"write a constant as {{const: {_yaml_scalar(value)}}}",
            )
            return None
        if not node.is_map:
            self.error(
                node.loc,
                f"{what}: expected a source path or a mapping such as "
                "{from: ...}, {const: ...}, {template: ...}",
            )
            return None
        keys = self.keys(node, what, expression_keys())
        kinds = [kind for kind in EXPRESSIONS.values() if kind.key in keys]
        if len(kinds) != 1:
            listed = " and ".join(repr(k.key) for k in kinds) if kinds else "none"
            self.error(
                node.loc,
                f"{what}: give exactly one of "
                f"{', '.join(repr(k.key) for k in EXPRESSIONS.values())} (found {listed})",
                Code.CONFLICTING_KEYS,
            )
            return None
        kind = kinds[0]
        for key, (_, loc) in keys.items():
            if key != kind.key and key not in kind.companions:
                self.error(
                    loc,
                    f"{what}: {key!r} cannot be used with {kind.key!r}",
                    Code.CONFLICTING_KEYS,
                )
        common: dict[str, Any] = {}
        for key in kind.companions:
            if key in MODIFIERS and key in keys:
                common.update(MODIFIERS[key].read(self, keys[key], what))
        return kind.read(self, keys, node.loc, what, common)

    def endpoint(self, node: Node, side: str, base: Path) -> Endpoint | None:
        allowed = ("spec", "operation", "params", "auth") + (
            ("records", "pagination", "incremental", "filter", "body", *WEBHOOK_KEYS)
            if side == "source"
            else ("idempotency_key", *WRITE_KEYS)
        )
        keys = self.keys(
            node,
            side,
            allowed,
            required=("spec",) if side == "source" else ("spec", "operation"),
        )
        spec = self.string(keys.get("spec"), f"{side}.spec")
        if side == "source":
            operation = self.source_kind(node, keys)
        else:
            operation = self.string(keys.get("operation"), f"{side}.operation")
        if spec is None or operation is None:
            return None
        params = (
            self.field_maps(
                keys["params"][0],
                f"{side}.params",
                scalars_are_constants=side == "source",
            )
            if "params" in keys
            else ()
        )
        return Endpoint(
            spec=(base / spec),
            operation=operation,
            loc=node.loc,
            locs=_locs(keys),
            params=params,
            auth=self.auth(keys["auth"][0], side) if "auth" in keys else None,
            records=self.string(keys.get("records"), f"{side}.records"),
            pagination=(
                self.pagination(keys["pagination"][0]) if "pagination" in keys else None
            ),
            incremental=(
                self.incremental(keys["incremental"][0])
                if "incremental" in keys
                else None
            ),
            idempotency_key=(
                self.idempotency(keys["idempotency_key"][0])
                if "idempotency_key" in keys
                else None
            ),
            filter=(
                self.filter(keys["filter"][0], f"{side}.filter")
                if "filter" in keys
                else None
            ),
            body=self.body(keys["body"][0], f"{side}.body") if "body" in keys else None,
            webhook=self.string(keys.get("webhook"), "source.webhook"),
            event_id=self.string(keys.get("event_id"), "source.event_id"),
            signature=(
                self.signature(keys["signature"][0]) if "signature" in keys else None
            ),
            **self.writes(keys),
        )

    def writes(self, keys: dict[str, tuple[Node, Loc]]) -> dict[str, Any]:
        """The target's match, on_match, update and on_missing keys."""
        found: dict[str, Any] = {}
        for key in ("match", "update"):
            if key in keys:
                found[key] = self.target_call(keys[key][0], key)
        if "batch" in keys:
            found["batch"] = self.batch(keys["batch"][0])
        if "delete" in keys:
            found["delete"] = self.delete(keys["delete"][0])
        for key, values in (("on_match", ON_MATCH), ("on_missing", ON_MISSING)):
            value = self.string(keys.get(key), f"target.{key}")
            if value is not None and value not in values:
                self.error(
                    keys[key][0].loc,
                    f"target.{key}: {value!r} is not one of {', '.join(values)}"
                    f"{did_you_mean(value, values)}",
                )
            elif value is not None:
                found[key] = value
        return found

    def lookups(self, node: Node) -> tuple[Lookup, ...]:
        """`lookups`: name -> {api, operation, params, records, on_missing}."""
        if not node.is_map:
            self.error(node.loc, "lookups must be a mapping of names to look-ups")
            return ()
        found: list[Lookup] = []
        for name, value, loc in node.items():
            what = f"lookups.{name}"
            if not is_identifier(str(name)):
                self.error(loc, f"{what}: the name must be letters, digits and _")
                continue
            keys = self.keys(
                value,
                what,
                ("api", "operation", "params", "records", "on_missing"),
                required=("operation",),
            )
            operation = self.string(keys.get("operation"), f"{what}.operation")
            choices = {}
            for key, values in (
                ("api", LOOKUP_APIS),
                ("on_missing", LOOKUP_ON_MISSING),
            ):
                choice = self.string(keys.get(key), f"{what}.{key}")
                if choice is not None and choice not in values:
                    self.error(
                        keys[key][0].loc,
                        f"{what}.{key}: {choice!r} is not one of {', '.join(values)}"
                        f"{did_you_mean(choice, values)}",
                    )
                elif choice is not None:
                    choices[key] = choice
            if operation is None:
                continue
            params = (
                self.field_maps(keys["params"][0], f"{what}.params")
                if "params" in keys
                else ()
            )
            found.append(
                Lookup(
                    operation=operation,
                    params=params,
                    records=self.string(keys.get("records"), f"{what}.records"),
                    name=str(name),
                    loc=value.loc,
                    locs=_locs(keys),
                    **choices,
                )
            )
        return tuple(found)

    def batch(self, node: Node) -> Batch | None:
        """`target.batch`: size, path, results."""
        keys = self.keys(
            node, "target.batch", ("size", "path", "results"), required=("size",)
        )
        size = self.integer(keys.get("size"), "target.batch.size", 1)
        if size is None:
            return None
        return Batch(
            size=size,
            path=self.string(keys.get("path"), "target.batch.path"),
            results=self.string(keys.get("results"), "target.batch.results"),
            loc=node.loc,
            locs=_locs(keys),
        )

    def delete(self, node: Node) -> Delete | None:
        """`target.delete`: when (conditions as in source.filter), operation, params."""
        what = "target.delete"
        keys = self.keys(
            node, what, ("when", "operation", "params"), required=("when", "operation")
        )
        operation = self.string(keys.get("operation"), f"{what}.operation")
        when = self.filter(keys["when"][0], f"{what}.when") if "when" in keys else None
        if when is not None and when.stub:
            self.error(
                when.loc,
                f"{what}.when: write conditions (a stub predicate is for source.filter)",
            )
        if operation is None or when is None:
            return None
        params = (
            self.field_maps(keys["params"][0], f"{what}.params", matched="delete")
            if "params" in keys
            else ()
        )
        return Delete(
            operation=operation,
            params=params,
            when=when,
            loc=node.loc,
            locs=_locs(keys),
        )

    def target_call(self, node: Node, key: str) -> TargetCall | None:
        """`target.match` (operation, params, records) or `target.update`."""
        what = f"target.{key}"
        allowed = ("operation", "params") + (("records",) if key == "match" else ())
        keys = self.keys(node, what, allowed, required=("operation",))
        operation = self.string(keys.get("operation"), f"{what}.operation")
        if operation is None:
            return None
        params = (
            self.field_maps(keys["params"][0], f"{what}.params", matched=key)
            if "params" in keys
            else ()
        )
        return TargetCall(
            operation=operation,
            params=params,
            records=self.string(keys.get("records"), f"{what}.records"),
            loc=node.loc,
            locs=_locs(keys),
        )

    def source_kind(self, node: Node, keys: dict[str, tuple[Node, Loc]]) -> str | None:
        """A source polls an `operation` or receives a `webhook`: exactly one, with
        only the keys that kind takes. The webhook's operation is ""."""
        if "operation" in keys and "webhook" in keys:
            self.error(
                keys["webhook"][1],
                "source: give either 'operation' (a source that is polled) or"
                " 'webhook' (one that sends its events), not both",
                Code.CONFLICTING_KEYS,
            )
            return None
        if "webhook" not in keys:
            for key in WEBHOOK_KEYS[1:]:
                if key in keys:
                    self.error(
                        keys[key][1],
                        f"source.{key} belongs to a webhook source; name the"
                        " spec's webhook with `webhook:` instead of `operation:`,"
                        f" or remove {key!r}",
                        Code.CONFLICTING_KEYS,
                    )
            if "operation" not in keys:
                self.error(
                    node.loc,
                    "source needs the key 'operation' (or 'webhook', for a source"
                    " whose spec sends webhooks)",
                    Code.MISSING_KEY,
                )
                return None
            return self.string(keys.get("operation"), "source.operation")
        for key, why in POLLING_ONLY_KEYS.items():
            if key in keys:
                self.error(
                    keys[key][1],
                    f"source.{key}: a webhook source {why}; remove it",
                    Code.CONFLICTING_KEYS,
                )
        if "signature" not in keys:
            self.error(
                node.loc,
                "source needs the key 'signature' for a webhook: unsigned deliveries"
                " are refused, e.g. `signature: {scheme: standard-webhooks,"
                " env: {secret: MY_WEBHOOK_SECRET}}`",
                Code.MISSING_KEY,
            )
        return ""

    def signature(self, node: Node) -> Signature | None:
        keys = self.keys(
            node,
            "source.signature",
            ("scheme", "header", "env", "tolerance"),
            required=("scheme", "env"),
        )
        scheme = self.string(keys.get("scheme"), "source.signature.scheme")
        if scheme is not None and scheme not in SIGNATURE_SCHEMES:
            self.error(
                keys["scheme"][0].loc,
                f"source.signature.scheme: unknown scheme {scheme!r}"
                f"{did_you_mean(scheme, SIGNATURE_SCHEMES)}; use one of"
                f" {', '.join(SIGNATURE_SCHEMES)}",
            )
            scheme = None
        header = self.string(keys.get("header"), "source.signature.header")
        if header is not None and not HEADER_NAME.fullmatch(header):
            self.error(
                keys["header"][0].loc,
                f"source.signature.header: {header!r} is not an HTTP header name"
                " (letters, digits and -, e.g. X-Signature)",
            )
            header = None
        if scheme == "hmac-sha256" and "header" not in keys:
            self.error(
                node.loc,
                "source.signature: hmac-sha256 needs 'header', the request header"
                " that carries the hex HMAC-SHA256 of the body (e.g. X-Signature)",
                Code.MISSING_KEY,
            )
        elif scheme in SCHEME_HEADERS and "header" in keys:
            self.error(
                keys["header"][1],
                f"source.signature.header: {scheme} signs in its own header"
                f" ({SCHEME_HEADERS[scheme]}); remove 'header'",
                Code.CONFLICTING_KEYS,
            )
        if scheme == "hmac-sha256" and "tolerance" in keys:
            self.error(
                keys["tolerance"][1],
                "source.signature.tolerance: hmac-sha256 signs no timestamp, so"
                " there is nothing to be stale; remove it (re-deliveries are"
                " recognised by event_id)",
                Code.CONFLICTING_KEYS,
            )
        tolerance = self.integer(keys.get("tolerance"), "source.signature.tolerance", 1)
        secret: str | None = None
        if "env" in keys:
            env = self.keys(
                keys["env"][0], "source.signature.env", ("secret",), ("secret",)
            )
            secret = self.string(env.get("secret"), "source.signature.env.secret")
            if secret is not None and not ENV_VAR.fullmatch(secret):
                self.error(
                    env["secret"][0].loc,
                    f"{secret!r} is not an environment variable name",
                )
                secret = None
        if scheme is None or secret is None:
            return None
        return Signature(
            scheme=scheme,
            secret_env=secret,
            header=header,
            tolerance=tolerance,
            loc=node.loc,
            locs=_locs(keys),
        )

    def body(self, node: Node, what: str) -> dict[str, Any] | None:
        """A request body as YAML: plain values are constants, {env: NAME} reads the
        environment, dotted keys nest."""
        if not node.is_map:
            self.error(node.loc, f"{what} must be a mapping of body fields to values")
            return None
        tree: dict[str, Any] = {}
        for key, value, loc in node.items():
            parts = path_keys(str(key))
            holder = tree
            for part in parts[:-1]:
                holder = holder.setdefault(part, {})
                if not isinstance(holder, dict):
                    break
            if not isinstance(holder, dict) or parts[-1] in holder:
                self.error(loc, f"duplicate key {key!r} in {what}", Code.DUPLICATE_KEY)
                continue
            item = self.body_value(value, f"{what}.{key}")
            if item is not None:
                holder[parts[-1]] = item
        return tree

    def body_value(self, node: Node, what: str) -> Any:
        if node.is_scalar:
            return Expr("const", node.loc, value=node.value())
        if node.is_list:
            items = [
                self.body_value(e, f"{what}[{i}]")
                for i, e in enumerate(node.elements())
            ]
            return [item for item in items if item is not None]
        keys = {str(key) for key, _, _ in node.items()}
        if keys and keys <= set(expression_keys()):
            return self.expr(node, what)
        return self.body(node, what)

    def filter(self, node: Node, what: str) -> Filter | None:
        """`{field: value, field: {op: value}}`, or `{stub: name}` alone."""
        if not node.is_map:
            self.error(
                node.loc,
                f"{what} must be a mapping of source fields to conditions, "
                "or {stub: function_name}",
            )
            return None
        entries = list(node.items())
        if [key for key, _, _ in entries] == ["stub"] and entries[0][1].is_scalar:
            name = self.string((entries[0][1], entries[0][2]), f"{what}.stub")
            if name is None or not self.function_name(name, entries[0][1].loc, what):
                return None
            return Filter((), name, node.loc)
        if [key for key, _, _ in entries] == ["expr"] and entries[0][1].is_scalar:
            keys = {"expr": (entries[0][1], entries[0][2])}
            expr = EXPRESSIONS["expr"].read(self, keys, node.loc, what, {})
            return None if expr is None else Filter((), "", node.loc, expr=expr)
        conditions: list[Condition] = []
        seen: set[str] = set()
        for key, value, loc in entries:
            field_ = str(key)
            if field_ in seen:
                self.error(
                    loc, f"duplicate key {field_!r} in {what}", Code.DUPLICATE_KEY
                )
                continue
            seen.add(field_)
            tests = (
                [(str(op), n, at) for op, n, at in value.items()]
                if value.is_map
                else [("eq", value, value.loc)]
            )
            for op, operand, at in tests:
                condition = self.condition(field_, op, operand, at, f"{what}.{field_}")
                if condition is not None:
                    conditions.append(condition)
        return Filter(tuple(conditions), "", node.loc)

    def condition(
        self, field_: str, op: str, node: Node, loc: Loc, what: str
    ) -> Condition | None:
        """One operator and its value, checked for shape (types: check stage)."""
        if op not in FILTER_OPERATORS:
            self.error(
                loc,
                f"{what}: unknown operator {op!r}{did_you_mean(op, FILTER_OPERATORS)};"
                f" use one of {', '.join(FILTER_OPERATORS)}",
                Code.FILTER_OPERATOR,
            )
            return None
        value = node.value()
        if op in ("in", "not_in"):
            problem = "" if isinstance(value, list) else "must be a list of values"
        elif op == "exists":
            problem = "" if isinstance(value, bool) else "must be true or false"
        else:
            problem = (
                "" if node.is_scalar else "must be a single value (several: use `in`)"
            )
        values = value if isinstance(value, list) and op != "exists" else [value]
        if not problem and any(v is None for v in values):
            problem = "cannot be null (a missing or null field meets only `ne` and `exists: false`)"
        elif not problem and any(isinstance(v, dict | list) for v in values):
            problem = "must hold single values, not lists or mappings"
        if problem:
            self.error(node.loc, f"{what}: {op} {problem}", Code.FILTER_VALUE)
            return None
        return Condition(field_, op, value, node.loc)

    def auth(self, node: Node, side: str) -> Auth:
        keys = self.keys(node, f"{side}.auth", ("scheme", "env", "token_auth", "stub"))
        env: dict[str, str] = {}
        if "env" in keys:
            env_keys = self.keys(keys["env"][0], f"{side}.auth.env", env_roles())
            for key, entry in env_keys.items():
                var = self.string(entry, f"{side}.auth.env.{key}")
                if var is not None and not ENV_VAR.fullmatch(var):
                    self.error(
                        entry[0].loc, f"{var!r} is not an environment variable name"
                    )
                elif var is not None:
                    env[key] = var
        token_auth = self.string(keys.get("token_auth"), f"{side}.auth.token_auth")
        if token_auth is not None and token_auth not in TOKEN_AUTH:
            self.error(
                keys["token_auth"][0].loc,
                f"{side}.auth.token_auth: {token_auth!r} is not a way to send client "
                f"credentials{did_you_mean(token_auth, TOKEN_AUTH)}; use one of "
                f"{', '.join(TOKEN_AUTH)}",
            )
            token_auth = None
        stub = self.string(keys.get("stub"), f"{side}.auth.stub")
        if stub is not None and not self.function_name(
            stub, keys["stub"][0].loc, f"{side}.auth"
        ):
            stub = None
        return Auth(
            self.string(keys.get("scheme"), f"{side}.auth.scheme"),
            env,
            node.loc,
            token_auth,
            stub,
        )

    def pagination(self, node: Node) -> Pagination | None:
        keys = self.keys(
            node, "source.pagination", ("style", *ALL_KEYS), required=("style",)
        )
        style = self.string(keys.get("style"), "source.pagination.style")
        if style is None:
            return None
        if style not in MAPPING_STYLES:
            self.error(
                keys["style"][0].loc,
                f"unknown pagination style {style!r}"
                f"{did_you_mean(style, MAPPING_STYLES)}; use one of "
                f"{', '.join(MAPPING_STYLES)}",
                Code.INVALID_VALUE,
            )
            return None
        for key, message, code in STYLES[style].shape_problems(frozenset(keys)):
            self.error(keys[key][1] if key else node.loc, message, code)
        counts = {
            key: self.integer(keys.get(key), f"source.pagination.{key}", minimum)
            for key, minimum in (("limit", 1), ("start", 0), ("max_pages", 1))
        }
        texts = {
            key: self.string(keys.get(key), f"source.pagination.{key}")
            for key in ALL_KEYS
            if KEY_KINDS[key] != "count"
        }
        return Pagination(
            style=style,
            loc=node.loc,
            locs=_locs(keys),
            **texts,
            limit=counts["limit"],
            start=counts["start"],
            max_pages=counts["max_pages"] or MAX_PAGES,
        )

    def incremental(self, node: Node) -> Incremental | None:
        keys = self.keys(
            node, "source.incremental", ("param", "field"), required=("param", "field")
        )
        param = self.string(keys.get("param"), "source.incremental.param")
        field_ = self.string(keys.get("field"), "source.incremental.field")
        if param is None or field_ is None:
            return None
        return Incremental(param, field_, loc=node.loc, locs=_locs(keys))

    def idempotency(self, node: Node) -> IdempotencyKey | None:
        keys = self.keys(
            node,
            "target.idempotency_key",
            ("header", "from"),
            required=("header", "from"),
        )
        header = self.string(keys.get("header"), "target.idempotency_key.header")
        source = self.string(keys.get("from"), "target.idempotency_key.from")
        if header is not None and not HEADER_NAME.fullmatch(header):
            self.error(
                keys["header"][0].loc,
                f"target.idempotency_key.header: {header!r} is not an HTTP header name"
                " (letters, digits and -, e.g. Idempotency-Key)",
            )
            header = None
        if header is None or source is None:
            return None
        return IdempotencyKey(header, source, loc=node.loc, locs=_locs(keys))


MAX_NAME_LENGTH = 64
# A webhook source's own keys ("webhook" first), and the polling keys it refuses.
WEBHOOK_KEYS = ("webhook", "event_id", "signature")
SCHEME_HEADERS = {
    "standard-webhooks": "webhook-signature",
    "stripe": "Stripe-Signature",
}
POLLING_ONLY_KEYS = {
    "pagination": "is not paged: each delivery holds its event",
    "incremental": "is not polled: each event is sent once, as it happens",
    "params": "sends no request: its events are delivered to the script",
    "body": "sends no request: its events are delivered to the script",
    "auth": "is not called: deliveries are checked by `signature`",
}
# RFC 9110 field-name: a token
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The script is imported by its own module name, so it must not shadow these.
TAKEN_MODULE_NAMES = sys.stdlib_module_names | {
    "_pytest",
    "annotated_types",
    "anyio",
    "certifi",
    "h11",
    "httpcore",
    "httpx",
    "idna",
    "iniconfig",
    "packaging",
    "pluggy",
    "pydantic",
    "pydantic_core",
    "pytest",
    "sniffio",
    "typing_extensions",
}


# target keys of the writes beyond one request per record (checks_writes.py)
WRITE_KEYS = ("match", "on_match", "update", "on_missing", "batch", "delete")


def _is_match(node: Node) -> bool:
    """Whether a value is `{match: PATH}`."""
    return node.is_map and [str(key) for key, _, _ in node.items()] == ["match"]


def _locs(keys: dict[str, tuple[Node, Loc]]) -> dict[str, Loc]:
    return {key: node.loc for key, (node, _) in keys.items()}


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_mapping(path: Path) -> Mapping:
    """Parse and check the shape of a mapping file; raise every problem at once."""
    file = str(path)
    text = read_text(path)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character, such as NUL
        raise P2pgenError.single(
            file,
            f"character #x{exc.character:04x} is not allowed in YAML; remove it",
            line=text[: exc.position].count("\n") + 1,
            column=exc.position - text.rfind("\n", 0, exc.position),
            code=Code.MAPPING_SYNTAX,
        ) from None
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise P2pgenError.single(
            file,
            f"invalid YAML: {exc.problem}; fix the syntax",
            line=mark.line + 1 if mark else 0,
            column=mark.column + 1 if mark else 0,
            code=Code.MAPPING_SYNTAX,
        ) from None
    finally:
        loader.dispose()
    if root is None:
        raise P2pgenError.single(
            file,
            "the mapping file is empty; start from "
            "`p2pgen init` or the example in docs/mapping.md",
        )
    unsafe = unsafe_nodes(root, loader, file)
    if unsafe:
        raise P2pgenError(unsafe)
    parser = Parser(file)
    top = parser.keys(
        Node(root, loader, file),
        "the mapping",
        (
            "version",
            "name",
            "description",
            "schedule",
            "source",
            "target",
            "lookups",
            "fields",
        ),
        required=("version", "name", "source", "target", "fields"),
    )
    version = top["version"][0].value() if "version" in top else 1
    if type(version) is not int or version != 1:
        parser.error(
            top["version"][0].loc,
            "unsupported mapping version; this p2pgen " "reads `version: 1`",
        )
    name = parser.string(top.get("name"), "name")
    if name is not None and not is_identifier(name):
        parser.error(
            top["name"][0].loc,
            f"name {name!r} must be a Python identifier "
            "(letters, digits and _, e.g. crm_to_mailer); it names the files",
        )
        name = None
    elif name is not None and (
        len(name) > MAX_NAME_LENGTH or name in TAKEN_MODULE_NAMES
    ):
        problem = (
            f"is longer than {MAX_NAME_LENGTH} characters"
            if len(name) > MAX_NAME_LENGTH
            else "is the name of a Python module the script or its tests import"
        )
        parser.error(
            top["name"][0].loc,
            f"name '{name[:MAX_NAME_LENGTH]}' {problem}; pick another name",
        )
        name = None
    description = parser.string(top.get("description"), "description") or ""
    schedule = parser.schedule(top.get("schedule"))
    base = path.parent
    source = (
        parser.endpoint(top["source"][0], "source", base) if "source" in top else None
    )
    target = (
        parser.endpoint(top["target"][0], "target", base) if "target" in top else None
    )
    fields = parser.field_maps(top["fields"][0], "fields") if "fields" in top else ()
    lookups = parser.lookups(top["lookups"][0]) if "lookups" in top else ()
    if parser.problems or name is None or source is None or target is None:
        raise P2pgenError(parser.problems)
    return Mapping(
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        name=name,
        description=description,
        source=source,
        target=target,
        fields=fields,
        schedule=schedule,
        fields_loc=top["fields"][0].loc,
        lookups=lookups,
    )
