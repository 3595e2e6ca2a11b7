"""Auth kinds: one descriptor each, and the registry the generator reads.

A kind names the OpenAPI security schemes it serves, its `auth.env` roles (each
read from `SOURCE_<ROLE>` / `TARGET_<ROLE>` unless `auth.env` names a variable),
the settings it takes from the scheme (and the checks on them), the runtime
class that authenticates the script's requests (generator/runtime/auth.py) with
the keyword arguments of its declaration, and the note `p2pgen init` drafts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from generator.errors import Code, P2pgenError
from generator.literals import Identifier
from generator.mapping import Loc
from generator.specs import Operation, Schema, SpecSet, join_pointer

# A URL as the spec may write one: no spaces, quotes or control characters.
URL_TEXT = re.compile(r"[^\s\x00-\x1f\x7f\"'<>\\]+")


@dataclass(frozen=True)
class SchemeFacts:
    """The security scheme a side uses, and where to report its problems."""

    name: str  # its name in components.securitySchemes / securityDefinitions
    data: Mapping[str, Any]
    specs: SpecSet
    op: Operation
    loc: Loc
    token_auth: str = ""  # auth.token_auth as the mapping writes it ("": from the spec)

    def problem(self, message: str) -> P2pgenError:
        return P2pgenError([self.loc.problem(message, code=Code.AUTH_UNSUPPORTED)])


class AuthKind:
    """The base of every kind: roles, their variables and the declaration."""

    name: str = ""
    label: str = ""  # as the "p2pgen supports ..." message names it
    runtime_class: str = ""
    # the (type, HTTP scheme) pairs of the security schemes it serves; "" is any
    schemes: tuple[tuple[str, str], ...] = ()
    # (auth.env role, the runtime constructor's keyword for its variable)
    roles: tuple[tuple[str, str], ...] = ()

    def serves(self, scheme_type: str, http_scheme: str) -> bool:
        return any(
            scheme_type == kind and scheme in ("", http_scheme.lower())
            for kind, scheme in self.schemes
        )

    def picks(self, roles: frozenset[str]) -> bool:
        """Whether this kind is the one for a scheme it serves, given the roles
        `auth.env` names (kinds serving one scheme tell themselves apart so)."""
        return roles <= set(self.role_names)

    # with no `auth.env`, tried after the other kinds that serve the scheme
    last_resort = False

    def serves_by_default(self, data: Mapping[str, Any]) -> bool:
        """Whether this kind can be the default (no `auth.env`) for a scheme."""
        return True

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(role for role, _ in self.roles)

    def default_env(self, side: str, role: str) -> str:
        """The variable a role reads where `auth.env` does not name one."""
        return f"{side.upper()}_{role.upper()}"

    def settings(self, scheme: SchemeFacts) -> dict[str, Any]:
        """The AuthModel fields this kind takes from the scheme; raises P2pgenError
        when the scheme cannot be served."""
        return {}

    def declaration(self, values: Mapping[str, Any]) -> dict[str, object]:
        """The runtime class's keyword arguments, from the AuthModel's fields."""
        env = dict(values["env"])
        return {keyword: env[role] for role, keyword in self.roles}

    def draft_note(self, values: Mapping[str, Any]) -> str:
        """The comment `p2pgen init` writes about this auth ("" for none)."""
        variables = ", ".join(f"${var}" for _, var in values["env"])
        return f"auth: {values['scheme']} ({self.label}), from {variables}"


class NoAuth(AuthKind):
    name = "none"
    runtime_class = "NoAuth"

    def draft_note(self, values: Mapping[str, Any]) -> str:
        return ""


class ApiKey(AuthKind):
    name = "api_key"
    label = "API key"
    runtime_class = "ApiKeyAuth"
    schemes = (("apiKey", ""),)
    roles = (("api_key", "key_env"),)

    def settings(self, scheme: SchemeFacts) -> dict[str, Any]:
        return {
            "location": str(scheme.data.get("in", "")),
            "param_name": str(scheme.data.get("name", "")),
        }

    def declaration(self, values: Mapping[str, Any]) -> dict[str, object]:
        return {
            "location": values["location"],
            "name": values["param_name"],
            **super().declaration(values),
        }


class Bearer(AuthKind):
    name = "bearer"
    label = "HTTP bearer"
    runtime_class = "BearerAuth"
    schemes = (("http", "bearer"),)
    roles = (("token", "token_env"),)


class Basic(AuthKind):
    name = "basic"
    label = "HTTP basic"
    runtime_class = "BasicAuth"
    schemes = (("basic", ""), ("http", "basic"))  # Swagger 2.0, OpenAPI 3
    roles = (("username", "username_env"), ("password", "password_env"))


# runtime/auth.py's TOKEN_AUTH_METHODS (not imported: the generator starts without httpx)
TOKEN_AUTH = ("client_secret_basic", "client_secret_post", "json")
OAUTH2_ROLES = (
    "token (a static access token), client_id and client_secret (client"
    " credentials), or client_id, client_secret and refresh_token (refresh-token flow)"
)


class OAuth2Token(AuthKind):
    """A static access token, for any OAuth2 scheme (Square's authorization code too)."""

    name = "oauth2_token"
    label = "OAuth2 access token"
    runtime_class = "BearerAuth"
    schemes = (("oauth2", ""),)
    roles = (("token", "token_env"),)
    last_resort = True  # the default only where no flow serves the scheme

    def picks(self, roles: frozenset[str]) -> bool:
        return not roles or ("token" in roles and super().picks(roles))


class OAuth2Flow(AuthKind):
    """A flow that fetches access tokens from the scheme's token endpoint."""

    flow_label = ""

    def token_url(self, scheme: SchemeFacts) -> tuple[str, Mapping[str, Any]]:
        """The token endpoint this flow posts to, and the flow it is taken from."""
        raise NotImplementedError

    def settings(self, scheme: SchemeFacts) -> dict[str, Any]:
        token_url, flow = self.token_url(scheme)
        if not URL_TEXT.fullmatch(token_url):
            raise scheme.problem(
                f"auth: the token URL of OAuth2 scheme {scheme.name!r} is not a URL (it"
                " holds spaces, quotes or control characters); fix the spec"
            )
        return {
            "token_url": token_url,
            "scopes": tuple(sorted(str(s) for s in (flow.get("scopes") or {}))),
            "token_auth": scheme.token_auth
            or _token_auth(scheme.specs, scheme.op, token_url),
        }

    def declaration(self, values: Mapping[str, Any]) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "token_url": values["token_url"],
            **super().declaration(values),
        }
        if values["scopes"]:
            kwargs["scope"] = " ".join(values["scopes"])
        if values["token_auth"] != TOKEN_AUTH[0]:
            kwargs["token_auth"] = values["token_auth"]
        return kwargs


