"""HTTP: send with retries, a deadline for the whole request, and a cap on answers."""

from __future__ import annotations

import random
import socket
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import monotonic, sleep
from typing import Any

import httpx

from generator.runtime.core import (
    MAX_RETRY_AFTER,
    RETRY_STATUSES,
    Config,
    FatalError,
    WriteFailed,
    log,
    redact,
)


def retry_delay(attempt: int, response: httpx.Response | None) -> float:
    """Honour Retry-After (seconds or HTTP date), else exponential backoff with jitter."""
    header = response.headers.get("Retry-After") if response is not None else None
    if header:
        try:
            delay = float(header)
        except ValueError:
            try:
                when = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                delay = -1.0
            else:
                delay = (when - datetime.now(UTC)).total_seconds()
        if delay >= 0:
            return min(delay, MAX_RETRY_AFTER)
    return random.uniform(0, min(30.0, 0.5 * 2**attempt))


class Watchdog:
    """Shuts the connection of a request that runs past its deadline.

    httpx's timeouts bound each read, so a server that sends one byte a
    second passes them all; this bounds the whole request. One thread
    watches every request in flight.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watched: dict[int, tuple[float, socket.socket | None]] = {}
        self.thread: threading.Thread | None = None

    def start(self, deadline: float) -> int:
        with self.lock:
            key = threading.get_ident()
            self.watched[key] = (deadline, None)
            if self.thread is None:
                self.thread = threading.Thread(target=self._watch, daemon=True)
                self.thread.start()
        return key

    def attach(self, key: int, stream: Any) -> None:
        """Remember the socket of the request's connection, once it is known."""
        get_info = getattr(stream, "get_extra_info", None)
        sock = get_info("socket") if get_info is not None else None
        with self.lock:
            if key in self.watched and isinstance(sock, socket.socket):
                self.watched[key] = (self.watched[key][0], sock)

    def stop(self, key: int) -> None:
        with self.lock:
            self.watched.pop(key, None)

    def _watch(self) -> None:
        while True:
            sleep(0.1)
            now = monotonic()
            with self.lock:
                late = [
                    sock
                    for deadline, sock in self.watched.values()
                    if sock and now > deadline
                ]
            for sock in late:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
                except OSError:
                    pass  # already closed: nothing left to stop


WATCHDOG = Watchdog()


def fetch(
    client: httpx.Client, request: httpx.Request, config: Config
) -> httpx.Response:
    """One request, its answer read whole (decoded) within --timeout and --max-body."""
    deadline = monotonic() + config.timeout
    key = WATCHDOG.start(deadline)

    def trace(event: str, info: dict[str, Any]) -> None:
        if event in (
            "connection.connect_tcp.complete",
            "connection.start_tls.complete",
        ):
            WATCHDOG.attach(key, info.get("return_value"))

    request.extensions["trace"] = trace
    request.headers["Accept-Encoding"] = "gzip, deflate"  # what _decoded() inflates
    try:
        response = client.send(request, stream=True)
        try:
            WATCHDOG.attach(key, response.extensions.get("network_stream"))
            chunks: list[bytes] = []
            size = 0
            for chunk in _decoded(response, config.max_body):
                size += len(chunk)
                if size > config.max_body:
                    raise WriteFailed(
                        f"the answer is larger than --max-body ({config.max_body} bytes)",
                        response.status_code,
                        1,
                    )
                chunks.append(chunk)
                if monotonic() > deadline:
                    break
        finally:
            response.close()
    except httpx.TransportError:
        if monotonic() > deadline:
            raise httpx.ReadTimeout(
                f"no complete answer within {config.timeout:g}s"
            ) from None
        raise
    finally:
        WATCHDOG.stop(key)
    if monotonic() > deadline:
        raise httpx.ReadTimeout(f"no complete answer within {config.timeout:g}s")
    # The body is decoded already: the new answer must not decode it again.
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower()
        not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=b"".join(chunks), request=request
    )


def _decoded(response: httpx.Response, limit: int) -> Iterator[bytes]:
    """The answer's body, decoded, in pieces of at most `limit` + 1 bytes.

    httpx inflates each piece read from the network whole, so 64 KiB of gzip
    can become 64 MiB at once; here a gzip bomb grows a bounded piece at a time.
    """
    if response.is_stream_consumed:  # in memory already (an in-process transport)
        yield response.content
        return
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "identity":
        yield from response.iter_raw()
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise httpx.DecodingError(
            f"the answer's Content-Encoding {encoding!r} is not supported"
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or a zlib header
    try:
        for raw in response.iter_raw():
            rest = raw
            while rest:
                yield inflater.decompress(rest, limit + 1)
                rest = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(
            f"the answer's {encoding} body is damaged: {exc}"
        ) from None


def send(
    client: httpx.Client, request: httpx.Request, config: Config
) -> tuple[httpx.Response, int]:
    """Send with retries on 429/502/503/504, timeouts and dropped connections."""
    attempt = 0
    while True:
        attempt += 1
        response: httpx.Response | None = None
        try:
            response = fetch(client, request, config)
            if response.status_code not in RETRY_STATUSES:
                return response, attempt
            problem = f"HTTP {response.status_code}"
        except WriteFailed as exc:  # too large: the same answer would come again
            raise WriteFailed(str(exc), exc.status, attempt) from None
        except (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
        ) as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if attempt > config.max_retries:
            if response is not None:
                return response, attempt
            raise WriteFailed(f"{problem} after {attempt} attempts", None, attempt)
        delay = retry_delay(attempt, response)
        log.info(
            "%s %s: %s, retry %d in %.1fs",
            request.method,
            _safe_url(request.url),
            problem,
            attempt,
            delay,
        )
        sleep(delay)


def _safe_url(url: httpx.URL) -> str:
    return redact(str(url.copy_with(query=None)))


def _url(base: httpx.URL, link: Any) -> httpx.URL:
    """A next-page link joined to the URL it came from; a link that is no URL stops the run."""
    try:
        return base.join(str(link))
    except httpx.InvalidURL:
        raise FatalError(
            f"the next page link {redact(str(link))[:200]!r} is not a valid URL"
        ) from None


def _same_origin(url: httpx.URL, base: httpx.URL) -> bool:
    return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
