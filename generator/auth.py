"""Choose the auth scheme for each side and name the environment variables.

What each kind takes and checks is declared in generator/kinds/auth.py; this
module picks the scheme and its kind, and checks `auth.env` against the kind.
"""

from __future__ import annotations

import dataclasses

from generator.errors import Code, P2pgenError, did_you_mean
from generator.kinds.auth import (
    KINDS,
    OAUTH2_ROLES,
    OAuth2Flow,
    SchemeFacts,
    kind_for,
    kinds_for,
    supported,
)
from generator.link import AuthModel
from generator.mapping import Endpoint, Loc
from generator.specs import Operation, SpecSet, security_schemes


def resolve_auth(
    specs: SpecSet, endpoint: Endpoint, op: Operation, side: str
) -> AuthModel:
    """The auth of one side: `auth.scheme`, else the operation's first requirement."""
    auth = endpoint.auth
    if auth is None:
        return operation_auth(specs, op, side, endpoint.loc)
    return operation_auth(
        specs,
        op,
        side,
        auth.loc,
        auth.scheme,
        auth.env,
        auth.token_auth or "",
        auth.stub or "",
    )


def operation_auth(
    specs: SpecSet,
    op: Operation,
    side: str,
    loc: Loc,
    wanted: str | None = None,
    env_names: dict[str, str] | None = None,
    token_auth: str = "",
    stub: str = "",
) -> AuthModel:
    """The auth of an operation: scheme `wanted`, else its first requirement;
    `env_names` maps roles to variables (the rest read SIDE_ROLE); with `stub`,
    that function of the script signs the requests, whatever the scheme."""
    schemes = security_schemes(op.doc)
    env_names = env_names or {}
    if wanted is None:
        requirement = next((r for r in op.security if r), ())
        if not requirement:
            if env_names or stub:
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
    http_scheme = str(scheme.data.get("scheme", ""))
    scheme_text = f"{scheme.type} {http_scheme}".strip()
    if stub:
        return _signed(wanted, scheme_text, side, loc, env_names, stub)
    serving = kinds_for(scheme.type, http_scheme)
    if not serving:
        raise P2pgenError(
            [
                loc.problem(
                    f"auth: scheme {wanted!r} ({scheme_text}) is not supported;"
                    f" p2pgen supports {supported()}, or signs each request with a"
                    f" function of yours: give {side} `auth: {{stub: sign_{side}_request}}`"
                    " and write that function in the script",
                    code=Code.AUTH_UNSUPPORTED,
                )
            ]
        )
    kind = kind_for(scheme.type, http_scheme, frozenset(env_names), scheme.data)
    if kind is None:
        takes = (
            OAUTH2_ROLES
            if scheme.type == "oauth2"
            else ", ".join(dict.fromkeys(r for k in serving for r in k.role_names))
        )
        unknown = sorted(set(env_names) - {r for k in serving for r in k.role_names})
        what = (
            f"{unknown[0]!r} does not apply to "
            f"{serving[0].name if len(serving) == 1 else scheme.type} auth"
            if unknown
            else f"{', '.join(sorted(env_names))} do not go together"
        )
        raise P2pgenError(
            [loc.problem(f"auth.env: {what}; it takes {takes}", code=Code.AUTH_ENV)]
        )
    if token_auth and not isinstance(kind, OAuth2Flow):
        raise P2pgenError(
            [
                loc.problem(
                    f"auth.token_auth: {kind.label or kind.name} auth fetches no token;"
                    " token_auth applies to OAuth2 client credentials and refresh tokens",
                    code=Code.AUTH_ENV,
                )
            ]
        )
    env = tuple(
        (role, env_names.get(role) or kind.default_env(side, role))
        for role in kind.role_names
    )
    settings = kind.settings(
        SchemeFacts(wanted, scheme.data, specs, op, loc, token_auth)
    )
    model = AuthModel(kind=kind.name, scheme=wanted, env=env)
    return dataclasses.replace(model, **settings)


def _signed(
    scheme: str,
    scheme_text: str,
    side: str,
    loc: Loc,
    env_names: dict[str, str],
    stub: str,
) -> AuthModel:
    """`auth.stub`: the script's function `stub` signs each request with the
    secret in `auth.env.secret` (default SIDE_SECRET)."""
    kind = KINDS["signed"]
    unknown = sorted(set(env_names) - set(kind.role_names))
    if unknown:
        raise P2pgenError(
            [
                loc.problem(
                    f"auth.env: {unknown[0]!r} does not apply to auth.stub, whose"
                    " function is given one secret: name its variable as"
                    " `env: {secret: VAR}`",
                    code=Code.AUTH_ENV,
                )
            ]
        )
    secret = env_names.get("secret") or kind.default_env(side, "secret")
    return AuthModel(
        kind=kind.name,
        scheme=scheme,
        env=(("secret", secret),),
        stub=stub,
        scheme_text=scheme_text,
    )
