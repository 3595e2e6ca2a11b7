"""The Jinja environment, rendering of a Link to source files, and black."""

from __future__ import annotations

import ast
import base64
import re
import sys
from typing import Any

import jinja2

from generator.link import CallModel, Link, LookupModel, ParamPlace, Side
from generator.literals import comment, docstring, py_literal
from generator.reserved import templates_dir
from generator.runtime.params import BODY_PREFIX
from generator.runtime_copy import MARKER, copy_for

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
SCRIPT_END = '\n\nif __name__ == "__main__":\n    sys.exit(main())\n'
# Imports the link's own part may need; each is kept only where its name is used.
LINK_IMPORTS = (
    "import sys",
    "import httpx",
    "from typing import Any",
    "from contextlib import AbstractContextManager",
    "from pathlib import Path",
)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = py_literal
    env.filters["comment"] = comment
    env.filters["docstring"] = docstring
    return env


def merge_imports(lines: list[str] | tuple[str, ...]) -> str:
    """One import block in isort order: __future__, standard library, third party."""
    plain: dict[bool, set[str]] = {False: set(), True: set()}
    froms: dict[bool, dict[str, set[str]]] = {False: {}, True: {}}
    bound: dict[str, str] = {}  # name -> what it is bound to
    for line in lines:
        for node in ast.parse(line).body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    _bind(bound, alias.name.partition(".")[0], alias.name)
                    plain[_third_party(alias.name)].add(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module:
                third = _third_party(node.module)
                for alias in node.names:
                    _bind(bound, alias.name, f"{node.module}.{alias.name}")
                froms[third].setdefault(node.module, set()).update(
                    a.name for a in node.names
                )
    sections = ["from __future__ import annotations"]
    for third in (False, True):
        block = [f"import {name}" for name in sorted(plain[third])]
        block += [
            f"from {module} import {', '.join(sorted(names, key=_name_order))}"
            for module, names in sorted(froms[third].items())
        ]
        if block:
            sections.append("\n".join(block))
    return "\n\n".join(sections)


def _bind(bound: dict[str, str], name: str, target: str) -> None:
    """Refuse two imports of one name (`import time` and the models' `from datetime
    import time`): the script would use the second as the first."""
    if bound.setdefault(name, target) != target:
        raise ValueError(f"two imports bind {name!r}: {bound[name]} and {target}")


def _third_party(module: str) -> bool:
    """Whether isort puts a module with the third-party ones (typing_extensions,
    which datamodel-code-generator's models may import, is one)."""
    return module.partition(".")[0] not in sys.stdlib_module_names


def _name_order(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then functions."""
    if name.isupper() and len(name) > 1:
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def render_link(link: Link) -> dict[str, str]:
    """Render the script and its tests; return {file name: black-formatted source}."""
    tests = environment().get_template("test_script.py.jinja").render(_context(link))
    return {
        f"{link.name}.py": render_script(link),
        f"test_{link.name}.py": format_source(tests),
    }


# What the generated tests take from the script's runtime besides what the link
# itself uses: they split dotted paths as the script does.
TESTS_USE = frozenset({"path_keys"})


def render_script(link: Link) -> str:
    """The link's own part, then the runtime it uses, then the entry point.

    Only the own part goes through black: the runtime copy is black-formatted
    where it is written (generator/runtime/, checked by our linters) and is
    copied as it is.
    """
    template = environment().get_template("script.py.jinja")
    context = {**_context(link), "marker": MARKER}
    own_part = template.render({**context, "imports": ""})
    runtime = copy_for(own_part, TESTS_USE)
    used = _names_used(own_part) | _names_used(runtime.code) | _names_used(SCRIPT_END)
    candidates = [*LINK_IMPORTS, *runtime.imports]
    imports = [line for line in candidates if _bound_name(line) in used]
    own_part = template.render(
        {**context, "imports": merge_imports([*imports, *link.imports])}
    )
    return format_source(own_part) + "\n\n" + runtime.code + SCRIPT_END


def _names_used(code: str) -> set[str]:
    """The names a piece of code reads, the bases of attribute reads included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names.add(node.value.id)
    return names


def _bound_name(import_line: str) -> str:
    node = ast.parse(import_line).body[0]
    assert isinstance(node, ast.Import | ast.ImportFrom)
    alias = node.names[0]
    return (alias.asname or alias.name).split(".")[0]


def declaration(link: Link) -> str:
    """The `Link(...)` expression that declares this link to the runtime."""
    source, target = link.source, link.target
    source_args = _side_args(source)
    if link.records_path:
        source_args.append(f"records={py_literal(link.records_path)}")
    if source.params:
        source_args.append("params=source_params")
    if link.source_body_code:
        source_args.append("body=source_body")
    positions = (link.pagination.param, link.incremental_param)
    sends_body = bool(link.source_body_code) or any(
        p.startswith(BODY_PREFIX) for p in positions
    )
    source_args += _shape_args(source, sends_body)
    paginator = _paginator(link)
    if paginator:
        source_args.append(f"paginator={paginator}")
    if link.incremental_param:
        source_args.append(
            f"incremental=Incremental({py_literal(link.incremental_param)},"
            f" {py_literal(link.incremental_field)})"
        )
    if link.filter_function:
        source_args.append(f"filter={link.filter_function}")
    source_args += _auth_args(source)
    target_args = _side_args(target)
    if link.target_params:
        target_args.append("params=target_params")
    target_args += _shape_args(target)
    if link.idempotency_header:
        target_args.append(
            f"idempotency=IdempotencyKey({py_literal(link.idempotency_header)},"
            f" {py_literal(link.idempotency_from)})"
        )
    target_args += _auth_args(target)
    if not link.target_body_sent:
        target_args.append("body=False")
    if link.match is not None:
        target_args.append(f"match={_match(link)}")
    if link.delete is not None:
        target_args.append(
            f"delete=Delete(when=delete_when, call={_call(link.delete.call)})"
        )
    if link.batch is not None:
        b = link.batch
        target_args.append(
            f"batch=Batch(size={b.size}, path={py_literal(b.path)},"
            f" results={py_literal(b.results)})"
        )
    parts = [
        f"name={py_literal(link.name)}",
        f"source=Source({', '.join(source_args)},)",
        f"target=Target({', '.join(target_args)},)",
        "record_model=SourceRecord",
        "transform=transform",
        "before_send=before_send",
        "after_run=after_run",
        f"required_env={py_literal(link.required_env)}",
    ]
    if link.lookups:
        parts.append(
            f"lookups=Lookups(({''.join(_lookup(x) + ',' for x in link.lookups)}))"
        )
    return f"Link({', '.join(parts)},)"


def _match(link: Link) -> str:
    """The write.Match that upserts: match, then update or create."""
    assert link.match is not None
    m = link.match
    args = [f"call={_call(m.call)}"]
    if m.records:
        args.append(f"records={py_literal(m.records)}")
    if m.update is not None:
        args.append(f"update={_call(m.update)}")
    args.append(f"on_missing={py_literal(m.on_missing)}")
    return f"Match({', '.join(args)},)"


def _lookup(lookup: LookupModel) -> str:
    args = [f"name={py_literal(lookup.name)}", f"call={_call(lookup.call)}"]
    args.append(f"api={py_literal(lookup.api)}")
    if lookup.records:
        args.append(f"records={py_literal(lookup.records)}")
    args.append(f"on_missing={py_literal(lookup.on_missing)}")
    return f"Lookup({', '.join(args)},)"


def _call(call: CallModel) -> str:
    args = [f"method={py_literal(call.method)}", f"path={py_literal(call.path)}"]
    if call.params:
        args.append(f"params={call.function}")
        places = tuple(
            ParamPlace(p.name, p.location) for p in call.params if p.location != "query"
        )
        if places:
            args.append(f"locations={_styles(places)}")
    return f"Call({', '.join(args)},)"


def webhook_declaration(link: Link) -> str:
    """The `Webhook(...)` expression of a webhook link ("" for a polled one)."""
    hook = link.webhook
    if hook is None:
        return ""
    args = [
        f"scheme={py_literal(hook.scheme)}",
        f"secret_env={py_literal(hook.secret_env)}",
    ]
    if hook.header:
        args.append(f"header={py_literal(hook.header)}")
    if hook.scheme != "hmac-sha256":
        args.append(f"tolerance={hook.tolerance}")
    if hook.records:
        args.append(f"records={py_literal(hook.records)}")
    if hook.event_id:
        args.append(f"event_id={py_literal(hook.event_id)}")
    return f"Webhook({', '.join(args)},)"


def _side_args(side: Any) -> list[str]:
    return [
        f"method={py_literal(side.method)}",
        f"path={py_literal(side.path)}",
        f"default_url={py_literal(side.default_base_url)}",
    ]


def _shape_args(side: Side, sends_body: bool = True) -> list[str]:
    """The request shape of a side: its parameters' places and its body's media type."""
    args = [f"locations={_styles(side.places)}"] if side.places else []
    if sends_body and side.media == FORM:
        styles = _styles(side.body_places) if side.body_places else ""
        args.append(f"encode=FormBody({styles})")
    elif sends_body and side.media == MULTIPART:
        args.append("encode=multipart_body")
    return args


def _styles(places: tuple[ParamPlace, ...]) -> str:
    entries = []
    for p in places:
        args = [py_literal(p.location)]
        if p.style or p.explode is not None:
            args.append(py_literal(p.style))
        if p.explode is not None:
            args.append(py_literal(p.explode))
        entries.append(f"{py_literal(p.name)}: ParamStyle({', '.join(args)})")
    return "{" + ", ".join(entries) + "}"


def _paginator(link: Link) -> str:
    name, kwargs = link.pagination.declaration
    if not kwargs and name == "NoPagination":
        return ""
    return f"{name}({', '.join(f'{key}={py_literal(v)}' for key, v in kwargs.items())})"


def _auth_args(side: Any) -> list[str]:
    name, kwargs = side.auth.declaration
    if not kwargs and name == "NoAuth":
        return []
    args = ", ".join(f"{key}={py_literal(v)}" for key, v in kwargs.items())
    return [f"auth={name}({args})"]


def _context(link: Link) -> dict[str, Any]:
    """What the script and test templates are rendered with."""
    secret_vars = link.secret_vars
    # Test secrets carry '/' and '+', which URLs percent-encode, so that an
    # echoed secret would show up encoded as real ones do.
    test_secrets = {
        var: (
            f"secret-{var.lower().replace('_', '-')}/+x"
            if var in secret_vars
            else f"test-{var.lower().replace('_', '-')}"
        )
        for var in link.required_env
    }
    hook = link.webhook
    if hook is not None and hook.scheme == "standard-webhooks":
        # a Standard Webhooks secret is whsec_ and base64 (here of the usual test value)
        plain = test_secrets[hook.secret_env].encode()
        test_secrets[hook.secret_env] = "whsec_" + base64.b64encode(plain).decode()
    return {
        "link": link,
        "declaration": declaration(link),
        "webhook_declaration": webhook_declaration(link),
        # transform() dumps the record only when a line reads it as a dict
        "transform_reads_src": "src" in _names_used(link.body_code),
        "target_params_read_src": any(
            "src" in _names_used(p.code) for p in link.target_params
        ),
        "expected": dict(link.expected),
        "distinct_fields": list(link.distinct_fields),
        "test_secrets": test_secrets,
        "secret_vars": secret_vars,
    }


def format_source(source: str) -> str:
    source = re.sub(r"\n{4,}", "\n\n\n", source)
    # imported here: half a second to import, and a cached link needs none
    import black  # noqa: PLC0415
    from black.mode import Mode, TargetVersion  # noqa: PLC0415

    return black.format_str(source, mode=Mode(target_versions={TargetVersion.PY311}))
