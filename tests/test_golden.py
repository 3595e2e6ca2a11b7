"""Golden tests: the committed generated/ tree is exactly what p2pgen produces now.

Refresh the golden files with: p2pgen generate specs/links/*.yaml
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli

ROOT = Path(__file__).resolve().parents[1]
LINKS = sorted((ROOT / "specs" / "links").glob("*.yaml"))
NAMES = [p.stem for p in LINKS]
REFRESH = "p2pgen generate specs/links/*.yaml"


def _generate_in_process(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        cli,
        ["generate", *[str(p.relative_to(ROOT)) for p in LINKS], "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output


def _diff_trees(expected: Path, actual: Path) -> str:
    """A unified diff of every .py file that differs between two trees ('' if none)."""
    chunks = []
    names = sorted(
        {p.relative_to(expected) for p in expected.rglob("*.py")}
        | {p.relative_to(actual) for p in actual.rglob("*.py")}
    )
    for rel in names:
        a = expected / rel
        b = actual / rel
        old = a.read_bytes() if a.is_file() else b""
        new = b.read_bytes() if b.is_file() else b""
        if old != new:
            chunks.append(
                "".join(
                    difflib.unified_diff(
                        old.decode("utf-8", "replace").splitlines(keepends=True),
                        new.decode("utf-8", "replace").splitlines(keepends=True),
                        f"{a} (committed)" if a.is_file() else f"{a} (missing)",
                        f"{b} (regenerated)" if b.is_file() else f"{b} (missing)",
                    )
                )
                or f"{rel}: bytes differ (line endings or encoding)\n"
            )
    return "".join(chunks)


def test_there_are_example_links() -> None:
    assert LINKS, "no specs/links/*.yaml found"
    for name in NAMES:
        assert (ROOT / "generated" / name / f"{name}.py").is_file()
        assert (ROOT / "generated" / name / f"test_{name}.py").is_file()


# (a) committed output == regenerated output -----------------------------------


def test_generated_matches_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _generate_in_process(out, monkeypatch)
    for name in NAMES:
        produced = sorted(p.name for p in (out / name).glob("*.py"))
        assert produced == sorted([f"{name}.py", f"test_{name}.py"]), produced
    committed = tmp_path / "committed"
    for name in NAMES:
        shutil.copytree(ROOT / "generated" / name, committed / name)
    for stray in committed.rglob("__pycache__"):
        shutil.rmtree(stray)
    difference = _diff_trees(committed, out)
    if difference:
        pytest.fail(
            "generated/ is out of date with the generator; refresh it with "
            f"`{REFRESH}` and review the diff:\n{difference}"
        )


# (b) determinism across hash seeds ---------------------------------------------


def _generate_subprocess(out: Path, seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "generate",
            *[str(p.relative_to(ROOT)) for p in LINKS],
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


def test_output_is_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    one, two = tmp_path / "seed1", tmp_path / "seed2"
    _generate_subprocess(one, "1")
    _generate_subprocess(two, "2")
    difference = _diff_trees(one, two)
    assert not difference, f"output depends on PYTHONHASHSEED:\n{difference}"
    assert sorted(p.relative_to(one) for p in one.rglob("*.py")) == sorted(
        p.relative_to(two) for p in two.rglob("*.py")
    )


# (c) black, ruff and mypy --strict on the committed generated code ----------------


def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(
            f"{module} is not installed in {sys.executable}; "
            f"pip install {module} (or p2pgen[test]) to run this check"
        )


def _python_m(cwd: Path, *args: str, timeout: int = 300) -> str:
    """Run `python -m ARGS` in cwd; fail with its output unless it exits 0."""
    _tool(args[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return proc.stdout


def _black(cwd: Path, files: list[str]) -> None:
    _python_m(cwd, "black", "--check", "--diff", "-q", *files)


def _ruff(cwd: Path, files: list[str]) -> None:
    _python_m(
        cwd,
        "ruff",
        "check",
        "--no-cache",
        "--config",
        str(ROOT / "pyproject.toml"),
        *files,
    )


def _mypy(cwd: Path, files: list[str], cache: Path) -> None:
    _python_m(
        cwd,
        "mypy",
        "--strict",
        "--no-incremental",
        "--cache-dir",
        str(cache),
        "--config-file",
        os.devnull,
        "--python-version",
        "3.11",
        *files,
    )


def _pytest(cwd: Path) -> None:
    _python_m(cwd, "pytest", "-q", "-p", "no:cacheprovider")


def _link_files(name: str) -> list[str]:
    return [f"{name}.py", f"test_{name}.py"]


def _generated_files() -> list[str]:
    return [
        str(ROOT / "generated" / name / f) for name in NAMES for f in _link_files(name)
    ]


def test_generated_code_is_black_formatted() -> None:
    _black(ROOT, _generated_files())


def test_generated_code_passes_ruff() -> None:
    _ruff(ROOT, _generated_files())


@pytest.mark.parametrize("name", NAMES)
def test_generated_code_passes_mypy_strict(name: str, tmp_path: Path) -> None:
    _mypy(ROOT / "generated" / name, _link_files(name), tmp_path / "mypy_cache")


# (d) each link's own generated tests pass -------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_generated_link_tests_pass(name: str) -> None:
    _pytest(ROOT / "generated" / name)


# (e) `p2pgen check` ---------------------------------------------------------------------


def test_check_passes_on_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["check"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{len(LINKS)} link(s) current" in result.output


def test_check_reports_drift_with_a_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy of the repository's inputs and outputs, so the real tree is untouched.
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(
        ROOT / "generated",
        tmp_path / "generated",
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
    )
    name = NAMES[0]
    target = tmp_path / "generated" / name / f"{name}.py"
    text = target.read_text(encoding="utf-8")
    assert 'LINK_NAME = "' in text
    target.write_text(
        text.replace('LINK_NAME = "', 'LINK_NAME = "edited_', 1), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    clean = runner.invoke(
        cli,
        ["check", str(Path("specs/links") / f"{NAMES[-1]}.yaml"), "--out", "generated"],
        catch_exceptions=False,
    )
    if NAMES[-1] != name:
        assert clean.exit_code == 0, clean.output
    result = runner.invoke(
        cli, ["check", "--out", str(tmp_path / "generated")], catch_exceptions=False
    )
    assert result.exit_code == 1, result.output
    assert "drift" in result.output
    assert "---" in result.output and "+++" in result.output
    assert f'-LINK_NAME = "edited_{name}"' in result.output
    assert f'+LINK_NAME = "{name}"' in result.output


@pytest.mark.parametrize("name", NAMES)
def test_header_has_one_line_per_fact(name: str) -> None:
    lines = (ROOT / "generated" / name / f"{name}.py").read_text().splitlines()[:12]
    starts = [line.split(":")[0] for line in lines]
    assert "# Link" in starts
    assert "# Source" in starts
    assert "# Target" in starts
    assert sum(line.startswith("# sha256 ") for line in lines) == 3


# A minimal link (no auth, no pagination, no idempotency) is as clean as the examples.

MINIMAL = """\
version: 1
name: minimal_link
source:
  spec: ../shop.yaml
  operation: listOrders
