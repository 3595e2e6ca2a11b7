"""Cut both specs down to the schemas this link uses; datamodel-code-generator does the rest."""

from __future__ import annotations

import ast
import importlib
import io
import keyword
import re
import tokenize
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from datamodel_code_generator import generate
from datamodel_code_generator.enums import DataModelType, InputFileType
from datamodel_code_generator.format import DatetimeClassType, PythonVersion

from generator.errors import P2pgenError
from generator.expr import reads as expr_reads
from generator.literals import py_literal
from generator.mapping import FieldMap, from_record, template_paths
from generator.reserved import reserved_names
from generator.runtime.mapping import path_keys
from generator.schemas import (
    CONSTRAINT_KEYS,
    Walker,
    is_index,
    unusable_constraint,
)
from generator.specs import Schema, escape_pointer_part, schema_name

SOURCE_RECORD = "SourceRecord"
TARGET_BODY = "TargetBody"
# Modules whose names datamodel-code-generator's pydantic v2 output imports; a spec
# schema named like one of their names, or like a name of the script itself
# (reserved_names), gets a "Source"/"Target" prefix instead of shadowing it.
MODEL_IMPORT_MODULES = (
    "datetime",
    "decimal",
    "enum",
    "ipaddress",
    "pydantic",
    "typing",
    "uuid",
)
# The only schema keywords handed to datamodel-code-generator. It honours keys of
# its own (customBasePath, customTypePath, x-python-type, x-python-import,
# x-enum-varnames, default_factory, ...) that put spec-chosen imports, base classes,
# types and names into the script, so every other key is left out, at every level.
# Left out on purpose too: default (the script sends only what the mapping sets,
# and real specs often give defaults of the wrong type), example(s), discriminator,
# deprecated (pydantic would warn on every read), xml, externalDocs.
SUBSCHEMA_KEYS = {  # a schema, or a list of schemas
    "items",
    "prefixItems",
    "additionalProperties",
    "propertyNames",
    "not",
    "allOf",
    "anyOf",
    "oneOf",
}
SCHEMA_MAP_KEYS = {"properties", "patternProperties"}  # name -> schema
VALUE_KEYS = CONSTRAINT_KEYS | {  # a value, copied as it is
    "type",
    "format",
    "enum",
    "const",
    "nullable",
    "required",
    "title",
    "description",
    "readOnly",
    "writeOnly",
    "uniqueItems",
}
SCHEMA_KEYS = SUBSCHEMA_KEYS | SCHEMA_MAP_KEYS | VALUE_KEYS
MAX_DEPTH = 64
# pydantic warns about a field named so (its protected namespace before 2.10)
PYDANTIC_PROTECTED = "model_"
_PRINTABLE = re.compile(r"[\x20-\x7e\n]*")  # printable ASCII and newlines


@cache
def taken_names() -> frozenset[str]:
    """Names a model class must not take: the script's own and its imports'."""
    names = set(reserved_names())
    for module in MODEL_IMPORT_MODULES:
        imported = importlib.import_module(module)
        names |= {n for n in dir(imported) if not n.startswith("_")}
    return frozenset(names)


@dataclass(frozen=True)
class Models:
    code: str  # class definitions, without imports
    imports: tuple[str, ...]  # import statements the classes need
    source_record: str
    target_body: str


