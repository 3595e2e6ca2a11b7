"""Spec and mapping text made safe for each place it lands in generated code."""

from __future__ import annotations

from typing import Any


class Identifier(str):
    """A name the script defines, written as itself: `sign=sign_source_request`."""

    def __repr__(self) -> str:
        if not self.isidentifier():
            raise ValueError(f"{str(self)!r} is not a Python name")
        return str(self)


def py_literal(value: Any) -> str:
    """A Python literal for a value from a spec or mapping, in ASCII.

    repr() escapes quotes and control characters; non-ASCII characters become
    escapes too, so a lookalike letter (Cyrillic es for Latin c) cannot pass for another.
    """
    return repr(value).encode("ascii", "backslashreplace").decode("ascii")


def comment(value: Any) -> str:
    """Text safe inside a `#` comment: one line, no control characters, ASCII.

    Non-ASCII characters are shown as escapes (\\u0441), so no lookalike
    letter can make a comment read as something it is not.
    """
    text = " ".join(str(value).split())
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable.encode("ascii", "backslashreplace").decode("ascii")


def docstring(value: Any) -> str:
    """Text safe inside a triple-quoted docstring: repr-escaped, quotes kept out."""
    return repr(comment(value)).replace('"""', '\\"\\"\\"')
