"""Alerts: post the summary of a run that did not end clean to a webhook."""

from __future__ import annotations

from typing import Any

import httpx

from generator.runtime.core import SECRETS, Config, WriteFailed, _brief, log, redact
from generator.runtime.http import fetch


def keep_notify_url_secret(url: str) -> None:
    """Redact the notify URL from now on: a webhook URL often carries its token."""
    SECRETS.add(url)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return
    SECRETS.add(str(parsed))  # the form httpx logs and puts in its errors
    if parsed.password:
        SECRETS.add(parsed.password)


def notify(url: str, result: dict[str, Any], config: Config) -> None:
    """POST `result`, with a one-line `text`, to `url`; a failure is logged, never raised.

    One try within --timeout; a redirect is not followed. Only the URL's origin
    is ever logged: the rest of it may be a token.
    """
    try:
        where = _origin(httpx.URL(url))
    except httpx.InvalidURL:
        log.warning(
            "could not notify: --notify (or P2PGEN_NOTIFY_URL) is no http(s) URL"
        )
        return
    payload = {"text": _headline(result), **result}
    try:
        with httpx.Client(timeout=config.timeout, follow_redirects=False) as client:
            request = client.build_request("POST", url, json=payload)
            response = fetch(client, request, config)
    except (httpx.HTTPError, WriteFailed, OSError) as exc:
        log.warning("could not notify %s: %s", where, redact(_brief(exc)))
        return
    if response.status_code >= 300:
        what = (
            " (a redirect, which is not followed)" if response.status_code < 400 else ""
        )
        log.warning("could not notify %s: HTTP %d%s", where, response.status_code, what)


def _origin(url: httpx.URL) -> str:
    if url.scheme not in ("http", "https") or not url.host:
        raise httpx.InvalidURL("not an http(s) URL")
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _headline(result: dict[str, Any]) -> str:
    """One line for chat tools: which link, how it ended, the counts."""
    counts = (
        f"read {result.get('read', 0)}, written {result.get('written', 0)},"
        f" failed {result.get('failed', 0)}"
    )
    link = result.get("link", "?")
    if result.get("exit_code") == 1:
        return f"p2pgen link {link}: records were dead-lettered (exit 1); {counts}"
    error = " ".join(str(result.get("error", "a fatal error")).split())[:300]
    return f"p2pgen link {link} stopped (exit 2): {error}; {counts}"
