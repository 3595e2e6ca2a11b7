"""Pagination styles: where a page's position goes in the request, and the next one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from generator.runtime.core import FatalError
from generator.runtime.http import _url
from generator.runtime.mapping import _get


@dataclass(frozen=True, kw_only=True)
class Paginator:
    """One page only; the base of every style.

    `has_more` names a boolean of the answer whose false ends the pages;
    `max_pages` is the guard against a source that never stops.
    """

    has_more: str = ""
    limit_param: str = ""
    limit: int | None = None
    max_pages: int = 10000

    def request_params(self, position: dict[str, Any]) -> dict[str, Any]:
        """The query parameters that ask for the page at `position` ({}: the first)."""
        return {self.limit_param: self.limit} if self.limit_param else {}

    def next_position(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        """Where the next page is, or None when this was the last page."""
        if self.has_more and _get(body, self.has_more) is False:
            return None
        return self.follow(position, response, body, records)

    def follow(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True, kw_only=True)
class NoPagination(Paginator):
    """A single request."""


@dataclass(frozen=True, kw_only=True)
class CursorPaginator(Paginator):
    """?param=<cursor>, the cursor taken from the answer (`next`) or the last record."""

    param: str
    next: str = ""
    next_from_last: str = ""

    def request_params(self, position: dict[str, Any]) -> dict[str, Any]:
        params = super().request_params(position)
        if "cursor" in position:
            params[self.param] = position["cursor"]
        return params

    def follow(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        if self.next_from_last:
            if not records:
                return None
            cursor = _get(records[-1], self.next_from_last)
            if cursor in (
                None,
                "",
            ):  # a broken last record: stopping here would skip the rest
                raise FatalError(
                    f"the last record of a page has no {self.next_from_last} to ask for the"
                    " next page with; stopping, the checkpoint keeps the place"
                )
        else:
            cursor = _get(body, self.next)
        if cursor in (None, "") or cursor == position.get("cursor"):
            if self.has_more and _get(body, self.has_more) is True:
                raise FatalError(
                    f"the source says it has more records ({self.has_more}: true) but gives"
                    " no new cursor; stopping here, the checkpoint keeps the place"
                )
            return None
        return {"cursor": cursor}


@dataclass(frozen=True, kw_only=True)
class OffsetPaginator(Paginator):
    """?param=<records seen so far>; a page shorter than `limit` is the last."""

    param: str
    limit: int | None = 100
    start: int = 0

    def request_params(self, position: dict[str, Any]) -> dict[str, Any]:
        params = super().request_params(position)
        params[self.param] = position.get("offset", self.start)
        return params

    def follow(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        if not records or (self.limit is not None and len(records) < self.limit):
            return None
        return {"offset": int(position.get("offset", self.start)) + len(records)}


@dataclass(frozen=True, kw_only=True)
class PagePaginator(Paginator):
    """?param=<page number>; an empty page, or one shorter than `limit`, is the last."""

    param: str
    start: int = 1

    def request_params(self, position: dict[str, Any]) -> dict[str, Any]:
        params = super().request_params(position)
        params[self.param] = position.get("page", self.start)
        return params

    def follow(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        if not records or (self.limit is not None and len(records) < self.limit):
            return None
        return {"page": int(position.get("page", self.start)) + 1}


@dataclass(frozen=True, kw_only=True)
class NextUrlPaginator(Paginator):
    """The next page's URL, from the answer's body at `next`."""

    next: str

    def follow(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        return _next_url(position, response, _get(body, self.next), records)


@dataclass(frozen=True, kw_only=True)
class LinkHeaderPaginator(Paginator):
    """The next page's URL, from the answer's `Link: <...>; rel="next"` header."""

    def follow(
        self,
        position: dict[str, Any],
        response: httpx.Response,
        body: Any,
        records: list[Any],
    ) -> dict[str, Any] | None:
        return _next_url(
            position, response, response.links.get("next", {}).get("url"), records
        )


def _next_url(
    position: dict[str, Any], response: httpx.Response, url: Any, records: list[Any]
) -> dict[str, Any] | None:
    if not url or not records:
        return None
    absolute = _url(response.request.url, url)
    if str(absolute) == position.get("url"):
        return None
    return {"url": str(absolute)}
