"""The front end's orchestrator: load -> validate -> check -> build, one way.

Each stage is its own module (load, validation, check, build); render, format
and write follow in render.py and output.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from generator.build import build
from generator.check import check
from generator.errors import P2pgenError, Problem
from generator.link import Link
from generator.load import load


@dataclass
class Resolution:
    """The outcome of checking one mapping: the link, or problems, plus warnings."""

    mapping_path: Path
    link: Link | None = None
    problems: list[Problem] = field(default_factory=list)
    name: str = ""  # the link's name, once rendered
    files: dict[str, str] | None = None  # file name -> rendered source
    # once rendered: source_api, source_operation, target_api, target_operation
    about: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def resolve(mapping_path: Path, root: Path | None = None) -> Resolution:
    """Read a mapping and its specs; return the Link or every problem found."""
    result = Resolution(mapping_path)
    loaded = load(mapping_path, result.problems)
    if loaded is None:
        return result
    checked = check(loaded)
    result.problems.extend(checked.problems)
    if not checked.ok:
        return result
    try:
        result.link = build(loaded, checked, root or Path.cwd())
    except P2pgenError as exc:
        result.problems.extend(exc.problems)
    return result
