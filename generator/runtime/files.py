"""Files: private and never through a symbolic link; the lock, state and dead letters."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, ClassVar, Self

from generator.runtime.core import FatalError, _json_line, _now, log, redact


def open_private(path: Path, mode: str) -> IO[Any]:
    """Open for "a" (append), "r+" (read and write) or "rb"; created 0600, never via a symlink.

    Dead letters and state hold personal data: no other user may read them,
    and a link planted at the path must not send them elsewhere. Raises
    OSError, for the caller to say which file it was.
    """
    flags = {
        "a": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
        "r+": os.O_RDWR | os.O_CREAT,
    }.get(mode, os.O_RDONLY)
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            message = "it is a symbolic link; pass the real file"
            raise OSError(exc.errno, message, str(path)) from None
        raise
    if flags != os.O_RDONLY:
        os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, mode if "b" in mode else mode + "b")


def write_atomically(path: Path, text: str) -> None:
    """Write a private temporary file beside `path`, then rename it over `path`."""
    if path.is_symlink():
        raise FatalError(f"{path} is a symbolic link; pass the real file instead")
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise FatalError(
            f"cannot write the state file {path}: {exc.strerror}"
        ) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise FatalError(
                f"cannot write the state file {path}: {exc.strerror}"
            ) from None
        raise


class RunLock:
    """One run per state file: a second run stops at once, naming the running one.

    The lock is the kernel's (flock), so it goes with the process that holds
    it: a run killed with -9 leaves no stale lock behind. The thread that
    holds it may take it again, a no-op (--follow holds it across its runs).
    """

    held: ClassVar[dict[Path, int]] = {}  # lock file -> the thread holding it

    def __init__(self, state_path: Path | None) -> None:
        self.path = (
            None
            if state_path is None
            else state_path.with_name(state_path.name + ".lock").absolute()
        )
        self.file: IO[Any] | None = None

    def __enter__(self) -> Self:
        if self.path is None or RunLock.held.get(self.path) == threading.get_ident():
            return self
        try:
            lock = open_private(self.path, "r+")
        except OSError as exc:
            raise FatalError(f"cannot lock {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock.read().decode("ascii", "replace").strip() or "unknown"
            lock.close()
            raise LockHeld(
                f"another run of this link holds {self.path} (PID {holder}); wait for it to"
                " finish or stop it, then run again"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()).encode())
        lock.flush()
        self.file = lock
        RunLock.held[self.path] = threading.get_ident()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.file is not None and self.path is not None:
            RunLock.held.pop(self.path, None)
            self.file.close()
            self.file = None


class LockHeld(FatalError):
    """Another run holds the state file; this run must change nothing."""


def load_state(path: Path | None, link: str) -> dict[str, Any]:
    """The state file's contents; a damaged file or another link's stops the run."""
    if path is None or not path.exists():
        return {}
    try:
        with open_private(path, "rb") as source:
            data = source.read()
    except OSError as exc:
        raise FatalError(f"cannot read the state file {path}: {exc.strerror}") from None
    try:
        state = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError included
        raise FatalError(f"state file {path} is not valid JSON: {exc}") from None
    if not isinstance(state, dict):
        raise FatalError(
            f"state file {path} is not a JSON object; pass another --state file"
        )
    problem = _state_problem(state, link)
    if problem:
        raise FatalError(f"state file {path} {problem}; pass another --state file")
    return state


def _state_problem(state: dict[str, Any], link: str) -> str | None:
    owner = state.get("link")
    if owner is not None and owner != link:
        return f"belongs to the link {owner!r}, not {link!r}"
    place = state.get("checkpoint")
    if place is not None and not (
        isinstance(place, dict)
        and isinstance(place.get("position"), dict)
        and type(place.get("done")) is int
        and place["done"] >= 0
    ):
        return "has a damaged checkpoint"
    return None


def save_state(path: Path | None, state: dict[str, Any]) -> None:
    """Write the state atomically: a temporary file, then a rename over the old one."""
    if path is not None:
        write_atomically(path, redact(json.dumps(state, indent=2, sort_keys=True)))


class DeadLetter:
    """Appends failed records, with the stage and reason, as JSON Lines.

    A record already in the file (from a run that was killed before its
    checkpoint moved past it) is not written a second time.
    """

    def __init__(self, path: Path | None, link: str) -> None:
        self.path = path
        self.link = link
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        if path is not None and path.exists():
            try:
                with open_private(path, "rb") as lines:
                    for line in lines:
                        self._remember(line)
            except OSError as exc:
                raise FatalError(
                    f"cannot read the dead-letter file {path}: {exc.strerror}"
                ) from None

    def _remember(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            return
        if isinstance(entry, dict):
            self.seen.add(self._fingerprint(entry.get("stage"), entry.get("record")))

    @staticmethod
    def _fingerprint(stage: Any, record: Any) -> str:
        return f"{stage}:{json.dumps(record, sort_keys=True, default=str)}"

    def add(
        self,
        stage: str,
        reason: str,
        record: Any,
        status: int | None = None,
        attempts: int = 0,
    ) -> None:
        log.warning("dead-letter (%s): %s", stage, redact(reason))
        if self.path is None:
            return
        fingerprint = self._fingerprint(stage, record)
        with self.lock:
            if fingerprint in self.seen:
                return
            self.seen.add(fingerprint)
        entry = {
            "time": _now(),
            "link": self.link,
            "stage": stage,
            "reason": redact(reason),
            "status": status,
            "attempts": attempts,
            "record": record,
        }
        line = redact(_json_line(entry))
        try:
            with self.lock, open_private(self.path, "a") as out:
                out.write(line.encode("utf-8") + b"\n")
                out.flush()
                os.fsync(out.fileno())
        except (
            OSError
        ) as exc:  # the record would be lost: stop before the checkpoint passes it
            raise FatalError(
                f"cannot write the dead-letter file {self.path}: {exc.strerror}"
            ) from None


def read_replay(path: Path) -> Iterator[tuple[dict[str, Any], int, Any]]:
    """Yield the records of a dead-letter file, to send them again.

    The whole file is checked first, so a damaged line stops the replay before
    anything is sent.
    """
    for _ in _replay_entries(path):
        pass
    for number, record in _replay_entries(path):
        yield {"replay": str(path)}, number, record


def _replay_entries(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        lines = open_private(path, "rb")  # bytes: a line that is not UTF-8 is damaged
    except OSError as exc:
        raise FatalError(
            f"cannot read the replay file {path}: {exc.strerror}"
        ) from None
    with lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):  # UnicodeDecodeError included
                entry = None
            if not isinstance(entry, dict) or "record" not in entry:
                raise FatalError(
                    f'{path}:{number}: not a dead-letter entry (a JSON object with a "record");'
                    " fix or delete that line, then replay again"
                )
            yield number, entry["record"]
