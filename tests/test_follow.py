"""--follow / --every: a polling link run again and again, over real HTTP on loopback.

The script runs in a child process (it is stopped by a real SIGTERM); the
source and target are loopback servers in the test process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from generator.runtime.run import parse_args
from tests.runtime_helpers import Loopback, Seen, answer

ROOT = Path(__file__).resolve().parents[1]

FOLLOWER = """
import sys
from generator.runtime.run import Incremental, NoPagination, main_link
from tests.runtime_helpers import make_link

link = make_link(
    "none",
    source={"incremental": Incremental("since", "updated_at"), "paginator": NoPagination()},
)
raise SystemExit(main_link(link, sys.argv[1:], "follower"))
"""


class Api:
    """A source of rows (filtered by `since`) and a target that keeps what it gets."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.written: list[dict[str, Any]] = []
        self.sinces: list[str | None] = []
        self.write_delay = 0.0
        self.writing = threading.Event()

    def source(self, handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        since = parse_qs(urlsplit(seen.path).query).get("since", [None])[0]
        self.sinces.append(since)
        rows = [r for r in self.rows if since is None or r["updated_at"] > since]
        answer(handler, 200, {"data": rows})

    def target(self, handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        self.writing.set()
        time.sleep(self.write_delay)
        self.written.append(json.loads(seen.body))
        answer(handler, 201, {"ok": True})

    def add(self, number: int) -> None:
        self.rows.append(
            {
                "id": f"r{number}",
                "name": f"row {number}",
                "updated_at": f"2024-01-01T00:00:{number:02d}Z",
            }
        )


@pytest.fixture
def api() -> Iterator[tuple[Api, Loopback, Loopback]]:
    state = Api()
    with Loopback(state.source) as source, Loopback(state.target) as target:
        yield state, source, target


def follower(
    tmp_path: Path, source: Loopback, target: Loopback, *flags: str
) -> subprocess.Popen[str]:
    argv = [
        "--source-url",
        source.url,
        "--target-url",
        target.url,
        "--state",
        str(tmp_path / "state.json"),
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
        *flags,
    ]
    return subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def stderr_lines(child: subprocess.Popen[str]) -> list[str]:
    """The child's stderr lines, as they come (read by a thread)."""
    lines: list[str] = []
    assert child.stderr is not None
    stream = child.stderr
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return lines


def until(condition: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def summaries(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_follow_runs_again_incrementally_and_stops_on_sigterm(
    tmp_path: Path, api: tuple[Api, Loopback, Loopback]
) -> None:
    state, source, target = api
    state.add(1)
    state.add(2)
    with follower(tmp_path, source, target, "--follow", "--every", "0.5") as child:
        lines = stderr_lines(child)
        until(lambda: len(state.written) == 2)
        state.add(3)
        until(lambda: len(state.written) == 3)
        until(lambda: len(state.sinces) >= 4)  # a few quiet runs after it
        # a second run of the link is refused while it follows, even between runs
        second = follower(tmp_path, source, target)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 2
        assert "another run of this link holds" in summaries(out)[-1]["error"]
        waits = sum("next run in" in line for line in lines)
        until(lambda: sum("next run in" in line for line in lines) > waits)
        child.send_signal(signal.SIGTERM)  # between two runs
        out = child.stdout.read() if child.stdout else ""
        child.wait(15)
        err = "".join(lines)
    assert child.returncode == 0, err
    assert "Traceback" not in err
    assert sorted(w["ref"] for w in state.written) == ["r1", "r2", "r3"], "each once"
    assert state.sinces[0] is None and state.sinces[-1] == "2024-01-01T00:00:03Z"
    runs = summaries(out)
    assert len(runs) >= 4 and runs[-1]["exit_code"] == 0
    assert sum(r["written"] for r in runs) == 3
    saved = json.loads((tmp_path / "state.json").read_text())
    assert len(saved["history"]) == len(runs), "every run is in the history"
    assert saved["high_water"] == "2024-01-01T00:00:03Z"
    # the lock went with the follower: a plain run works at once
    with follower(tmp_path, source, target) as plain:
        out, _ = plain.communicate(timeout=30)
    assert plain.returncode == 0 and summaries(out)[-1]["read"] == 0


@pytest.mark.slow
def test_a_stop_during_a_run_finishes_the_write_in_flight(
    tmp_path: Path, api: tuple[Api, Loopback, Loopback]
) -> None:
    state, source, target = api
    for number in range(1, 6):
        state.add(number)
    state.write_delay = 0.5
    with follower(tmp_path, source, target, "--follow", "--concurrency", "1") as child:
        assert state.writing.wait(15)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=15)
    assert child.returncode == 2, err
    assert "Traceback" not in err
    last = summaries(out)[-1]
    assert last["error"].startswith("interrupted")
    assert last["written"] == len(state.written) >= 1, "the write in flight finished"
    assert len(state.written) < 5
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["checkpoint"]["done"] == len(state.written)
    assert saved["last_run"]["error"].startswith("interrupted")


def test_every_needs_follow_and_a_positive_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, message in (
        (["--every", "5"], "--every needs --follow"),
        (["--follow", "--every", "0"], "--every must be a number of seconds above 0"),
        (["--follow", "--replay", "x.jsonl"], "--follow cannot be used with --replay"),
    ):
        with pytest.raises(SystemExit):
            parse_args(argv, "test")
        assert message in capsys.readouterr().err
    assert parse_args(["--follow"], "test").every == 60.0
