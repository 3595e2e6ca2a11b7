"""Generate the example links and run them against the bundled demo APIs."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from generator.demo.apis import DemoApis
from generator.demo.examples import API_CLASSES, PosApi
from generator.demo.http import Faults
from generator.regions import REGION, regions

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
    "pos_sales_webhook",
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
    webhook: str = ""  # a webhook source: the spec's webhook it receives


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
        hook = mapping[side].get("webhook") if side == "source" else None
        operation = f"webhook {hook}" if hook else str(mapping[side]["operation"])
        ends.append((by_spec[spec_name], operation))
    webhook = str(mapping["source"].get("webhook") or "")
    return LinkApis(ends[0][0], ends[1][0], ends[0][1], ends[1][1], webhook)


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    # `-m generator` must find this very package, installed or not.
    root = str(Path(__file__).resolve().parents[2])
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


def _generate(mapping_file: Path, out_dir: Path) -> subprocess.CompletedProcess[str]:
    """`p2pgen generate MAPPING --out OUT_DIR`, in a child process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "generate",
            str(mapping_file),
            "--out",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        env=_child_env({}),
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )


@dataclass(frozen=True)
class ScriptRun:
    """One run of a generated script, as the report needs it."""

    exit_code: int | None  # None: timed out
    took: float
    summary: str | None
    output: str

    @property
    def finished(self) -> bool:
        # An uncaught exception also exits 1, so "ran" needs the summary line too.
        return self.exit_code in (0, 1) and self.summary is not None


