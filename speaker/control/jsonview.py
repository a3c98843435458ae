"""The JSON side of the control socket: ``json <command>`` returns one document.

Design (docs/config.md, "JSON on the control socket"): a command prefixed with ``json``
is answered with exactly two lines::

    1101-{"schema": 1, "speaker": "0.1.0", "command": "show protocols", "time": ..., "data": {...}}
    0000

The document is compact JSON on one line (JSON escapes every newline inside strings, so
the line protocol is kept).  Errors that stop a command (unknown protocol, syntax) are the
ordinary BIRD error lines, so a client checks the code before reading JSON.  Values:
addresses and prefixes as strings, times as ISO 8601 with offset, enums as their value,
tuples as lists, dataclasses as objects with their field names (snake_case).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from speaker import __version__

__all__ = ["JSON_SCHEMA", "json_document", "to_jsonable"]

JSON_SCHEMA = 1


def to_jsonable(value: Any) -> Any:
    """Views (frozen dataclasses) and their field types as plain JSON values."""
    if value is None or isinstance(value, bool | float | str) or type(value) is int:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int):  # an int subclass of ours (a Prefix): its text
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, IPv4Address | IPv4Network | IPv6Address | IPv6Network):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot put {type(value).__name__} into JSON")


def json_document(command: str, data: Any, now: datetime) -> str:
    """The one-line JSON reply to ``json <command>``."""
    doc = {
        "schema": JSON_SCHEMA,
        "speaker": __version__,
        "command": command,
        "time": now.isoformat(),
        "data": to_jsonable(data),
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=False)
