"""Request shapes: parameters by their OpenAPI style and explode, bodies by media type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from generator.runtime.mapping import _as_string, path_keys

BODY_PREFIX = "body."  # a position or parameter that travels in the request body
JSON_TEXT = (
    "json"  # a parameter with `content: application/json`: its value as JSON text
)
DELIMITERS = {"form": ",", "spaceDelimited": " ", "pipeDelimited": "|"}


@dataclass(frozen=True)
class ParamStyle:
    """Where a parameter goes and how its value is written (OpenAPI style, explode)."""

    location: str = "query"  # path | query | header | cookie
    style: str = ""  # "": the location's default, form (query, cookie) or simple
    explode: bool | None = None  # None: the default, true for form only

    def resolved(self) -> tuple[str, bool]:
        style = self.style or (
            "simple" if self.location in ("path", "header") else "form"
        )
        return style, self.explode if self.explode is not None else style == "form"


def _atoms(value: Any) -> list[tuple[str | None, str]]:
    """A value as (key, text) pieces: a list's items, an object's members."""
    if isinstance(value, dict):
        return [(str(k), _as_string(v)) for k, v in value.items() if v is not None]
    if isinstance(value, list):
        return [(None, _as_string(v)) for v in value if v is not None]
    return [(None, _as_string(value))]


def path_segment(name: str, value: Any, style: ParamStyle | None = None) -> str:
    """A path parameter's value as URL path text; one that would leave it is refused."""
    if value is None:
        raise ValueError(
            f"the path parameter {name!r} has no value (the field it is mapped from"
            " is missing or null)"
        )
    kind, explode = (style or ParamStyle("path")).resolved()
    atoms = [(k, quote(text, safe="")) for k, text in _atoms(value)]
    if kind == JSON_TEXT:
        text = quote(_as_string(value), safe="")
    elif kind == "matrix" and explode and isinstance(value, dict):
        text = "".join(f";{k}={v}" for k, v in atoms)
    elif kind == "matrix" and explode and isinstance(value, list):
        text = "".join(f";{name}={v}" for _, v in atoms)
    elif kind == "matrix":
        text = f";{name}=" + _joined(atoms, ",", False) if atoms else f";{name}"
    elif kind == "label":
        text = "." + _joined(atoms, "." if explode else ",", explode)
    else:
        text = _joined(atoms, ",", explode)
    if text in ("", ".", ".."):
        raise ValueError(
            f"the path parameter {name!r} is {text!r}, which would change the"
            " request's path; not sent"
        )
    return text


def _joined(atoms: list[tuple[str | None, str]], delimiter: str, explode: bool) -> str:
    """Pieces joined by `delimiter`: an object's as k=v (explode) or k,v (not)."""
    parts: list[str] = []
    for key, text in atoms:
        if key is None:
            parts.append(text)
        elif explode:
            parts.append(f"{key}={text}")
        else:
            parts += [key, text]
    return delimiter.join(parts)


def query_pairs(name: str, value: Any, style: ParamStyle) -> list[tuple[str, str]]:
    """A query (or cookie) parameter as name=value pairs, by its style."""
    if value is None:
        return []
    kind, explode = style.resolved()
    if kind == "deepObject":
        return _nested(name, value)
    atoms = _atoms(value)
    if kind == JSON_TEXT or not isinstance(value, dict | list):
        return [(name, _as_string(value))]
    if explode:  # form, and spaceDelimited/pipeDelimited exploded, are alike
        return [(key or name, text) for key, text in atoms]
    return [(name, _joined(atoms, DELIMITERS.get(kind, ","), False))]


def _nested(name: str, value: Any) -> list[tuple[str, str]]:
    """Brackets for nesting, as Stripe reads them: a[b]=1, items[0][price]=p."""
    members: list[tuple[str, Any]]
    if isinstance(value, dict):
        members = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        members = [(str(i), v) for i, v in enumerate(value)]
    else:
        return [] if value is None else [(name, _as_string(value))]
    return [pair for key, v in members for pair in _nested(f"{name}[{key}]", v)]


def _style_text(value: Any, style: ParamStyle) -> str:
    """A header parameter's value (style simple)."""
    kind, explode = style.resolved()
    if kind == JSON_TEXT:
        return str(_as_string(value))
    return _joined(_atoms(value), ",", explode)


def grouped(values: dict[str, Any], styles: dict[str, ParamStyle]) -> dict[str, Any]:
    """Values by parameter: a dotted name reaches into an object parameter.

    `created.gte` sets key `gte` of parameter `created`; a name the operation
    has as it is (`created[gte]`, `filter.email`) is kept as it is.
    """
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name in styles or "." not in name:
            result[name] = value
            continue
        parts = name.split(".")
        cut = next(
            (i for i in range(len(parts) - 1, 0, -1) if ".".join(parts[:i]) in styles),
            1,
        )
        holder = result.setdefault(".".join(parts[:cut]), {})
        if not isinstance(holder, dict):
            raise TypeError(
                f"the parameter {'.'.join(parts[:cut])!r} is set both as a whole and by"
                " its keys"
            )
        for part in parts[cut:-1]:
            holder = holder.setdefault(part, {})
        holder[parts[-1]] = value
    return result


def place_params(
    path: str, values: dict[str, Any], styles: dict[str, ParamStyle]
) -> tuple[str, tuple[tuple[str, str], ...], dict[str, str]]:
    """Put each parameter where the operation wants it: (path, query, headers)."""
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    cookies: list[tuple[str, str]] = []
    for name, value in grouped(values, styles).items():
        style = styles.get(name, ParamStyle())
        if style.location == "path":
            path = path.replace("{" + name + "}", path_segment(name, value, style))
        elif value is None:
            continue
        elif style.location == "header":
            headers[name] = _style_text(value, style)
        elif style.location == "cookie":
            cookies += [
                (k, quote(v, safe="")) for k, v in query_pairs(name, value, style)
            ]
        else:
            query += query_pairs(name, value, style)
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies)
    return path, tuple(query), headers


def put_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in nested objects, making the objects on the way."""
    *parents, last = path_keys(path)
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


def json_body(payload: Any) -> dict[str, Any]:
    """httpx.build_request's body arguments for a JSON body."""
    return {"json": payload}


@dataclass(frozen=True)
class FormBody:
    """An application/x-www-form-urlencoded body.

    Each property is written as a query parameter of its `encoding` style; a
    nested object or list with no style given nests in brackets, as Stripe's
    write API reads it: metadata[key]=v, items[0][price]=p.
    """

    styles: dict[str, ParamStyle] = field(default_factory=dict)

    def __call__(self, payload: Any) -> dict[str, Any]:
        pairs: list[tuple[str, str]] = []
        for name, value in (payload or {}).items():
            style = self.styles.get(name)
            nests = isinstance(value, dict) or (
                isinstance(value, list)
                and any(isinstance(v, dict | list) for v in value)
            )
            if style is None and nests:
                style = ParamStyle(style="deepObject", explode=True)
            pairs += query_pairs(name, value, style or ParamStyle())
        text = "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in pairs)
        return {
            "content": text.encode(),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        }


def multipart_body(payload: Any) -> dict[str, Any]:
    """A multipart/form-data body: a part per property (per item of a list);
    objects as JSON parts, OpenAPI's default for them."""
    parts: list[tuple[str, tuple[None, str, str]]] = []
    for name, value in (payload or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict | list):
                parts.append((name, (None, json.dumps(item), "application/json")))
            elif item is not None:
                parts.append((name, (None, _as_string(item), "text/plain")))
    return {"files": parts}