@dataclass
class Need:
    """What a link uses of a schema: some of its properties, its list items, or all.

    A source model keeps what the mapping reads, a target model what it writes;
    everything else of the record is left out of the models.
    """

    whole: bool = False
    props: dict[str, Need] = field(default_factory=dict)
    items: Need | None = None

    def at(self, path: str) -> Need:
        """The need of a dotted path below this one, created empty."""
        need = self
        for part in path_keys(path):
            need = need.props.setdefault(part, Need())
        return need

    def read(self, path: str) -> None:
        """The source value at `path` is used as it is, all of it."""
        if path:
            self.within(path).whole = True

    def within(self, path: str) -> Need:
        """The need of a dotted source path below this one, created empty; an
        integer segment (`emails.0.email`) reaches into the list's items."""
        need = self
        for part in path_keys(path):
            if is_index(part):
                need.items = need.items or Need()
                need = need.items
            else:
                need = need.props.setdefault(part, Need())
        return need

    def merge(self, other: Need) -> bool:
        """Add what `other` needs; whether this need grew."""
        if self.whole:
            return False
        if other.whole:
            self.whole, self.props, self.items = True, {}, None
            return True
        grew = False
        for name, sub in other.props.items():
            if name not in self.props:
                self.props[name] = Need()
                grew = True
            grew = self.props[name].merge(sub) or grew
        if other.items is not None:
            if self.items is None:
                self.items = Need()
                grew = True
            grew = self.items.merge(other.items) or grew
        return grew


WHOLE = Need(whole=True)  # never mutated: merge() only changes needs that grow


def source_need(fields: Iterable[FieldMap], paths: Iterable[str]) -> Need:
    """What the source record must hold: every path the fields read, and `paths`."""
    need = Need()
    for path in paths:
        need.read(path)
    _reads(need, need, fields)
    return need


def _reads(need: Need, record: Need, fields: Iterable[FieldMap]) -> None:
    """Add what `fields` read from `need` (`$record.` paths: from `record`)."""
    for fm in fields:
        expr = fm.expr
        if expr.kind == "path":
            _read(need, record, expr.path)
        elif expr.kind == "expr":
            for path, item in expr_reads(expr.tree):
                if not item:
                    _read(need, record, path)
                    continue
                scope, inner = _scope(need, record, path)
                listed = scope.within(inner)
                if not listed.whole:
                    listed.items = listed.items or Need()
                    listed.items.read(item)
        elif expr.kind == "template":
            for path in template_paths(expr.text):
                need.read(path)
        elif expr.kind == "each":
            scope, path = _scope(need, record, expr.path)
            listed = scope.within(path)
            if not listed.whole:
                listed.items = listed.items or Need()
                _reads(listed.items, record, expr.fields)


def _scope(need: Need, record: Need, path: str) -> tuple[Need, str]:
    """The need a source path reads from: `$record.` paths the record's."""
    rest = from_record(path)
    return (record, rest) if rest is not None else (need, path)


def _read(need: Need, record: Need, path: str) -> None:
    scope, inner = _scope(need, record, path)
    scope.read(inner)


def target_need(fields: Iterable[FieldMap]) -> Need:
    """What the target body model must hold: every field the mapping writes."""
    need = Need()
    for fm in fields:
        written = need.at(fm.target)
        if fm.expr.kind == "each":
            written.items = written.items or Need()
            written.items.merge(target_need(fm.expr.fields))
        else:
            written.whole = True
    return need


