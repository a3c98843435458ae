"""What a lab is made of: node descriptions and the named mixes of the seed scenario.

A node is one Calico host: an address on the shared L2 segment, the /26 IPAM block it owns (and
announces), one pod inside that block, and which BGP implementation runs on it (real BIRD or our
speaker).  Validation happens here so that a bad lab description fails before any namespace is
created, with an error that names the offending field.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["bird", "speaker"]
"""Which BGP implementation runs on a node."""

KINDS: Final[tuple[Kind, ...]] = ("bird", "speaker")
BIRD: Final[Kind] = "bird"
SPEAKER: Final[Kind] = "speaker"

DEFAULT_ASN: Final = 64512
DEFAULT_POOL: Final = "10.244.0.0/16"
DEFAULT_PREFIXLEN: Final = 24

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_RESERVED_NAMES: Final = frozenset({"br"})


class SpecError(ValueError):
    """A lab description is invalid; the message names the field and the value."""


@dataclass(frozen=True)
class NodeSpec:
    """One lab node (a Calico host).

    name: short lowercase identifier (``node80``); used in namespace and file names.
    address: the node's IPv4 address on the shared segment (router id and BGP source address).
    kind: ``"bird"`` or ``"speaker"``.
    block: the node's IPAM block, announced by BGP and blackholed locally (``10.244.42.64/26``).
    pod_address: the single pod's address, inside ``block``.
    asn: the node's AS number (iBGP mesh: all equal by default).
    password: the TCP MD5 key (RFC 2385) this node uses on all its sessions (Calico's BGPPeer
        ``password``; BIRD ``password``, our ``password``), or None.
    ttl_security: GTSM (RFC 5082) on all its sessions (BIRD ``ttl security on``).
    """

    name: str
    address: str
    kind: Kind
    block: str
    pod_address: str
    asn: int = DEFAULT_ASN
    password: str | None = None
    ttl_security: bool = False

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name) or self.name in _RESERVED_NAMES:
            raise SpecError(
                f"node name {self.name!r}: want 1-16 chars [a-z0-9] starting with a letter, "
                f"not one of {sorted(_RESERVED_NAMES)}"
            )
        try:
            addr = ipaddress.IPv4Address(self.address)
        except ValueError as exc:
            raise SpecError(f"node {self.name}: address {self.address!r} is not IPv4") from exc
        if addr.is_loopback or addr.is_multicast or addr.is_unspecified:
            raise SpecError(f"node {self.name}: address {self.address} is not a unicast address")
        if self.kind not in KINDS:
            raise SpecError(f"node {self.name}: kind {self.kind!r} is not one of {KINDS}")
        try:
            block = ipaddress.IPv4Network(self.block)
        except ValueError as exc:
            raise SpecError(
                f"node {self.name}: block {self.block!r} is not an IPv4 network "
                "(host bits must be zero)"
            ) from exc
        try:
            pod = ipaddress.IPv4Address(self.pod_address)
        except ValueError as exc:
            raise SpecError(
                f"node {self.name}: pod_address {self.pod_address!r} is not IPv4"
            ) from exc
        if pod not in block:
            raise SpecError(
                f"node {self.name}: pod_address {self.pod_address} is outside block {self.block}"
            )
        if not 1 <= self.asn <= 0xFFFFFFFF:
            raise SpecError(f"node {self.name}: asn {self.asn} is not in 1..4294967295")

    @property
    def protocol_name(self) -> str:
        """BIRD's name for the mesh session toward this node, as Calico renders it."""
        return "Mesh_" + self.address.replace(".", "_")


def passive_toward(own_address: str, peer_address: str) -> bool:
    """Calico's rule: a node is passive toward a peer whose address is greater AS A STRING.

    ``"10.0.0.9" > "10.0.0.10"`` as text, so 10.0.0.10 is passive toward 10.0.0.9 and
    10.0.0.9 dials, although numerically it is the smaller address.
    """
    return peer_address > own_address


def make_node(
    address: str,
    kind: str,
    block: str,
    pod_address: str | None = None,
    *,
    name: str | None = None,
    asn: int = DEFAULT_ASN,
) -> NodeSpec:
    """Build a NodeSpec with defaults: name ``node<last octet>``, pod = first host of the block."""
    if kind not in KINDS:
        raise SpecError(f"kind {kind!r} is not one of {KINDS}")
    try:
        net = ipaddress.IPv4Network(block)
    except ValueError as exc:
        raise SpecError(f"block {block!r} is not an IPv4 network") from exc
    if pod_address is None:
        pod_address = str(net.network_address + 1)
    if name is None:
        name = "node" + address.rsplit(".", 1)[-1]
    return NodeSpec(
        name=name,
        address=address,
        kind=kind,
        block=block,
        pod_address=pod_address,
        asn=asn,
    )


