"""Auth kinds: credentials from environment variables, added to each request."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from time import monotonic, sleep
from typing import Any
from urllib.parse import quote

import httpx

from generator.runtime.core import SECRETS, FatalError, log
from generator.runtime.files import write_atomically
from generator.runtime.http import _decoded, retry_delay

MAX_TOKEN_ANSWER = 1024 * 1024  # a token answer is a few hundred bytes


def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """Read an answer whole, refusing one larger than `limit` bytes before it is all in."""
    size = 0
    chunks = []
    for chunk in _decoded(response, limit):  # inflated a bounded piece at a time
        size += len(chunk)
        if size > limit:
            response.close()
            raise FatalError(f"the OAuth2 token answer is larger than {limit} bytes")
        chunks.append(chunk)
    # httpx reads each answer of an auth flow again once the flow moves on: keep the
    # content where its read() finds it, as read() itself would
    response._content = b"".join(chunks)
    return response._content


class EnvAuth(httpx.Auth):
    """Credentials named by environment variables, read when the run starts."""

    def secret_env(self) -> tuple[str, ...]:
        """The environment variables that hold this auth's secrets."""
        return ()

    def register_secrets(self) -> None:
        """Have every secret of this auth redacted from logs, state and dead letters."""
        for name in self.secret_env():
            SECRETS.add(os.environ.get(name, ""))

    def keep_tokens(self, store: Path | None) -> None:
        """Where a flow keeps tokens it is given between runs (--token-store)."""


class NoAuth(EnvAuth):
    """No credentials."""


class BearerAuth(EnvAuth):
    def __init__(self, token_env: str) -> None:
        self.token_env = token_env

    def secret_env(self) -> tuple[str, ...]:
        return (self.token_env,)

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {os.environ[self.token_env]}"
        yield request


class SignedAuth(EnvAuth):
    """A scheme p2pgen does not build in (PAYONE's HMAC signatures): the link's own
    function signs each request, given the secret from the environment."""

    def __init__(
        self, sign: Callable[[httpx.Request, str], None], secret_env: str
    ) -> None:
        self.sign = sign
        self.secret_name = secret_env

    def secret_env(self) -> tuple[str, ...]:
        return (self.secret_name,)

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            self.sign(request, os.environ[self.secret_name])
        except NotImplementedError as exc:  # the stub is not written yet
            raise FatalError(str(exc)) from None
        yield request


class BasicAuth(EnvAuth):
    def __init__(self, username_env: str, password_env: str) -> None:
        self.username_env = username_env
        self.password_env = password_env

    def secret_env(self) -> tuple[str, ...]:
        return (self.username_env, self.password_env)

    def register_secrets(self) -> None:
        SECRETS.add_basic(
            os.environ.get(self.username_env, ""), os.environ.get(self.password_env, "")
        )

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        basic = httpx.BasicAuth(
            os.environ[self.username_env], os.environ[self.password_env]
        )
        yield from basic.auth_flow(request)


class ApiKeyAuth(EnvAuth):
    def __init__(self, location: str, name: str, key_env: str) -> None:
        self.location = location  # header | query | cookie
        self.name = name
        self.key_env = key_env

    def secret_env(self) -> tuple[str, ...]:
        return (self.key_env,)

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        key = os.environ[self.key_env]
        if self.location == "query":
            request.url = request.url.copy_merge_params({self.name: key})
        elif self.location == "cookie":
            cookies = [request.headers.get("Cookie", ""), f"{self.name}={key}"]
            request.headers["Cookie"] = "; ".join(c for c in cookies if c)
        else:
            request.headers[self.name] = key
        yield request


# How a client proves itself at a token endpoint, as a 401 there names them.
TOKEN_AUTH_METHODS = {
    "client_secret_basic": "HTTP Basic",
    "client_secret_post": "form body",
    "json": "JSON body",
}


