"""Which operation parameter a mapping's parameter name means.

A name is a parameter as the spec writes it (`limit`, or `created[gte]` where a
spec names it so), or a dotted path into an object parameter (`created.gte`
for Stripe's deepObject `created`), sent by the parameter's style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generator.errors import did_you_mean
from generator.schemas import Miss, Walker
from generator.specs import Operation, Parameter

BRACKETS = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class ParamRef:
    """A parameter, and the keys a dotted name reaches inside it."""

    param: Parameter
    keys: tuple[str, ...] = ()


def find_param(walker: Walker, op: Operation, name: str) -> ParamRef | str:
    """The parameter `name` means, or why none is (a message without the name)."""
    known = {p.name: p for p in op.parameters}
    if name in known:
        return ParamRef(known[name])
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        param = known.get(".".join(parts[:cut]))
        if param is None:
            continue
        keys = tuple(parts[cut:])
        if not _is_object(walker, param):
            return f"parameter {param.name!r} is not an object, so it has no key {keys[0]!r}"
        if param.schema is not None:
            found = walker.find(param.schema, ".".join(keys))
            if isinstance(found, Miss):
                return f"object parameter {param.name!r}: {found.describe()}"
        return ParamRef(param, keys)
    return f"no parameter {name!r}{_hint(walker, name, known)}"


def _hint(walker: Walker, name: str, known: dict[str, Parameter]) -> str:
    """`created[gte]` for an object parameter `created` is `created.gte`, and back."""
    base, _, rest = name.partition("[")
    if rest and base in known and _is_object(walker, known[base]):
        dotted = ".".join([base, *BRACKETS.findall("[" + rest)])
        return (
            f"; {base!r} is an object parameter: write {dotted!r}, which is sent"
            f" by its style ({known[base].style or 'form'})"
        )
    parts = name.split(".")
    bracketed = parts[0] + "".join(f"[{p}]" for p in parts[1:])
    if len(parts) > 1 and bracketed in known:
        return f"; the spec names it {bracketed!r}: write that"
    return did_you_mean(name, list(known))


def _is_object(walker: Walker, param: Parameter) -> bool:
    if param.style == "deepObject":
        return True
    if param.schema is None:
        return False
    shape = walker.shape(param.schema)
    return "object" in shape.types or bool(shape.properties) or shape.free_form