target:
  spec: ../sink.yaml
  operation: createThing
fields:
  email: {from: email, default: nobody@example.com}
  kind: {const: order}
"""


@pytest.fixture(scope="module")
def minimal_link(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("minimal")
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    links = root / "specs" / "links"
    links.mkdir(parents=True)
    for name in ("shop.yaml", "sink.yaml"):
        shutil.copy(ROOT / "tests" / "data" / "transform" / name, root / "specs" / name)
    (links / "minimal_link.yaml").write_text(MINIMAL, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["generate", str(links / "minimal_link.yaml"), "--out", str(root / "out")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return root / "out" / "minimal_link"


def test_minimal_link_is_black_formatted_and_its_tests_pass(minimal_link: Path) -> None:
    _black(minimal_link, _link_files("minimal_link"))
    _pytest(minimal_link)


def test_minimal_link_passes_mypy_strict(minimal_link: Path, tmp_path: Path) -> None:
    _mypy(minimal_link, _link_files("minimal_link"), tmp_path / "mypy_cache")


def test_minimal_link_passes_ruff(minimal_link: Path) -> None:
    _ruff(minimal_link, _link_files("minimal_link"))


def test_check_names_the_mapped_fields_a_spec_change_broke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(
        ROOT / "generated",
        tmp_path / "generated",
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
    )
    crm = tmp_path / "specs" / "crm.yaml"
    text = crm.read_text(encoding="utf-8")
    assert "\n        email:\n" in text
    crm.write_text(text.replace("\n        email:\n", "\n        e_mail:\n"), "utf-8")
    monkeypatch.chdir(tmp_path)
    mapping = Path("specs/links/crm_to_mailer.yaml")
    lines = mapping.read_text(encoding="utf-8").splitlines()
    line = next(
        i for i, t in enumerate(lines, 1) if t.strip() == "email_address: email"
    )
    result = CliRunner().invoke(cli, ["check", str(mapping)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"{mapping}:{line}:" in result.output
    assert "'email' not found; did you mean 'e_mail'?" in result.output
    assert "Traceback" not in result.output