class _Cutter:
    """Copies the parts of the schemas the link needs, renaming refs.

    A named schema becomes one class per side, holding what every use of it on
    that side needs. Source objects that are cut down allow extra keys, so a
    record keeps its other fields (`record.model_extra`, `model_dump()`) without
    validating them.
    """

    def __init__(self, walker: Walker) -> None:
        self.walker = walker
        self.names: dict[tuple[str, Path, str], str] = {}
        self.needs: dict[tuple[str, Path, str], Need] = {}
        self.named: dict[tuple[str, Path, str], Schema] = {}
        self.schemas: dict[str, Any] = {}
        self.pending: list[tuple[str, Path, str]] = []
        self.openapi_31 = False

    def root(self, schema: Schema, need: Need, default_name: str, prefix: str) -> str:
        """Register a root schema; return the class name the script will use."""
        node = self.walker.specs.deref(schema).node
        if isinstance(node, Mapping) and "enum" in node:
            # records that are enum values (Google's error codes): a RootModel of
            # their type, as DCG would make an Enum, which is no BaseModel
            kept = {k: node[k] for k in ("type", "format") if k in node}
            self.schemas[default_name] = kept
            return default_name
        named = self._named_target(schema)
        if named is not None:
            return self._register(named, prefix, need)
        self.schemas[default_name] = self._copy(schema, prefix, 0, need)
        return default_name

    def drain(self) -> None:
        while self.pending:
            key = self.pending.pop(0)
            prefix = key[0]
            self.schemas[self.names[key]] = self._copy(
                self.named[key], prefix, 0, self.needs[key]
            )

    def _named_target(self, schema: Schema) -> Schema | None:
        node = schema.node
        if isinstance(node, Mapping) and set(node) == {"$ref"}:
            target = self.walker.specs.follow(schema.doc, node["$ref"], schema.pointer)
            if schema_name(target.pointer) is not None:
                return target
            return self._named_target(target)
        return None

    def _register(self, schema: Schema, prefix: str, need: Need) -> str:
        key = (prefix, schema.doc.path, schema.pointer)
        if key not in self.names:
            name = _class_name(schema_name(schema.pointer) or "Model")
            if name in self.names.values() or name in taken_names():
                candidate = prefix + name
                counter = 2
                while candidate in self.names.values() or candidate in taken_names():
                    candidate = f"{prefix}{name}{counter}"
                    counter += 1
                name = candidate
            self.names[key] = name
            self.named[key] = schema
            self.needs[key] = Need()
            if str(schema.doc.data.get("openapi", "")).startswith("3.1"):
                self.openapi_31 = True
            self.needs[key].merge(need)
            self.pending.append(key)
        elif self.needs[key].merge(need) and key not in self.pending:
            self.pending.append(key)
        return self.names[key]

    def _copy(self, schema: Schema, prefix: str, depth: int, need: Need) -> Any:
        if depth > MAX_DEPTH:
            raise P2pgenError(
                [
                    schema.problem(
                        "schema nests deeper than p2pgen follows (64 levels, or an inline "
                        "cycle); give the repeated part a name under components/schemas"
                    )
                ]
            )
        node = schema.node
        if str(schema.doc.data.get("openapi", "")).startswith("3.1"):
            self.openapi_31 = True
        if isinstance(node, Mapping):
            if "$ref" in node:
                target = self.walker.specs.follow(
                    schema.doc, node["$ref"], schema.pointer
                )
                if schema_name(target.pointer) is not None:
                    name = self._register(target, prefix, need)
                    return {"$ref": "#/components/schemas/" + name}
                return self._copy(target, prefix, depth + 1, need)
            return self._copy_object(schema, node, prefix, depth, need)
        if isinstance(node, list):
            return [
                (
                    self._copy(
                        Schema(schema.doc, v, f"{schema.pointer}/{i}"),
                        prefix,
                        depth + 1,
                        need,
                    )
                    if isinstance(v, Mapping | list)
                    else v
                )
                for i, v in enumerate(node)
            ]
        return node

    def _copy_object(
        self,
        schema: Schema,
        node: Mapping[str, Any],
        prefix: str,
        depth: int,
        need: Need,
    ) -> dict[str, Any]:
        cut = not need.whole  # only part of this schema is used
        reading = cut and prefix == SOURCE
        result: dict[str, Any] = {}
        for raw_key, raw_value in node.items():
            key, value = raw_key, raw_value
            if key == "x-nullable":  # Swagger 2.0's spelling
                key, value = "nullable", bool(value)
            if key == "nullable" and value is not True:
                continue  # Azure's explicit `nullable: false`, which DCG writes as `x: T = None`
            if key in CONSTRAINT_KEYS and unusable_constraint(key, value):
                continue  # validation warned about it
            if reading and key in _OBJECT_ONLY_KEYS:
                continue  # about the fields left out; extra keys are allowed
            if key == "type" and value == "file":
                value = "string"
            if key in SCHEMA_MAP_KEYS and isinstance(value, Mapping):
                kept = (
                    self._kept(node, value, need, prefix)
                    if key == "properties"
                    else list(value)
                )
                result[key] = {
                    str(k): self._copy(
                        Schema(schema.doc, value[k], f"{schema.pointer}/{key}/{k}"),
                        prefix,
                        depth + 1,
                        need.props.get(str(k), WHOLE) if key == "properties" else WHOLE,
                    )
                    for k in kept
                }
            elif key in SUBSCHEMA_KEYS and isinstance(value, Mapping | list):
                sub = need
                if key == "items" and cut:
                    sub = need.items or Need()
                elif key not in ("allOf", "anyOf", "oneOf"):
                    sub = WHOLE  # additionalProperties, not, patternProperties...
                result[key] = self._copy(
                    Schema(schema.doc, value, f"{schema.pointer}/{key}"),
                    prefix,
                    depth + 1,
                    sub,
                )
            elif key in SCHEMA_KEYS:
                result[key] = value
        if reading and _is_object(node):
            self._read_free_form_keys(schema, node, result, prefix, depth, need)
            result["additionalProperties"] = True
        if "properties" in node and "type" not in node:
            result["type"] = "object"  # Azure leaves it out; only an object has fields
        properties = result.get("properties")
        if isinstance(result.get("required"), list) and isinstance(properties, Mapping):
            result["required"] = [
                r
                for r in result["required"]
                if not self._server_side(schema, r)
                and (not reading or (r in properties and not _annotation(str(r))))
            ]
            if not result["required"]:
                del result["required"]
        return result

    @staticmethod
    def _kept(
        node: Mapping[str, Any],
        properties: Mapping[str, Any],
        need: Need,
        prefix: str,
    ) -> list[str]:
        """The properties a copy keeps: all, or the needed ones (and, in a target
        body, the required ones)."""
        if need.whole:
            return [str(k) for k in properties]
        required = set(node.get("required") or []) if prefix == TARGET else set()
        return [str(k) for k in properties if k in need.props or k in required]

    def _server_side(self, schema: Schema, name: str) -> bool:
        """Whether property `name` of an object is readOnly or writeOnly, as it
        says or as the schema it refers to says (Apideck's `id: {$ref: Id}`): a
        field one direction requires and the other never sees."""
        props = schema.node.get("properties")
        prop = props.get(name) if isinstance(props, Mapping) else None
        if not isinstance(prop, Mapping):
            return False
        at = f"{schema.pointer}/properties/{escape_pointer_part(str(name))}"
        node = self.walker.specs.deref(Schema(schema.doc, prop, at)).node
        return any(
            isinstance(n, Mapping) and bool(n.get("readOnly") or n.get("writeOnly"))
            for n in (prop, node)
        )

    def _read_free_form_keys(
        self,
        schema: Schema,
        node: Mapping[str, Any],
        result: dict[str, Any],
        prefix: str,
        depth: int,
        need: Need,
    ) -> None:
        """Keys read from a map (`additionalProperties: {schema}`) become fields."""
        extra = node.get("additionalProperties")
        declared = node.get("properties") or {}
        if not isinstance(extra, Mapping) or not extra:
            return
        for name, sub in need.props.items():
            if name not in declared:
                result.setdefault("properties", {})[name] = self._copy(
                    Schema(schema.doc, extra, f"{schema.pointer}/additionalProperties"),
                    prefix,
                    depth + 1,
                    sub,
                )


