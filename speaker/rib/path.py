"""Paths and where they come from: one :class:`Path` per (prefix, source, path identifier).

A path is a small immutable tuple (``NamedTuple``, like the codec's ``Prefix`` and ``Nlri``):
a 100,000-prefix feed creates 100,000 of them, and a tuple is the cheapest frozen value
Python has.  What a path shares with its siblings -- its attributes and its peer -- are
references to one shared object each (:class:`AttributeSet`, :class:`PeerInfo`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from speaker.rib.attrs import AttributeSet, IpAddress
from speaker.wire.nlri import Prefix

_new: Any = tuple.__new__  # builds a NamedTuple without its Python-level __new__


class SourceKind(Enum):
    """Where a route came from; each kind has a BIRD protocol preference (see PREFERENCE)."""

    BGP = "bgp"  # learned from a BGP peer
    LOCAL = "static"  # originated here: our blocks (BIRD's ``protocol static`` blackholes)
    KERNEL = "kernel"  # learned from the kernel table (BIRD's ``learn``: borrowed pod /32s)
    DIRECT = "direct"  # a connected network (BIRD's ``protocol direct``)

    # Members are singletons: hash by identity, in C (Enum's own __hash__ is Python code,
    # and every preference lookup hashes a kind)
    __hash__ = object.__hash__


PREFERENCE: dict[SourceKind, int] = {
    SourceKind.DIRECT: 240,  # DEF_PREF_DIRECT
    SourceKind.LOCAL: 200,  # DEF_PREF_STATIC
    SourceKind.BGP: 100,  # DEF_PREF_BGP
    SourceKind.KERNEL: 10,  # DEF_PREF_INHERITED: routes learned from the kernel
}
"""BIRD 1.6's default protocol preferences (nest/protocol.h): the first thing BIRD's
``rte_better`` compares, before any BGP rule.  ``birdc show route`` prints them in parentheses:
``blackhole [static1] * (200)``, ``via 192.168.0.82 [Mesh_192_168_0_82] * (100/0)``,
``dev cali... [kernel1] * (10)``."""

LOCAL_SOURCE_NAMES = {
    SourceKind.LOCAL: "static1",
    SourceKind.KERNEL: "kernel1",
    SourceKind.DIRECT: "direct1",
}
"""The names BIRD gives the unnamed protocols of Calico's bird.cfg, used as source names."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who a path came from: one object per peer (or local source), shared by its paths.

    ``name`` identifies the source everywhere in the RIB (BIRD's protocol name, e.g.
    ``Mesh_192_168_0_82``, ``static1``).  ``address`` is None for local sources.
    """

    name: str
    address: IpAddress | None
    router_id: ipaddress.IPv4Address
    asn: int
    internal: bool
    rr_client: bool = False

    @classmethod
    def mesh(
        cls,
        address: IpAddress | str,
        asn: int,
        router_id: ipaddress.IPv4Address | str | None = None,
    ) -> PeerInfo:
        """A Calico node-to-node mesh peer: iBGP, named ``Mesh_<address with '_'>``.

        ``router_id`` defaults to the peer's address (Calico sets router id = node IP)."""
        addr = ipaddress.ip_address(address)
        if router_id is None:
            if not isinstance(addr, ipaddress.IPv4Address):
                raise ValueError(f"mesh peer {addr}: an IPv6 peer needs an explicit router id")
            router_id = addr
        rid = ipaddress.IPv4Address(router_id)
        name = "Mesh_" + str(addr).replace(".", "_").replace(":", "_")
        return cls(name, addr, rid, asn, True)

    @classmethod
    def local(
        cls, kind: SourceKind, router_id: ipaddress.IPv4Address, asn: int, name: str | None = None
    ) -> PeerInfo:
        """The pseudo-peer of a local source (``static1``, ``kernel1``, ``direct1``)."""
        return cls(name or LOCAL_SOURCE_NAMES[kind], None, router_id, asn, True)

    def __str__(self) -> str:
        return self.name if self.address is None else str(self.address)


class Path(NamedTuple):
    """One path for one prefix: frozen; a state change (stale) makes a new path.

    ``path_id`` is the peer's add-path identifier (None without add-path).  ``since`` is when
    the path arrived (the RIB's clock), as ``birdc show route`` prints it.  A stale path
    (graceful restart) is a :class:`StalePath`: its class says so, not a seventh field,
    because a 7-field tuple is 112 bytes and a 6-field one 96 (100,000 routes: 1.6 MB).
    """

    prefix: Prefix
    path_id: int | None
    attrs: AttributeSet
    peer: PeerInfo
    source: SourceKind
    since: float

    @property
    def stale(self) -> bool:
        """Kept from before the peer's restart, until it refreshes or the restart ends."""
        return False

    @property
    def next_hop(self) -> IpAddress | None:
        """The path's next hop (NEXT_HOP, MP_REACH's global address, or a kernel gateway)."""
        hops = self.attrs.next_hops
        return hops[0] if hops else None

    @property
    def key(self) -> tuple[str, int | None]:
        """What identifies the path within its prefix: source name and path identifier."""
        return (self.peer.name, self.path_id)

    @property
    def via(self) -> str:
        """How to reach the prefix along this path: ``192.168.0.82``, ``blackhole``, ..."""
        nh = self.next_hop
        if nh is not None:
            return str(nh)
        if self.source is SourceKind.LOCAL:
            return "blackhole"
        return "dev"

    def same_route(self, other: Path | None) -> bool:
        """Same source, path id, attributes and stale state (the arrival time may differ)."""
        return (
            other is not None
            and self.attrs is other.attrs
            and self.peer is other.peer
            and self.path_id == other.path_id
            and self.__class__ is other.__class__  # stale or not
            and self.source is other.source
        )

    def marked_stale(self) -> Path:
        """This path, stale (graceful restart): the same fields as a :class:`StalePath`."""
        stale: Path = _new(StalePath, self)
        return stale

    def describe(self) -> str:
        """``10.244.152.128/26 via 192.168.0.80 [Mesh_192_168_0_80 path-id 4] (stale)``."""
        extra = "" if self.path_id is None else f" path-id {self.path_id}"
        stale = " (stale)" if self.stale else ""
        return f"{self.prefix} via {self.via} [{self.peer.name}{extra}]{stale}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "prefix": str(self.prefix),
            "path_id": self.path_id,
            "source": self.source.value,
            "peer": self.peer.name,
            "peer_address": None if self.peer.address is None else str(self.peer.address),
            "via": self.via,
            "stale": self.stale,
            "since": self.since,
            "attributes": self.attrs.to_dict(),
        }


class StalePath(Path):
    """A path kept stale through a peer's graceful restart (RFC 4724 4.2): a path like any
    other (equal to its fresh twin as a tuple: compare with :meth:`Path.same_route`)."""

    __slots__ = ()

    @property
    def stale(self) -> bool:
        return True

    def marked_stale(self) -> Path:
        return self


def same_paths(a: tuple[Path, ...], b: tuple[Path, ...]) -> bool:
    """True if two path sets hold the same routes in the same order (see Path.same_route)."""
    if len(a) != len(b):
        return False
    return all(x.same_route(y) for x, y in zip(a, b, strict=True))
