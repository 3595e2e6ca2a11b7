"""One exception family for every problem p2pgen reports about its inputs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_MESSAGE = 2000  # characters of one message; longer ones quote a hostile value


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in an input file, located as precisely as we can."""

    file: str
    line: int = 0
    column: int = 0
    message: str = field(default="", compare=True)
    pointer: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        if self.pointer:
            where += f": at {self.pointer.translate(_VISIBLE_CONTROLS)}"
        prefix = "warning: " if self.severity == "warning" else ""
        message = self.message.translate(_VISIBLE_CONTROLS)
        if len(message) > MAX_MESSAGE:  # a value quoted from a hostile file
            message = message[:MAX_MESSAGE] + f"... ({len(message):,} characters)"
        return f"{where}: {prefix}{message}"


# A newline or other control character from an input file must not break a
# message into lines that look like other messages.
_VISIBLE_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(32), 0x7F, 0x85)} | {
    0x2028: "\\u2028",  # line and paragraph separators: line breaks to some tools
    0x2029: "\\u2029",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


class P2pgenError(Exception):
    """Bad input: carries every problem found, so they can be reported together."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(
        cls,
        file: str,
        message: str,
        *,
        line: int = 0,
        column: int = 0,
        pointer: str = "",
    ) -> P2pgenError:
        return cls([Problem(file, line, column, message, pointer)])


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return a "; did you mean 'x'?" suffix when a candidate is close to name."""
    options = sorted({str(c) for c in candidates})
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"; did you mean {close[0]!r}?" if close else ""