SOURCE, TARGET = "Source", "Target"
# Keys about an object's other fields: a source model cut down to the fields
# the link reads drops them and allows any extra key instead.
_OBJECT_ONLY_KEYS = {
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "not",
}


def _is_object(node: Mapping[str, Any]) -> bool:
    declared = node.get("type")
    types = declared if isinstance(declared, list) else [declared]
    return "object" in types or "properties" in node or "additionalProperties" in node


def _class_name(raw: str) -> str:
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", raw) if p]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "Model" + name
    return name


def build_models(
    walker: Walker,
    record: tuple[Schema, Need],
    body: tuple[Schema, Need],
    mapping_path: Path,
) -> Models:
    """Pydantic v2 models for what the link uses of the record and body schemas."""
    cutter = _Cutter(walker)
    source_record = cutter.root(*record, SOURCE_RECORD, SOURCE)
    cutter.drain()
    target_body = cutter.root(*body, TARGET_BODY, TARGET)
    cutter.drain()
    document = {
        "openapi": "3.1.0" if cutter.openapi_31 else "3.0.3",
        "info": {"title": "p2pgen link models", "version": "1"},
        "paths": {},
        "components": {"schemas": cutter.schemas},
    }
    try:
        with warnings.catch_warnings():
            # DCG warns about naming choices it makes; they are not the user's problem.
            warnings.simplefilter("ignore")
            output = generate(
                document,
                input_file_type=InputFileType.OpenAPI,
                output_model_type=DataModelType.PydanticV2BaseModel,
                target_python_version=PythonVersion.PY_311,
                disable_timestamp=True,
                formatters=[],
                field_constraints=True,
                use_annotated=True,
                use_standard_collections=True,
                use_union_operator=True,
                strict_nullable=True,
                capitalise_enum_members=True,
                output_datetime_class=DatetimeClassType.Datetime,
                # SecretStr would send "**********"; ULID needs a package the
                # script does not depend on; a plain str keeps both values
                type_mappings=[
                    f"string+{name}=string"
                    for name in ("email", "idn-email", "password", "ulid")
                ],
                keep_model_order=False,
            )
    except Exception as exc:  # DCG raises many error types for odd schemas
        raise P2pgenError.single(
            str(mapping_path),
            f"datamodel-code-generator could not build models from the specs: {exc}",
        ) from None
    if not isinstance(output, str):
        raise P2pgenError.single(
            str(mapping_path),
            "datamodel-code-generator returned "
            "several modules; please report this spec",
        )
    imports, code = _split_imports(output)
    imports, code = _plain_names(imports, code, {source_record, target_body})
    imports, code = _builtin_generics(imports, code)
    # DCG imports `list` from builtins when a field is named so; that field has
    # another attribute name now, so the import is one ruff refuses (UP029)
    imports = [i for i in imports if not i.startswith("from builtins import")]
    code = _ascii_string_literals(code)
    for name in {source_record, target_body}:
        if not re.search(rf"^class {re.escape(name)}\b", code, re.MULTILINE):
            raise P2pgenError.single(
                str(mapping_path),
                f"internal: model {name!r} is "
                "missing from the generated models; please report",
            )
    return Models(code.strip(), tuple(imports), source_record, target_body)


