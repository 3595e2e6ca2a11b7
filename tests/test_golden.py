"""Golden tests: the committed output of the golden links is exactly what p2pgen
produces now, and it passes black, ruff (ours and its defaults), mypy --strict and
its own tests.

The golden links are the four examples (specs/links/, output in generated/) and the
kitchen sink (tests/golden/kitchen_sink/: a spec pair and a mapping that use every
feature of mapping version 1, output in tests/golden/kitchen_sink/generated/).
Refresh them with the commands in GOLDEN below.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import cli

ROOT = Path(__file__).resolve().parents[1]
LINKS = sorted((ROOT / "specs" / "links").glob("*.yaml"))
NAMES = [p.stem for p in LINKS]
SINK = ROOT / "tests" / "golden" / "kitchen_sink"


@dataclass(frozen=True)
class Golden:
    """Mappings whose output is committed in one folder, and how to refresh it."""

    mappings: tuple[Path, ...]
    out: Path
    refresh: str

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.mappings]


GOLDEN = {
    "examples": Golden(
        tuple(LINKS), ROOT / "generated", "p2pgen generate specs/links/*.yaml"
    ),
    "kitchen_sink": Golden(
        (SINK / "kitchen_sink.yaml",),
        SINK / "generated",
        "p2pgen generate tests/golden/kitchen_sink/kitchen_sink.yaml "
        "--out tests/golden/kitchen_sink/generated",
    ),
}
ALL_MAPPINGS = [str(p.relative_to(ROOT)) for g in GOLDEN.values() for p in g.mappings]
# Every golden link's committed folder, by link name.
FOLDERS = {name: g.out / name for g in GOLDEN.values() for name in g.names}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every golden link generated afresh, in process, into one folder."""
    out = tmp_path_factory.mktemp("regenerated")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(ROOT)
        result = CliRunner().invoke(
            cli, ["generate", *ALL_MAPPINGS, "--out", str(out)], catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    return out


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


@pytest.mark.parametrize("golden", GOLDEN)
def test_generated_matches_committed(golden: str, regenerated: Path) -> None:
    committed = GOLDEN[golden]
    for name in committed.names:
        produced = sorted(p.name for p in (regenerated / name).glob("*.py"))
        assert produced == sorted([f"{name}.py", f"test_{name}.py"]), produced
    difference = "".join(
        _diff_trees(committed.out / name, regenerated / name)
        for name in committed.names
    )
    if difference:
        pytest.fail(
            f"{committed.out.relative_to(ROOT)}/ is out of date with the generator; "
            f"refresh it with `{committed.refresh}` and review the diff:\n{difference}"
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
            *ALL_MAPPINGS,
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


@pytest.mark.slow
def test_output_is_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    one, two = tmp_path / "seed1", tmp_path / "seed2"
    _generate_subprocess(one, "1")
    _generate_subprocess(two, "2")
    difference = _diff_trees(one, two)
    assert not difference, f"output depends on PYTHONHASHSEED:\n{difference}"
    assert sorted(p.relative_to(one) for p in one.rglob("*.py")) == sorted(
        p.relative_to(two) for p in two.rglob("*.py")
    )


# (c) black, ruff (ours and its defaults) and mypy --strict on the committed code ----


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


def _ruff_defaults(cwd: Path, files: list[str]) -> None:
    """ruff's own default rules, as a project without our configuration runs it."""
    _python_m(cwd, "ruff", "check", "--no-cache", "--isolated", *files)


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


def _generated_files(golden: str) -> list[str]:
    return [
        str(GOLDEN[golden].out / name / f)
        for name in GOLDEN[golden].names
        for f in _link_files(name)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("golden", GOLDEN)
def test_generated_code_is_black_formatted(golden: str) -> None:
    _black(ROOT, _generated_files(golden))


@pytest.mark.slow
@pytest.mark.parametrize("golden", GOLDEN)
def test_generated_code_passes_ruff(golden: str) -> None:
    _ruff(ROOT, _generated_files(golden))


@pytest.mark.slow
@pytest.mark.parametrize("golden", GOLDEN)
def test_generated_code_passes_ruff_defaults(golden: str) -> None:
    _ruff_defaults(ROOT, _generated_files(golden))


@pytest.mark.slow
@pytest.mark.parametrize("name", FOLDERS)
def test_generated_code_passes_mypy_strict(name: str, tmp_path: Path) -> None:
    _mypy(FOLDERS[name], _link_files(name), tmp_path / "mypy_cache")


# (d) each link's own generated tests pass -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", FOLDERS)
def test_generated_link_tests_pass(name: str) -> None:
    _pytest(FOLDERS[name])


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


@pytest.mark.parametrize("name", FOLDERS)
def test_header_has_one_line_per_fact(name: str) -> None:
    lines = (FOLDERS[name] / f"{name}.py").read_text().splitlines()[:12]
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


@pytest.mark.slow
def test_minimal_link_is_black_formatted_and_its_tests_pass(minimal_link: Path) -> None:
    _black(minimal_link, _link_files("minimal_link"))
    _pytest(minimal_link)


@pytest.mark.slow
def test_minimal_link_passes_mypy_strict(minimal_link: Path, tmp_path: Path) -> None:
    _mypy(minimal_link, _link_files("minimal_link"), tmp_path / "mypy_cache")


@pytest.mark.slow
def test_minimal_link_passes_ruff(minimal_link: Path) -> None:
    _ruff(minimal_link, _link_files("minimal_link"))
    _ruff_defaults(minimal_link, _link_files("minimal_link"))


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
