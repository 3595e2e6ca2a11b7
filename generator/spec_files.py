"""Read spec files: text, then JSON (fast path) or YAML, every problem located.

Refuses what would hang or crash what comes after (alias bombs, recursive
aliases, integers Python cannot convert, JSON NaN/Infinity) and reports
duplicate keys as warnings (the last one wins, as parsers do).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from generator.errors import P2pgenError, Problem
from generator.yaml_limits import expansion_problem

try:  # libyaml is several times faster on large specs; fall back when absent
    YamlLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    YamlLoader = yaml.SafeLoader


def read_text(path: Path) -> str:
    try:
        if path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise P2pgenError.single(
                str(path),
                f"{kind}, so it cannot be read as a spec; give the path of a "
                "YAML or JSON file",
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise P2pgenError.single(
            str(path),
            "file not found; check the path (relative paths in a mapping "
            "are relative to the mapping file)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise P2pgenError.single(str(path), f"cannot read file: {exc}") from None


class _JsonValueError(ValueError):
    """A JSON value p2pgen refuses: NaN/Infinity, or an integer too long to convert."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token
        self.message = message


def _json_constant(token: str) -> Any:
    raise _JsonValueError(
        token,
        f"invalid JSON: {token} is not a JSON number; write a number or a string",
    )


def _json_int(digits: str) -> int:
    if len(digits) > _MAX_INT_DIGITS:
        raise _JsonValueError(digits, _huge_int_message(digits))
    return int(digits)


_MAX_INT_DIGITS = 4000  # Python refuses to convert more than 4300 digits


def _huge_int_message(digits: str) -> str:
    return (
        f"a number with {len(digits.lstrip('+-'))} digits is too long; "
        "write it as a string or a smaller number"
    )


_JSON_STRING_OR_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN|-?\d{' + str(_MAX_INT_DIGITS + 1) + ",})"
)


def _json_token_position(text: str, token: str) -> tuple[int, int]:
    """Line and column of the first `token` outside a JSON string (0, 0 if none)."""
    for match in _JSON_STRING_OR_TOKEN.finditer(text):
        if match.group(1) is not None and token.startswith(match.group(1)[:20]):
            before = text[: match.start(1)]
            return before.count("\n") + 1, match.start(1) - (before.rfind("\n") + 1) + 1
    return 0, 0


class _DuplicateKeys:
    """Collects duplicate mapping keys found while parsing (the last one wins)."""

    def __init__(self) -> None:
        # key, line, column, line of the first one (0 when not known yet)
        self.found: list[tuple[str, int, int, int]] = []

    def json_object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.found.append((key, 0, 0, 0))
                seen.add(key)
        return result


class _SpecLoader(YamlLoader):  # type: ignore[misc, valid-type]
    """The fast loader, noting duplicate keys instead of silently dropping them."""

    duplicates: _DuplicateKeys

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode) and len(node.value) > 1:
            keys = [
                (k.tag, k.value)
                for k, _ in node.value
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge"
            ]
            if len(set(keys)) != len(keys):
                first: dict[tuple[str, str], int] = {}
                for k, _ in node.value:
                    if not isinstance(k, yaml.ScalarNode):
                        continue
                    key = (k.tag, k.value)
                    if key in first:
                        self.duplicates.found.append(
                            (
                                str(k.value),
                                k.start_mark.line + 1,
                                k.start_mark.column + 1,
                                first[key],
                            )
                        )
                    else:
                        first[key] = k.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _locate_json_duplicates(
    text: str, keys: list[str]
) -> list[tuple[str, int, int, int]]:
    """Lines of duplicate keys in a JSON text (JSON is YAML, so compose it)."""
    wanted = set(keys)
    found: list[tuple[str, int, int, int]] = []
    try:
        root = yaml.compose(text, Loader=YamlLoader)
    except yaml.YAMLError:
        root = None
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                stack.append(v)
                if isinstance(k, yaml.ScalarNode) and k.value in wanted:
                    if k.value in first:
                        found.append(
                            (
                                k.value,
                                k.start_mark.line + 1,
                                k.start_mark.column + 1,
                                first[k.value],
                            )
                        )
                    else:
                        first[k.value] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(found, key=lambda f: (f[1], f[2])) or [(k, 0, 0, 0) for k in keys]


def _huge_yaml_int(text: str) -> tuple[str, int, int]:
    """The first YAML integer scalar Python cannot convert, with its line and column."""
    try:
        root = yaml.compose(text, Loader=YamlLoader)
    except yaml.YAMLError:
        return "", 0, 0
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if (
                node.tag == "tag:yaml.org,2002:int"
                and len(node.value) > _MAX_INT_DIGITS
            ):
                return node.value, node.start_mark.line + 1, node.start_mark.column + 1
        elif isinstance(node, yaml.MappingNode):
            for k, v in reversed(node.value):
                stack.extend((v, k))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return "", 0, 0


def parse_text(path: Path, text: str, warnings: list[Problem] | None = None) -> Any:
    """Parse JSON (fast path) or YAML, turning syntax errors into located problems.

    Duplicate keys (the last one wins) are appended to `warnings`.
    """
    duplicates = _DuplicateKeys()
    data = _parse(path, text, duplicates)
    if duplicates.found and warnings is not None:
        found = duplicates.found
        if any(line == 0 for _, line, _, _ in found):
            found = _locate_json_duplicates(text, [key for key, *_ in found])
        for key, line, column, first in found:
            where = f" (first at line {first})" if first else ""
            warnings.append(
                Problem(
                    str(path),
                    line,
                    column,
                    f"duplicate key {key!r}{where}; the last one wins",
                    severity="warning",
                )
            )
    return data


def _parse(path: Path, text: str, duplicates: _DuplicateKeys) -> Any:
    is_json = path.suffix.lower() == ".json"
    if is_json or text.lstrip().startswith("{"):
        try:
            return json.loads(
                text,
                parse_constant=_json_constant,
                parse_int=_json_int,
                object_pairs_hook=duplicates.json_object,
            )
        except _JsonValueError as exc:
            if is_json or not exc.message.startswith("invalid JSON"):
                line, column = _json_token_position(text, exc.token)
                raise P2pgenError.single(
                    str(path), exc.message, line=line, column=column
                ) from None
            duplicates.found.clear()
        except json.JSONDecodeError as exc:
            if is_json:
                raise P2pgenError.single(
                    str(path),
                    f"invalid JSON: {exc.msg}; fix the syntax",
                    line=exc.lineno,
                    column=exc.colno,
                ) from None
            duplicates.found.clear()
    loader = _SpecLoader(text)
    loader.duplicates = duplicates
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise P2pgenError.single(
            str(path),
            f"invalid YAML: {exc.problem}; fix the syntax",
            line=mark.line + 1 if mark else 0,
            column=mark.column + 1 if mark else 0,
        ) from None
    except yaml.YAMLError as exc:
        raise P2pgenError.single(str(path), f"invalid YAML: {exc}") from None
    except ValueError as exc:  # e.g. an integer too long for Python to convert
        digits, line, column = _huge_yaml_int(text)
        raise P2pgenError.single(
            str(path),
            (
                _huge_int_message(digits)
                if digits
                else f"invalid YAML: {exc}; fix the value"
            ),
            line=line,
            column=column,
        ) from None
    finally:
        loader.dispose()
    # Only YAML shares values (anchors and aliases); JSON's tree is as big as its text.
    problem = expansion_problem(data)
    if problem is not None:
        raise P2pgenError.single(str(path), problem)
    return data