def _split_imports(source: str) -> tuple[list[str], str]:
    """Separate DCG's import statements from its class definitions."""
    tree = ast.parse(source)
    imports: list[str] = []
    lines = source.split("\n")  # not splitlines(): a literal may hold U+2028
    body_start = len(lines)
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            imports.append(ast.unparse(node))
        else:
            body_start = node.lineno - 1
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.decorator_list:
                body_start = min(d.lineno for d in node.decorator_list) - 1
            break
    return imports, "\n".join(lines[body_start:])


_TYPING_GENERICS = {"Dict": "dict", "List": "list"}


def _builtin_generics(imports: list[str], code: str) -> tuple[list[str], str]:
    """`dict[...]`/`list[...]` where DCG still writes typing's `Dict`/`List` (the
    extra fields' type of an object with both `properties` and a typed
    `additionalProperties`); ruff refuses those (UP006, UP035)."""
    found: set[str] = set()
    kept: list[str] = []
    for line in imports:
        node = ast.parse(line).body[0]
        if isinstance(node, ast.ImportFrom) and node.module == "typing":
            names = [a.name for a in node.names if a.name not in _TYPING_GENERICS]
            found |= {a.name for a in node.names} & _TYPING_GENERICS.keys()
            if names:
                kept.append(f"from typing import {', '.join(names)}")
        else:
            kept.append(line)
    if not found:
        return imports, code
    pieces = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        text = token.string
        if token.type == tokenize.NAME and text in found:
            text = _TYPING_GENERICS[text]
        pieces.append((token.type, text, token.start, token.end, token.line))
    return kept, tokenize.untokenize(pieces)


