"""Pagination styles: one descriptor each, and the registry the generator reads.

A style names its mapping keys (and which are required), the runtime class that
pages through the source (generator/runtime/pagination.py, whose constructor takes
the mapping keys as keyword arguments) and how `p2pgen init` guesses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.errors import Code

# What each mapping key names; the check stage checks it against the spec by kind.
KEY_KINDS = {
    "param": "parameter",  # a parameter of the source operation
    "limit_param": "parameter",
    "next": "response",  # a path in the response body
    "has_more": "response",
    "next_from_last": "record",  # a field of the records
    "limit": "count",
    "start": "count",
    "max_pages": "count",
}
MAX_PAGES = 10000
# keys every style takes: a stop flag, a page size sent with each request, a cap
COMMON_KEYS = ("has_more", "limit_param", "limit", "max_pages")


@dataclass(frozen=True)
class DraftFacts:
    """What `p2pgen init` knows about the source operation, to guess a style."""

    params: Mapping[str, str]  # normalised name -> parameter name
    response_fields: Mapping[str, str]  # normalised top-level name -> name
    string_fields: frozenset[str]  # top-level response fields that are strings
    record_fields: frozenset[str]
    next_url: str | None  # a response path that holds the next page's URL
    limit_param: str | None  # a parameter that sets the page size


@dataclass(frozen=True)
class Guess:
    """A drafted pagination block: the lower the rank, the stronger the evidence."""

    rank: int
    keys: tuple[tuple[str, Any], ...]  # mapping keys in the order they are written
    basis: str  # why, for the drafted comment


CURSOR_PARAMS = ("cursor", "pagetoken", "nexttoken", "after", "continuation")
NEXT_CURSOR = (
    "nextcursor",
    "nextpagetoken",
    "cursor",
    "next",
    "after",
    "continuation",
)
DRAFT_LIMIT = 100


class PaginationStyle:
    """The base of every style: the rules its mapping keys follow."""

    name: str = ""
    runtime_class: str = ""
    keys: tuple[str, ...] = COMMON_KEYS  # besides `style`
    required: tuple[str, ...] = ()
    # why a required key is needed, where the bare "needs 'key'" is not enough
    needs_because: tuple[tuple[str, str], ...] = ()
    default_start: int = 0

    def shape_problems(self, given: frozenset[str]) -> list[tuple[str, str, Code]]:
        """(key or "" for the block, message, code): keys missing, extra or clashing."""
        because = dict(self.needs_because)
        problems: list[tuple[str, str, Code]] = [
            (
                "",
                (
                    f"{self.name} pagination needs {key!r} ({because[key]})"
                    if key in because
                    else f"pagination style {self.name!r} needs {key!r}"
                ),
                Code.MISSING_KEY,
            )
            for key in self.required
            if key not in given
        ]
        problems += [
            (
                key,
                f"pagination style {self.name!r} does not use {key!r}; it takes "
                + ", ".join(self.keys),
                Code.UNKNOWN_KEY,
            )
            for key in sorted(given - set(self.keys) - {"style"})
        ]
        if (
            "limit" in given
            and "limit_param" not in given
            and "limit" not in self.required
        ):
            problems.append(
                (
                    "limit",
                    "'limit' needs 'limit_param' (the request parameter that carries"
                    " the page size)",
                    Code.MISSING_KEY,
                )
            )
        return problems

    def declaration(self, values: Mapping[str, Any]) -> dict[str, object]:
        """The runtime class's keyword arguments: the style's keys set to other than
        the runtime's defaults (max_pages 10000, the style's default start)."""
        defaults = {"max_pages": 10000, "start": self.default_start}
        return {
            key: values[key]
            for key in self.keys
            if values.get(key) not in (None, "") and values[key] != defaults.get(key)
        }

    def draft(self, facts: DraftFacts) -> Guess | None:
        """The block `p2pgen init` writes for this style, if the spec suggests it."""
        return None


class NoPagination(PaginationStyle):
    name = "none"
    runtime_class = "NoPagination"
    keys = ()

    def declaration(self, values: Mapping[str, Any]) -> dict[str, object]:
        return {}


class Cursor(PaginationStyle):
    name = "cursor"
    runtime_class = "CursorPaginator"
    keys = ("param", "next", "next_from_last", *COMMON_KEYS)
    required = ("param",)

    def shape_problems(self, given: frozenset[str]) -> list[tuple[str, str, Code]]:
        problems = super().shape_problems(given)
        if ("next" in given) == ("next_from_last" in given):
            problems.append(
                (
                    "",
                    "cursor pagination needs exactly one of 'next' (path of the next"
                    " cursor in the body) or 'next_from_last' (a field of the last"
                    " record)",
                    Code.CONFLICTING_KEYS,
                )
            )
        return problems

    def draft(self, facts: DraftFacts) -> Guess | None:
        cursor = _first(facts.params, CURSOR_PARAMS) or facts.params.get(
            "startingafter"
        )
        if cursor is None:
            return None
        keys: list[tuple[str, Any]] = [("style", self.name), ("param", cursor)]
        next_field = _first(facts.response_fields, NEXT_CURSOR)
        if next_field:
            keys.append(("next", next_field))
        elif "id" in facts.record_fields:
            keys.append(("next_from_last", "id"))
        else:
            return None
        has_more = _first(facts.response_fields, ("hasmore", "more"))
        if has_more:
            keys.append(("has_more", has_more))
        return Guess(2, tuple(keys), f"guessed from the {cursor!r} parameter")


class Offset(PaginationStyle):
    name = "offset"
    runtime_class = "OffsetPaginator"
    keys = ("param", "start", *COMMON_KEYS)
    required = ("param", "limit")
    needs_because = (("limit", "the page size, which the offset advances by"),)

    def draft(self, facts: DraftFacts) -> Guess | None:
        if "offset" not in facts.params or not facts.limit_param:
            return None
        keys = (
            ("style", self.name),
            ("param", facts.params["offset"]),
            ("limit_param", facts.limit_param),
            ("limit", DRAFT_LIMIT),
        )
        return Guess(3, keys, "guessed from the 'offset' parameter")


class Page(PaginationStyle):
    name = "page"
    runtime_class = "PagePaginator"
    keys = ("param", "start", *COMMON_KEYS)
    required = ("param",)
    default_start = 1

    def draft(self, facts: DraftFacts) -> Guess | None:
        if "page" not in facts.params:
            return None
        keys: tuple[tuple[str, Any], ...] = (
            ("style", self.name),
            ("param", facts.params["page"]),
        )
        if facts.limit_param:
            keys += (("limit_param", facts.limit_param), ("limit", DRAFT_LIMIT))
        return Guess(4, keys, "guessed from the 'page' parameter")


class NextUrl(PaginationStyle):
    name = "next_url"
    runtime_class = "NextUrlPaginator"
    keys = ("next", *COMMON_KEYS)
    required = ("next",)

    def draft(self, facts: DraftFacts) -> Guess | None:
        if facts.next_url:
            return Guess(
                1,
                (("style", self.name), ("next", facts.next_url)),
                f"guessed from the {facts.next_url!r} URL in the response",
            )
        field = _first(
            facts.response_fields, ("next", "nexturl", "nextpage", "nextlink")
        )
        if field is None or field not in facts.string_fields:
            return None
        return Guess(
            5,
            (("style", self.name), ("next", field)),
            f"guessed from the {field!r} field of the response",
        )


class LinkHeader(PaginationStyle):
    name = "link_header"
    runtime_class = "LinkHeaderPaginator"


STYLES: dict[str, PaginationStyle] = {
    style.name: style
    for style in (Cursor(), Offset(), Page(), NextUrl(), LinkHeader(), NoPagination())
}
# the styles a mapping can name (`none` is what no `pagination:` block means)
MAPPING_STYLES = tuple(name for name in STYLES if name != "none")
# every key some style takes, in the order the docs list them
ALL_KEYS = tuple(KEY_KINDS)


def draft_guess(facts: DraftFacts) -> Guess | None:
    """The best-supported style for `p2pgen init`, if any."""
    guesses = [g for s in STYLES.values() if (g := s.draft(facts)) is not None]
    return min(guesses, key=lambda g: g.rank, default=None)


def _first(names: Mapping[str, str], wanted: tuple[str, ...]) -> str | None:
    """The first of `names` (normalised -> name, in spec order) that is wanted."""
    return next((name for key, name in names.items() if key in wanted), None)