# The seed scenario: node address -> (block, pod address).
SEED_NODES: Final[tuple[tuple[str, str, str], ...]] = (
    ("192.168.0.80", "10.244.152.128/26", "10.244.152.129"),
    ("192.168.0.81", "10.244.42.64/26", "10.244.42.65"),
    ("192.168.0.82", "10.244.103.64/26", "10.244.103.65"),
)

MIXES: Final[dict[str, tuple[Kind, Kind, Kind]]] = {
    "seed": ("bird", "speaker", "bird"),
    "bird": ("bird", "bird", "bird"),
    "speaker": ("speaker", "speaker", "speaker"),
}
"""Named kind assignments for the three seed nodes (.80, .81, .82)."""


def seed_nodes(kinds: Sequence[str] = ("bird", "bird", "bird")) -> list[NodeSpec]:
    """The seed's three nodes (.80/.81/.82 with their blocks and pods), kinds in that order."""
    if len(kinds) != len(SEED_NODES):
        raise SpecError(f"seed_nodes wants {len(SEED_NODES)} kinds, got {list(kinds)}")
    return [
        make_node(addr, kind, block, pod)
        for (addr, block, pod), kind in zip(SEED_NODES, kinds, strict=True)
    ]


def nodes_for_mix(mix: str) -> list[NodeSpec]:
    """Seed nodes for a mix: ``seed`` (speaker on .81), ``bird``, ``speaker``, or a comma list.

    A comma list gives the kinds of .80, .81, .82 in order, e.g. ``"speaker,bird,bird"``.
    """
    if mix in MIXES:
        return seed_nodes(MIXES[mix])
    kinds = [k.strip() for k in mix.split(",")]
    bad = [k for k in kinds if k not in KINDS]
    if bad or len(kinds) != len(SEED_NODES):
        raise SpecError(
            f"mix {mix!r}: want one of {sorted(MIXES)} or {len(SEED_NODES)} comma-separated "
            f"kinds from {KINDS}"
        )
    return seed_nodes(kinds)


def validate_lab(nodes: Sequence[NodeSpec], pool: str, prefixlen: int) -> None:
    """Check that the nodes form a coherent mesh: unique names/addresses, one subnet, blocks
    disjoint and inside the pool.  Raises SpecError naming the first problem found."""
    if not nodes:
        raise SpecError("a lab needs at least one node")
    try:
        pool_net = ipaddress.IPv4Network(pool)
    except ValueError as exc:
        raise SpecError(f"pool {pool!r} is not an IPv4 network") from exc
    if not 8 <= prefixlen <= 30:
        raise SpecError(f"prefixlen {prefixlen} is not in 8..30")
    seen_names: set[str] = set()
    seen_addrs: set[str] = set()
    subnet = ipaddress.IPv4Interface(f"{nodes[0].address}/{prefixlen}").network
    blocks: list[tuple[ipaddress.IPv4Network, str]] = []
    for node in nodes:
        if node.name in seen_names:
            raise SpecError(f"duplicate node name {node.name!r}")
        if node.address in seen_addrs:
            raise SpecError(f"duplicate node address {node.address}")
        seen_names.add(node.name)
        seen_addrs.add(node.address)
        iface = ipaddress.IPv4Interface(f"{node.address}/{prefixlen}")
        if iface.network != subnet:
            raise SpecError(
                f"node {node.name}: {node.address}/{prefixlen} is not in {subnet} "
                "(all nodes share one L2 segment)"
            )
        if iface.ip in (subnet.network_address, subnet.broadcast_address):
            raise SpecError(f"node {node.name}: {node.address} is the network/broadcast address")
        block = ipaddress.IPv4Network(node.block)
        if not block.subnet_of(pool_net):
            raise SpecError(f"node {node.name}: block {node.block} is not inside pool {pool}")
        for other, owner in blocks:
            if block.overlaps(other):
                raise SpecError(
                    f"node {node.name}: block {node.block} overlaps {other} of node {owner}"
                )
        blocks.append((block, node.name))