def _plain_names(imports: list[str], code: str, own: set[str]) -> tuple[list[str], str]:
    """Imports without `as` aliases, and ASCII names for fields and enum members.

    DCG imports `Field as Field_aliased` when a property is named `Field`, and
    keeps names like `été` or `名前` that ruff refuses (PLC2401). The script
    merges its imports by name, so an alias would be lost: instead the property
    gets an ASCII attribute name with `Field(alias=...)` carrying the JSON name,
    and enum members get an ASCII name (their values are unchanged). A class DCG
    names after a property (an enum `Target` for a field `target`) that the
    script's own code uses gets another name; `own` are the link's two models.
    The code is returned untouched when nothing needs renaming.
    """
    aliases: dict[str, str] = {}
    plain: list[str] = []
    for line in imports:
        for node in ast.parse(line).body:
            if isinstance(node, ast.ImportFrom):
                for name in node.names:
                    if name.asname and name.asname != name.name:
                        aliases[name.asname] = name.name
                        name.asname = None
            plain.append(ast.unparse(node))
    tree = ast.parse(code)
    renamed: set[str] = set()  # "enum" and/or "field" and/or "class"
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    taken = set(classes) | taken_names()
    new_names = {
        old: _ascii_name(_class_name_hint(old), taken, "Model", upper=False)
        for old in classes
        if not old.isascii()
    } | {
        old: _ascii_name(f"{old}Model", taken, "Model", upper=False)
        for old in classes
        if old.isascii() and old in taken_names() and old not in own
    }
    if new_names:
        renamed.add("class")
        for old, new in new_names.items():
            classes[old].name = new
        for name_node in ast.walk(tree):
            if isinstance(name_node, ast.Name) and name_node.id in new_names:
                name_node.id = new_names[name_node.id]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            renamed |= _rename_members(node, set(aliases.values()))
    if not aliases and not renamed:
        return imports, code
    if "field" in renamed:  # _set_alias may have written Annotated[..., Field(...)]
        plain += ["from typing import Annotated", "from pydantic import Field"]
    for name_node in ast.walk(tree):
        if isinstance(name_node, ast.Name) and name_node.id in aliases:
            name_node.id = aliases[name_node.id]
    return plain, ast.unparse(tree)


def _ascii_string_literals(code: str) -> str:
    """Every string literal in printable ASCII, as py_literal writes it.

    DCG copies spec text (descriptions, aliases, enum values) into literals as it
    is: a lookalike letter there (a Cyrillic es for a Latin c) would fail ruff
    RUF001, and a line or paragraph separator (U+2028, U+0085, \\x0b, \\x1c...)
    would be a line break to every tool that splits lines like str.splitlines().
    """
    starts = [0]
    for line in code.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    changes = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.STRING and not _PRINTABLE.fullmatch(token.string):
            (start_row, start_col), (end_row, end_col) = token.start, token.end
            changes.append(
                (
                    starts[start_row - 1] + start_col,
                    starts[end_row - 1] + end_col,
                    py_literal(ast.literal_eval(token.string)),
                )
            )
    for begin, end, literal in reversed(changes):
        code = code[:begin] + literal + code[end:]
    return code


# Names ruff's E741 refuses, as they read like 1 and 0 (NDHM's gender enum: M, F, O, U)
AMBIGUOUS = frozenset({"l", "O", "I"})


