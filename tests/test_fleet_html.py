"""`p2pgen links --format html`: one self-contained page, safe with hostile inputs."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import cli
from generator.fleet import LinkStatus, Run
from generator.fleet_html import HEALTH_COLOURS, as_html

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "\"'><script>alert(1)</script><img src=x onerror=alert(2)><style>*{}</style>&"


def make_run(exit_code: int, read: int = 10, error: str = "") -> Run:
    failed = 1 if exit_code == 1 else 0
    return Run(
        "2026-11-28T04:00:00Z",
        "2026-11-28T04:00:40Z",
        exit_code,
        read,
        read - failed,
        failed,
        0,
        error,
    )


def make_status(
    name: str,
    exit_codes: tuple[int, ...] = (),
    status: str = "current",
    source: str = "Acme CRM",
    target: str = "Mailer",
    stubs: tuple[str, ...] = (),
    error: str = "",
) -> LinkStatus:
    history = tuple(make_run(code, 10 + i, error) for i, code in enumerate(exit_codes))
    return LinkStatus(
        name,
        f"specs/links/{name}.yaml",
        source,
        "listContacts",
        target,
        "addListMember",
        status,
        0,
        history[-1] if history else None,
        history=history,
        open_stubs=stubs,
    )


FLEET = [
    make_status("all_good", (0, 0, 0), source="Ledger", target="Acme CRM"),
    make_status("dead_letters", (0, 1), stubs=("tags_for",)),
    make_status("stopped", (0, 0, 2), source="Till POS", target="Stockroom"),
    make_status("new_one", status="stale", source="PMS", target="Billable"),
]


def rows(page: str) -> list[str]:
    """The link names in the table's order."""
    return re.findall(r"<tr><td[^>]*>.*?<b>(.*?)</b>", page)


def test_links_are_listed_failing_first() -> None:
    assert rows(as_html(FLEET, "now")) == [
        "stopped",
        "dead_letters",
        "new_one",
        "all_good",
    ]


def test_each_link_is_an_arrow_in_the_colour_of_its_health() -> None:
    page = as_html(FLEET, "now")
    graph = page[page.index('<svg class="graph"') :].split("</svg>")[0]
    for name, health in [("stopped", "failing"), ("all_good", "ok")]:
        edge = re.search(rf"<title>{name}: {health}</title><path ([^>]*)>", graph)
        assert edge is not None
        assert f'stroke="{HEALTH_COLOURS[health]}"' in edge.group(1)
    stale = re.search(r"<title>new_one: warning</title><path ([^>]*)>", graph)
    assert stale is not None and "stroke-dasharray" in stale.group(1)
    for api in ["Acme CRM", "Mailer", "Ledger", "Till POS", "Stockroom", "PMS"]:
        assert graph.count(f"<title>{api}</title>") == 1  # one box per API


def test_each_run_is_a_bar_coloured_by_how_it_ended() -> None:
    page = as_html([make_status("stopped", (0, 1, 2))], "now")
    chart = page[page.index("<td><svg") :].split("</svg>")[0]
    fills = re.findall(r'<rect [^>]*fill="([^"]+)"', chart)
    assert fills == [HEALTH_COLOURS[h] for h in ("ok", "warning", "failing")]


def test_the_stubs_still_to_fill_in_are_shown() -> None:
    page = as_html(FLEET, "now")
    assert '<div class="stub">tags_for()</div>' in page


def test_nothing_is_loaded_from_elsewhere() -> None:
    page = as_html(FLEET, "now")
    assert not re.search(r"(?i)<script|<link|<img|<iframe|@import|src=|href=", page)
    assert "url(" not in page.replace("url(#arrow-", "")
    assert "http:" not in page and "https:" not in page and "//" not in page
    assert "default-src 'none'" in page  # and the browser enforces it


