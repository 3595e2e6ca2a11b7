"""OAuth2 flows against a real token endpoint on loopback.

The endpoint takes the client's credentials one way only (HTTP Basic, the form
body or a JSON body) and, for the refresh-token grant, rotates single-use
refresh tokens as Xero's does. The runs go through the script's command line,
so what they print and write is what a user would see.
"""

from __future__ import annotations

import base64
import json
import stat
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest
from runtime_helpers import (
    SECRETS,
    Loopback,
    Seen,
    answer,
    command_line,
    isolate,
    make_link,
    rows,
)

from generator.runtime.auth import ClientCredentialsAuth, EnvAuth, RefreshTokenAuth
from generator.runtime.run import main_link

TOKEN_PATH = "/oauth/token"
FIRST_REFRESH = "refresh-0/+first"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)
    monkeypatch.setenv("REFRESH_TOKEN", FIRST_REFRESH)


class TokenApi:
    """Source, target and token endpoint in one loopback server."""

    def __init__(self, wants: str, rotate: bool = False) -> None:
        self.wants = wants  # client_secret_basic | client_secret_post | json
        self.rotate = rotate
        self.issued = 0
        self.valid_refresh = {FIRST_REFRESH}
        self.grants: list[dict[str, str]] = []
        self.written: list[str] = []

    def credentials(self, seen: Seen) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The token request's fields, and the client id and secret where it put them."""
        if seen.headers.get("Content-Type", "").startswith("application/json"):
            fields = {k: str(v) for k, v in json.loads(seen.body).items()}
            method = "json"
        else:
            fields = dict(parse_qsl(seen.body.decode()))
            method = "client_secret_post"
        if "client_id" in fields:
            pair = (fields["client_id"], fields.get("client_secret", ""))
            return fields, (pair if method == self.wants else None)
        basic = seen.headers.get("Authorization", "").removeprefix("Basic ")
        if basic and self.wants == "client_secret_basic":
            user, _, password = base64.b64decode(basic).decode().partition(":")
            return fields, (unquote(user), unquote(password))
        return fields, None

    def __call__(self, handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == TOKEN_PATH:
            fields, client = self.credentials(seen)
            self.grants.append(fields)
            if client != (SECRETS["CLIENT_ID"], SECRETS["CLIENT_SECRET"]):
                answer(handler, 401, {"error": "invalid_client"})
                return
            if fields["grant_type"] == "refresh_token":
                if fields.get("refresh_token") not in self.valid_refresh:
                    answer(handler, 400, {"error": "invalid_grant"})
                    return
                if self.rotate:  # single use: the one just used is spent
                    self.valid_refresh = {f"refresh-{self.issued + 1}/+rotated"}
            self.issued += 1
            token: dict[str, Any] = {
                "access_token": f"access-{self.issued}/+x",
                "expires_in": 3600,
            }
            if self.rotate and fields["grant_type"] == "refresh_token":
                (token["refresh_token"],) = self.valid_refresh
            answer(handler, 200, token)
        elif seen.method == "GET":
            answer(handler, 200, {"data": rows(2)})
        else:
            assert seen.headers["Authorization"] == f"Bearer access-{self.issued}/+x"
            self.written.append(seen.body.decode())
            answer(handler, 201, {"ok": True})


def run_cli(tmp_path: Path, auth: EnvAuth, api: TokenApi, *extra: str) -> int:
    """One run of the script's command line; its exit code."""
    link = make_link(style="none", target={"auth": auth})
    with Loopback(api) as server, command_line():
        code = main_link(
            link,
            [
                "--source-url",
                server.url,
                "--target-url",
                server.url,
                "--state",
                str(tmp_path / "state.json"),
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
                *extra,
            ],
            "test",
        )
    return code


def client_credentials(token_auth: str) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        token_url=TOKEN_PATH,
        client_id_env="CLIENT_ID",
        client_secret_env="CLIENT_SECRET",
        token_auth=token_auth,
    )


def refresh(token_auth: str = "client_secret_basic") -> RefreshTokenAuth:
    return RefreshTokenAuth(
        token_url=TOKEN_PATH,
        client_id_env="CLIENT_ID",
        client_secret_env="CLIENT_SECRET",
        refresh_token_env="REFRESH_TOKEN",
        token_auth=token_auth,
    )


def outputs(tmp_path: Path, captured: pytest.CaptureFixture[str]) -> str:
    """Everything a run showed or wrote, but the token store."""
    out = captured.readouterr()
    files = [
        p.read_text(encoding="utf-8")
        for p in tmp_path.iterdir()
        if p.is_file() and p.name != "tokens.json"
    ]
    return "\n".join([out.out, out.err, *files])


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "json"]
)
def test_client_credentials_go_where_the_token_endpoint_wants_them(
    tmp_path: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = TokenApi(wants=method)
    code = run_cli(tmp_path, client_credentials(method), api)
    assert code == 0 and len(api.written) == 2
    assert api.grants[0]["grant_type"] == "client_credentials"
    shown = outputs(tmp_path, capsys)
    for secret in (SECRETS["CLIENT_SECRET"], "access-1/+x"):
        assert secret not in shown


def test_a_refused_token_request_names_the_other_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(
        tmp_path, client_credentials("client_secret_basic"), TokenApi("json")
    )
    assert code == 2
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["error"] == (
        "OAuth2 token request failed: HTTP 401; the client id and secret were sent as"
        " client_secret_basic (HTTP Basic): check them, or the endpoint may want them"
        " another way: set auth.token_auth to client_secret_post (form body) or json"
        " (JSON body)"
    )


def test_a_rotated_refresh_token_is_kept_in_the_token_store_and_used_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = TokenApi(wants="client_secret_post", rotate=True)
    store = tmp_path / "tokens.json"
    code = run_cli(
        tmp_path, refresh("client_secret_post"), api, "--token-store", str(store)
    )
    assert code == 0 and len(api.written) == 2
    assert api.grants[0]["refresh_token"] == FIRST_REFRESH
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    kept = json.loads(store.read_text(encoding="utf-8"))
    assert kept == {"refresh_tokens": {"REFRESH_TOKEN": "refresh-1/+rotated"}}

    # the environment still holds the spent token: the store's is preferred
    code = run_cli(
        tmp_path, refresh("client_secret_post"), api, "--token-store", str(store)
    )
    assert code == 0 and len(api.written) == 4
    assert api.grants[1]["refresh_token"] == "refresh-1/+rotated"
    kept = json.loads(store.read_text(encoding="utf-8"))
    assert kept["refresh_tokens"]["REFRESH_TOKEN"] == "refresh-2/+rotated"

    shown = outputs(tmp_path, capsys)
    for secret in (
        FIRST_REFRESH,
        "refresh-1/+rotated",
        "refresh-2/+rotated",
        "access-2/+x",
    ):
        assert secret not in shown, secret
    assert "Bearer" not in shown


def test_without_a_token_store_a_spent_refresh_token_is_named_as_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = TokenApi(wants="client_secret_basic", rotate=True)
    code = run_cli(tmp_path, refresh(), api)
    assert code == 0
    assert "without --token-store the new one is not kept" in capsys.readouterr().err
    code = run_cli(tmp_path, refresh(), api)
    assert code == 2
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["error"].startswith(
        "OAuth2 token request failed: HTTP 400; the refresh token may be used up or"
        " revoked (set a new one in $REFRESH_TOKEN, or check --token-store)"
    )
