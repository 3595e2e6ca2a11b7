"""Throughput and memory of a generated script against the bundled demo APIs.

    python bench/throughput.py [--records N] [--reps R] [--memory 10000,100000]

1. Records per second of the generated `treatments_to_billing` script, run
   in-process through its own `run(Config(...))`, against a minimal hand-written
   httpx loop that sends the same requests (same bearer tokens, same bodies,
   same Idempotency-Key, a ThreadPoolExecutor for concurrency). Both read the
   CarePoint demo source page by page (20 records a page) and write to the
   Billable demo target.
   Every single measurement starts its own demo APIs in a separate process
   (`python -m generator.demo.apis --free-ports --seed-count N`, free loopback
   ports read from its start-up lines), waits until the billing API answers
   `GET /charges`, then times the client alone: from the call to
   `run(Config(...))` or to the hand loop until it returns. The demo servers
   therefore never share this process's GIL with the client being measured,
   and no write is an idempotent replay. After the clock stops, the bench
   checks over HTTP that every valid charge arrived: Billable's
   `GET /charges` has no pagination (at most 500), so each expected charge is
   sent once more without an Idempotency-Key and must be refused with 409
   ("source_ref already charged"); a 201 means it was missing. The first
   `GET /charges?limit=500` page must also hold only expected source_refs.
   Then the demo process is stopped (SIGINT). The two clients alternate
   (generated first on even reps, hand first on odd), R repetitions each per
   concurrency level; the median records/s counts, where records are source
   records read (valid and invalid alike).
2. Peak memory (VmHWM from /proc, read by a tiny wrapper at exit) of the
   generated script run as a subprocess, reading N seeded treatments from the real demo source and
   writing to a tiny stdlib HTTP server that answers 201 to everything (the
   demo Billable store would measure SQLite, not the script). Not ru_maxrss:
   Linux carries a forked child's pre-exec high-water mark (this process, with
   its 100,000-record store) through exec into the child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.demo.apis import DEMO_CREDENTIALS, DemoApis  # noqa: E402

SPECS = ROOT / "specs"
LINK = "treatments_to_billing"
CODE = re.compile(r"^[A-Z][0-9]{4}$")
ENV = {k: v for creds in DEMO_CREDENTIALS.values() for k, v in creds.items()}


def child_env(extra: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def generate(out: Path, mapping: Path = SPECS / "links" / f"{LINK}.yaml") -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "generate",
            str(mapping),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        env=child_env({}),
    )
    return out / LINK / f"{LINK}.py"


def big_pages_mapping(work: Path) -> Path:
    """The same link with 100-record pages and room for 100,000 records.

    The example mapping asks for 20 records a page and stops after 1000 pages,
    that is after 20,000 records.
    """
    mapping_file = SPECS / "links" / f"{LINK}.yaml"
    mapping = yaml.safe_load(mapping_file.read_text(encoding="utf-8"))
    for side in ("source", "target"):
        mapping[side]["spec"] = str(
            (mapping_file.parent / mapping[side]["spec"]).resolve()
        )
    mapping["source"]["params"]["limit"] = {"const": 100}
    mapping["source"]["pagination"]["max_pages"] = 100_000
    path = work / "big" / f"{LINK}.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def load(script: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{LINK}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # Quiet: the dead-letter warnings for lower-case codes would flood stderr.
    logger = logging.getLogger(LINK)
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return module


# ------------------------------------------------------------- the runners


def run_generated(
    module: ModuleType, urls: dict[str, str], *, concurrency: int, work: Path
) -> int:
    config = module.Config(
        source_url=urls["patients"],
        target_url=urls["billing"],
        dead_letter_path=work / f"dead-{time.monotonic_ns()}.jsonl",
        concurrency=concurrency,
    )
    summary = module.run(config)
    return int(summary.written)


def hand_body(t: dict[str, Any]) -> dict[str, Any] | None:
    """The mapping, written by hand; None for a code Billable would refuse."""
    if not CODE.fullmatch(str(t.get("code"))) or not t.get("units"):
        return None
    body = {
        "patient_ref": t["patient"]["mrn"],
        "procedure_code": t["code"],
        "description": t.get("description"),
        "service_date": t["performed_on"],
        "quantity": t["units"],
        "source_ref": f"carepoint:{t['id']}",
    }
    return {k: v for k, v in body.items() if v is not None}


def run_hand(urls: dict[str, str], *, concurrency: int) -> int:
    env = ENV
    source = httpx.Client(
        base_url=urls["patients"],
        headers={"Authorization": f"Bearer {env['CAREPOINT_TOKEN']}"},
        timeout=30,
    )
    target = httpx.Client(
        base_url=urls["billing"],
        headers={"Authorization": f"Bearer {env['BILLING_TOKEN']}"},
        timeout=30,
    )

    def post(tid: str, body: dict[str, Any]) -> bool:
        response = target.post(
            "/charges", json=body, headers={"Idempotency-Key": f"{LINK}:{tid}"}
        )
        return response.status_code < 300

    with source, target, ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = []
        url: str | None = "/treatments?limit=20"
        while url:
            page = source.get(url)
            page.raise_for_status()
            data = page.json()
            for t in data["items"]:
                body = hand_body(t)
                if body is not None:
                    futures.append(pool.submit(post, t["id"], body))
            url = data["links"]["next"]
        return sum(f.result() for f in futures)


class DemoProcess:
    """The demo APIs in a child process on free loopback ports, for a `with` block."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.urls: dict[str, str] = {}

    def __enter__(self) -> DemoProcess:
        self.child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "generator.demo.apis",
                "--free-ports",
                *("--seed-count", str(self.records)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=child_env({}),
        )
        try:
            assert self.child.stdout is not None
            # "name       http://127.0.0.1:PORT" lines, then "Serving; ...".
            for line in self.child.stdout:
                if line.startswith("Serving"):
                    break
                parts = line.split()
                if len(parts) == 2 and parts[1].startswith("http://"):
                    self.urls[parts[0]] = parts[1]
            else:
                raise SystemExit("demo APIs exited before serving")
            self.wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    self.urls["billing"] + "/charges",
                    headers={"Authorization": f"Bearer {ENV['BILLING_TOKEN']}"},
                    timeout=2,
                )
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("demo APIs did not answer within 30 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
            try:
                self.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        if self.child.stdout is not None:
            self.child.stdout.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def missing_charges(billing_url: str, expected: dict[str, dict[str, Any]]) -> int:
    """How many expected charges the billing API does not hold, asked over HTTP.

    Billable's `GET /charges` returns at most 500 charges and cannot page, so
    each expected charge is posted again without an Idempotency-Key: 409 means
    its source_ref is already charged. Anything else (a 201 creates it) counts
    as missing. The first 500 listed charges must also all be expected ones.
    """
    headers = {"Authorization": f"Bearer {ENV['BILLING_TOKEN']}"}
    with httpx.Client(base_url=billing_url, headers=headers, timeout=30) as client:
        listed = client.get("/charges", params={"limit": 500})
        listed.raise_for_status()
        charges = listed.json()["charges"]
        if len(charges) != min(500, len(expected)) or any(
            c.get("source_ref") not in expected for c in charges
        ):
            return len(expected)

        def refused(body: dict[str, Any]) -> bool:
            return client.post("/charges", json=body).status_code == 409

        with ThreadPoolExecutor(max_workers=8) as pool:
            return sum(not ok for ok in pool.map(refused, expected.values()))


def timed(
    records: int,
    expected: dict[str, dict[str, Any]],
    runner: Callable[[dict[str, str]], int],
) -> tuple[float, int, int]:
    """Records/s over a fresh demo process, charges written, charges missing."""
    with DemoProcess(records) as demo:
        started = time.perf_counter()
        written = runner(demo.urls)
        took = time.perf_counter() - started
        missing = missing_charges(demo.urls["billing"], expected)
    return records / took, written, missing


# ------------------------------------------------------------------ memory


class _Accept(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: avoid Nagle's 40 ms stalls.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


# Runs the script as __main__ and records its own VmHWM (KiB) at exit.
_WRAPPER = """
import runpy, sys
peak_file, script = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    with open("/proc/self/status") as status:
        hwm = next(l.split()[1] for l in status if l.startswith("VmHWM:"))
    with open(peak_file, "w") as out:
        out.write(hwm)
"""


def peak_memory(script: Path, records: int, work: Path) -> tuple[float, float, str]:
    """Peak RSS in MiB of one run, its records/s, and its summary line."""
    peak_file = work / f"mem-{records}.hwm"
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    sink.daemon_threads = True
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        with DemoApis(SPECS, seed_count=records) as demo:
            out = work / f"mem-{records}.out"
            started = time.perf_counter()
            with out.open("w") as stdout:
                child = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _WRAPPER,
                        str(peak_file),
                        str(script),
                        *("--source-url", demo.base_url("patients")),
                        *("--target-url", f"http://127.0.0.1:{sink.server_port}"),
                        *("--dead-letter", str(work / f"mem-{records}.jsonl")),
                        *("--concurrency", "4"),
                    ],
                    stdout=stdout,
                    stderr=subprocess.DEVNULL,
                    env=child_env(demo.env()),
                )
                child.wait()
            took = time.perf_counter() - started
    finally:
        sink.shutdown()
        sink.server_close()
    lines = out.read_text().strip().splitlines()
    summary = lines[-1] if lines else "(no output)"
    if child.returncode not in (0, 1):
        raise SystemExit(f"memory run with {records} records failed: {summary}")
    return int(peak_file.read_text()) / 1024, records / took, summary


