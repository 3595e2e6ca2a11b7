"""The `p2pgen` command line: the only module that prints and picks exit codes."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from generator import __version__
from generator.deploy import Deployable, deployables
from generator.deploy import dagster as deploy_dagster
from generator.deploy import kubernetes as deploy_kubernetes
from generator.draft import draft_mapping, normalise_snake
from generator.errors import P2pgenError, Problem
from generator.fleet import as_json, as_mermaid, as_table, survey
from generator.fleet_html import as_html
from generator.output import PlannedFile, plan, write_all
from generator.regions import ORPHAN_HOST, diff
from generator.render_cache import fill_rendered, rendered
from generator.resolve import Resolution, resolve
from generator.specs import SpecSet, iter_operations, webhook_entries
from generator.validation import validate_document

Command = Callable[..., None]
mapping_args = click.argument(
    "mappings", nargs=-1, type=click.Path(path_type=Path, dir_okay=False)
)


def _echo_problems(problems: list[Problem]) -> None:
    for problem in sorted(set(problems)):
        click.echo(str(problem), err=True)


def _resolve_all(mappings: tuple[Path, ...], render: bool = False) -> list[Resolution]:
    """Check (and with `render`, render: unchanged inputs come from the cache)."""
    step = rendered if render else resolve
    results = [step(path, project_root(path)) for path in mappings]
    _echo_problems([p for r in results for p in r.problems])
    return results


def _same_names(results: list[Resolution]) -> list[Problem]:
    """Mappings of one run that would write the same folder."""
    first: dict[str, Path] = {}
    problems = []
    for result in results:
        if result.files is None:
            continue
        name = result.name
        if first.setdefault(name, result.mapping_path) != result.mapping_path:
            problems.append(
                Problem(
                    str(result.mapping_path),
                    message=f"name '{name}' is also the name in {first[name]}; "
                    "each link needs its own name (it names the output folder)",
                )
            )
    return problems


def project_root(path: Path) -> Path:
    """The folder that paths in generated headers are relative to: the repository."""
    for folder in path.resolve().parents:
        if (folder / ".git").exists() or (folder / "pyproject.toml").exists():
            return folder
    return path.resolve().parent


def _default_mappings() -> tuple[Path, ...]:
    return tuple(sorted(Path("specs/links").glob("*.yaml")))


def _plan_all(results: list[Resolution], out: Path) -> list[PlannedFile]:
    planned: list[PlannedFile] = []
    for result in results:
        assert result.files is not None
        planned += plan(result.files, out / result.name)
    return planned


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="p2pgen")
def cli() -> None:
    """Generate one typed, tested Python script per point-to-point API link."""


@cli.command()
@mapping_args
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("generated"),
    show_default=True,
    help="output folder",
)
@click.option("--force", is_flag=True, help="overwrite edits made outside the regions")
def generate(mappings: tuple[Path, ...], out: Path, force: bool) -> None:
    """Write OUT/<name>/<name>.py and its tests for each MAPPING."""
    if not mappings:
        raise click.UsageError(
            "give at least one mapping file, e.g. specs/links/x.yaml"
        )
    results = _resolve_all(mappings, render=True)
    clashes = _same_names(results)
    _echo_problems(clashes)
    if clashes or any(r.errors or r.files is None for r in results):
        click.echo("nothing written: fix the problems above", err=True)
        sys.exit(1)
    planned = _plan_all(results, out)
    conflicts = [f for f in planned if f.conflict]
    if conflicts and not force:
        for f in conflicts:
            click.echo(f.conflict, err=True)
            click.echo(
                f"{f.path}: edited outside the p2pgen:begin/end regions; move the "
                "edits into a region, or rerun with --force to overwrite them",
                err=True,
            )
        click.echo("nothing written", err=True)
        sys.exit(1)
    write_all([f for f in planned if f.changed])
    for f in planned:
        click.echo(f"{'wrote' if f.changed else 'unchanged'} {f.path}")
    _echo_problems(
        [
            Problem(
                str(f.path),
                orphan.line,
                message=f"region '{orphan.region}' is no longer generated; its code "
                f"is kept here, commented out, at the end of region '{ORPHAN_HOST}': "
                "move what you still need, then delete the block",
                severity="warning",
            )
            for f in planned
            for orphan in f.orphans
        ]
    )


@cli.command()
@mapping_args
def validate(mappings: tuple[Path, ...]) -> None:
    """Check both specs and the mapping; print every problem at once."""
    if not mappings:
        raise click.UsageError("give at least one mapping file")
    results = _resolve_all(mappings)
    for r in results:
        if not r.errors:
            click.echo(f"{r.mapping_path}: ok")
    sys.exit(1 if any(r.errors for r in results) else 0)


@cli.command()
@mapping_args
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("generated"),
    show_default=True,
)
def check(mappings: tuple[Path, ...], out: Path) -> None:
    """Regenerate in memory and compare with OUT; exit 1 on drift."""
    mappings = mappings or _default_mappings()
    if not mappings:
        raise click.UsageError("no mapping given and no specs/links/*.yaml here")
    results = _resolve_all(mappings, render=True)
    broken = [r for r in results if r.errors or r.files is None]
    for r in broken:
        click.echo(
            f"{r.mapping_path}: cannot regenerate; the problems above are what "
            "broke (a spec or the mapping changed)",
            err=True,
        )
    drift = []
    for f in _plan_all([r for r in results if r not in broken], out):
        if f.changed:
            drift.append(f)
            old = f.existing or ""
            click.echo(
                diff(old, f.content, f"{f.path} (on disk)", f"{f.path} (regenerated)")
                or f"{f.path}: missing",
                err=True,
            )
    if drift or broken:
        click.echo(
            f"drift: {len(drift)} file(s) differ from what p2pgen generates now; "
            f"run `p2pgen generate {' '.join(map(str, mappings))} --out {out}`",
            err=True,
        )
        sys.exit(1)
    click.echo(f"{len(results)} link(s) current")


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
def ops(spec: Path) -> None:
    """List a spec's operations: method, path, operationId, summary."""
    specs = SpecSet()
    try:
        doc = specs.load(spec)
        _echo_problems(validate_document(specs, doc))
    except P2pgenError as exc:
        _echo_problems(exc.problems)
        sys.exit(1)
    rows = [
        (m.upper(), p, str(op.get("operationId", "")), _summary(op))
        for m, p, op in iter_operations(doc)
    ]
    _, webhooks = webhook_entries(doc)
    for name, item in webhooks.items():  # a webhook source: `webhook: NAME`
        for method, op in item.items() if isinstance(item, dict) else ():
            if isinstance(op, dict) and method in ("post", "put", "patch"):
                rows.append(("WEBHOOK", str(name), method.upper(), _summary(op)))
    if not rows:
        click.echo(f"{spec}: no operations and no webhooks", err=True)
    widths = [max([len(r[i]) for r in rows] + [4]) for i in range(3)]
    for row in rows:
        click.echo(
            "  ".join(v.ljust(w) for v, w in zip(row[:3], widths, strict=True))
            + "  "
            + " ".join(row[3].split())
        )


