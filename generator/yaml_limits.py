"""Refuse YAML values that nothing downstream should meet.

Anchors and aliases that make a document recursive or enormous: PyYAML builds an alias as a second reference to the same object, so a "billion
laughs" document is small in memory but explodes as soon as anything walks it
as a tree (validation, models, messages). Its expanded size is counted here,
shared objects once each, before anything else looks at the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from generator.errors import Problem
from generator.mapping import Loc

# Values (scalars, lists, mappings) the document may hold once every alias is
# expanded. Stripe's spec, the largest real one we know, expands to ~1.5 million.
MAX_EXPANDED_VALUES = 20_000_000
# A mapping file is a few dozen lines; nothing in one needs more than this.
MAX_MAPPING_VALUES = 100_000


def unsafe_nodes(root: yaml.Node, loader: yaml.SafeLoader, file: str) -> list[Problem]:
    """Every unsafe value of a composed YAML document (see below), else its alias problems."""
    return list(_node_problems(root, loader, file)) or _alias_problems(
        root, loader, file
    )


def expansion_problem(document: Any, limit: int = MAX_EXPANDED_VALUES) -> str | None:
    """Why the document cannot be walked as a tree, or None when it can."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order walk: a deep document must not overflow the stack.
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        value, children_done = stack.pop()
        if not isinstance(value, dict | list):
            continue
        key = id(value)
        children = list(value.values()) if isinstance(value, dict) else value
        if children_done:
            on_path.discard(key)
            size = 1
            for child in children:
                size += sizes.get(id(child), 1) if isinstance(child, dict | list) else 1
            if size > limit:
                return (
                    f"anchors and aliases expand it to more than {limit:,}"
                    " values; write the repeated parts out"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            return "an alias refers to a value that contains it (a recursive alias); remove the loop"
        on_path.add(key)
        stack.append((value, True))
        stack.extend((child, False) for child in children)
    return None


NON_FINITE = {".nan", ".inf", "+.inf", "-.inf"}


def _node_problems(
    root: yaml.Node, loader: yaml.SafeLoader, file: str
) -> Iterator[Problem]:
    """Values no mapping needs and the rest of p2pgen must never meet.

    Keys that are lists or mappings, merge keys, numbers JSON cannot carry
    and lone surrogates.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: checked where it was anchored
            continue
        seen.add(id(node))
        loc = Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    yield loc.problem(
                        "merge keys (<<) are not supported; write the keys out"
                    )
                elif not isinstance(key, yaml.ScalarNode):
                    yield loc.problem(
                        "a key must be text, a number or true/false, not a list or mapping"
                    )
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
        else:
            yield from _scalar_problems(node, loader, loc)


def _alias_problems(
    root: yaml.Node, loader: yaml.SafeLoader, file: str
) -> list[Problem]:
    try:
        problem = expansion_problem(
            loader.construct_object(root, deep=True), MAX_MAPPING_VALUES
        )
    except yaml.constructor.ConstructorError:  # a mapping that contains itself
        problem = "an alias refers to a value that contains it (a recursive alias); remove the loop"
    return (
        [Loc(file, 1, 1).problem(f"the mapping file is refused: {problem}")]
        if problem
        else []
    )


def _scalar_problems(
    node: yaml.Node, loader: yaml.SafeLoader, loc: Loc
) -> Iterator[Problem]:
    text = str(node.value)
    if node.tag == "tag:yaml.org,2002:float" and text.lower() in NON_FINITE:
        yield loc.problem(
            f"{text} is not a finite number, which JSON cannot carry; remove it"
        )
    elif node.tag == "tag:yaml.org,2002:int" and (
        len(text) > 40 or abs(loader.construct_object(node)) >= 2**63
    ):
        yield loc.problem(
            f"{text[:20]}{'...' if len(text) > 20 else ''} is larger than a 64-bit integer; APIs cannot take it"
        )
    elif any("\ud800" <= char <= "\udfff" for char in text):
        yield loc.problem(
            "the text holds a lone surrogate (such as \\udc80), which is not a character; remove it"
        )
