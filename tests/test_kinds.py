"""Auth kinds and expression kinds come from one registry each: every entry is
complete, and a new kind is one class plus its registry entry."""

from __future__ import annotations

import ast
import inspect
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from generator import checks, mapping_reader
from generator.cli import cli
from generator.expr import parse
from generator.expressions import Compiler
from generator.kinds import auth as auth_kinds
from generator.kinds import expressions as expr_kinds
from generator.kinds.auth import KINDS, AuthKind, env_roles
from generator.kinds.expressions import EXPRESSIONS, MODIFIERS, ExprKind
from generator.link import AuthModel
from generator.mapping import Expr, FieldMap, Loc
from generator.runtime import auth as runtime_auth
from generator.runtime_copy import runtime_names

DATA = Path(__file__).resolve().parent / "data" / "transform"
HERE = Loc("kinds.yaml", 1, 1)
# every role's default variable, as PRODUCT.md names them for the source side
PRODUCT_DEFAULTS = {
    "token": "SOURCE_TOKEN",
    "api_key": "SOURCE_API_KEY",
    "username": "SOURCE_USERNAME",
    "password": "SOURCE_PASSWORD",
    "client_id": "SOURCE_CLIENT_ID",
    "client_secret": "SOURCE_CLIENT_SECRET",
    "refresh_token": "SOURCE_REFRESH_TOKEN",
    "secret": "SOURCE_SECRET",  # auth.stub (our extension), named as PRODUCT.md names the rest
}
FULL_AUTH = {
    "scheme": "s",
    "location": "header",
    "param_name": "X-Key",
    "token_url": "/oauth/token",
    "scopes": ("read", "write"),
    "token_auth": "client_secret_post",
    "stub": "sign_source_request",
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_auth_kind_declares_a_runtime_class_that_takes_its_arguments(
    name: str,
) -> None:
    kind = KINDS[name]
    env = tuple((role, kind.default_env("source", role)) for role in kind.role_names)
    model = AuthModel(kind=name, env=env, **FULL_AUTH)
    runtime_class, kwargs = model.declaration
    assert runtime_class == kind.runtime_class
    constructor = getattr(runtime_auth, runtime_class)
    inspect.signature(constructor).bind(**kwargs)  # raises on a wrong keyword
    # every role's variable reaches the runtime class, under the role's keyword
    assert {kwargs[keyword] for _, keyword in kind.roles} == {v for _, v in env}
    assert all(PRODUCT_DEFAULTS[role] == var for role, var in env)


def test_token_auth_names_the_methods_the_runtime_sends() -> None:
    assert auth_kinds.TOKEN_AUTH == tuple(runtime_auth.TOKEN_AUTH_METHODS)


def test_auth_env_accepts_every_role_a_kind_takes() -> None:
    assert set(env_roles()) == set(PRODUCT_DEFAULTS)


def test_each_security_scheme_type_and_auth_env_has_one_kind() -> None:
    for roles in ({"token"}, {"client_id", "refresh_token"}):
        picked = [
            (t, s)
            for kind in KINDS.values()
            for t, s in kind.schemes
            if kind.picks(frozenset(roles))
        ]
        assert len(picked) == len(set(picked)), roles
    # With no auth.env: client credentials where the scheme has that flow, else a
    # static access token (Square and Azure declare only authorization code).
    client_credentials = {"flows": {"clientCredentials": {"tokenUrl": "/token"}}}
    code_only = {
        "flows": {"authorizationCode": {"tokenUrl": "/t", "authorizationUrl": "/a"}}
    }
    assert auth_kinds.kind_for("oauth2", "", data=client_credentials) is KINDS["oauth2"]
    assert auth_kinds.kind_for("oauth2", "", data=code_only) is KINDS["oauth2_token"]
    assert (
        auth_kinds.kind_for("oauth2", "", frozenset({"token"})) is KINDS["oauth2_token"]
    )
    refresh = frozenset({"client_id", "client_secret", "refresh_token"})
    assert auth_kinds.kind_for("oauth2", "", refresh) is KINDS["oauth2_refresh"]
    assert auth_kinds.kind_for("http", "Bearer") is KINDS["bearer"]
    assert auth_kinds.kind_for("basic", "") is KINDS["basic"]
    assert auth_kinds.kind_for("http", "digest") is None


def test_an_oauth2_declaration_carries_its_scopes_and_token_auth() -> None:
    env = (("client_id", "CID"), ("client_secret", "SECRET"))
    model = AuthModel(kind="oauth2", env=env, **FULL_AUTH)
    assert model.declaration == (
        "ClientCredentialsAuth",
        {
            "token_url": "/oauth/token",
            "client_id_env": "CID",
            "client_secret_env": "SECRET",
            "scope": "read write",
            "token_auth": "client_secret_post",
        },
    )


def _sample(kind: ExprKind) -> Expr:
    """An expression of `kind` with every modifier it takes."""
    values: dict[str, Any] = {"path": "a.b", "text": "x", "value": 1}
    if kind.name == "each":
        values["fields"] = (FieldMap("sku", Expr("path", HERE, path="sku"), HERE),)
    if kind.name == "expr":
        values["tree"] = parse("round(a.b / 2) if a.c > 1 else coalesce(d, 0) - 1")
    if "map" in kind.companions:
        values["table"] = (("on", True),)
    if "default" in kind.companions:
        values.update(has_default=True, default=False)
    if "as" in kind.companions:
        values["convert"] = ("string",)
    return Expr(kind.name, HERE, **values)


def _calls(code: str) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_each_expression_kind_is_complete_and_compiles_to_runtime_helpers(
    name: str,
) -> None:
    kind = EXPRESSIONS[name]
    assert kind.name == name and kind.key
    assert all(
        key in MODIFIERS or key in ("fields", "field") for key in kind.companions
    ), "a companion is a modifier or read by the kind itself"
    code = Compiler().expr(_sample(kind), "src", 0)
    helpers = {n for n in _calls(code) if n.startswith("_")}
    # the helpers a compile rule calls are what runtime_copy copies into the script
    assert helpers <= runtime_names(), helpers - runtime_names()


def test_the_as_modifier_wraps_every_kind_that_takes_it() -> None:
    for kind in EXPRESSIONS.values():
        if "as" in kind.companions:
            code = Compiler().expr(_sample(kind), "src", 0)
            assert code.startswith("_as_string("), code


# ---------------------------------------------------------------- new kinds


class TokenHeader(AuthKind):
    """A toy auth kind: `http` scheme `token`, sent as a bearer token."""

    name = "token_header"
    label = "HTTP token"
    runtime_class = "BearerAuth"
    schemes = (("http", "token"),)
    roles = (("token", "token_env"),)


class Lower(ExprKind):
    """A toy expression kind: `{lower: path}`, the source text in lower case."""

    name = "lower"
    key = "lower"

    def read(
        self, parser: Any, keys: Any, loc: Loc, what: str, common: dict[str, Any]
    ) -> Expr | None:
        path = parser.string(keys["lower"], f"{what}.lower") or ""
        return Expr("lower", loc, path=path)

    def check(
        self,
        checker: checks.TypeChecker,
        expr: Expr,
        source: Any,
        target: Any,
        what: str,
        required: bool,
    ) -> None:
        checker.source_field(source, expr.path, expr.loc, what)

    def compile(self, expr: Expr, data: str, depth: int, compiler: Any) -> str:
        return f"str(_get({data}, {expr.path!r}) or '').lower()"


def _project(root: Path, fields: str, token_scheme: bool) -> Path:
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    links = root / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(DATA / "shop.yaml", root / "specs" / "shop.yaml")
    sink = yaml.safe_load((DATA / "sink.yaml").read_text(encoding="utf-8"))
    if token_scheme:
        sink.setdefault("components", {})["securitySchemes"] = {
            "tokenAuth": {"type": "http", "scheme": "token"}
        }
        sink["security"] = [{"tokenAuth": []}]
    (root / "specs" / "sink.yaml").write_text(yaml.safe_dump(sink), encoding="utf-8")
    mapping = links / "toy.yaml"
    mapping.write_text(
        "version: 1\nname: toy\n"
        "source: {spec: ../shop.yaml, operation: listOrders}\n"
        "target: {spec: ../sink.yaml, operation: createThing}\n"
        f"fields:\n  kind: {{const: order}}\n{fields}",
        encoding="utf-8",
    )
    return mapping


def _generate(mapping: Path) -> tuple[int, str]:
    out = mapping.parents[2] / "out"
    result = CliRunner().invoke(cli, ["generate", str(mapping), "--out", str(out)])
    return result.exit_code, result.output


def test_a_new_auth_kind_is_one_class_and_its_registry_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _project(
        tmp_path, "  email: {from: email, default: x}\n", token_scheme=True
    )
    code, output = _generate(mapping)
    assert code == 1 and "'tokenAuth' (http token) is not supported" in output

    monkeypatch.setitem(KINDS, TokenHeader.name, TokenHeader())
    code, output = _generate(mapping)
    assert code == 0, output
    script = (tmp_path / "out" / "toy" / "toy.py").read_text(encoding="utf-8")
    assert 'auth=BearerAuth(token_env="TARGET_TOKEN")' in script
    assert '"TARGET_TOKEN"' in script.split("required_env=")[1].split(")")[0]
    assert "HTTP token" in auth_kinds.supported()


def test_a_new_expression_kind_is_one_class_and_its_registry_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _project(tmp_path, "  email: {lower: email}\n", token_scheme=False)
    code, output = _generate(mapping)
    assert code == 1 and "unknown key 'lower'" in output

    monkeypatch.setitem(EXPRESSIONS, Lower.name, Lower())
    code, output = _generate(mapping)
    assert code == 0, output
    script = (tmp_path / "out" / "toy" / "toy.py").read_text(encoding="utf-8")
    assert '"email": str(_get(src, "email") or "").lower()' in script
    assert "def _get(" in script  # the helper it calls is copied in

    broken = _project(tmp_path / "b", "  email: {lower: nope}\n", token_scheme=False)
    code, output = _generate(broken)
    assert code == 1 and "source field 'nope'" in output


def test_the_registries_are_what_the_stages_read() -> None:
    # no stage keeps its own list of kinds: the reader, the checks and the
    # compiler all look a kind up by name
    assert mapping_reader.EXPRESSIONS is EXPRESSIONS is expr_kinds.EXPRESSIONS
    assert checks.EXPRESSIONS is EXPRESSIONS


def _with_target_auth(mapping: Path, auth: str) -> None:
    text = mapping.read_text(encoding="utf-8").replace(
        "operation: createThing}", f"operation: createThing, auth: {auth}}}"
    )
    mapping.write_text(text, encoding="utf-8")


def test_a_scheme_not_built_in_is_signed_by_a_stub_the_script_holds(
    tmp_path: Path,
) -> None:
    """`auth.stub` serves any scheme: the refusal says so, and with it the script
    has the function to write, called for each request with $TARGET_SECRET."""
    mapping = _project(
        tmp_path, "  email: {from: email, default: x}\n", token_scheme=True
    )
    code, output = _generate(mapping)
    assert "`auth: {stub: sign_target_request}`" in output
    _with_target_auth(mapping, "{stub: sign_target_request}")
    code, output = _generate(mapping)
    assert code == 0, output
    script = (tmp_path / "out" / "toy" / "toy.py").read_text(encoding="utf-8")
    assert "# p2pgen:begin stub sign_target_request" in script
    assert (
        "def sign_target_request(request: httpx.Request, secret: str) -> None:"
        in script
    )
    assert (
        'auth=SignedAuth(sign=sign_target_request, secret_env="TARGET_SECRET")'
        in script
    )


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("{stub: 2sign}", "toy.yaml:4:67: target.auth: stub '2sign' must be a Python"),
        (
            "{stub: sign, env: {token: T}}",
            "toy.yaml:4:60: auth.env: 'token' does not apply to auth.stub",
        ),
        ("{stub: kind_for, fields: 1}", "unknown key 'fields' in target.auth"),
    ],
)
def test_a_wrong_auth_stub_is_located(tmp_path: Path, auth: str, expected: str) -> None:
    mapping = _project(
        tmp_path, "  email: {from: email, default: x}\n", token_scheme=True
    )
    _with_target_auth(mapping, auth)
    code, output = _generate(mapping)
    assert code == 1
    assert expected in output, output


def test_an_auth_stub_named_like_a_field_stub_is_refused(tmp_path: Path) -> None:
    mapping = _project(tmp_path, "  email: {stub: email_for}\n", token_scheme=True)
    _with_target_auth(mapping, "{stub: email_for}")
    code, output = _generate(mapping)
    assert code == 1
    assert "target.auth.stub: 'email_for' is a stub of a target field" in output
    mapping.write_text(  # the target's auth.stub, above the field's
        mapping.read_text().replace("stub: email_for}", "stub: run_link}", 1)
    )
    code, output = _generate(mapping)
    assert "target.auth: stub 'run_link' is a name the script already uses" in output