def _summary(op: Mapping[str, Any]) -> str:
    return str(op.get("summary", ""))


@cli.command()
@click.option(
    "--source",
    "source_spec",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="source spec",
)
@click.option("--source-op", required=True, help="operationId or 'GET /path'")
@click.option(
    "--target",
    "target_spec",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="target spec",
)
@click.option("--target-op", required=True, help="operationId or 'POST /path'")
@click.option("--name", help="link name (a Python identifier)")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="mapping file to write (default specs/links/NAME.yaml; - for stdout)",
)
def init(
    source_spec: Path,
    source_op: str,
    target_spec: Path,
    target_op: str,
    name: str | None,
    output: Path | None,
) -> None:
    """Draft a mapping file: fields matched by name and type, stubs for the rest."""
    if name is None:
        name = "_to_".join(
            re.sub(r"\W+", "_", normalise_snake(op)).strip("_") or "op"
            for op in (source_op, target_op)
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise click.UsageError(f"--name {name!r} must be a Python identifier")
    to_stdout = output is not None and str(output) == "-"
    if to_stdout:  # spec paths are then relative to the current folder
        path = Path(f"{name}.yaml")
    else:
        path = Path("specs/links") / f"{name}.yaml" if output is None else output
    if not to_stdout and path.exists():
        click.echo(
            f"{path}: already exists; choose another -o FILE or remove it", err=True
        )
        sys.exit(1)
    text, errors = draft_mapping(
        source_spec, source_op, target_spec, target_op, name, path
    )
    if to_stdout:
        click.echo(text, nl=False)
    else:
        write_all([PlannedFile(path, text, None, "")])
        click.echo(f"wrote {path}")
    if errors:
        click.echo("the draft still has problems:", err=True)
        _echo_problems([replace(p, file=str(path)) for p in errors])
        sys.exit(1)
    click.echo(f"next: review it, then `p2pgen generate {path}`", err=True)


@cli.command()
@click.argument(
    "directory", default=".", type=click.Path(path_type=Path, file_okay=False)
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("generated"),
    show_default=True,
    help="where the links are generated",
)
@click.option(
    "--format",
    "style",
    type=click.Choice(["table", "json", "mermaid", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="write the fleet to this file instead of stdout (e.g. fleet.html)",
)
def links(directory: Path, out: Path, style: str, output: Path | None) -> None:
    """The fleet: every link under DIRECTORY, its APIs, whether it is current, its runs."""
    statuses = survey(directory, out, project_root(directory / "x"))
    if style == "html":
        text = as_html(statuses, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    else:
        text = {"table": as_table, "json": as_json, "mermaid": as_mermaid}[style](
            statuses
        )
    if output is None:
        click.echo(text)
    else:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(
                f"cannot write {output}: {exc.strerror}; pass another -o FILE"
            ) from None
        click.echo(f"wrote {output}", err=True)
    if not statuses:
        click.echo(f"no mapping files under {directory}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("links", nargs=-1)
def demo(links: tuple[str, ...]) -> None:
    """Start the bundled demo APIs, generate example links, run them, show the result."""
    # Imported here: the demo is a quarter of the code and no other command needs it.
    from generator.demo.command import run_demo  # noqa: PLC0415

    names = list(links) or [p.stem for p in _default_mappings()]
    sys.exit(run_demo(names, Path("specs"), sys.stdout))


@cli.group()
def deploy() -> None:
    """Run the links on a schedule: Kubernetes CronJobs or a Dagster code location."""


generated_option = click.option(
    "--generated",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("generated"),
    show_default=True,
    help="where the links are generated (their scripts are deployed as they are there)",
)


def _deploy_output(default: str) -> Callable[[Command], Command]:
    return click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path(default),
        show_default=True,
        help="folder to write",
    )


@deploy.command("kubernetes")
@mapping_args
@_deploy_output("deploy/kubernetes")
@click.option(
    "--image",
    default=deploy_kubernetes.DEFAULT_IMAGE,
    show_default=True,
    help="the image the CronJobs run (built from the Dockerfile written beside them)",
)
@generated_option
def deploy_kubernetes_command(
    mappings: tuple[Path, ...], output: Path, image: str, generated: Path
) -> None:
    """Per link a CronJob, a ConfigMap with its script and a volume; a Dockerfile."""
    links = _deployables(mappings, generated)
    _write_deployment(deploy_kubernetes.manifests(links, image), output)
    click.echo(
        "next: build and push the image named by --image, from the Dockerfile;",
        err=True,
    )
    click.echo("then create each link's Secret (one key per variable):", err=True)
    for link in links:
        click.echo(f"  {deploy_kubernetes.secret_command(link)}", err=True)
    click.echo(f"and apply: kubectl apply -f {output}", err=True)


@deploy.command("dagster")
@mapping_args
@_deploy_output("deploy/dagster")
@generated_option
def deploy_dagster_command(
    mappings: tuple[Path, ...], output: Path, generated: Path
) -> None:
    """A Dagster code location: an asset, a schedule and a check per link."""
    links = _deployables(mappings, generated)
    _write_deployment(deploy_dagster.code_location(links), output)
    variables = sorted({var for link in links for var in link.required_env})
    click.echo(
        f"next: set {', '.join(variables)} in the code location's environment, then "
        f"`dagster dev -f {output / 'definitions.py'}`",
        err=True,
    )


def _deployables(mappings: tuple[Path, ...], generated: Path) -> list[Deployable]:
    """The links to deploy, each generated and current on disk; else exit 1."""
    mappings = mappings or _default_mappings()
    if not mappings:
        raise click.UsageError("no mapping given and no specs/links/*.yaml here")
    results = _resolve_all(mappings)
    clashes = _same_names(results)
    _echo_problems(clashes)
    if clashes or any(r.errors or r.link is None for r in results):
        click.echo("nothing written: fix the problems above", err=True)
        sys.exit(1)
    for result in results:  # deploying needs the Link itself, not only its files
        fill_rendered(result)
    links, stale = deployables(results, _plan_all(results, generated))
    _echo_problems(stale)
    if any(p.severity == "error" for p in stale):
        click.echo("nothing written", err=True)
        sys.exit(1)
    return links


def _write_deployment(files: dict[str, str], output: Path) -> None:
    planned = []
    for name, content in sorted(files.items()):
        path = output / name
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        planned.append(PlannedFile(path, content, existing, ""))
    write_all([f for f in planned if f.changed])
    for f in planned:
        click.echo(f"{'wrote' if f.changed else 'unchanged'} {f.path}")


def main() -> int:
    try:
        cli.main(standalone_mode=True)
    except P2pgenError as exc:
        _echo_problems(exc.problems)
        return 1
    except Exception as exc:  # a bug in p2pgen, not in the user's input
        if os.environ.get("P2PGEN_DEBUG"):
            raise
        click.echo(
            f"p2pgen internal error: {type(exc).__name__}: {exc}\n"
            "Please report it; rerun with P2PGEN_DEBUG=1 to see the traceback.",
            err=True,
        )
        return 3
    return 0
