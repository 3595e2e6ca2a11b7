"""The bundled demo APIs: the example specs served for real on loopback.

`DemoApis` starts each of the seven example APIs (`examples`) on its own
`ThreadingHTTPServer` in a background thread (`http`); each keeps its
records in SQLite (`store`), checks credentials and request bodies as its
spec says, and can misbehave on purpose (`Faults`) so that the generated
scripts' retry, dead-letter and resume paths meet a real network.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from generator.demo.examples import API_CLASSES
from generator.demo.http import Api, Faults, Handler, Server
from generator.demo.store import (
    Json,
)

API_NAMES = ("crm", "mailer", "invoicing", "pos", "inventory", "patients", "billing")
SPEC_PORTS = {
    "crm": 8701,
    "mailer": 8702,
    "invoicing": 8703,
    "pos": 8704,
    "inventory": 8705,
    "patients": 8706,
    "billing": 8707,
}

# Obvious demo values, not secrets: the names are the ones the example mapping
# files in specs/links/ read their credentials from.
DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "crm": {"CRM_TOKEN": "demo-crm-token"},
    "mailer": {"MAILER_API_KEY": "demo-mailer-key", "MAILER_LIST_ID": "news2024"},
    "invoicing": {
        "LEDGER_USERNAME": "demo-ledger",
        "LEDGER_PASSWORD": "demo-ledger-password",
    },
    "pos": {
        "POS_API_KEY": "demo-pos-key",
        # whsec_ + base64("demo-pos-webhook-secret"): Standard Webhooks' form
        "POS_WEBHOOK_SECRET": "whsec_ZGVtby1wb3Mtd2ViaG9vay1zZWNyZXQ=",
    },
    "inventory": {
        "STOCK_CLIENT_ID": "demo-stock-client",
        "STOCK_CLIENT_SECRET": "demo-stock-secret",
        "STOCK_WAREHOUSE_ID": "wh-bristol-1",
    },
    "patients": {"CAREPOINT_TOKEN": "demo-carepoint-token"},
    "billing": {"BILLING_TOKEN": "demo-billing-token"},
}


class DemoApis:
    """Every demo API on loopback, for the lifetime of a `with` block."""

    def __init__(
        self,
        specs_dir: Path,
        faults: Faults | None = None,
        ports: dict[str, int] | None = None,
        *,
        token_ttl: float = 300.0,
        seed_count: int | None = None,
    ) -> None:
        self.specs_dir = Path(specs_dir)
        self.faults = faults
        self.ports = {name: 0 for name in API_NAMES} | (ports or {})
        self.token_ttl = token_ttl
        # How many records each source API seeds (default: its own small fixed
        # number); the benchmark asks for 100,000.
        self.seed_count = seed_count
        self.apis: dict[str, Api] = {}
        self._servers: list[tuple[Server, threading.Thread]] = []

    def __enter__(self) -> DemoApis:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Seed every API and start serving it."""
        try:
            for name in API_NAMES:
                api = API_CLASSES[name](
                    self.specs_dir,
                    DEMO_CREDENTIALS[name],
                    self.faults,
                    self.token_ttl,
                    self.seed_count,
                )
                server = Server(("127.0.0.1", self.ports[name]), Handler)
                server.api = api
                api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
                # A short poll keeps `close()` fast: shutdown waits for one poll.
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"demo-{name}",
                    daemon=True,
                )
                thread.start()
                self.apis[name] = api
                self._servers.append((server, thread))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the servers and drop the stores."""
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join()
        self._servers.clear()
        for api in self.apis.values():
            api.store.close()

    def _api(self, api_name: str) -> Api:
        if api_name not in self.apis:
            raise KeyError(
                f"unknown or stopped demo API {api_name!r}; "
                f"expected one of {', '.join(API_NAMES)}"
            )
        return self.apis[api_name]

    def base_url(self, api_name: str) -> str:
        """Return `http://127.0.0.1:PORT` of a running API."""
        return self._api(api_name).base_url

    def env(self) -> dict[str, str]:
        """Return every credential and id variable the example links read."""
        return {
            key: value
            for creds in DEMO_CREDENTIALS.values()
            for key, value in creds.items()
        }

    def records(self, api_name: str, collection: str) -> list[Json]:
        """Return what an API's store holds, in insertion order."""
        api = self._api(api_name)
        if collection not in api.collections:
            raise KeyError(
                f"{api_name} has no collection {collection!r}; "
                f"it has {', '.join(api.collections)}"
            )
        return api.store.all(collection)

    def requests_seen(self, api_name: str) -> int:
        """Return how many HTTP requests an API received, faults included."""
        return self._api(api_name).requests

    def invalid_ids(self, api_name: str) -> list[str]:
        """Return the ids of the source records broken by `Faults.invalid_records`."""
        return list(self._api(api_name).invalid_ids)


def main(argv: list[str] | None = None) -> int:
    """Serve every demo API on its spec port until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m generator.demo.apis", description=main.__doc__
    )
    parser.add_argument(
        "--specs", type=Path, default=Path(__file__).resolve().parents[2] / "specs"
    )
    parser.add_argument("--seed", type=int, default=0)
    for flag in ("error-503", "rate-limit-429", "drop-connection", "lost-response"):
        parser.add_argument(f"--{flag}", type=float, default=0.0, metavar="RATE")
    parser.add_argument("--invalid-records", type=int, default=0, metavar="N")
    parser.add_argument(
        "--seed-count",
        type=int,
        metavar="N",
        help="records per source API (default: a few dozen each)",
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="bind free loopback ports instead of the spec ports (the URLs are "
        "printed as usual)",
    )
    args = parser.parse_args(argv)
    faults = Faults(
        seed=args.seed,
        error_503=args.error_503,
        rate_limit_429=args.rate_limit_429,
        drop_connection=args.drop_connection,
        lost_response=args.lost_response,
        invalid_records=args.invalid_records,
    )
    ports = None if args.free_ports else SPEC_PORTS
    with DemoApis(args.specs, faults, ports, seed_count=args.seed_count) as demo:
        for name in API_NAMES:
            print(f"{name:<10} {demo.base_url(name)}")
        print()
        for key, value in demo.env().items():
            print(f"export {key}={value}")
        print("\nServing; Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