class ClientCredentials(OAuth2Flow):
    name = "oauth2"
    label = "OAuth2 client credentials"
    runtime_class = "ClientCredentialsAuth"
    schemes = (("oauth2", ""),)
    roles = (("client_id", "client_id_env"), ("client_secret", "client_secret_env"))

    def serves_by_default(self, data: Mapping[str, Any]) -> bool:
        return _client_credentials_flow(data) is not None

    def token_url(self, scheme: SchemeFacts) -> tuple[str, Mapping[str, Any]]:
        flow = _client_credentials_flow(scheme.data)
        if flow is None:
            raise scheme.problem(
                f"auth: OAuth2 scheme {scheme.name!r} has no client credentials flow "
                "(flows.clientCredentials.tokenUrl); give `auth.env` a static access"
                " token ({token: VAR}) or the refresh-token flow's client_id,"
                " client_secret and refresh_token"
            )
        return str(flow["tokenUrl"]), flow


class Signed(AuthKind):
    """A scheme p2pgen does not implement (PAYONE's HMAC signatures): `auth.stub`
    names a function of the script that signs each request, given the secret."""

    name = "signed"  # no label: "p2pgen supports ..." names the built-in kinds
    runtime_class = "SignedAuth"
    schemes = ()  # chosen by `auth.stub`, for any scheme, never by default
    roles = (("secret", "secret_env"),)

    def declaration(self, values: Mapping[str, Any]) -> dict[str, object]:
        return {"sign": Identifier(values["stub"]), **super().declaration(values)}

    def draft_note(self, values: Mapping[str, Any]) -> str:
        return (
            f"auth: {values['scheme']} ({values['scheme_text']}) is not built in: "
            f"{values['stub']}() in the script signs each request, with the secret"
            f" from ${dict(values['env'])['secret']}"
        )


