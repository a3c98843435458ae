"""``speaker check-config``: every mistake of a file, each with its line, as text or JSON.

:func:`speaker.config.check_config_text` collects the mistakes; TOML gives a line only for
syntax errors, so for the others the key's line is found by a small scan of the source:
the table header (``[kernel]``, the n-th ``[[peer]]``) and then ``key =`` inside it.  Keys
written in ways the scan does not follow (dotted keys, inline tables) simply have no line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from speaker.config import Config, ConfigError, check_config_text, read_config_text

__all__ = ["ConfigCheck", "check_config", "key_line"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_PART = re.compile(r"^([A-Za-z0-9_-]+)(?:\[(\d+)\])?$")


def _split(key: str) -> tuple[str, int | None, str | None] | None:
    """``peer[1].address`` -> ("peer", 1, "address"); ``kernel.scan_time`` -> ("kernel",
    None, "scan_time"); ``router_id`` -> ("", None, "router_id"); list indexes on the last
    part (``blocks[0]``) are dropped: the line is the list's."""
    parts = key.split(".")
    if len(parts) > 2:
        return None
    head = _PART.match(parts[0])
    if head is None:
        return None
    if len(parts) == 1:
        if head.group(2) is not None:  # "peer[1]": the table itself
            return head.group(1), int(head.group(2)), None
        return "", None, head.group(1)
    leaf = _PART.match(parts[1])
    if leaf is None:
        return None
    index = int(head.group(2)) if head.group(2) is not None else None
    return head.group(1), index, leaf.group(1)


def key_line(text: str, key: str) -> int | None:
    """The 1-based line where ``key`` (as ConfigError names it) is written, or None."""
    split = _split(key)
    if split is None:
        return None
    table, index, leaf = split
    current = ""  # "" is the top level, before any header
    current_index: int | None = None
    seen: dict[str, int] = {}
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header is not None:
            current = header.group(2)
            if header.group(1) == "[[":
                current_index = seen.get(current, -1) + 1
                seen[current] = current_index
            else:
                current_index = None
            if current == table and current_index == index:
                if leaf is None:
                    return number
                header_line = number
            continue
        assign = _ASSIGN.match(line)
        if assign is None or leaf is None:
            continue
        if current == table and current_index == index and assign.group(1) == leaf:
            return number
    if table == "" and leaf is not None:
        # a table written as a value's name (``kernel = 1``) or missing; its header, if any
        return _table_line(text, leaf)
    return header_line  # the key is missing from its table: point at the table


def _table_line(text: str, name: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header is not None and header.group(2) == name:
            return number
    return None


@dataclass(frozen=True)
class ConfigCheck:
    """The outcome of checking one file: the config, or every error with its line."""

    source: str
    config: Config | None
    errors: tuple[ConfigError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``valid``, ``errors`` (file, line, key, problem, message) and on
        success the effective configuration's keys (``Config.to_dict``)."""
        doc: dict[str, Any] = {"source": self.source, "valid": self.ok, "errors": [
            {"file": e.source, "line": e.line, "key": e.key, "problem": e.problem,
             "message": location(e)} for e in self.errors
        ]}
        if self.config is not None:
            doc.update(self.config.to_dict())
        return doc


def location(error: ConfigError) -> str:
    """``FILE:LINE: KEY: PROBLEM`` (compilers' format, so editors can jump to it)."""
    where = error.source if error.line is None else f"{error.source}:{error.line}"
    return f"{where}: {error.key}: {error.problem}" if error.key else f"{where}: {error.problem}"


def check_config(path: str) -> ConfigCheck:
    """Read and check ``path``: every error, each with its line where it can be found."""
    try:
        text = read_config_text(path)
    except ConfigError as exc:
        return ConfigCheck(path, None, (exc,))
    config, errors = check_config_text(text, path)
    located = tuple(
        e if e.line is not None or not e.key
        else ConfigError(e.source, e.key, e.problem, key_line(text, e.key))
        for e in errors
    )
    ordered = tuple(sorted(located, key=lambda e: (e.line is None, e.line or 0)))
    return ConfigCheck(path, config, ordered)
