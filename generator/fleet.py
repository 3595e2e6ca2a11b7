"""The fleet view: every link in a repository, its APIs and whether it is current."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.errors import P2pgenError
from generator.output import plan
from generator.render import render_link
from generator.resolve import resolve

SKIPPED_FOLDERS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox"}


@dataclass(frozen=True)
class LinkStatus:
    name: str
    mapping: str
    source_api: str
    source_operation: str
    target_api: str
    target_operation: str
    status: str  # current | stale | not generated | broken
    problems: int
    last_run: dict[str, Any] | None


def find_mappings(root: Path) -> list[Path]:
    """Mapping files under root: YAML files whose top level has version, source, target."""
    found = []
    for path in sorted(root.rglob("*.y*ml")):
        if SKIPPED_FOLDERS & set(path.relative_to(root).parts):
            continue
        try:
            head = path.read_text(encoding="utf-8")[:4000]
        except (OSError, UnicodeDecodeError):
            continue
        if re.search(r"^version:\s*1\s*$", head, re.MULTILINE) and re.search(
            r"^source:", head, re.MULTILINE
        ):
            found.append(path)
    return found


def survey(root: Path, out: Path, project: Path) -> list[LinkStatus]:
    """The status of every link under root, generated into out."""
    statuses = []
    for mapping in find_mappings(root):
        result = resolve(mapping, project)
        link = result.link
        if link is None:
            statuses.append(_broken(mapping, len(result.errors)))
            continue
        try:
            planned = plan(render_link(link), out / link.name)
        except P2pgenError as exc:  # the files on disk cannot be read
            statuses.append(_broken(mapping, len(exc.problems)))
            continue
        if any(f.existing is None for f in planned):
            status = "not generated"
        elif any(f.changed for f in planned):
            status = "stale"
        else:
            status = "current"
        statuses.append(
            LinkStatus(
                name=link.name,
                mapping=str(mapping),
                source_api=link.source.title,
                source_operation=link.source.operation_id or link.source.path,
                target_api=link.target.title,
                target_operation=link.target.operation_id or link.target.path,
                status=status,
                problems=len(result.errors),
                last_run=_last_run(out / link.name, link.name),
            )
        )
    return statuses


def _broken(mapping: Path, problems: int) -> LinkStatus:
    name, source, target = mapping.stem, "?", "?"
    try:
        data = yaml.safe_load(mapping.read_text(encoding="utf-8"))
        name = _short_text(data.get("name")) or name
        source = Path(_short_text(data["source"]["spec"]) or "?").stem
        target = Path(_short_text(data["target"]["spec"]) or "?").stem
    except (yaml.YAMLError, OSError, ValueError, AttributeError, KeyError, TypeError):
        pass  # as much as could be read: the rest stays '?'

    return LinkStatus(
        name, str(mapping), source, "?", target, "?", "broken", problems, None
    )


def _short_text(value: Any) -> str | None:
    """A value of a broken file worth showing: short text only (it may be hostile)."""
    return value if isinstance(value, str) and len(value) <= 200 else None


def _last_run(folder: Path, name: str) -> dict[str, Any] | None:
    """The summary a run saved in `<name>.state.json` beside the script, if any."""
    state = folder / f"{name}.state.json"
    try:
        last = json.loads(state.read_text(encoding="utf-8")).get("last_run")
    except (OSError, ValueError, AttributeError):
        return None
    return last if isinstance(last, dict) else None


def as_json(statuses: list[LinkStatus]) -> str:
    return json.dumps([asdict(s) for s in statuses], indent=2)


def as_table(statuses: list[LinkStatus]) -> str:
    rows = [("LINK", "SOURCE", "TARGET", "STATUS", "LAST RUN")]
    for s in statuses:
        rows.append(
            (
                s.name,
                f"{s.source_api} {s.source_operation}",
                f"{s.target_api} {s.target_operation}",
                s.status + (f" ({s.problems} problems)" if s.problems else ""),
                _describe_run(s.last_run),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def _describe_run(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    return (
        f"{run.get('finished', '?')} exit {run.get('exit_code', '?')}: "
        f"read {run.get('read', 0)}, written {run.get('written', 0)}, "
        f"failed {run.get('failed', 0)}"
    )


def _label(text: str) -> str:
    """Spec titles are untrusted: one line, no quote or pipe to end the label."""
    return " ".join(text.split()).replace('"', "'").replace("|", "/")


def as_mermaid(statuses: list[LinkStatus]) -> str:
    """A Mermaid flowchart: one node per API, one arrow per link."""
    lines = ["flowchart LR"]
    nodes: dict[str, str] = {}

    def node(api: str) -> str:
        if api not in nodes:
            nodes[api] = f"api{len(nodes) + 1}"
            label = _label(api)
            lines.append(f'    {nodes[api]}["{label}"]')
        return nodes[api]

    for s in statuses:
        source, target = node(s.source_api), node(s.target_api)
        arrow = "-->" if s.status == "current" else "-.->"
        label = _label(f"{s.name} ({s.status})")
        lines.append(f'    {source} {arrow}|"{label}"| {target}')
    return "\n".join(lines)