def _client_credentials_flow(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """An OAuth2 scheme's client credentials flow with its tokenUrl, else None."""
    flows = data.get("flows") or {}
    flow = flows.get("clientCredentials") if isinstance(flows, Mapping) else None
    if flow is None and data.get("flow") == "application":  # Swagger 2.0
        flow = data
    if not isinstance(flow, Mapping) or not flow.get("tokenUrl"):
        return None
    return flow


class RefreshToken(OAuth2Flow):
    """The refresh-token grant, at any flow's tokenUrl or refreshUrl (refreshUrl wins)."""

    name = "oauth2_refresh"
    label = "OAuth2 refresh token"
    runtime_class = "RefreshTokenAuth"
    schemes = (("oauth2", ""),)
    roles = (
        ("client_id", "client_id_env"),
        ("client_secret", "client_secret_env"),
        ("refresh_token", "refresh_token_env"),
    )

    def picks(self, roles: frozenset[str]) -> bool:
        return "refresh_token" in roles and super().picks(roles)

    def token_url(self, scheme: SchemeFacts) -> tuple[str, Mapping[str, Any]]:
        flows = scheme.data.get("flows")
        if not isinstance(flows, Mapping):  # Swagger 2.0: the scheme is its flow
            flows = {"flow": scheme.data}
        found = [f for f in flows.values() if isinstance(f, Mapping)]
        for key in ("refreshUrl", "tokenUrl"):
            flow = next((f for f in found if f.get(key)), None)
            if flow is not None:
                return str(flow[key]), flow
        raise scheme.problem(
            f"auth: OAuth2 scheme {scheme.name!r} names no token endpoint (a flow's"
            " tokenUrl or refreshUrl) to refresh tokens at; give `auth.env` a static"
            " access token ({token: VAR}) instead"
        )


def _token_auth(specs: SpecSet, op: Operation, token_url: str) -> str:
    """How the client proves itself at the token endpoint, where the spec says.

    RFC 6749 prefers HTTP Basic (client_secret_basic) and allows one method per
    request. When the spec describes its token endpoint and its body asks for
    client_id and client_secret, the script sends them there: in the form
    (client_secret_post) or, for a JSON body only, as JSON.
    """
    paths = op.doc.data.get("paths") or {}
    path = urlsplit(token_url).path
    item = paths.get(path)
    post = item.get("post") if isinstance(item, Mapping) else None
    if not isinstance(post, Mapping) or not isinstance(
        post.get("requestBody"), Mapping
    ):
        return TOKEN_AUTH[0]
    at = join_pointer("paths", path, "post", "requestBody")
    body = specs.deref(Schema(op.doc, post["requestBody"], at)).node
    content = body.get("content") or {}
    for media, method in (
        ("application/x-www-form-urlencoded", "client_secret_post"),
        ("application/json", "json"),
    ):
        schema = (content.get(media) or {}).get("schema")
        if not isinstance(schema, Mapping):
            continue
        fields = specs.deref(Schema(op.doc, schema, at)).node.get("properties") or {}
        if {"client_id", "client_secret"} <= set(fields):
            return method
    return TOKEN_AUTH[0]


KINDS: dict[str, AuthKind] = {
    kind.name: kind
    for kind in (
        ApiKey(),
        Bearer(),
        Basic(),
        OAuth2Token(),
        RefreshToken(),
        ClientCredentials(),
        Signed(),
        NoAuth(),
    )
}


def env_roles() -> tuple[str, ...]:
    """Every auth.env role some kind takes, in registry order."""
    return tuple(dict.fromkeys(r for k in KINDS.values() for r in k.role_names))


def kinds_for(scheme_type: str, http_scheme: str) -> list[AuthKind]:
    """The kinds that serve a security scheme (none: p2pgen does not support it)."""
    return [k for k in KINDS.values() if k.serves(scheme_type, http_scheme)]


def kind_for(
    scheme_type: str,
    http_scheme: str,
    roles: frozenset[str] = frozenset(),
    data: Mapping[str, Any] | None = None,
) -> AuthKind | None:
    """The kind that serves a security scheme (`data`) with the roles `auth.env`
    names. With no roles, the first kind that can serve the scheme by default; the
    static OAuth2 token only when nothing else can (an authorization-code scheme)."""
    picked = [k for k in kinds_for(scheme_type, http_scheme) if k.picks(roles)]
    if not roles:
        picked = sorted(
            (k for k in picked if k.serves_by_default(data or {})),
            key=lambda k: k.last_resort,
        )
    return next(iter(picked), None)


def supported() -> str:
    """The kinds p2pgen supports, for messages: "A, B and C"."""
    labels = [k.label for k in KINDS.values() if k.label]
    return ", ".join(labels[:-1]) + " and " + labels[-1]
