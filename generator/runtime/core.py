"""Run settings, counts, errors and the redaction of secrets."""

from __future__ import annotations

import base64
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import ValidationError

log = logging.getLogger("p2pgen")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
PROGRESS_EVERY = 5.0
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Config:
    source_url: str
    target_url: str
    state_path: Path | None = None
    dead_letter_path: Path | None = None
    replay_path: Path | None = None
    dry_run: bool = False
    limit: int | None = None
    concurrency: int = 4
    timeout: float = 30.0
    max_retries: int = 5
    max_body: int = MAX_BODY
    token_store: Path | None = None  # where OAuth2 refresh tokens are kept between runs


@dataclass
class Summary:
    link: str = ""
    read: int = 0
    written: int = 0
    failed: int = 0
    skipped: int = 0
    started: str = ""
    finished: str = ""
    exit_code: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "read": self.read,
            "written": self.written,
            "failed": self.failed,
            "skipped": self.skipped,
            "started": self.started,
            "finished": self.finished,
            "exit_code": self.exit_code,
        }


class FatalError(Exception):
    """Stops the run: the source cannot be read or the configuration is wrong."""


class WriteFailed(Exception):
    """A write the target refused, or that kept failing after every retry."""

    def __init__(self, reason: str, status: int | None, attempts: int) -> None:
        super().__init__(reason)
        self.status = status
        self.attempts = attempts


class Secrets:
    """Every secret of the run in every form it can be echoed in; replaced by ***.

    The forms are worked out once per secret (as written, percent-encoded,
    JSON-escaped, and base64 inside a Basic header), not on every log line.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forms: list[str] = []

    def add(self, secret: str) -> None:
        """Redact `secret` from now on; values under 4 characters are too common to."""
        if len(secret) < 4:
            return
        escaped = json.dumps(secret)[1:-1]
        self._add_forms(
            {
                secret,
                quote(secret, safe=""),
                quote_plus(secret),
                escaped,
                escaped.replace("/", "\\/"),
            }
        )

    def add_basic(self, user: str, password: str) -> None:
        """Redact a user and password as an HTTP Basic header carries them."""
        self.add(user)
        self.add(password)
        pairs = (
            f"{user}:{password}",
            f"{quote(user, safe='')}:{quote(password, safe='')}",
        )
        self._add_forms({base64.b64encode(pair.encode()).decode() for pair in pairs})

    def _add_forms(self, forms: set[str]) -> None:
        with self.lock:
            self.forms = sorted(set(self.forms) | forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, "***")
        return text

    def is_secret(self, value: str) -> bool:
        return any(form == value for form in self.forms)


SECRETS = Secrets()


def redact(text: str) -> str:
    """Replace every secret of this run with ***."""
    return SECRETS.redact(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_line(value: Any) -> str:
    """One line of JSON, readable where it can be; escaped where text is not valid Unicode."""
    line = json.dumps(value, default=str, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except (
        UnicodeEncodeError
    ):  # a lone surrogate from the source: escape it, keep the record
        line = json.dumps(value, default=str)
    return line


def _brief(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        return f"{len(problems)} validation error(s): " + "; ".join(problems[:5])
    return f"{type(exc).__name__}: {exc}"