class ClientCredentialsAuth(EnvAuth):
    """OAuth2 client credentials: fetch a token, reuse it, refresh it when it expires.

    The token request is retried on 429 and on any 5xx (send() retries only
    429/502/503/504, but a token endpoint's 500 is as passing as a 503); a
    refusal (400, 401: wrong client id or secret) stops the run. Each token
    fetched is redacted like the client secret. `token_auth` is how the client
    proves itself: client_secret_basic (RFC 6749's preferred), client_secret_post
    (in the form body) or json (a JSON body, as some endpoints want).
    """

    max_retries = 5
    grant = "client_credentials"

    def __init__(
        self,
        token_url: str,
        client_id_env: str,
        client_secret_env: str,
        scope: str = "",
        token_auth: str = "client_secret_basic",
    ) -> None:
        self.token_url = token_url
        self.client_id_env = client_id_env
        self.client_secret_env = client_secret_env
        self.scope = scope
        self.token_auth = token_auth
        self.token = ""
        self.expires_at = 0.0
        self.lock = threading.Lock()

    def secret_env(self) -> tuple[str, ...]:
        return (self.client_id_env, self.client_secret_env)

    def register_secrets(self) -> None:
        SECRETS.add_basic(
            os.environ.get(self.client_id_env, ""),
            os.environ.get(self.client_secret_env, ""),
        )

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        with self.lock:
            if not self.token or monotonic() >= self.expires_at:
                yield from self._fetch(request)
            token = self.token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            with self.lock:
                if self.token == token:
                    yield from self._fetch(request)
                token = self.token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def grant_fields(self) -> dict[str, str]:
        """The token request's fields besides the client's credentials."""
        return {"grant_type": self.grant}

    def token_request(self, url: httpx.URL) -> httpx.Request:
        """The token request, with the client's credentials where `token_auth` says."""
        client_id = os.environ[self.client_id_env]
        secret = os.environ[self.client_secret_env]
        data = self.grant_fields()
        if self.scope:
            data["scope"] = self.scope
        if self.token_auth == "client_secret_basic":
            pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
            basic = f"Basic {base64.b64encode(pair.encode()).decode()}"
            return httpx.Request(
                "POST", url, data=data, headers={"Authorization": basic}
            )
        data.update(client_id=client_id, client_secret=secret)
        if self.token_auth == "json":
            return httpx.Request("POST", url, json=data)
        return httpx.Request("POST", url, data=data)

    def _fetch(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token_request = self.token_request(request.url.join(self.token_url))
        # the request's trace: the watchdog bounds the token fetch within its deadline
        token_request.extensions = dict(request.extensions)
        token_request.headers["Accept-Encoding"] = (
            "gzip, deflate"  # what _decoded() inflates
        )
        for attempt in range(1, self.max_retries + 2):
            response = yield token_request
            answer = _read_capped(response, MAX_TOKEN_ANSWER)
            if response.status_code < 500 and response.status_code != 429:
                break
            if attempt <= self.max_retries:
                sleep(retry_delay(attempt, response))
        if response.status_code != 200:
            raise FatalError(
                f"OAuth2 token request failed: HTTP {response.status_code}"
                + (self.refusal_hint() if response.status_code in (400, 401) else "")
            )
        try:
            payload = json.loads(answer)
            self.token = str(payload["access_token"])
            lifetime = float(payload.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise FatalError("OAuth2 token response has no access_token") from None
        SECRETS.add(self.token)
        self.expires_at = monotonic() + max(lifetime - 30, lifetime / 2)
        self.answered(payload)

    def refusal_hint(self) -> str:
        """What to try when the token endpoint refuses: the credentials, or their place."""
        others = " or ".join(
            f"{name} ({how})"
            for name, how in TOKEN_AUTH_METHODS.items()
            if name != self.token_auth
        )
        return (
            f"; the client id and secret were sent as {self.token_auth}"
            f" ({TOKEN_AUTH_METHODS[self.token_auth]}): check them, or the endpoint may"
            f" want them another way: set auth.token_auth to {others}"
        )

    def answered(self, payload: dict[str, Any]) -> None:
        """What a flow keeps from a token answer besides the access token."""


class RefreshTokenAuth(ClientCredentialsAuth):
    """OAuth2 refresh-token flow: each access token is fetched with a refresh token.

    An endpoint that rotates refresh tokens (single use, as Xero's) answers a new
    one with each access token; it is kept in the --token-store file (JSON, 0600,
    written atomically) and preferred to the environment's on the next run. It is
    redacted like every secret and never written to state, logs or output.
    """

    grant = "refresh_token"

    def __init__(
        self,
        token_url: str,
        client_id_env: str,
        client_secret_env: str,
        refresh_token_env: str,
        scope: str = "",
        token_auth: str = "client_secret_basic",
    ) -> None:
        super().__init__(token_url, client_id_env, client_secret_env, scope, token_auth)
        self.refresh_token_env = refresh_token_env
        self.store: Path | None = None
        self.refresh_token = ""

    def secret_env(self) -> tuple[str, ...]:
        return (*super().secret_env(), self.refresh_token_env)

    def register_secrets(self) -> None:
        super().register_secrets()
        SECRETS.add(os.environ.get(self.refresh_token_env, ""))

    def keep_tokens(self, store: Path | None) -> None:
        self.store = store
        self.refresh_token = self._stored() or os.environ.get(
            self.refresh_token_env, ""
        )
        SECRETS.add(self.refresh_token)

    def _stored(self) -> str:
        """The refresh token the store keeps for this auth ("" for none)."""
        if self.store is None or not self.store.exists():
            return ""
        try:
            kept = json.loads(self.store.read_text(encoding="utf-8"))
            return str(kept["refresh_tokens"].get(self.refresh_token_env) or "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise FatalError(
                f"the token store {self.store} is not a token store p2pgen wrote;"
                " pass another --token-store or remove it"
            ) from None

    def grant_fields(self) -> dict[str, str]:
        if not self.refresh_token:  # run_link calls keep_tokens; a bare call does not
            self.keep_tokens(self.store)
        return {"grant_type": self.grant, "refresh_token": self.refresh_token}

    def refusal_hint(self) -> str:
        return (
            "; the refresh token may be used up or revoked (set a new one in"
            f" ${self.refresh_token_env}, or check --token-store), else"
            + super().refusal_hint()[1:]
        )

    def answered(self, payload: dict[str, Any]) -> None:
        rotated = payload.get("refresh_token")
        if not isinstance(rotated, str) or not rotated or rotated == self.refresh_token:
            return
        SECRETS.add(rotated)
        self.refresh_token = rotated
        if self.store is None:
            log.warning(
                "the token endpoint rotated the refresh token; without --token-store"
                " the new one is not kept, and the next run's ($%s) may be refused",
                self.refresh_token_env,
            )
            return
        kept: dict[str, Any] = {"refresh_tokens": {}}
        if self.store.exists():
            with contextlib.suppress(OSError, ValueError):
                kept = json.loads(self.store.read_text(encoding="utf-8"))
        kept.setdefault("refresh_tokens", {})[self.refresh_token_env] = rotated
        write_atomically(self.store, json.dumps(kept, indent=2, sort_keys=True))
