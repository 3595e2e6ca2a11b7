"""Real-time latency and sustained rate: a webhook link against a polling link.

    python bench/latency.py [--events N] [--burst M] [--rate R] [--concurrency C]

The same sales go through the two example links of the POS -> inventory case,
both generated into a temporary folder with their stub filled in (the demo's
filled-in body), both writing to one loopback target that notes when each
sale's adjustment first arrives:

- webhook: `pos_sales_webhook.py --serve 127.0.0.1:0 --journal ...`; this
  process POSTs each sale as a signed saleCompleted delivery (Standard
  Webhooks), as the demo POS does. A sale's latency runs from just before its
  delivery is sent to the first arrival of its write at the target, so it
  holds the signature check, the journal's durable commit, the transform and
  the write.
- polling: `pos_to_inventory.py --follow --every 1` reading the demo POS API
  (started empty, in this process); a sale's latency runs from
  just before it is stored in the POS to the first arrival of its write. The
  POS API has no "changed since" parameter, so each run reads every sale and
  writes each again under the same idempotency key, as that link does.

Two measurements per link: `--events` sales at a steady `--rate` per second
(latency p50 and p99), then a burst of `--burst` sales at once (sustained
sales per second: the burst's size over the time from its first send or
store to its last arrival). The target is a tiny stdlib server that answers
201 (and an OAuth2 token), so its own store is not measured. It runs in this
process, as do the webhook sender and the demo POS; the links run in
subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.demo.apis import DEMO_CREDENTIALS, DemoApis  # noqa: E402
from generator.demo.command import example_stubs, fill_in_stub, stubs_file  # noqa: E402
from generator.demo.examples import standard_webhook_headers  # noqa: E402
from generator.demo.store import seed_sales  # noqa: E402

WEBHOOK_LINK = "pos_sales_webhook"
POLLING_LINK = "pos_to_inventory"
WAIT_S = 300.0


class Target:
    """A loopback target: 201 for every write, noting each sale's first arrival."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.writes = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/oauth/token"):
                    answer = {"access_token": "bench", "expires_in": 3600}
                else:
                    reference = json.loads(body)["reference"]
                    with owner.lock:
                        owner.writes += 1
                        owner.arrived.setdefault(reference, time.monotonic())
                    answer = {"id": "adj"}
                data = json.dumps(answer).encode()
                self.send_response(201 if "access_token" not in answer else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, references: list[str]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not all(r in self.arrived for r in references):
            if time.monotonic() > deadline:
                missing = sum(r not in self.arrived for r in references)
                raise SystemExit(f"{missing} sales never reached the target")
            time.sleep(0.005)


def sales(prefix: str, count: int) -> list[dict[str, Any]]:
    made = seed_sales(random.Random(prefix), count)
    for number, sale in enumerate(made):
        sale["id"] = f"sale_{prefix}_{number:06d}"
    return made


def generate(workdir: Path, name: str) -> Path:
    """Generate an example link into `workdir`, its stubs filled in; the script."""
    mapping = ROOT / "specs" / "links" / f"{name}.yaml"
    subprocess.run(
        [
            *(sys.executable, "-m", "generator", "generate", str(mapping)),
            "--out",
            str(workdir),
            "--force",
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    script = workdir / name / f"{name}.py"
    text = script.read_text(encoding="utf-8")
    for stub, example in example_stubs(stubs_file(mapping)).items():
        text, _ = fill_in_stub(text, stub, example)
    script.write_text(text, encoding="utf-8")
    return script


def env() -> dict[str, str]:
    values = {k: v for creds in DEMO_CREDENTIALS.values() for k, v in creds.items()}
    return {**os.environ, "PYTHONPATH": str(ROOT), **values}


@contextmanager
def running(argv: list[str], ready: re.Pattern[str] | None = None) -> Iterator[str]:
    """A link's script in a child process until the block ends (SIGTERM). With
    `ready`, waits for the stderr line it matches and yields its first group."""
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env()
    ) as child:
        assert child.stderr is not None
        found = None
        for line in child.stderr if ready is not None else ():
            found = ready.search(line)
            if found:
                break
        if ready is not None and found is None:
            raise SystemExit(f"{argv[1]} did not start")
        threading.Thread(target=child.stderr.read, daemon=True).start()
        try:
            yield found.group(1) if found else ""
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(60)


def paced(items: list[Any], rate: float, act: Callable[[Any], None]) -> None:
    """`act` on each item at `rate` per second (0: as fast as possible)."""
    start = time.monotonic()
    for number, item in enumerate(items):
        if rate:
            delay = start + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        act(item)


def measure(
    target: Target,
    steady: list[dict[str, Any]],
    burst: list[dict[str, Any]],
    rate: float,
    send: Callable[[dict[str, Any]], None],
    senders: int,
) -> dict[str, float]:
    """Latency of `steady` sent at `rate`, then the rate of `burst` sent at once."""
    sent: dict[str, float] = {}

    def timed(sale: dict[str, Any]) -> None:
        sent[f"sale-{sale['id']}"] = time.monotonic()
        send(sale)

    paced(steady, rate, timed)
    target.wait_for([f"sale-{s['id']}" for s in steady])
    latencies = sorted(target.arrived[r] - sent[r] for r in sent)
    began = time.monotonic()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(timed, burst))
    references = [f"sale-{s['id']}" for s in burst]
    target.wait_for(references)
    took = max(target.arrived[r] for r in references) - began
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "rate": len(burst) / took,
    }


