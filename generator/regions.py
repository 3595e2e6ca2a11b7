"""Customisation regions: keep their contents across regeneration, spot edits elsewhere."""

from __future__ import annotations

import ast
import difflib
import hashlib
import re
import textwrap
from dataclasses import dataclass

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


# Regions of the old file that the fresh source no longer has are kept, commented
# out (so no name or annotation in them can break the script), at the end of this one.
ORPHAN_HOST = "custom"


@dataclass(frozen=True)
class Orphan:
    """A region the fresh source no longer has, kept in the host region."""

    region: str
    line: int  # where its block starts in the new source


class NoPlaceForOrphans(Exception):
    """The fresh source has no host region, so orphaned regions cannot be kept."""


def keep_regions(fresh: str, existing: str) -> tuple[str, list[Orphan]]:
    """The fresh source, with each region's body taken from the existing file.

    A filled-in region of the existing file that the fresh source no longer has is
    appended, commented out, to the host region, so later regenerations keep it too.
    """
    kept = regions(existing)
    names = set(regions(fresh))
    orphaned = [n for n, body in kept.items() if n not in names and not _unfilled(body)]
    if orphaned and ORPHAN_HOST not in names:
        raise NoPlaceForOrphans(", ".join(orphaned))
    pieces: list[str] = []
    orphans: list[Orphan] = []
    end = 0
    for match in REGION.finditer(fresh):
        name, indent = match.group("name"), match.group("indent")
        pieces += [fresh[end : match.start()], f"{indent}# p2pgen:begin {name}\n"]
        pieces.append(kept.get(name, match.group("body")))
        if name == ORPHAN_HOST:
            for orphan in orphaned:
                line = "".join(pieces).count("\n") + 3  # after two blank lines
                pieces.append(_commented_out(orphan, kept[orphan], indent))
                orphans.append(Orphan(orphan, line))
        pieces.append(f"{indent}# p2pgen:end {name}")
        end = match.end()
    return "".join([*pieces, fresh[end:]]), orphans


def _unfilled(body: str) -> bool:
    """Still the generated stub: a docstring and `raise NotImplementedError(...)`."""
    if "#" in body:  # a comment is worth keeping
        return False
    try:
        tree = ast.parse(textwrap.dedent(body))
    except SyntaxError:
        return False
    match tree.body:
        case [
            ast.FunctionDef(
                decorator_list=[],
                body=[
                    ast.Expr(ast.Constant(str())),
                    ast.Raise(ast.Call(ast.Name("NotImplementedError"))),
                ],
            )
        ]:
            return True
    return False


# ruff obeys a noqa directive anywhere in a comment: commented out, it is unused.
_NOQA = re.compile(r"(?i)#(\s*)(noqa)")


def _commented_out(name: str, body: str, indent: str) -> str:
    """An orphaned region's body as a marked block of comments."""
    note = (
        f"# p2pgen:orphan {name}",
        f'# p2pgen no longer generates the region "{name}" (a renamed stub, a field',
        "# dropped from the mapping, or a newer p2pgen), so its code was kept here,",
        "# commented out. Move what you still need into a region that exists (or",
        "# into this one, uncommented), then delete this block.",
    )
    code = (
        _NOQA.sub(r"#\1[\2]", f"# {line}".rstrip())
        for line in body.strip("\n").splitlines()
    )
    lines = [*note, *code, f"# p2pgen:orphan end {name}"]
    return "\n\n" + "".join(f"{indent}{line}\n" for line in lines)


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
