"""Plan the files of a link against what is on disk, and write them all or none."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generator.errors import P2pgenError
from generator.regions import (
    ORPHAN_HOST,
    NoPlaceForOrphans,
    Orphan,
    diff,
    edited_outside_regions,
    keep_regions,
    stamp,
)


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    content: str
    existing: str | None
    conflict: str  # diff of edits made outside the regions ('' when none)
    orphans: tuple[Orphan, ...] = ()  # regions kept, commented out, in the host

    @property
    def changed(self) -> bool:
        return self.content != self.existing


def plan(files: dict[str, str], directory: Path) -> list[PlannedFile]:
    """What each file will contain, regions kept from the files on disk."""
    planned = []
    for name, fresh in sorted(files.items()):
        path = directory / name
        existing = _existing(path)
        merged, orphans = fresh, list[Orphan]()
        if existing is not None:
            try:
                merged, orphans = keep_regions(fresh, existing)
            except NoPlaceForOrphans as exc:
                raise _refuse(
                    path,
                    f"has regions the regenerated file no longer has ({exc}) and no "
                    f"'{ORPHAN_HOST}' region to keep them in; save their code elsewhere",
                ) from None
        content = stamp(merged)
        conflict = ""
        if existing is not None and edited_outside_regions(existing):
            conflict = diff(
                content, existing, f"{path} (generated)", f"{path} (on disk)"
            )
        planned.append(PlannedFile(path, content, existing, conflict, tuple(orphans)))
    return planned


def _existing(path: Path) -> str | None:
    """The file on disk, None when there is none; something else there is an error."""
    for folder in reversed(path.parents):
        if folder.exists() and not folder.is_dir():
            raise _refuse(folder, "is a file where a folder belongs")
    if not path.exists():
        return None
    if not path.is_file():
        raise _refuse(path, "is not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _refuse(
            path, "is not UTF-8 text, so it was not written by p2pgen"
        ) from None
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None


def _refuse(path: Path, problem: str) -> P2pgenError:
    return P2pgenError.single(
        str(path), f"{problem}; move it away, then generate again (nothing was written)"
    )


def write_all(files: list[PlannedFile]) -> None:
    """Write every file through a temporary file and a rename; none if one fails."""
    staged: list[tuple[Path, Path]] = []
    try:
        for planned in files:
            planned.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary_name = tempfile.mkstemp(
                dir=planned.path.parent, prefix=f".{planned.path.name}.", suffix=".tmp"
            )
            staged.append((Path(temporary_name), planned.path))
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                out.write(planned.content)
        for temporary, final in staged:
            os.replace(temporary, final)
    except OSError as exc:
        raise P2pgenError.single(
            str(exc.filename or files[0].path),
            f"cannot write the generated files: {exc.strerror}",
        ) from None
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
