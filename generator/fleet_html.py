"""The fleet as one self-contained HTML page: the graph, the links failing first, run charts.

No script, style sheet, font or image comes from elsewhere (the page's
Content-Security-Policy forbids it too), and every text from a mapping, a spec
or a state file is escaped: those files may be hostile.
"""

from __future__ import annotations

from html import escape

from generator.fleet import HEALTHS, LinkStatus, Run, describe_run

HEALTH_COLOURS = {
    "failing": "#c62828",
    "warning": "#e6a100",
    "never run": "#8a94a6",
    "ok": "#2e7d32",
}
# A run's bar: exit 0 ok, 1 some records dead-lettered, anything else fatal.
RUN_COLOURS: dict[int | None, str] = {
    0: HEALTH_COLOURS["ok"],
    1: HEALTH_COLOURS["warning"],
}
NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 220, 46, 170, 36, 24
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 2, 1, 30

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1f2933; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.muted { color: #616e7c; font-size: 12px; }
.legend span { margin-right: 16px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
       margin-right: 6px; vertical-align: baseline; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 7px 9px; border-bottom: 1px solid #e4e7eb; text-align: left;
         vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; color: #52606d; }
td.text { max-width: 280px; overflow-wrap: break-word; }
.time, .stub, td.nowrap { white-space: nowrap; }
.graph { max-width: 100%; height: auto; }
.graph text { font: 13px system-ui, sans-serif; fill: #1f2933; }
.graph .edge-label { font-size: 12px; paint-order: stroke; stroke: #fff;
                     stroke-width: 4px; }
.stub { font-family: ui-monospace, monospace; font-size: 12px; }
"""


def as_html(statuses: list[LinkStatus], generated_at: str) -> str:
    """The page; `generated_at` says when it was made."""
    ordered = sorted(statuses, key=_failing_first)
    counts = ", ".join(
        f"{sum(s.health == h for s in statuses)} {h}"
        for h in HEALTHS
        if any(s.health == h for s in statuses)
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta http-equiv="Content-Security-Policy"'
            " content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>p2pgen fleet</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            "<h1>p2pgen fleet</h1>",
            f'<p class="muted">{len(statuses)} links: {_e(counts)}.'
            f" Made {_e(generated_at)} by <code>p2pgen links --format html</code>.</p>",
            _legend(),
            "<h2>Systems and links</h2>",
            _graph(statuses),
            "<h2>Links, failing first</h2>",
            _table(ordered),
            "</body>",
            "</html>",
        ]
    )


def _e(text: object) -> str:
    """Text for HTML and inline SVG: every character that could end it escaped."""
    return escape(str(text), quote=True)


def _failing_first(status: LinkStatus) -> tuple[int, float, str]:
    rate = status.success_rate
    return (HEALTHS.index(status.health), 1.0 if rate is None else rate, status.name)


def _legend() -> str:
    items = "".join(
        f'<span><i class="dot" style="background:{colour}"></i>{_e(health)}</span>'
        for health, colour in HEALTH_COLOURS.items()
    )
    return f'<p class="legend muted">{items} (dashed: generated files not current)</p>'


def _graph(statuses: list[LinkStatus]) -> str:
    """An SVG of one box per API and one arrow per link, coloured by the link's health."""
    apis = list(
        dict.fromkeys(a for s in statuses for a in (s.source_api, s.target_api))
    )
    # Columns by the longest chain of links leading to an API (cycles capped).
    column = dict.fromkeys(apis, 0)
    for _ in apis:
        for s in statuses:
            if s.source_api != s.target_api:
                column[s.target_api] = min(
                    max(column[s.target_api], column[s.source_api] + 1), len(apis) - 1
                )
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for api in apis:
        row = rows.get(column[api], 0)
        rows[column[api]] = row + 1
        place[api] = (
            MARGIN + column[api] * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
    columns = max(column.values(), default=0) + 1
    width = MARGIN * 2 + columns * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP
    height = (
        MARGIN * 2 + max(rows.values(), default=1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    )
    markers = "".join(
        f'<marker id="arrow-{i}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
        f' markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"'
        f' fill="{colour}"/></marker>'
        for i, colour in enumerate(HEALTH_COLOURS.values())
    )
    parts = [
        f'<svg class="graph" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}" role="img"'
        ' aria-label="systems and links">',
        f"<defs>{markers}</defs>",
    ]
    seen: dict[tuple[str, str], int] = {}
    for s in statuses:
        pair = (s.source_api, s.target_api)
        offset = seen.get(pair, 0)
        seen[pair] = offset + 1
        parts.append(_edge(s, place[s.source_api], place[s.target_api], offset))
    for api, (x, y) in place.items():
        shown = api if len(api) <= 28 else api[:27] + "\u2026"
        parts.append(
            f'<g><title>{_e(api)}</title><rect x="{x}" y="{y}" width="{NODE_WIDTH}"'
            f' height="{NODE_HEIGHT}" rx="8" fill="#f5f7fa" stroke="#52606d"/>'
            f'<text x="{x + NODE_WIDTH // 2}" y="{y + NODE_HEIGHT // 2 + 5}"'
            f' text-anchor="middle">{_e(shown)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _edge(
    status: LinkStatus, start: tuple[int, int], end: tuple[int, int], offset: int
) -> str:
    """A curve from the source's right side to the target's left side, then its name."""
    shift = offset * 14 - 7 * (offset > 0)
    x1, y1 = start[0] + NODE_WIDTH, start[1] + NODE_HEIGHT // 2 + shift
    x2, y2 = end[0], end[1] + NODE_HEIGHT // 2 + shift
    bend = max(60, abs(x2 - x1) // 2)
    if start == end:  # a link within one API: a loop below its box
        x2, y2 = start[0] + NODE_WIDTH // 2, start[1] + NODE_HEIGHT
        c1, c2 = (x1 + 70, y1 + 70 + shift), (x2 + 40, y2 + 70 + shift)
    else:
        c1, c2 = (x1 + bend, y1), (x2 - bend, y2)
    colour_index = HEALTHS.index(status.health)
    colour = HEALTH_COLOURS[status.health]
    dashed = "" if status.status == "current" else ' stroke-dasharray="7 5"'
    mid_x = (x1 + 3 * c1[0] + 3 * c2[0] + x2) // 8
    mid_y = (y1 + 3 * c1[1] + 3 * c2[1] + y2) // 8 - 6
    return (
        f"<g><title>{_e(status.name)}: {_e(status.health)}</title>"
        f'<path d="M{x1},{y1} C{c1[0]},{c1[1]} {c2[0]},{c2[1]} {x2},{y2}" fill="none"'
        f' stroke="{colour}" stroke-width="2.5"{dashed}'
        f' marker-end="url(#arrow-{colour_index})"/>'
        f'<text class="edge-label" x="{mid_x}" y="{mid_y}" text-anchor="middle">'
        f"{_e(status.name)}</text></g>"
    )


def _table(statuses: list[LinkStatus]) -> str:
    head = "".join(
        f"<th>{name}</th>"
        for name in (
            "Health",
            "Link",
            "Files",
            "Last run",
            "Success",
            "Moved",
            "Last failure",
            "History (oldest first)",
            "Stubs to fill in",
        )
    )
    rows = "".join(map(_row, statuses))
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _row(s: LinkStatus) -> str:
    colour = HEALTH_COLOURS[s.health]
    route = f"{s.source_api} {s.source_operation} \u2192 {s.target_api} {s.target_operation}"
    rate = s.success_rate
    cells = (
        f'<i class="dot" style="background:{colour}"></i>{_e(s.health)}',
        f"<b>{_e(s.name)}</b>{_small(route)}{_small(s.mapping)}",
        _e(s.status) + (_small(f"{s.problems} problems") if s.problems else ""),
        _when(s.last_run),
        (
            "-"
            if rate is None
            else f"{int(rate * 100)}%{_small(f'of {len(s.history)} runs')}"
        ),
        _e(s.records_moved) if s.history else "-",
        _when(s.last_failure, error=True),
        _chart(s.history),
        "".join(f'<div class="stub">{_e(name)}()</div>' for name in s.open_stubs)
        or '<span class="muted">none</span>',
    )
    kinds = ("nowrap", "text", "nowrap", "", "", "", "text", "", "")
    return (
        "<tr>"
        + "".join(
            f'<td class="{kind}">{cell}</td>' if kind else f"<td>{cell}</td>"
            for kind, cell in zip(kinds, cells, strict=True)
        )
        + "</tr>"
    )


def _small(text: str) -> str:
    return f'<div class="muted">{_e(text)}</div>'


def _when(run: Run | None, error: bool = False) -> str:
    """A run's time, then how it ended and its counts (or error) in small print."""
    if run is None:
        return "-"
    code = "?" if run.exit_code is None else run.exit_code
    detail = (
        f"exit {code}: {run.error}"
        if error and run.error
        else f"exit {code}: read {run.read}, written {run.written}, failed {run.failed}"
    )
    return f'<span class="time">{_e(run.finished or run.started or "?")}</span>{_small(detail)}'


def _chart(history: tuple[Run, ...]) -> str:
    """One bar per run, oldest first: its height the records read, its colour the exit."""
    if not history:
        return '<span class="muted">no runs yet</span>'
    most = max((run.read for run in history), default=0) or 1
    bars = []
    for i, run in enumerate(history):
        tall = max(3, round(run.read / most * CHART_HEIGHT))
        colour = RUN_COLOURS.get(run.exit_code, HEALTH_COLOURS["failing"])
        bars.append(
            f'<rect x="{i * (BAR_WIDTH + BAR_GAP)}" y="{CHART_HEIGHT - tall}"'
            f' width="{BAR_WIDTH}" height="{tall}" fill="{colour}">'
            f"<title>{_e(describe_run(run))}</title></rect>"
        )
    width = len(history) * (BAR_WIDTH + BAR_GAP)
    return (
        f'<svg width="{width}" height="{CHART_HEIGHT}"'
        f' viewBox="0 0 {width} {CHART_HEIGHT}" role="img"'
        f' aria-label="{len(history)} runs">{"".join(bars)}</svg>'
    )
