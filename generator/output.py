"""Plan the files of a link against what is on disk, and write them all or none."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generator.regions import diff, edited_outside_regions, keep_regions, stamp


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    content: str
    existing: str | None
    conflict: str  # diff of edits made outside the regions ('' when none)

    @property
    def changed(self) -> bool:
        return self.content != self.existing


def plan(files: dict[str, str], directory: Path) -> list[PlannedFile]:
    """What each file will contain, regions kept from the files on disk."""
    planned = []
    for name, fresh in sorted(files.items()):
        path = directory / name
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        content = stamp(fresh if existing is None else keep_regions(fresh, existing))
        conflict = ""
        if existing is not None and edited_outside_regions(existing):
            conflict = diff(
                content, existing, f"{path} (generated)", f"{path} (on disk)"
            )
        planned.append(PlannedFile(path, content, existing, conflict))
    return planned


def write_all(files: list[PlannedFile]) -> None:
    """Write every file through a temporary file and a rename; none if one fails."""
    staged: list[tuple[Path, Path]] = []
    try:
        for planned in files:
            planned.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary_name = tempfile.mkstemp(
                dir=planned.path.parent, prefix=f".{planned.path.name}.", suffix=".tmp"
            )
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                out.write(planned.content)
            staged.append((Path(temporary_name), planned.path))
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in staged:
        os.replace(temporary, final)
