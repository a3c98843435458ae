"""Keys the configuration holds but nothing may show (TCP MD5 passwords, RFC 2385).

Kept apart from :mod:`speaker.tcp_security` (which sets socket options) so that the
configuration, below the adapters, can hold a key without importing ``socket``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TCP_MD5SIG_MAXKEYLEN = 80
"""The longest key the kernel takes (linux/tcp.h)."""


@dataclass(frozen=True)
class Secret:
    """A key that must never be shown: not in logs, ``show``, ``--json`` or metrics.

    ``repr``/``str`` say only that it is set, so a config or event that holds one can be
    printed safely; equality compares the value (a changed key is a changed configuration).
    """

    value: bytes = field(repr=False)
    origin: str = "inline"
    """Where it came from (``inline`` or the file's path): safe to show."""

    def __repr__(self) -> str:
        return f"Secret(<{len(self.value)} octets from {self.origin}>)"

    __str__ = __repr__
