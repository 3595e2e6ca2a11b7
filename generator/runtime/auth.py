"""Auth kinds: credentials from environment variables, added to each request."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Generator
from urllib.parse import quote

import httpx

from generator.runtime.core import SECRETS, FatalError
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


class ClientCredentialsAuth(EnvAuth):
    """OAuth2 client credentials: fetch a token, reuse it, refresh it when it expires.

    The token request is retried on 429 and on any 5xx (send() retries only
    429/502/503/504, but a token endpoint's 500 is as passing as a 503); a
    refusal (400, 401: wrong client id or secret) stops the run. Each token
    fetched is redacted like the client secret.
    """

    max_retries = 5

    def __init__(
        self,
        token_url: str,
        client_id_env: str,
        client_secret_env: str,
        scope: str = "",
        credentials_in_body: bool = False,
    ) -> None:
        self.token_url = token_url
        self.client_id_env = client_id_env
        self.client_secret_env = client_secret_env
        self.scope = scope
        self.credentials_in_body = credentials_in_body
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
            if not self.token or time.monotonic() >= self.expires_at:
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

    def _fetch(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        client_id = os.environ[self.client_id_env]
        secret = os.environ[self.client_secret_env]
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        headers: dict[str, str] = {}
        if self.credentials_in_body:  # as the token endpoint's form asks for them
            data.update(client_id=client_id, client_secret=secret)
        else:  # RFC 6749's preferred method
            pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = (
                f"Basic {base64.b64encode(pair.encode()).decode()}"
            )
        token_request = httpx.Request(
            "POST", request.url.join(self.token_url), data=data, headers=headers
        )
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
                time.sleep(retry_delay(attempt, response))
        if response.status_code != 200:
            hint = (
                "; check the client id and secret"
                if response.status_code in (400, 401)
                else ""
            )
            raise FatalError(
                f"OAuth2 token request failed: HTTP {response.status_code}{hint}"
            )
        try:
            payload = json.loads(answer)
            self.token = str(payload["access_token"])
            lifetime = float(payload.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise FatalError("OAuth2 token response has no access_token") from None
        SECRETS.add(self.token)
        self.expires_at = time.monotonic() + max(lifetime - 30, lifetime / 2)
