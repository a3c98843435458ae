"""The subset of Calico's label selector language that BGPPeer selectors use in practice.

Supported (and nothing else, so that a selector we cannot read is refused, never guessed):
``all()``, ``has(key)``, ``!has(key)``, ``key == 'value'``, ``key != 'value'`` (single or
double quotes), and terms joined by ``&&``.  ``||``, parentheses, ``in {...}``, ``contains``,
``starts with`` are refused with a SelectorError naming the selector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["SelectorError", "parse_selector"]

Matcher = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9_./-]+"
_TERMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^all\(\s*\)$"), "all"),
    (re.compile(rf"^has\(\s*({_KEY})\s*\)$"), "has"),
    (re.compile(rf"^!\s*has\(\s*({_KEY})\s*\)$"), "not_has"),
    (re.compile(rf"^({_KEY})\s*==\s*(?:'([^']*)'|\"([^\"]*)\")$"), "eq"),
    (re.compile(rf"^({_KEY})\s*!=\s*(?:'([^']*)'|\"([^\"]*)\")$"), "ne"),
]


class SelectorError(ValueError):
    """A selector outside the supported subset; says which part."""


def _term(text: str, selector: str) -> Matcher:
    for pattern, kind in _TERMS:
        m = pattern.match(text)
        if m is None:
            continue
        if kind == "all":
            return lambda labels: True
        key = m.group(1)
        if kind == "has":
            return lambda labels: key in labels
        if kind == "not_has":
            return lambda labels: key not in labels
        value = m.group(2) if m.group(2) is not None else m.group(3)
        if kind == "eq":
            return lambda labels: labels.get(key) == value
        return lambda labels: labels.get(key) != value
    raise SelectorError(f"selector {selector!r}: cannot read {text!r} (supported: all(), "
                        f"has(k), !has(k), k == 'v', k != 'v', joined by &&)")


def parse_selector(selector: str) -> Matcher:
    """A function of a node's labels telling whether the selector matches them."""
    if not selector.strip():
        raise SelectorError("empty selector")
    if "||" in selector or "(" in selector.replace("all(", "").replace("has(", ""):
        raise SelectorError(f"selector {selector!r}: || and parentheses are not supported")
    terms = [_term(t.strip(), selector) for t in selector.split("&&")]
    return lambda labels: all(t(labels) for t in terms)
