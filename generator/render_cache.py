"""Rendered links by content: a link whose inputs and generator did not change is not built again.

`check` and `links` regenerate every link in memory to compare it with what is
on disk; for a fleet of real-spec links that is a minute of work for nothing
when nothing changed. The key is the sha256 of the generator's own code, the
mapping and both specs (their bytes), and the folders paths are shown relative
to; a spec's key covers every file its `$ref`s reach. The entry holds the
rendered files and the warnings. Nothing is cached when P2PGEN_NO_CACHE is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from functools import cache
from pathlib import Path

from generator import __version__
from generator.errors import P2pgenError, Problem
from generator.mapping_reader import load_mapping
from generator.render import render_link
from generator.reserved import templates_dir
from generator.resolve import Resolution, resolve

GENERATOR = Path(__file__).resolve().parent
# the file part of a `$ref` into another file, as JSON or YAML writes it
_FILE_REF = re.compile(r"""\$ref['"]?\s*:\s*['"]?([^#'"\s][^#'"\s]*)""")


def rendered(mapping_path: Path, root: Path) -> Resolution:
    """resolve() and render_link(), or their remembered outcome for these very inputs."""
    key = cache_key(mapping_path, root)
    hit = remembered(key, mapping_path)
    if hit is not None:
        return hit
    result = resolve(mapping_path, root)
    if result.link is not None and not result.errors:
        fill_rendered(result)
        remember(key, result)
    return result


@cache
def code_fingerprint() -> str:
    """The sha256 of every source file and template that can shape the output."""
    digest = hashlib.sha256(__version__.encode())
    sources = sorted(GENERATOR.rglob("*.py")) + sorted(templates_dir().glob("*.jinja"))
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fill_rendered(result: Resolution) -> None:
    """Render a resolved link into its Resolution: its name, files and what it links."""
    link = result.link
    assert link is not None
    result.name = link.name
    result.files = render_link(link)
    result.about = {
        "source_api": link.source.title,
        "source_operation": link.source.operation_id or link.source.path,
        "target_api": link.target.title,
        "target_operation": link.target.operation_id or link.target.path,
    }


def cache_key(mapping_path: Path, root: Path) -> str | None:
    """The key of a mapping's rendered files, or None when it must not be cached."""
    if os.environ.get("P2PGEN_NO_CACHE"):
        return None
    try:
        mapping = load_mapping(mapping_path)
        texts = [mapping_path.read_bytes()]
        for spec in (mapping.source.spec, mapping.target.spec):
            texts += _spec_files(spec)
    except (P2pgenError, OSError, RecursionError):
        return None  # the slow path says what is wrong
    digest = hashlib.sha256(code_fingerprint().encode())
    for part in (
        str(root.resolve()).encode(),
        str(mapping_path.resolve()).encode(),
        *texts,
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _spec_files(spec: Path, seen: set[Path] | None = None) -> list[bytes]:
    """The bytes of a spec and of every file its `$ref`s reach, each once."""
    seen = set() if seen is None else seen
    spec = spec.resolve()
    if spec in seen:
        return []
    seen.add(spec)
    text = spec.read_bytes()
    found = [spec.as_posix().encode() + b"\0" + text]
    for ref in _FILE_REF.findall(text.decode("utf-8", "replace")):
        if "://" in ref:
            raise OSError(f"remote $ref {ref}")  # never cached (nor followed)
        found += _spec_files(spec.parent / ref, seen)
    return found


def _entry(key: str) -> Path:
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(home) / "p2pgen" / "rendered" / f"{key}.json"


def remembered(key: str | None, mapping_path: Path) -> Resolution | None:
    if key is None:
        return None
    try:
        entry = json.loads(_entry(key).read_text(encoding="utf-8"))
        warnings = [Problem.from_dict(w) for w in entry["warnings"]]
        files = {str(k): str(v) for k, v in entry["files"].items()}
        about = {str(k): str(v) for k, v in entry["about"].items()}
        return Resolution(
            mapping_path,
            problems=warnings,
            name=entry["name"],
            files=files,
            about=about,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remember(key: str | None, result: Resolution) -> None:
    if key is None:
        return
    entry = {
        "name": result.name,
        "files": result.files,
        "about": result.about,
        "warnings": [asdict(w) for w in result.warnings],
    }
    path = _entry(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # a cache that cannot be written only costs time