def _rename_members(cls: ast.ClassDef, shadowing: set[str]) -> set[str]:
    """Give fields/members with non-ASCII, ambiguous or import-shadowing names new
    names."""
    is_enum = any(isinstance(b, ast.Name) and b.id.endswith("Enum") for b in cls.bases)
    taken = {
        t.id
        for stmt in cls.body
        if isinstance(stmt, ast.Assign | ast.AnnAssign)
        for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        if isinstance(t, ast.Name)
    }
    renamed: set[str] = set()
    for stmt in cls.body:
        if is_enum and isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name) and (
                not target.id.isascii() or target.id in AMBIGUOUS
            ):
                target.id = _ascii_name(target.id, taken, "VALUE", upper=True)
                renamed.add("enum")
        elif (
            not is_enum
            and isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and (
                not stmt.target.id.isascii()
                or stmt.target.id in shadowing
                or stmt.target.id in AMBIGUOUS
                or stmt.target.id.startswith(PYDANTIC_PROTECTED)
            )
        ):
            original = stmt.target.id
            name = original
            if name.startswith(PYDANTIC_PROTECTED):  # DCG made `model_dump` model_dump_
                name = "field_" + name.rstrip("_")
            stmt.target.id = _ascii_name(name, taken, "field", upper=False)
            _set_alias(stmt, original)
            renamed.add("field")
    return renamed


def _class_name_hint(name: str) -> str:
    """The class name with accents dropped, capitalised (may be empty)."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _class_name(plain) if plain.isascii() else ""


def _ascii_name(name: str, taken: set[str], fallback: str, *, upper: bool) -> str:
    """A deterministic ASCII identifier for `name`, unique among `taken`."""
    decomposed = unicodedata.normalize("NFKD", name)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    base = re.sub(r"\W", "_", base) if base.isascii() else ""
    base = base.strip("_")
    if base and (base[0].isdigit() or keyword.iskeyword(base)):
        base = ""
    if base:
        base = base.upper() if upper else base
        if base in taken or base in taken_names():
            base += "_"
    if not base:
        base = f"{fallback}_1"
    candidate, counter = base, 1
    while candidate in taken or keyword.iskeyword(candidate):
        counter += 1
        candidate = re.sub(r"_\d+$", "", base) + f"_{counter}"
    taken.add(candidate)
    return candidate


def _set_alias(stmt: ast.AnnAssign, original: str) -> None:
    """Make the field read and write `original` as its JSON name."""
    alias = ast.keyword(arg="alias", value=ast.Constant(original))
    ann = stmt.annotation
    if (
        isinstance(ann, ast.Subscript)
        and isinstance(ann.value, ast.Name)
        and ann.value.id in ("Annotated", "Annotated_aliased")
        and isinstance(ann.slice, ast.Tuple)
    ):
        for extra in ann.slice.elts[1:]:
            if (
                isinstance(extra, ast.Call)
                and isinstance(extra.func, ast.Name)
                and extra.func.id in ("Field", "Field_aliased")
            ):
                if not any(k.arg == "alias" for k in extra.keywords):
                    extra.keywords.insert(0, alias)
                return
        ann.slice.elts.append(_field_call(alias))
        return
    stmt.annotation = ast.Subscript(
        value=ast.Name("Annotated"),
        slice=ast.Tuple([ann, _field_call(alias)]),
    )


def _field_call(alias: ast.keyword) -> ast.Call:
    return ast.Call(func=ast.Name("Field"), args=[], keywords=[alias])


def _annotation(name: str) -> bool:
    """Whether a property is OData control information (`@odata.type`,
    `email@odata.type`), which an answer leaves out where it says nothing new:
    Microsoft Graph requires `@odata.type` in 1,419 schemas and sends it only for
    a derived type. A record without one is read, not dead-lettered."""
    return "@" in name
