"""Customisation regions: keep their contents across regeneration, spot edits elsewhere."""

from __future__ import annotations

import difflib
import hashlib
import re

REGION = re.compile(
    r"^(?P<indent>[ \t]*)# p2pgen:begin (?P<name>[^\n]+?)\n(?P<body>.*?)^[ \t]*# p2pgen:end (?P=name)$",
    re.MULTILINE | re.DOTALL,
)


def regions(source: str) -> dict[str, str]:
    """{region name: its text between the begin and end markers}."""
    return {m.group("name"): m.group("body") for m in REGION.finditer(source)}


def _blanked(source: str) -> str:
    return REGION.sub(
        lambda m: f"{m.group('indent')}# p2pgen:region {m.group('name')}", source
    )


def keep_regions(fresh: str, existing: str) -> str:
    """The fresh source, with each region's body taken from the existing file."""
    kept = regions(existing)

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        body = kept.get(name, match.group("body"))
        indent = match.group("indent")
        return f"{indent}# p2pgen:begin {name}\n{body}{indent}# p2pgen:end {name}"

    return REGION.sub(replace, fresh)


def diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff of two versions of a file ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            old_name,
            new_name,
        )
    )


CHECKSUM_PREFIX = "# p2pgen checksum sha256:"


def _digest(source: str) -> str:
    return hashlib.sha256(_blanked(source).encode()).hexdigest()


def stamp(source: str) -> str:
    """Append the checksum of everything outside the regions."""
    source = source.rstrip("\n") + "\n"
    return f"{source}\n\n{CHECKSUM_PREFIX}{_digest(source)}\n"


def unstamp(source: str) -> tuple[str, str | None]:
    """Split a file into its content and its recorded checksum (None if absent)."""
    head, sep, tail = source.rpartition(CHECKSUM_PREFIX)
    if not sep or "\n" in tail.strip():
        return source, None
    return head.rstrip("\n") + "\n", tail.strip()


def edited_outside_regions(on_disk: str) -> bool:
    content, recorded = unstamp(on_disk)
    return recorded is None or recorded != _digest(content)
