"""Choose the auth scheme for each side and name the environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from generator.errors import Code, P2pgenError, did_you_mean
from generator.link import AuthModel
from generator.mapping import Endpoint
from generator.specs import Operation, Schema, SpecSet, join_pointer, security_schemes

ROLES = {
    "api_key": ("api_key",),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "oauth2": ("client_id", "client_secret"),
}

# A URL as the spec may write one: no spaces, quotes or control characters.
URL_TEXT = re.compile(r"[^\s\x00-\x1f\x7f\"'<>\\]+")


def resolve_auth(
    specs: SpecSet, endpoint: Endpoint, op: Operation, side: str
) -> AuthModel:
    """The auth of one side: `auth.scheme`, else the operation's first requirement."""
    schemes = security_schemes(op.doc)
    loc = endpoint.auth.loc if endpoint.auth else endpoint.loc
    wanted = endpoint.auth.scheme if endpoint.auth else None
    if wanted is None:
        requirement = next((r for r in op.security if r), ())
        if not requirement:
            if endpoint.auth and endpoint.auth.env:
                raise P2pgenError(
                    [
                        loc.problem(
                            f"auth: {op.label} declares no security requirement; name the "
                            f"scheme with `scheme:` (one of: {', '.join(schemes) or 'none'})",
                            code=Code.AUTH_SCHEME,
                        )
                    ]
                )
            return AuthModel("none")
        wanted = requirement[0]
    if wanted not in schemes:
        raise P2pgenError(
            [
                loc.problem(
                    f"auth.scheme: {wanted!r} is not a security scheme of {op.doc.path.name}"
                    f"{did_you_mean(wanted, schemes)}; known: {', '.join(schemes) or 'none'}",
                    code=Code.AUTH_SCHEME,
                )
            ]
        )
    scheme = schemes[wanted]
    data = scheme.data
    kind = _kind(scheme.type, str(data.get("scheme", "")).lower())
    if kind == "":
        raise P2pgenError(
            [
                loc.problem(
                    f"auth: scheme {wanted!r} ({scheme.type} {data.get('scheme', '')}) is not "
                    "supported; p2pgen supports API key, HTTP bearer, HTTP basic and OAuth2 "
                    "client credentials",
                    code=Code.AUTH_UNSUPPORTED,
                )
            ]
        )
    prefix = side.upper()
    env_names = dict(endpoint.auth.env) if endpoint.auth else {}
    for role in env_names:
        if role not in ROLES[kind]:
            raise P2pgenError(
                [
                    loc.problem(
                        f"auth.env: {role!r} does not apply to {kind} auth; it takes "
                        f"{', '.join(ROLES[kind])}",
                        code=Code.AUTH_ENV,
                    )
                ]
            )
    env = tuple(
        (role, env_names.get(role, f"{prefix}_{role.upper()}")) for role in ROLES[kind]
    )
    token_url = scopes = None
    if kind == "oauth2":
        token_url, scopes = _client_credentials(data)
        if token_url is None:
            raise P2pgenError(
                [
                    loc.problem(
                        f"auth: OAuth2 scheme {wanted!r} has no client credentials flow "
                        "(flows.clientCredentials.tokenUrl); p2pgen supports only that flow",
                        code=Code.AUTH_UNSUPPORTED,
                    )
                ]
            )
        if not URL_TEXT.fullmatch(token_url):
            raise P2pgenError(
                [
                    loc.problem(
                        f"auth: the tokenUrl of OAuth2 scheme {wanted!r} is not a URL (it"
                        " holds spaces, quotes or control characters); fix the spec",
                        code=Code.AUTH_UNSUPPORTED,
                    )
                ]
            )
    return AuthModel(
        kind=kind,
        scheme=wanted,
        client_auth=_client_auth(specs, op, token_url) if token_url else "",
        location=str(data.get("in", "")) if kind == "api_key" else "",
        param_name=str(data.get("name", "")) if kind == "api_key" else "",
        token_url=token_url or "",
        scopes=tuple(scopes or ()),
        env=env,
    )


def _kind(scheme_type: str, http_scheme: str) -> str:
    if scheme_type == "apiKey":
        return "api_key"
    if scheme_type == "basic" or (scheme_type == "http" and http_scheme == "basic"):
        return "basic"
    if scheme_type == "http" and http_scheme == "bearer":
        return "bearer"
    if scheme_type == "oauth2":
        return "oauth2"
    return ""


def _client_credentials(data: object) -> tuple[str | None, list[str]]:
    assert isinstance(data, dict)
    flows = data.get("flows") or {}
    flow = flows.get("clientCredentials")
    if flow is None and data.get("flow") == "application":  # Swagger 2.0
        flow = data
    if not isinstance(flow, dict) or not flow.get("tokenUrl"):
        return None, []
    return str(flow["tokenUrl"]), sorted(str(s) for s in (flow.get("scopes") or {}))


def _client_auth(specs: SpecSet, op: Operation, token_url: str) -> str:
    """How the client proves itself at the token endpoint: "basic" or "body".

    RFC 6749 prefers HTTP Basic and allows one method per request. When the spec
    describes its token endpoint and that form asks for client_id and
    client_secret, the script sends them in the form body instead.
    """
    paths = op.doc.data.get("paths") or {}
    path = urlsplit(token_url).path
    item = paths.get(path)
    post = item.get("post") if isinstance(item, Mapping) else None
    if not isinstance(post, Mapping) or not isinstance(
        post.get("requestBody"), Mapping
    ):
        return "basic"
    at = join_pointer("paths", path, "post", "requestBody")
    body = specs.deref(Schema(op.doc, post["requestBody"], at)).node
    form = ((body.get("content") or {}).get("application/x-www-form-urlencoded")) or {}
    schema = form.get("schema")
    if not isinstance(schema, Mapping):
        return "basic"
    fields = specs.deref(Schema(op.doc, schema, at)).node.get("properties") or {}
    return "body" if {"client_id", "client_secret"} <= set(fields) else "basic"
