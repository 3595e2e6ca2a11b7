"""The fleet view: every link in a repository, its APIs, whether it is current, how it runs."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.errors import P2pgenError
from generator.output import plan
from generator.regions import regions
from generator.render_cache import rendered

SKIPPED_FOLDERS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox"}
# Worst first: the order of the fleet page.
HEALTHS = ("failing", "warning", "never run", "ok")


@dataclass(frozen=True)
class Run:
    """One run's summary from a state file, checked field by field (the file may be hostile)."""

    started: str
    finished: str
    exit_code: int | None
    read: int
    written: int
    failed: int
    skipped: int
    error: str

    @classmethod
    def read_from(cls, value: Any) -> Run | None:
        if not isinstance(value, dict):
            return None
        code = value.get("exit_code")
        return cls(
            started=_line(value.get("started"), 40),
            finished=_line(value.get("finished"), 40),
            exit_code=code if type(code) is int else None,
            read=_count(value.get("read")),
            written=_count(value.get("written")),
            failed=_count(value.get("failed")),
            skipped=_count(value.get("skipped")),
            error=_line(value.get("error"), 300),
        )


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
    last_run: Run | None
    history: tuple[Run, ...] = ()  # oldest first
    open_stubs: tuple[
        str, ...
    ] = ()  # stubs whose body still raises NotImplementedError

    @property
    def success_rate(self) -> float | None:
        """The share of the runs in the history that ended with exit 0."""
        if not self.history:
            return None
        return sum(run.exit_code == 0 for run in self.history) / len(self.history)

    @property
    def last_failure(self) -> Run | None:
        return next((r for r in reversed(self.history) if r.exit_code != 0), None)

    @property
    def records_moved(self) -> int:
        """Records written to the target over the history."""
        return sum(run.written for run in self.history)

    @property
    def health(self) -> str:
        """One of HEALTHS: a broken mapping or a fatal last run is failing."""
        code = self.last_run.exit_code if self.last_run else None
        if self.status == "broken" or (self.last_run and code not in (0, 1)):
            return "failing"
        if code == 1 or self.status != "current":
            return "warning"
        return "ok" if self.last_run else "never run"


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
        result = rendered(mapping, project)
        if result.files is None:
            statuses.append(_broken(mapping, len(result.errors)))
            continue
        name = result.name
        try:
            planned = plan(result.files, out / name)
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
                name=name,
                mapping=str(mapping),
                source_api=result.about["source_api"],
                source_operation=result.about["source_operation"],
                target_api=result.about["target_api"],
                target_operation=result.about["target_operation"],
                status=status,
                problems=len(result.errors),
                **_runs(out / name / f"{name}.state.json"),
                open_stubs=_open_stubs(out / name / f"{name}.py"),
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


def _line(value: Any, limit: int) -> str:
    """Text of a state file as one printable line of at most `limit` characters."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in " ".join(value.split()) if c.isprintable())[:limit]


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def _runs(state: Path) -> dict[str, Any]:
    """The last run and the history that a run saved in the state file, if any."""
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return {"last_run": None, "history": ()}
    last = Run.read_from(data.get("last_run"))
    entries = data.get("history")
    history = tuple(
        run
        for run in map(Run.read_from, entries if isinstance(entries, list) else [])
        if run is not None
    )
    # A state file from before the history was kept: its last run is all of it.
    return {"last_run": last, "history": history or ((last,) if last else ())}


def _open_stubs(script: Path) -> tuple[str, ...]:
    """The stubs of the generated script whose body still raises NotImplementedError."""
    try:
        source = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ()
    return tuple(
        name.removeprefix("stub ")
        for name, body in regions(source).items()
        if name.startswith("stub ") and _raises_not_implemented(body)
    )


def _raises_not_implemented(body: str) -> bool:
    try:
        tree = ast.parse(textwrap.dedent(body))
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
                return True
    return False


def as_json(statuses: list[LinkStatus]) -> str:
    return json.dumps(
        [
            {
                **asdict(s),
                "health": s.health,
                "success_rate": s.success_rate,
                "last_failure": s.last_failure and asdict(s.last_failure),
                "records_moved": s.records_moved,
            }
            for s in statuses
        ],
        indent=2,
    )


def as_table(statuses: list[LinkStatus]) -> str:
    rows = [
        (
            *("LINK", "SOURCE", "TARGET", "STATUS", "LAST RUN"),
            *("SUCCESS", "MOVED", "LAST FAILURE"),
        )
    ]
    for s in statuses:
        rows.append(
            (
                s.name,
                f"{s.source_api} {s.source_operation}",
                f"{s.target_api} {s.target_operation}",
                s.status + (f" ({s.problems} problems)" if s.problems else ""),
                describe_run(s.last_run),
                describe_success(s),
                str(s.records_moved) if s.history else "-",
                describe_failure(s.last_failure),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def describe_run(run: Run | None) -> str:
    if run is None:
        return "-"
    return (
        f"{run.finished or '?'} exit {_code(run)}: "
        f"read {run.read}, written {run.written}, failed {run.failed}"
    )


def describe_success(status: LinkStatus) -> str:
    """E.g. '95% of 20 runs'; rounded down, so 100% means no run failed."""
    rate = status.success_rate
    if rate is None:
        return "-"
    return f"{int(rate * 100)}% of {len(status.history)} runs"


def describe_failure(run: Run | None) -> str:
    if run is None:
        return "-"
    return f"{run.finished or run.started or '?'} exit {_code(run)}"


def _code(run: Run) -> str:
    return "?" if run.exit_code is None else str(run.exit_code)


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
        if s.history:
            label += _label(
                f": {describe_success(s)} ok, {s.records_moved} moved,"
                f" last failure {describe_failure(s.last_failure)}"
            )
        lines.append(f'    {source} {arrow}|"{label}"| {target}')
    return "\n".join(lines)