def test_every_text_from_mapping_spec_and_state_is_escaped() -> None:
    status = make_status(
        HOSTILE,
        (0, 2),
        source=HOSTILE,
        target=HOSTILE + " target",
        stubs=(HOSTILE,),
        error=HOSTILE,
    )
    page = as_html([status], HOSTILE)
    assert "<script" not in page and "<img" not in page and "<style>*" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&#x27;&gt;" in page  # quotes cannot end an attribute
    # Each hostile text is inert, wherever it landed: in text, titles and attributes.
    assert page.count("&lt;script&gt;") >= 8


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(ROOT / "generated", tmp_path / "generated")
    for mapping in (tmp_path / "specs" / "links").glob("*.yaml"):
        if mapping.stem != "crm_to_mailer":
            mapping.unlink()  # each link costs a regeneration
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_hostile_spec_title_and_state_file_reach_the_page_escaped(
    repo: Path,
) -> None:
    spec = repo / "specs" / "crm.yaml"
    text = spec.read_text(encoding="utf-8")
    title = re.search(r"^  title: (.*)$", text, re.MULTILINE)
    assert title is not None
    spec.write_text(text.replace(title.group(0), f"  title: {json.dumps(HOSTILE)}"))
    bad_run = {"finished": HOSTILE, "exit_code": 2, "error": HOSTILE, "read": 3}
    state = repo / "generated" / "crm_to_mailer" / "crm_to_mailer.state.json"
    state.write_text(json.dumps({"last_run": bad_run, "history": [bad_run]}))

    result = CliRunner().invoke(
        cli, ["links", "--format", "html", "-o", "fleet.html"], catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    page = (repo / "fleet.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert rows(page) == ["crm_to_mailer"]
    assert "stale" in page  # the spec changed under the generated script


def test_an_unwritable_output_file_is_a_clear_error(repo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["links", "--format", "html", "-o", "no/such/folder/fleet.html"]
    )
    assert result.exit_code == 1
    assert "cannot write no/such/folder/fleet.html" in result.output
    assert "Traceback" not in result.output


# --- in a real browser ------------------------------------------------------


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGB(A) pixels of an 8-bit truecolour PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, b""
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            chunks += body
    raw = zlib.decompress(chunks)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                nearest = min(
                    (abs(guess - left), 0, left),
                    (abs(guess - up), 1, up),
                    (abs(guess - corner), 2, corner),
                )[2]
                line[i] = (line[i] + nearest) & 255
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]
        previous = line
    return width, height, pixels


class DevTools:
    """Headless Chromium driven over its DevTools pipe (fds 3 and 4), the network blocked.

    The pipe needs no client library, and its events name every request the page
    makes, which a blocked network alone would hide.
    """

    def __init__(self, browser: str, profile: Path) -> None:
        commands, self.commands = map(_high, os.pipe())
        self.answers, answers = map(_high, os.pipe())

        def wire() -> None:
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        self.process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--proxy-server=127.0.0.1:9",  # nothing listens there
                "--remote-debugging-pipe",
                "--window-size=1200,800",
                "about:blank",
            ],
            # Only preexec_fn can wire fds 3 and 4; the test process runs no threads.
            preexec_fn=wire,  # noqa: PLW1509
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands)
        os.close(answers)
        self.pending = b""
        self.events: list[dict[str, Any]] = []
        self.count = 0
        page = next(
            t
            for t in self.call("Target.getTargets")["targetInfos"]
            if t["type"] == "page"
        )
        self.session = self.call(
            "Target.attachToTarget", targetId=page["targetId"], flatten=True
        )["sessionId"]

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self.pending:
            chunk = os.read(self.answers, 65536)
            if not chunk:
                raise EOFError("Chromium closed its DevTools pipe")
            self.pending += chunk
        message, self.pending = self.pending.split(b"\0", 1)
        answer: dict[str, Any] = json.loads(message)
        return answer

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.count += 1
        message: dict[str, Any] = {"id": self.count, "method": method, "params": params}
        if hasattr(self, "session"):
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive()
            if answer.get("id") == self.count:
                assert "error" not in answer, answer
                result: dict[str, Any] = answer["result"]
                return result
            self.events.append(answer)

    def open(self, page: Path) -> None:
        self.call("Network.enable")
        self.call("Page.enable")
        self.call("Page.navigate", url=page.as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive())

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        os.close(self.commands)  # Chromium exits when its pipe closes
        try:
            self.process.wait(timeout=30)
        finally:
            self.process.kill()
            os.close(self.answers)


def _high(descriptor: int) -> int:
    """The descriptor moved above 9, so that wiring fds 3 and 4 cannot overwrite it."""
    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(descriptor)
    return moved


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[DevTools]:
    browser = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)),
        None,
    )
    if browser is None:
        pytest.skip("Chromium is not installed: apt-get install -y chromium")
    devtools = DevTools(browser, tmp_path / "profile")
    yield devtools
    devtools.close()


@pytest.mark.slow
def test_the_page_renders_in_chromium_and_asks_the_network_for_nothing(
    chromium: DevTools, tmp_path: Path
) -> None:
    page = tmp_path / "fleet.html"
    page.write_text(as_html([*FLEET, make_status(HOSTILE, (2,))], "now"), "utf-8")

    chromium.open(page)
    screenshot = base64.b64decode(chromium.call("Page.captureScreenshot")["data"])
    rendered = chromium.call(
        "Runtime.evaluate", expression="document.documentElement.outerHTML"
    )["result"]["value"]

    assert chromium.requests() == [page.as_uri()]
    width, height, pixels = png_pixels(screenshot)
    assert width == 1200 and height > 500
    assert statistics.pstdev(sum(p) / 3 for p in pixels) > 10  # not a blank page
    red = tuple(bytes.fromhex(HEALTH_COLOURS["failing"][1:]))
    assert pixels.count(red) > 50  # the failing link's arrow, dot and bars
    assert rendered.count("<tr>") == 1 + len(FLEET) + 1
    assert "<script" not in rendered and "&lt;script&gt;alert(1)" in rendered


@pytest.mark.slow
def test_chromium_would_show_a_request_the_page_made(
    chromium: DevTools, tmp_path: Path
) -> None:
    page = tmp_path / "loads.html"
    page.write_text('<img src="http://fleet.test/pixel.png">', "utf-8")

    chromium.open(page)

    assert "http://fleet.test/pixel.png" in chromium.requests()
