"""What a lab is made of: node descriptions and the named mixes of the seed scenario.

A node is one Calico host: an address on the shared L2 segment, the /26 IPAM block it owns (and
announces), one pod inside that block, and which BGP implementation runs on it (real BIRD or our
speaker).  A dual-stack node also has an IPv6 address on the segment, an IPv6 block and an IPv6
pod address (``with_ipv6`` derives them; docs/lab.md has the addressing plan).  Validation
happens here so that a bad lab description fails before any namespace is created, with an error
that names the offending field.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

Kind = Literal["bird", "speaker"]
"""Which BGP implementation runs on a node."""

Family = Literal[4, 6]
"""An address family: IPv4 (``bird``, bird.ctl) or IPv6 (``bird6``, bird6.ctl)."""
FAMILIES: Final[tuple[Family, ...]] = (4, 6)

KINDS: Final[tuple[Kind, ...]] = ("bird", "speaker")
BIRD: Final[Kind] = "bird"
SPEAKER: Final[Kind] = "speaker"

DEFAULT_ASN: Final = 64512
DEFAULT_POOL: Final = "10.244.0.0/16"
DEFAULT_PREFIXLEN: Final = 24
DEFAULT_POOL6: Final = "fd00:10:244::/64"
"""The IPv6 pool of a dual-stack lab (ULA); each node's IPv6 block is a /122 inside it."""
NODE_NET6: Final = "fd00:192:168::/64"
"""The segment's IPv6 subnet (ULA): node ``a.b.c.d`` gets ``fd00:192:168::<c>:<d>`` in it."""

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
    address6, block6, pod_address6: the IPv6 counterparts (all three or none): the node's
        IPv6 address on the segment (bird6's source address), its IPv6 block, the pod's IPv6
        address inside it.  Set on the nodes of a dual-stack lab.
    """

    name: str
    address: str
    kind: Kind
    block: str
    pod_address: str
    asn: int = DEFAULT_ASN
    password: str | None = None
    ttl_security: bool = False
    address6: str | None = None
    block6: str | None = None
    pod_address6: str | None = None

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
        self._check_ipv6()

    def _check_ipv6(self) -> None:
        """The IPv6 parts: all or none, an address, a network, the pod inside the block."""
        parts = {
            "address6": self.address6,
            "block6": self.block6,
            "pod_address6": self.pod_address6,
        }
        given = [k for k, v in parts.items() if v is not None]
        if not given:
            return
        if len(given) != len(parts):
            missing = sorted(set(parts) - set(given))
            raise SpecError(
                f"node {self.name}: {', '.join(given)} given without {', '.join(missing)}"
            )
        try:
            addr6 = ipaddress.IPv6Address(str(self.address6))
        except ValueError as exc:
            raise SpecError(f"node {self.name}: address6 {self.address6!r} is not IPv6") from exc
        if addr6.is_loopback or addr6.is_multicast or addr6.is_unspecified or addr6.is_link_local:
            raise SpecError(f"node {self.name}: address6 {self.address6} is not a global unicast")
        try:
            block6 = ipaddress.IPv6Network(str(self.block6))
        except ValueError as exc:
            raise SpecError(
                f"node {self.name}: block6 {self.block6!r} is not an IPv6 network "
                "(host bits must be zero)"
            ) from exc
        try:
            pod6 = ipaddress.IPv6Address(str(self.pod_address6))
        except ValueError as exc:
            raise SpecError(
                f"node {self.name}: pod_address6 {self.pod_address6!r} is not IPv6"
            ) from exc
        if pod6 not in block6:
            raise SpecError(
                f"node {self.name}: pod_address6 {self.pod_address6} is outside block6 "
                f"{self.block6}"
            )

    @property
    def dual_stack(self) -> bool:
        """True when the node has its IPv6 parts (and so runs bird6 beside bird)."""
        return self.address6 is not None

    @property
    def protocol_name(self) -> str:
        """BIRD's name for the mesh session toward this node, as Calico renders it."""
        return mesh_protocol_name(self.address)

    @property
    def protocol_name6(self) -> str:
        """bird6's name for the IPv6 mesh session toward this node (``Mesh_fd00_192_168__80``)."""
        return mesh_protocol_name(self.ipv6("address6"))

    def ipv6(self, field: Literal["address6", "block6", "pod_address6"]) -> str:
        """One IPv6 part, or SpecError if the node is IPv4-only (so callers need no None case)."""
        value: str | None = getattr(self, field)
        if value is None:
            raise SpecError(f"node {self.name} has no {field}: it is not a dual-stack node")
        return value

    def address_of(self, family: Family) -> str:
        """The node's address on the segment in ``family`` (its BGP source address there)."""
        return self.address if family == 4 else self.ipv6("address6")

    def block_of(self, family: Family) -> str:
        """The node's block in ``family``."""
        return self.block if family == 4 else self.ipv6("block6")

    def pod_of(self, family: Family) -> str:
        """The pod's address in ``family``."""
        return self.pod_address if family == 4 else self.ipv6("pod_address6")

    def protocol_name_of(self, family: Family) -> str:
        """The mesh session's name toward this node in ``family``."""
        return self.protocol_name if family == 4 else self.protocol_name6


def mesh_protocol_name(address: str) -> str:
    """Calico's mesh protocol name: ``Mesh_`` + the address with ``.`` or ``:`` turned to ``_``.

    Calico's bird6 template splits the IPv6 text on ``:`` and joins with ``_``, so ``::``
    becomes ``__`` (``fd00:192:168::80`` -> ``Mesh_fd00_192_168__80``).
    """
    return "Mesh_" + address.replace(".", "_").replace(":", "_")


def node_address6(address: str, net6: str = NODE_NET6) -> str:
    """The dual-stack lab's IPv6 address for IPv4 ``a.b.c.d``: ``<net6>::<c>:<d>``.

    The two low octets are written with the same digits as IPv6 groups, so the address reads
    like its IPv4 twin: 192.168.0.80 -> fd00:192:168::80, 10.0.1.5 -> fd00:192:168::1:5.  Unique
    for nodes on one IPv4 segment of /16 or longer.
    """
    octets = address.split(".")
    net = ipaddress.IPv6Network(net6)
    text = str(net.network_address).rstrip(":") + f"::{octets[2]}:{octets[3]}"
    return str(ipaddress.IPv6Address(text))


def _same_offset(
    pool: ipaddress.IPv4Network, pool6: ipaddress.IPv6Network, addr: ipaddress.IPv4Address
) -> ipaddress.IPv6Address:
    return pool6.network_address + (int(addr) - int(pool.network_address))


def with_ipv6(node: NodeSpec, pool: str = DEFAULT_POOL, pool6: str = DEFAULT_POOL6) -> NodeSpec:
    """The node with its IPv6 parts derived from its IPv4 ones (dual-stack lab).

    address6: ``node_address6``.  block6: the block of the same size (a /26 holds 64 addresses,
    so a /122) at the same offset inside ``pool6`` as the IPv4 block has inside ``pool``;
    pod_address6 likewise.  10.244.152.128/26 is 0x9880 into 10.244.0.0/16, so its twin is
    fd00:10:244::9880/122 and pod 10.244.152.129 becomes fd00:10:244::9881.
    """
    try:
        pool_net = ipaddress.IPv4Network(pool)
        pool6_net = ipaddress.IPv6Network(pool6)
    except ValueError as exc:
        raise SpecError(f"pools {pool!r}, {pool6!r}: want an IPv4 and an IPv6 network") from exc
    block = ipaddress.IPv4Network(node.block)
    if not block.subnet_of(pool_net):
        raise SpecError(f"node {node.name}: block {node.block} is not inside pool {pool}")
    if 128 - pool6_net.prefixlen < 32 - pool_net.prefixlen:
        raise SpecError(f"pool6 {pool6} is smaller than pool {pool}: no twin for every block")
    host_bits = 32 - block.prefixlen
    block6 = ipaddress.IPv6Network(
        (_same_offset(pool_net, pool6_net, block.network_address), 128 - host_bits)
    )
    pod6 = _same_offset(pool_net, pool6_net, ipaddress.IPv4Address(node.pod_address))
    return replace(
        node,
        address6=node_address6(node.address),
        block6=str(block6),
        pod_address6=str(pod6),
    )


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


def validate_lab(
    nodes: Sequence[NodeSpec], pool: str, prefixlen: int, pool6: str | None = None
) -> None:
    """Check that the nodes form a coherent mesh: unique names/addresses, one subnet, blocks
    disjoint and inside the pool (and with ``pool6``, the same for the IPv6 parts, which every
    node must then have).  Raises SpecError naming the first problem found."""
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
    if pool6 is not None:
        _validate_ipv6(nodes, pool6)


def _validate_ipv6(nodes: Sequence[NodeSpec], pool6: str) -> None:
    """The IPv6 half of validate_lab: every node dual-stack, unique addresses on one /64,
    blocks disjoint inside ``pool6``."""
    try:
        pool6_net = ipaddress.IPv6Network(pool6)
    except ValueError as exc:
        raise SpecError(f"pool6 {pool6!r} is not an IPv6 network") from exc
    seen: dict[ipaddress.IPv6Address, str] = {}
    blocks6: list[tuple[ipaddress.IPv6Network, str]] = []
    subnet6: ipaddress.IPv6Network | None = None
    for node in nodes:
        if not node.dual_stack:
            raise SpecError(f"node {node.name} has no IPv6 parts in a dual-stack lab")
        iface = ipaddress.IPv6Interface(f"{node.ipv6('address6')}/64")
        if iface.ip in seen:
            raise SpecError(f"duplicate node address6 {iface.ip} ({seen[iface.ip]}, {node.name})")
        seen[iface.ip] = node.name
        subnet6 = subnet6 or iface.network
        if iface.network != subnet6:
            raise SpecError(f"node {node.name}: {iface} is not in {subnet6} (one L2 segment)")
        block6 = ipaddress.IPv6Network(node.ipv6("block6"))
        if not block6.subnet_of(pool6_net):
            raise SpecError(f"node {node.name}: block6 {block6} is not inside pool6 {pool6}")
        for other, owner in blocks6:
            if block6.overlaps(other):
                raise SpecError(f"node {node.name}: block6 {block6} overlaps {other} of {owner}")
        blocks6.append((block6, node.name))
