"""Generate the example links and run them against the bundled demo APIs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from generator.demo_apis import API_CLASSES, DemoApis, Faults

# Which store collection a target operation writes into, to show what arrived.
TARGET_COLLECTIONS = {
    "crm": "customers",
    "mailer": "members",
    "inventory": "adjustments",
    "billing": "charges",
}
DEFAULT_LINKS = [
    "crm_to_mailer",
    "invoices_to_crm",
    "pos_to_inventory",
    "treatments_to_billing",
]
SCRIPT_TIMEOUT_S = 300
SHOWN_RECORDS = 3


@dataclass(frozen=True)
class LinkApis:
    """The demo APIs one mapping file connects."""

    source: str
    target: str
    source_operation: str
    target_operation: str


def link_apis(mapping_file: Path) -> LinkApis:
    """Work out from a mapping file which demo APIs it reads from and writes to."""
    mapping = yaml.safe_load(mapping_file.read_text(encoding="utf-8"))
    by_spec = {cls.spec_file: name for name, cls in API_CLASSES.items()}
    ends = []
    for side in ("source", "target"):
        spec_name = Path(str(mapping[side]["spec"])).name
        if spec_name not in by_spec:
            raise ValueError(
                f"{mapping_file}: {side} spec {spec_name!r} is not one of the demo "
                f"APIs ({', '.join(sorted(by_spec))})"
            )
        ends.append((by_spec[spec_name], str(mapping[side]["operation"])))
    return LinkApis(ends[0][0], ends[1][0], ends[0][1], ends[1][1])


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    # `-m generator` must find this very package, installed or not.
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(f"      {line}" for line in text.strip().splitlines()[-lines:])


def _dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"reason": f"unreadable dead-letter line: {line[:60]}"})
    return entries


def _reason(entry: dict[str, Any]) -> str:
    for key in ("reason", "error", "message"):
        if entry.get(key):
            first = str(entry[key]).strip().splitlines()[0]
            return first if len(first) <= 100 else first[:97] + "..."
    return "no reason recorded"


def _summary(stdout: str) -> str | None:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        summary = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return json.dumps(summary, sort_keys=True) if isinstance(summary, dict) else None


def run_link(
    name: str, specs_dir: Path, demo: DemoApis, workdir: Path, out: TextIO
) -> bool:
    """Generate and run one link; report on `out`; True when the script ran."""
    mapping_file = (specs_dir / "links" / f"{name}.yaml").resolve()
    try:
        apis = link_apis(mapping_file)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        out.write(f"== {name}\n   cannot read the mapping: {exc}\n\n")
        return False
    titles = {n: str(api.spec["info"]["title"]) for n, api in demo.apis.items()}
    out.write(
        f"== {name}: {titles[apis.source]} {apis.source_operation} -> "
        f"{titles[apis.target]} {apis.target_operation}\n"
    )
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "generate",
            str(mapping_file),
            "--out",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        env=_child_env({}),
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    script = workdir / name / f"{name}.py"
    if generated.returncode != 0 or not script.exists():
        out.write(f"   generate failed (exit {generated.returncode}):\n")
        out.write(_tail(generated.stderr or generated.stdout) + "\n\n")
        return False
    lines = len(script.read_text(encoding="utf-8").splitlines())
    out.write(f"   generated   {name}/{name}.py ({lines} lines)\n")

    dead_letter = workdir / f"{name}.dead.jsonl"
    started = time.monotonic()
    try:
        ran = subprocess.run(
            [
                sys.executable,
                str(script),
                *("--source-url", demo.base_url(apis.source)),
                *("--target-url", demo.base_url(apis.target)),
                *("--state", str(workdir / f"{name}.state.json")),
                *("--dead-letter", str(dead_letter)),
            ],
            capture_output=True,
            text=True,
            env=_child_env(demo.env()),
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        out.write(f"   run         timed out after {SCRIPT_TIMEOUT_S} s\n\n")
        return False
    took = time.monotonic() - started
    summary = _summary(ran.stdout)
    # An uncaught exception also exits 1, so "ran" needs the summary line too.
    finished = ran.returncode in (0, 1) and summary is not None
    meaning = {0: "every record written", 1: "some records dead-lettered"}
    outcome = meaning[ran.returncode] if finished else "did not finish"
    out.write(
        f"   ran         exit {ran.returncode} ({outcome}) in {took:.1f} s\n"
        f"   summary     {summary or '(no JSON summary line on stdout)'}\n"
    )
    if not finished:
        out.write(_tail(ran.stderr or ran.stdout) + "\n")

    dead = _dead_letters(dead_letter)
    if dead:
        out.write(f"   dead-letter {len(dead)} records\n")
        for reason, count in Counter(_reason(e) for e in dead).most_common(3):
            out.write(f"      {count:>4} x {reason}\n")
    stored = demo.records(apis.target, TARGET_COLLECTIONS[apis.target])
    out.write(
        f"   target      {apis.target} now holds {len(stored)} "
        f"{TARGET_COLLECTIONS[apis.target]}\n"
    )
    for record in stored[:SHOWN_RECORDS]:
        out.write(f"      {json.dumps(record, ensure_ascii=False)[:300]}\n")
    out.write("\n")
    return finished


def run_demo(
    link_names: list[str],
    specs_dir: Path,
    stream: TextIO,
    *,
    faults: Faults | None = None,
) -> int:
    """Run each named example link against the demo APIs; 0 when all of them ran."""
    specs_dir = Path(specs_dir)
    ok = True
    with (
        DemoApis(specs_dir, faults=faults) as demo,
        tempfile.TemporaryDirectory(prefix="p2pgen-demo-") as tmp,
    ):
        stream.write(
            "Demo APIs on "
            + ", ".join(f"{n} {demo.base_url(n)}" for n in demo.apis)
            + "\n\n"
        )
        for name in link_names:
            ok = run_link(name, specs_dir, demo, Path(tmp), stream) and ok
    stream.write(
        "Every link ran.\n" if ok else "Some links could not be generated or run.\n"
    )
    stream.write(
        "Records that need a stub stay in the dead-letter file until the stub is\n"
        "filled in; `--replay` sends them again.\n"
    )
    stream.flush()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Run the example links (all four by default) against the demo APIs."""
    parser = argparse.ArgumentParser(
        prog="python -m generator.demo", description=main.__doc__
    )
    parser.add_argument("links", nargs="*", default=DEFAULT_LINKS)
    parser.add_argument(
        "--specs", type=Path, default=Path(__file__).resolve().parent.parent / "specs"
    )
    args = parser.parse_args(argv)
    return run_demo(args.links, args.specs, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
