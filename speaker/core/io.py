"""What the speaker core asks of its adapters, and what it needs from them.

The core does no I/O.  It hands out three kinds of work: *actions* for the session transport
(:class:`Dial`, :class:`Close`, :class:`Forget`), bytes per connection (``data_to_send``), and
kernel intents through a :class:`KernelPort` (``apply``, a batch of intents per RIB delta, and
``converged``; the asyncio :class:`~speaker.kernel.bridge.KernelBridge` is one, a recording
fake is another).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from speaker.kernel.model import KernelIntent


class KernelPort(Protocol):
    """Where kernel intents go (implemented by the kernel bridge)."""

    def apply(self, intents: Sequence[KernelIntent]) -> None:
        """One RIB delta's intents, in order: ``(key, hops)`` wants the prefix ``key``
        (:func:`~speaker.kernel.model.prefix_key`) via ``hops`` (one shared tuple per
        next-hop set; ``()``: a blackhole), ``(key, None)`` wants nothing there."""
        ...

    def converged(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Dial:
    """Open TCP to the peer, then report ``connection_made`` or ``connection_failed``."""

    peer: str
    conn_id: int
    address: IPv4Address | IPv6Address
    port: int
    source_address: IPv4Address | IPv6Address | None
    timeout: float


@dataclass(frozen=True, slots=True)
class Close:
    """Write ``data`` (what the connection still had to send: a NOTIFICATION), then close;
    abandon the attempt if the connection is still being made."""

    peer: str
    conn_id: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Forget:
    """The peer is gone (deconfigured): close whatever connection of it is left."""

    peer: str


Action = Dial | Close | Forget