# -------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--memory", default="10000,100000")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c]
    sizes = [int(n) for n in args.memory.split(",") if n]

    with tempfile.TemporaryDirectory(prefix="p2pgen-bench-") as tmp:
        work = Path(tmp)
        script = generate(work)
        module = load(script)
        for name, value in DemoApis(SPECS).env().items():
            os.environ[name] = value
        # The seed is fixed, so the records a demo process serves are these.
        with DemoApis(SPECS, seed_count=args.records) as demo:
            bodies = [hand_body(t) for t in demo.records("patients", "treatments")]
        charges = {b["source_ref"]: b for b in bodies if b is not None}
        expected = len(charges)

        print(
            f"Throughput: {LINK}, {args.records} source records "
            f"({expected} valid charges), median of {args.reps}, alternating; "
            "generated script run in-process via run(Config(...)); "
            "demo APIs in a separate process, fresh for each measurement"
        )
        print(
            f"{'concurrency':>11}  {'generated rec/s':>15}  {'hand httpx rec/s':>16}"
            f"  {'ratio':>6}"
        )
        for concurrency in levels:
            rates: dict[str, list[float]] = {"generated": [], "hand": []}
            runners: dict[str, Callable[[dict[str, str]], int]] = {
                "generated": partial(
                    run_generated, module, concurrency=concurrency, work=work
                ),
                "hand": partial(run_hand, concurrency=concurrency),
            }
            for rep in range(args.reps):
                order = ["generated", "hand"] if rep % 2 == 0 else ["hand", "generated"]
                for name in order:
                    rate, written, missing = timed(args.records, charges, runners[name])
                    if written != expected or missing:
                        raise SystemExit(
                            f"{name} at concurrency {concurrency} wrote {written}, "
                            f"target misses {missing}, expected {expected}"
                        )
                    rates[name].append(rate)
            generated = statistics.median(rates["generated"])
            hand = statistics.median(rates["hand"])
            print(
                f"{concurrency:>11}  {generated:>15.0f}  {hand:>16.0f}"
                f"  {generated / hand:>6.2f}",
                flush=True,
            )

        print()
        print(
            "Peak memory: generated script as a subprocess (VmHWM at exit), "
            "concurrency 4, real demo source, target a stdlib server answering 201"
        )
        print(
            "(the mapping regenerated with 100-record pages and max_pages 100000; "
            "the example's 20 x 1000 pages stop at 20,000 records)"
        )
        print(f"{'records':>8}  {'peak RSS MiB':>12}  {'rec/s':>6}  summary")
        big = generate(work / "big-out", big_pages_mapping(work))
        for records in sizes:
            mib, rate, summary = peak_memory(big, records, work)
            counts = json.loads(summary)
            brief = (
                f"read {counts['read']} written {counts['written']} "
                f"failed {counts['failed']}"
            )
            print(f"{records:>8}  {mib:>12.1f}  {rate:>6.0f}  {brief}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