def _run_script(
    script: Path, apis: LinkApis, demo: DemoApis, args: list[str]
) -> ScriptRun:
    started = time.monotonic()
    try:
        ran = subprocess.run(
            [
                sys.executable,
                str(script),
                *("--source-url", demo.base_url(apis.source)),
                *("--target-url", demo.base_url(apis.target)),
                *args,
            ],
            capture_output=True,
            text=True,
            env=_child_env(demo.env()),
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ScriptRun(None, time.monotonic() - started, None, "")
    return ScriptRun(
        ran.returncode,
        time.monotonic() - started,
        _summary(ran.stdout),
        ran.stderr or ran.stdout,
    )


WEBHOOK_SALES = 12  # sales the demo POS rings up while a webhook link serves
LISTENING = re.compile(r"receiving deliveries on (http://\S+/)")


def _serve_script(
    script: Path, apis: LinkApis, demo: DemoApis, args: list[str], out: TextIO
) -> ScriptRun:
    """Start a webhook link's server, have the POS ring up sales (each one a
    signed delivery), wait until every event is done, then stop it (SIGTERM)."""
    started = time.monotonic()
    journal = Path(args[args.index("--journal") + 1])
    with subprocess.Popen(
        [
            sys.executable,
            str(script),
            *("--serve", "127.0.0.1:0"),
            *("--target-url", demo.base_url(apis.target)),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(demo.env()),
    ) as child:
        assert child.stderr is not None
        log: list[str] = []
        url = None
        for line in child.stderr:
            log.append(line)
            found = LISTENING.search(line)
            if found:
                url = found.group(1)
                break
        if url is None:
            child.wait(SCRIPT_TIMEOUT_S)
            return ScriptRun(
                child.returncode, time.monotonic() - started, None, "".join(log)
            )
        pos = demo.apis[apis.source]
        assert isinstance(pos, PosApi), "only the demo POS sends webhooks"
        pos.subscribe(url)
        began = time.monotonic()
        pos.ring_up(WEBHOOK_SALES)
        sent = time.monotonic() - began
        deadline = time.monotonic() + SCRIPT_TIMEOUT_S
        while _journal_done(journal) < WEBHOOK_SALES and time.monotonic() < deadline:
            time.sleep(0.05)
        out.write(
            f"   delivered   the POS rang up {WEBHOOK_SALES} sales and POSTed one signed"
            f" webhook each to {url} ({sent:.2f} s)\n"
        )
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=SCRIPT_TIMEOUT_S)
    return ScriptRun(
        child.returncode,
        time.monotonic() - started,
        _summary(stdout),
        "".join(log) + stderr,
    )


def _journal_done(journal: Path) -> int:
    """How many events of a webhook link's journal are done (0 before it exists)."""
    if not journal.exists():
        return 0
    with contextlib.closing(sqlite3.connect(journal)) as db:
        try:
            row = db.execute("SELECT count(*) FROM events WHERE done IS NOT NULL")
        except sqlite3.OperationalError:  # not created yet
            return 0
        return int(row.fetchone()[0])


def _report_run(run: ScriptRun, out: TextIO, label: str, indent: str) -> None:
    if run.exit_code is None:
        out.write(f"{label}timed out after {SCRIPT_TIMEOUT_S} s\n")
        return
    meaning = {0: "every record written", 1: "some records dead-lettered"}
    outcome = meaning[run.exit_code] if run.finished else "did not finish"
    out.write(
        f"{label}exit {run.exit_code} ({outcome}) in {run.took:.1f} s\n"
        f"{indent}{run.summary or '(no JSON summary line on stdout)'}\n"
    )
    if not run.finished:
        out.write(_tail(run.output) + "\n")


def _report_dead(dead: list[dict[str, Any]], out: TextIO, label: str) -> None:
    if dead:
        out.write(f"{label}{len(dead)} records\n")
        for reason, count in Counter(_reason(e) for e in dead).most_common(3):
            out.write(f"      {count:>4} x {reason}\n")


def _report_target(
    apis: LinkApis,
    demo: DemoApis,
    out: TextIO,
    label: str,
    since: int | None = None,
    shown: int = SHOWN_RECORDS,
) -> int:
    """Show what the target store holds (the new records after `since`); its size."""
    collection = TARGET_COLLECTIONS[apis.target]
    stored = demo.records(apis.target, collection)
    first = since or 0
    added = "" if since is None else f" ({len(stored) - since} new)"
    out.write(f"{label}{apis.target} now holds {len(stored)} {collection}{added}\n")
    for record in stored[first : first + shown]:
        out.write(f"      {json.dumps(record, ensure_ascii=False)[:300]}\n")
    return len(stored)


# ------------------------------------------------- the main loop, step by step

STUB_FAILURE = re.compile(r"NotImplementedError: implement (?P<stub>\w+)\(\)")
OUTSIDE_EDIT = "# quick fix, made outside any region"


@dataclass(frozen=True)
class ExampleStub:
    """A stub function as an example link's stubs file fills it in."""

    where: str  # FILE:LINE of its def line
    lines: list[str]  # its def line(s) and body


def stubs_file(mapping_file: Path) -> Path:
    """Where an example link's filled-in stub functions live: beside its mapping."""
    return mapping_file.with_name(f"{mapping_file.stem}.stubs.py")


def example_stubs(path: Path) -> dict[str, ExampleStub]:
    """The functions of a stubs file by name; none when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        tree = ast.parse(text, path.name)
    except SyntaxError as exc:
        raise ValueError(
            f"{path.name}:{exc.lineno}: {exc.msg}; a stubs file is Python code"
        ) from exc
    lines = text.splitlines()
    return {
        node.name: ExampleStub(
            f"{path.name}:{node.lineno}", lines[node.lineno - 1 : node.end_lineno]
        )
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def fill_in_stub(
    script_text: str, stub: str, example: ExampleStub
) -> tuple[str, list[str]]:
    """Put a filled-in stub function into its region, in place of the generated one.

    Returns the edited script and the region as it now reads (blank lines left
    out). Raises ValueError when the script has no such region or the example's
    def line is not the generated one.
    """
    for match in REGION.finditer(script_text):
        if match.group("name") != f"stub {stub}":
            continue
        indent = match.group("indent")
        lines = match.group("body").splitlines()
        header = next(
            (i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(":")), 0
        )
        written = [f"{indent}{line}" if line else line for line in example.lines]
        if written[:header] != lines[:header]:
            generated = " ".join(line.strip() for line in lines[:header])
            raise ValueError(
                f"{example.where}: the def line of {stub}() is not the generated "
                f"one; make it {generated!r}"
            )
        blank_after = len(lines) - len("\n".join(lines).rstrip("\n").splitlines())
        new_body = "\n".join(written + [""] * blank_after) + "\n"
        edited = (
            script_text[: match.start("body")]
            + new_body
            + script_text[match.end("body") :]
        )
        shown = [
            f"{indent}# p2pgen:begin stub {stub}",
            *written,
            f"{indent}# p2pgen:end stub {stub}",
        ]
        return edited, shown
    raise ValueError(f"the generated script has no region 'stub {stub}'")


def _relative(text: str, workdir: Path) -> str:
    return text.replace(f"{workdir}{os.sep}", "").replace(str(workdir), "<demo dir>")


def _show_refusal(
    name: str, mapping_file: Path, workdir: Path, out: TextIO, pad: str
) -> None:
    """On a copy of the link, an edit outside the regions makes generate refuse."""
    copy = workdir / "edited-outside"
    shutil.copytree(workdir / name, copy / name)
    script = copy / name / f"{name}.py"
    text = script.read_text(encoding="utf-8")
    anchor = text.find("# p2pgen:begin custom")
    if anchor < 0:
        return
    script.write_text(text[:anchor] + OUTSIDE_EDIT + "\n" + text[anchor:], "utf-8")
    refused = _generate(mapping_file, copy)
    lines = _relative(refused.stderr, copy).splitlines()
    reason = [line for line in lines if "edited outside" in line][:1]
    verdict = "refused" if refused.returncode == 1 and reason else "NOT refused"
    out.write(
        f"{pad}and on a copy with `{OUTSIDE_EDIT}` added outside the regions:\n"
        f"{pad}{verdict} (exit {refused.returncode}), nothing written\n"
    )
    for line in reason or lines[-2:]:
        out.write(f"{pad}{line}\n")


def main_loop(
    name: str,
    stubs: list[str],
    mapping_file: Path,
    apis: LinkApis,
    demo: DemoApis,
    workdir: Path,
    out: TextIO,
    *,
    held: int,
    show_refusal: bool,
) -> bool:
    """Fill in the stubs, regenerate, replay the dead letters; True when it worked."""
    pad = " " * 15
    script = workdir / name / f"{name}.py"
    text = script.read_text(encoding="utf-8")
    filled: dict[str, str] = {}
    examples_file = stubs_file(mapping_file)
    try:
        examples = example_stubs(examples_file)
        for stub in stubs:
            if stub not in examples:
                out.write(
                    f"   fill in     {stub}() is for you to write: "
                    f"{examples_file.name} has no def {stub}\n\n"
                )
                return True
            text, shown = fill_in_stub(text, stub, examples[stub])
            filled[stub] = regions(text)[f"stub {stub}"]
            out.write(
                f"   1 fill in   {stub}() from {examples_file.name} into its region "
                f"in {name}/{name}.py:\n"
            )
            out.writelines(f"{pad}{line}\n" for line in shown)
    except ValueError as exc:
        out.write(f"   fill in     {exc}\n\n")
        return False
    script.write_text(text, encoding="utf-8")

    regenerated = _generate(mapping_file, workdir)
    out.write(f"   2 regenerate p2pgen generate {mapping_file.name} --out <demo dir>\n")
    if regenerated.returncode != 0:
        out.write(f"{pad}failed (exit {regenerated.returncode}):\n")
        out.write(_tail(_relative(regenerated.stderr, workdir)) + "\n\n")
        return False
    for line in _relative(regenerated.stdout, workdir).splitlines():
        out.write(f"{pad}{line}\n")
    now = regions(script.read_text(encoding="utf-8"))
    lost = [stub for stub, body in filled.items() if now.get(f"stub {stub}") != body]
    if lost:
        out.write(f"{pad}LOST the filled-in body of {', '.join(lost)}()\n\n")
        return False
    out.write(f"{pad}{', '.join(f'{s}()' for s in filled)} kept: the region survives\n")
    if show_refusal:
        _show_refusal(name, mapping_file, workdir, out, pad)

    dead_letter = f"{name}.dead.jsonl"
    again = f"{name}.replay.dead.jsonl"
    out.write(
        f"   3 replay    {name}.py --replay {dead_letter} --dead-letter {again}\n"
    )
    run = _run_script(
        script,
        apis,
        demo,
        [
            *("--replay", str(workdir / dead_letter)),
            *("--dead-letter", str(workdir / again)),
            *("--state", str(workdir / f"{name}.replay.state.json")),
        ],
    )
    _report_run(run, out, pad, f"{pad}summary ")
    dead = _dead_letters(workdir / again)
    _report_dead(dead, out, f"{pad}dead-letter ")
    _report_target(apis, demo, out, pad, since=held, shown=2)
    out.write("\n")
    # Records may still fail for other reasons (bad data, a target that says
    # no); the loop worked when none of them failed in the filled-in stubs.
    return run.finished and not any(e.get("stage") == "transform" for e in dead)


@dataclass(frozen=True)
class LinkOutcome:
    ok: bool  # generated, ran and, where the demo filled in stubs, replayed
    looped: bool  # the fill-in / regenerate / replay loop was shown


def run_link(
    name: str,
    specs_dir: Path,
    demo: DemoApis,
    workdir: Path,
    out: TextIO,
    *,
    show_refusal: bool = False,
) -> LinkOutcome:
    """Generate and run one link, then show the main loop for its unfinished stubs."""
    mapping_file = (specs_dir / "links" / f"{name}.yaml").resolve()
    try:
        apis = link_apis(mapping_file)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        out.write(f"== {name}\n   cannot read the mapping: {exc}\n\n")
        return LinkOutcome(False, False)
    titles = {n: str(api.spec["info"]["title"]) for n, api in demo.apis.items()}
    out.write(
        f"== {name}: {titles[apis.source]} {apis.source_operation} -> "
        f"{titles[apis.target]} {apis.target_operation}\n"
    )
    generated = _generate(mapping_file, workdir)
    script = workdir / name / f"{name}.py"
    if generated.returncode != 0 or not script.exists():
        out.write(f"   generate failed (exit {generated.returncode}):\n")
        out.write(_tail(generated.stderr or generated.stdout) + "\n\n")
        return LinkOutcome(False, False)
    lines = len(script.read_text(encoding="utf-8").splitlines())
    out.write(f"   generated   {name}/{name}.py ({lines} lines)\n")

    dead_letter = workdir / f"{name}.dead.jsonl"
    files = [
        *("--state", str(workdir / f"{name}.state.json")),
        *("--dead-letter", str(dead_letter)),
    ]
    if apis.webhook:
        journal = ("--journal", str(workdir / f"{name}.journal.sqlite"))
        out.write(
            f"   serving     {name}.py --serve 127.0.0.1:0"
            f" --journal {name}.journal.sqlite\n"
        )
        run = _serve_script(script, apis, demo, [*files, *journal], out)
    else:
        run = _run_script(script, apis, demo, files)
    _report_run(run, out, "   ran         ", "   summary     ")
    dead = _dead_letters(dead_letter)
    _report_dead(dead, out, "   dead-letter ")
    held = _report_target(apis, demo, out, "   target      ")

    stubs = sorted(
        {m.group("stub") for e in dead if (m := STUB_FAILURE.search(_reason(e)))}
    )
    if not run.finished or not stubs:
        out.write("\n")
        ok = run.finished and _rerun(name, mapping_file, apis, demo, workdir, out)
        return LinkOutcome(ok, False)
    out.write(
        f"   -- unfinished stub {', '.join(f'{s}()' for s in stubs)} held these "
        "back: fill it in, regenerate, replay\n"
    )
    looped = main_loop(
        name,
        stubs,
        mapping_file,
        apis,
        demo,
        workdir,
        out,
        held=held,
        show_refusal=show_refusal,
    )
    looped = looped and _rerun(name, mapping_file, apis, demo, workdir, out)
    return LinkOutcome(looped, True)


def _rerun(
    name: str,
    mapping_file: Path,
    apis: LinkApis,
    demo: DemoApis,
    workdir: Path,
    out: TextIO,
) -> bool:
    """Run an upserting link again from scratch: it updates, it does not duplicate.

    Only links whose target matches before writing (target.match) or deletes
    (target.delete) are run again; True when the rerun created nothing twice.
    """
    mapping = yaml.safe_load(mapping_file.read_text(encoding="utf-8"))
    target = mapping.get("target") or {}
    if "match" not in target and "delete" not in target:
        return True
    before = len(demo.records(apis.target, TARGET_COLLECTIONS[apis.target]))
    out.write(
        "   rerun       from scratch (a new state file): the same records again\n"
    )
    run = _run_script(
        workdir / name / f"{name}.py",
        apis,
        demo,
        [
            *("--state", str(workdir / f"{name}.rerun.state.json")),
            *("--dead-letter", str(workdir / f"{name}.rerun.dead.jsonl")),
        ],
    )
    _report_run(run, out, "               ", "   summary     ")
    counts = json.loads(run.summary) if run.summary else {}
    out.write(
        f"   upserted    created {counts.get('created', 0)}, updated"
        f" {counts.get('updated', 0)}, deleted {counts.get('deleted', 0)}:"
        " the target's records were found and changed, not duplicated\n"
    )
    after = _report_target(apis, demo, out, "   target      ", since=before, shown=1)
    out.write("\n")
    return run.finished and after == before and counts.get("created") == 0


def run_demo(
    link_names: list[str],
    specs_dir: Path,
    stream: TextIO,
    *,
    faults: Faults | None = None,
) -> int:
    """Run each named example link against the demo APIs, then fill in the stubs
    that held records back, regenerate and replay; 0 when all of it worked."""
    specs_dir = Path(specs_dir)
    ok = True
    looped = False
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
            outcome = run_link(
                name, specs_dir, demo, Path(tmp), stream, show_refusal=not looped
            )
            ok = outcome.ok and ok
            looped = looped or outcome.looped
    if not ok:
        stream.write("Some links could not be generated, run or replayed.\n")
    elif looped:
        stream.write(
            "Every link ran. Records held back by an unfinished stub arrived once it\n"
            "was filled in (inside its region, so regeneration kept it) and the\n"
            "dead-letter file was replayed with `--replay`.\n"
        )
    else:
        stream.write("Every link ran.\n")
    stream.flush()
    return 0 if ok else 1
