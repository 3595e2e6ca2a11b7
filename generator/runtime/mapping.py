"""Mapping helpers: small, pure functions that transform() calls."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_MISSING: Any = object()
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def path_keys(path: str) -> list[str]:
    """The keys of a dotted path; `\\.` is a dot inside a key (`@odata\\.type`)."""
    if "\\." not in path:
        return path.split(".")
    return [key.replace("\0", ".") for key in path.replace("\\.", "\0").split(".")]


def path_of(keys: Iterable[str]) -> str:
    """The dotted path of `keys`: `path_keys` undone, a dot in a key as `\\.`."""
    return ".".join(key.replace(".", "\\.") for key in keys)


def _get(data: Any, path: str, default: Any = None) -> Any:
    """Follow a dotted path through nested objects, an integer segment indexing a
    list (`emails.0.email`); `default` if missing, null or out of range."""
    for key in path_keys(path):
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.isascii() and key.isdigit():
            data = data[int(key)] if int(key) < len(data) else None
        else:
            return default
        if data is None:
            return default
    return data


def _compact(value: Any) -> Any:
    """Drop null values, so optional target fields are left out, not sent as null,
    and the objects all of whose fields were null (a record without the source
    object they come from): not sent as `{}`, which lacks their required fields."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {} or value[k] == {}}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _items(data: Any, path: str) -> list[dict[str, Any]]:
    """The objects of a source list; a missing list is empty."""
    value = _get(data, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{path} is not a list")
    return [item if isinstance(item, dict) else {"value": item} for item in value]


def _render(template: str, data: Any) -> str:
    """Fill `{dotted.path}` placeholders; a missing value renders as empty."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
        value = _get(data, match.group(1).strip())
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


def _lookup(value: Any, table: dict[Any, Any], default: Any, path: str) -> Any:
    """Translate a value through a `map:` table; booleans match only booleans."""
    for key, result in table.items():
        if key == value and isinstance(key, bool) == isinstance(value, bool):
            return result
    if default is _MISSING:
        raise ValueError(f"{path}: value {value!r} is not in the map")
    return default


def _as_string(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _as_integer(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _as_number(value: Any) -> Any:
    if value is None or (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        return value
    return float(value)


def _as_boolean(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _parse_instant(value: Any) -> datetime:
    """Epoch seconds (number or numeric text) or ISO 8601 text, as an aware datetime."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a date or time")
    if isinstance(value, int | float) or re.fullmatch(r"-?\d+(\.\d+)?", str(value)):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError):
            raise ValueError(f"{value!r} is out of the range of dates") from None
    parsed = datetime.fromisoformat(str(value).strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_date(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return value.strip()
    return _parse_instant(value).astimezone(UTC).date().isoformat()


def _as_datetime(value: Any) -> Any:
    """RFC 3339 in UTC, e.g. 2024-03-01T12:30:00Z."""
    if value is None:
        return None
    instant = _parse_instant(value).astimezone(UTC)
    return instant.isoformat().replace("+00:00", "Z")


def _text(value: Any, step: str) -> str:
    """The text a string step works on; anything else is refused."""
    if not isinstance(value, str):
        raise TypeError(f"as: {step} needs text, not {type(value).__name__}")
    return value


def _as_lowercase(value: Any) -> Any:
    return None if value is None else _text(value, "lowercase").lower()


def _as_uppercase(value: Any) -> Any:
    return None if value is None else _text(value, "uppercase").upper()


def _as_strip(value: Any) -> Any:
    return None if value is None else _text(value, "strip").strip()


def _as_md5(value: Any) -> Any:
    """The hex MD5 digest of the UTF-8 text (e.g. Mailchimp's subscriber hash)."""
    if value is None:
        return None
    data = _text(value, "md5").encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _as_sha256(value: Any) -> Any:
    """The hex SHA-256 digest of the UTF-8 text."""
    if value is None:
        return None
    return hashlib.sha256(_text(value, "sha256").encode("utf-8")).hexdigest()


def _calc(left: Any, op: str, right: Any) -> Any:
    """`expr` arithmetic (+ - * / // %): null when either operand is missing or null."""
    if left is None or right is None:
        return None
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return left / right
    if op == "//":
        return left // right
    return left % right


def _compare(left: Any, op: str, right: Any) -> bool:
    """`expr` comparisons. == and != compare JSON values (null equals only null,
    a boolean only a boolean); < <= > >= are false when either side is null."""
    if op in ("==", "!="):
        same = left == right and isinstance(left, bool) == isinstance(right, bool)
        return same if op == "==" else not same
    if left is None or right is None:
        return False
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _coalesce(*values: Any) -> Any:
    """The first value that is not missing or null."""
    return next((value for value in values if value is not None), None)


def _concat(*values: Any) -> str:
    """The values as text, joined; a missing value adds nothing (as in templates)."""
    return "".join(_as_string(value) or "" for value in values)


def _len(value: Any) -> Any:
    return None if value is None else len(value)


def _abs(value: Any) -> Any:
    return None if value is None else abs(value)


def _round(value: Any, digits: int | None = None) -> Any:
    """Halves away from zero (2.5 -> 3, 0.125 -> 0.13 at 2 digits), on the number
    as written: a whole number without `digits`."""
    if value is None:
        return None
    if abs(value) >= 2**52:  # no fraction left to round
        return int(value) if digits is None else float(value)
    exponent = Decimal(1).scaleb(-(digits or 0))
    rounded = Decimal(repr(value)).quantize(exponent, rounding=ROUND_HALF_UP)
    return int(rounded) if digits is None else float(rounded)


def _min(*values: Any) -> Any:
    """The least value that is not missing or null (null when all are)."""
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _max(*values: Any) -> Any:
    """The greatest value that is not missing or null (null when all are)."""
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _sum(values: Any, field: str | None = None) -> Any:
    """The sum of a list's numbers, or of a field of its items; missing values
    and a missing list add nothing (0)."""
    items = values if isinstance(values, list) else []
    picked = (_get(item, field) for item in items) if field else iter(items)
    return sum(value for value in picked if value is not None)