def bench_webhook(
    workdir: Path, target: Target, args: argparse.Namespace
) -> dict[str, float]:
    script = generate(workdir, WEBHOOK_LINK)
    secret = DEMO_CREDENTIALS["pos"]["POS_WEBHOOK_SECRET"]
    argv = [sys.executable, str(script), "--serve", "127.0.0.1:0"]
    argv += ["--journal", str(workdir / "journal.sqlite"), "--target-url", target.url]
    argv += ["--concurrency", str(args.concurrency)]
    ready = re.compile(r"receiving deliveries on (http://\S+/)")
    local = threading.local()  # one keep-alive connection per sender thread
    clients: list[httpx.Client] = []

    def send(sale: dict[str, Any]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
            clients.append(local.client)
        event = {"type": "sale.completed", "timestamp": "2024-01-01T00:00:00Z"}
        body = json.dumps({**event, "data": sale}).encode()
        headers = standard_webhook_headers(secret, f"msg_{sale['id']}", body)
        local.client.post(url, content=body, headers=headers).raise_for_status()

    with running(argv, ready) as url:
        httpx.get(url + "healthz").raise_for_status()
        try:
            return measure(
                target,
                sales("w", args.events),
                sales("wb", args.burst),
                args.rate,
                send,
                args.concurrency,
            )
        finally:
            for client in clients:
                client.close()


def bench_polling(
    workdir: Path, target: Target, args: argparse.Namespace
) -> dict[str, float]:
    script = generate(workdir, POLLING_LINK)
    with DemoApis(ROOT / "specs", seed_count=0) as demo:
        pos = demo.apis["pos"]
        argv = [sys.executable, str(script), "--follow", "--every", "1"]
        argv += ["--source-url", demo.base_url("pos"), "--target-url", target.url]
        argv += ["--state", str(workdir / "state.json")]
        argv += ["--concurrency", str(args.concurrency)]
        with running(argv):
            return measure(
                target,
                sales("p", args.events),
                sales("pb", args.burst),
                args.rate,
                lambda sale: pos.store.add("sales", sale),
                1,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="steady sales per link")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="steady sales per second"
    )
    parser.add_argument("--burst", type=int, default=1000, help="sales sent at once")
    parser.add_argument("--concurrency", type=int, default=8, help="writes in flight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2pgen-latency-") as tmp:
        workdir = Path(tmp)
        rows = {
            "webhook (--serve)": bench_webhook(workdir, Target(), args),
            "polling (--follow --every 1)": bench_polling(workdir, Target(), args),
        }
    print(
        f"{args.events} sales at {args.rate:g}/s, then {args.burst} at once;"
        f" --concurrency {args.concurrency}; loopback"
    )
    print("| link | latency p50 | latency p99 | sustained sales/s |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['p50'] * 1000:.0f} ms | {row['p99'] * 1000:.0f} ms"
            f" | {row['rate']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
