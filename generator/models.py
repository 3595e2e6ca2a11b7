"""Cut both specs down to the schemas this link uses; datamodel-code-generator does the rest."""

from __future__ import annotations

import ast
import keyword
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamodel_code_generator import generate
from datamodel_code_generator.enums import DataModelType, InputFileType
from datamodel_code_generator.format import DatetimeClassType, PythonVersion

from generator.errors import P2pgenError
from generator.schemas import Walker
from generator.specs import Schema, schema_name

SOURCE_RECORD = "SourceRecord"
TARGET_BODY = "TargetBody"
# Names the generated module imports or defines itself; a spec schema with one of
# these names gets a "Model" suffix instead of shadowing it.
RESERVED = {
    "Any",
    "Annotated",
    "AwareDatetime",
    "BaseModel",
    "ConfigDict",
    "Enum",
    "Field",
    "Literal",
    "RootModel",
    "StrEnum",
    "SourceRecord",
    "TargetBody",
    "Config",
    "Summary",
    "State",
    "DeadLetter",
    "Auth",
    "Optional",
    "Union",
    "Decimal",
    "UUID",
    "AnyUrl",
}
# Defaults are dropped: the script sends only what the mapping sets, and real
# specs often give defaults of the wrong type.
DROPPED_KEYS = {
    "discriminator",
    "xml",
    "externalDocs",
    "example",
    "examples",
    "default",
}
MAX_DEPTH = 64


@dataclass(frozen=True)
class Models:
    code: str  # class definitions, without imports
    imports: tuple[str, ...]  # import statements the classes need
    source_record: str
    target_body: str


class _Cutter:
    """Copies the schemas reachable from the link's two roots, renaming refs."""

    def __init__(self, walker: Walker) -> None:
        self.walker = walker
        self.names: dict[tuple[Path, str], str] = {}
        self.schemas: dict[str, Any] = {}
        self.pending: list[tuple[Schema, str]] = []
        self.openapi_31 = False

    def root(self, schema: Schema, default_name: str, prefix: str) -> str:
        """Register a root schema; return the class name the script will use."""
        named = self._named_target(schema)
        if named is not None:
            return self._register(named, prefix)
        self.schemas[default_name] = self._copy(schema, prefix, 0)
        return default_name

    def drain(self, prefix: str) -> None:
        while self.pending:
            schema, name = self.pending.pop(0)
            self.schemas[name] = self._copy(schema, prefix, 0)

    def _named_target(self, schema: Schema) -> Schema | None:
        node = schema.node
        if isinstance(node, Mapping) and set(node) == {"$ref"}:
            target = self.walker.specs.follow(schema.doc, node["$ref"], schema.pointer)
            if schema_name(target.pointer) is not None:
                return target
            return self._named_target(target)
        return None

    def _register(self, schema: Schema, prefix: str) -> str:
        key = (schema.doc.path, schema.pointer)
        if key not in self.names:
            name = _class_name(schema_name(schema.pointer) or "Model")
            if name in self.names.values() or name in RESERVED:
                candidate = prefix + name
                counter = 2
                while candidate in self.names.values() or candidate in RESERVED:
                    candidate = f"{prefix}{name}{counter}"
                    counter += 1
                name = candidate
            self.names[key] = name
            self.pending.append((schema, name))
            if str(schema.doc.data.get("openapi", "")).startswith("3.1"):
                self.openapi_31 = True
        return self.names[key]

    def _copy(self, schema: Schema, prefix: str, depth: int) -> Any:
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
                    return {
                        "$ref": "#/components/schemas/" + self._register(target, prefix)
                    }
                return self._copy(target, prefix, depth + 1)
            result: dict[str, Any] = {}
            for key, raw_value in node.items():
                value = raw_value
                if key in DROPPED_KEYS or not isinstance(key, str):
                    continue
                if key == "x-nullable":
                    result["nullable"] = bool(value)
                    continue
                if key == "type" and value == "file":
                    value = "string"
                child = (
                    Schema(schema.doc, value, f"{schema.pointer}/{key}")
                    if isinstance(value, Mapping | list)
                    else None
                )
                if key in ("properties", "patternProperties", "definitions", "$defs"):
                    result[key] = (
                        {
                            str(k): self._copy(
                                Schema(schema.doc, v, f"{schema.pointer}/{key}/{k}"),
                                prefix,
                                depth + 1,
                            )
                            for k, v in value.items()
                        }
                        if isinstance(value, Mapping)
                        else value
                    )
                elif child is not None and key not in (
                    "enum",
                    "required",
                    "const",
                    "default",
                ):
                    result[key] = self._copy(child, prefix, depth + 1)
                else:
                    result[key] = value
            if isinstance(result.get("required"), list) and isinstance(
                result.get("properties"), Mapping
            ):
                result["required"] = [
                    r
                    for r in result["required"]
                    if not _server_side(result["properties"].get(r))
                ]
                if not result["required"]:
                    del result["required"]
            return result
        if isinstance(node, list):
            return [
                (
                    self._copy(
                        Schema(schema.doc, v, f"{schema.pointer}/{i}"),
                        prefix,
                        depth + 1,
                    )
                    if isinstance(v, Mapping | list)
                    else v
                )
                for i, v in enumerate(node)
            ]
        return node


def _server_side(prop: Any) -> bool:
    return isinstance(prop, Mapping) and bool(
        prop.get("readOnly") or prop.get("writeOnly")
    )


def _class_name(raw: str) -> str:
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", raw) if p]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "Model" + name
    return name


def build_models(
    walker: Walker, record: Schema, body: Schema, mapping_path: Path
) -> Models:
    """Generate pydantic v2 models for the record and body schemas, and what they use."""
    cutter = _Cutter(walker)
    source_record = cutter.root(record, SOURCE_RECORD, "Source")
    cutter.drain("Source")
    target_body = cutter.root(body, TARGET_BODY, "Target")
    cutter.drain("Target")
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
                type_mappings=["string+email=string", "string+idn-email=string"],
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
    body_start = len(source.splitlines())
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
    lines = source.splitlines()[body_start:]
    return imports, "\n".join(lines)
