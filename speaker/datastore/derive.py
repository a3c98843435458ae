"""From a snapshot of Calico's etcd keys to this node's Config: what confd writes for BIRD.

A pure function (no I/O, no clock), so the whole mapping is tested on snapshots built in the
tests, and the watcher (speaker.datastore.etcd) only has to keep the snapshot current.  It
follows Calico's confd templates: bird.cfg (router id, local AS, the node-to-node mesh with
the text-order passive rule, Global_/Node_ peers), bird_aggr.cfg (confirmed block affinities
announced, with a blackhole) and bird_ipam.cfg (pools; disabled pools and disableBGPExport),
and their IPv6 twins bird6.cfg, bird6_aggr.cfg and bird6_ipam.cfg: one speaker plays both
daemons, so both files' peers, blocks and pools land in one Config (docs/datastore.md,
"IPv6 (dual stack)").  Each bad key is one Problem naming it; the rest is still used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from speaker.config import (
    ANY_ADDRESS,
    Config,
    OriginateConfig,
    PeerConfig,
    PoolsConfig,
    calico_passive,
)
from speaker.datastore.model import (
    AFFINITY_PREFIX,
    BGPCONFIG_KEY,
    BGPPEER_PREFIX,
    BLOCK6_PREFIX,
    BLOCK_PREFIX,
    IPPOOL_PREFIX,
    NODE_PREFIX,
    Affinity,
    BGPConfiguration,
    BGPPeer,
    IpAddress,
    IpNetwork,
    IPPool,
    Node,
    Problem,
    Snapshot,
    parse_affinity,
    parse_bgp_configuration,
    parse_bgp_peer,
    parse_ip_pool,
    parse_node,
)
from speaker.datastore.selector import SelectorError, parse_selector

__all__ = ["Derivation", "derive_config"]


@dataclass(frozen=True)
class Derivation:
    """The derived Config (None when this node cannot peer at all) and every problem seen."""

    config: Config | None
    problems: tuple[Problem, ...]


@dataclass
class _Data:
    nodes: dict[str, Node]
    bgp: BGPConfiguration
    peers: list[BGPPeer]
    pools: list[IPPool]
    affinities: list[tuple[str, Affinity]]


def _read(snapshot: Snapshot, problems: list[Problem]) -> _Data:
    data = _Data(nodes={}, bgp=BGPConfiguration(), peers=[], pools=[], affinities=[])
    for key in sorted(snapshot):
        value = snapshot[key]
        try:
            if key.startswith(NODE_PREFIX):
                node = parse_node(key, value)
                data.nodes[node.name] = node
                problems.extend(Problem(key, warning) for warning in node.warnings)
            elif key == BGPCONFIG_KEY:
                data.bgp = parse_bgp_configuration(key, value)
            elif key.startswith(BGPPEER_PREFIX):
                data.peers.append(parse_bgp_peer(key, value))
            elif key.startswith(IPPOOL_PREFIX):
                data.pools.append(parse_ip_pool(key, value))
            elif key.startswith(AFFINITY_PREFIX):
                affinity = parse_affinity(key, value)
                if affinity is not None:
                    data.affinities.append((key, affinity))
            elif key.startswith((BLOCK_PREFIX, BLOCK6_PREFIX)):
                _check_json(key, value)
        except Problem as problem:
            problems.append(problem)
    return data


def _check_json(key: str, value: bytes) -> None:
    """Blocks are not used (affinities say what is ours) but a corrupt one is reported."""
    import json

    try:
        json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(key, f"not valid JSON ({exc})") from None


def peer_name(prefix: str, address: IpAddress, port: int | None = None) -> str:
    """Calico's protocol name: Mesh_/Global_/Node_ + the address with ``.`` or ``:`` written
    ``_`` (+ ``_port_N``): ``Mesh_192_168_0_80``, ``Mesh_fd00_192_168__80``."""
    name = prefix + str(address).replace(".", "_").replace(":", "_")
    return f"{name}_port_{port}" if port is not None else name


def _own(me: Node, address: IpAddress) -> IpAddress | None:
    """Our address of ``address``'s family: the IPv4 one (bird.cfg) or the IPv6 one
    (bird6.cfg's ``source address``); None when the node has none of that family."""
    return me.address if address.version == 4 else me.address6


def _passive_reason(passive: bool, address: IpAddress, local: IpAddress, kind: str) -> str:
    """Worded exactly as speaker.config words it for a file, so both compare equal."""
    if passive:
        return (f"passive: peer \"{address}\" > own \"{local}\" ({kind}) compared as text, so "
                f"we wait and the peer dials (Calico rule)")
    return (f"active: peer \"{address}\" < own \"{local}\" ({kind}) compared as text, so we "
            f"dial (Calico rule)")


def _families(address: IpAddress) -> tuple[str, ...]:
    """One family per session, the address's, as BIRD 1.6's bird and bird6 make them."""
    return ("ipv6",) if address.version == 6 else ("ipv4",)


def _calico_node_peer(name: str, address: IpAddress, asn: int, own: IpAddress,
                      our_asn: int, port: int, source: IpAddress | None) -> PeerConfig:
    """A peer that is another Calico node: exactly one side dials (the text rule, compared
    with ``own``: our address of the peer's family, or ``source`` when set)."""
    local = source if source is not None else own
    passive = calico_passive(local, address)
    if source is not None:
        kind = "source_address"
    else:
        kind = "address6" if own.version == 6 else "router_id"
    return PeerConfig(name=name, address=address, asn=asn, local_address=local,
                      passive=passive, passive_reason=_passive_reason(passive, address, local,
                                                                      kind),
                      source_address=source, families=_families(address), port=port,
                      internal=(asn == our_asn))


def _pools(data: _Data) -> tuple[list[IpNetwork], list[IpNetwork]]:
    """(exported pools, pools whose blocks are not announced: disableBGPExport), both
    families: bird_ipam.cfg's and bird6_ipam.cfg's filters in one list."""
    exported: list[IpNetwork] = []
    silent: list[IpNetwork] = []
    for pool in sorted(data.pools, key=lambda p: p.name):
        if pool.disabled:
            continue
        (silent if pool.disable_bgp_export else exported).append(pool.cidr)
    return exported, silent


def _within(block: IpNetwork, pools: list[IpNetwork]) -> bool:
    """``block`` lies in one of ``pools`` of its own family (the other family never holds it)."""
    if isinstance(block, IPv4Network):
        return any(block.subnet_of(p) for p in pools if isinstance(p, IPv4Network))
    return any(block.subnet_of(p) for p in pools if isinstance(p, IPv6Network))


def _blocks(data: _Data, node_name: str, exported: list[IpNetwork],
            silent: list[IpNetwork], problems: list[Problem]) -> tuple[IpNetwork, ...]:
    blocks: list[IpNetwork] = []
    for key, affinity in data.affinities:
        if affinity.host != node_name or affinity.state != "confirmed":
            continue  # pending / pendingDeletion / deleted: bird_aggr does not export them
        block = affinity.block
        if _within(block, silent):
            continue  # disableBGPExport: bird_ipam rejects it toward peers
        if not _within(block, exported):
            same = [p for p in exported if p.version == block.version]
            known = ", ".join(str(p) for p in same) or "none enabled"
            problems.append(Problem(key, f"block {block} is outside every enabled IP "
                                         f"pool ({known}); not announced"))
            continue
        blocks.append(block)
    return tuple(sorted(set(blocks), key=lambda b: (b.version, int(b.network_address),
                                                    b.prefixlen)))


def _applies(peer: BGPPeer, node: Node, node_name: str, key: str) -> str | None:
    """"Global_" or "Node_" when the BGPPeer is for this node, else None."""
    if not peer.node and not peer.node_selector:
        return "Global_"
    if peer.node:
        return "Node_" if peer.node == node_name else None
    try:
        matches = parse_selector(peer.node_selector)(node.labels)
    except SelectorError as exc:
        raise Problem(key, f"spec.nodeSelector: {exc}") from None
    return "Node_" if matches else None


def _bgp_peers(data: _Data, me: Node, our_asn: int,
               problems: list[Problem]) -> list[tuple[str, PeerConfig]]:
    """Global_/Node_ peers of both families: an IPv6 peerIP goes to bird6.cfg (our IPv6
    address as its source), a peerSelector picks each node's IPv4 and IPv6 addresses."""
    out: list[tuple[str, PeerConfig]] = []
    for peer in sorted(data.peers, key=lambda p: p.name):
        key = BGPPEER_PREFIX + peer.name
        try:
            prefix = _applies(peer, me, me.name, key)
            if prefix is None:
                continue
            if peer.has_password:
                raise Problem(key, "spec.password (a Kubernetes secret reference) cannot be "
                                   "read from etcd; peer left out rather than run without "
                                   "its MD5 key")
            if peer.source_address not in ("UseNodeIP", "None"):
                raise Problem(key, f"spec.sourceAddress {peer.source_address!r} is not "
                                   f"UseNodeIP or None")
            use_node_ip = peer.source_address == "UseNodeIP"
            if peer.keep_original_next_hop:
                problems.append(Problem(key, "spec.keepOriginalNextHop is not supported by "
                                             "the speaker; the peer is used without it"))
            if peer.peer_ip is not None:
                own = _own(me, peer.peer_ip)
                if own is None:
                    raise Problem(key, f"spec.peerIP {peer.peer_ip} is IPv6 and this node has "
                                       f"no spec.bgp.ipv6Address (bird6.cfg: IPv6 disabled on "
                                       f"this node); peer left out")
                if peer.peer_ip in (me.address, me.address6):
                    continue  # Calico: "Skipping ourselves"
                assert peer.asn is not None
                out.append((key, PeerConfig(
                    name=peer_name(prefix, peer.peer_ip, peer.port), address=peer.peer_ip,
                    asn=peer.asn, local_address=own, passive=False,
                    passive_reason="active: an explicit BGPPeer (peerIP); Calico sets passive "
                                   "only between Calico nodes",
                    source_address=own if use_node_ip else None,
                    families=_families(peer.peer_ip), port=peer.port or 179,
                    internal=(peer.asn == our_asn))))
                continue
            try:
                wanted = parse_selector(peer.peer_selector)
            except SelectorError as exc:
                raise Problem(key, f"spec.peerSelector: {exc}") from None
            for other in sorted(data.nodes.values(), key=lambda n: n.name):
                if other.name == me.name or not wanted(other.labels):
                    continue
                asn = other.asn if other.asn is not None else (peer.asn or data.bgp.asn)
                for address in (other.address, other.address6):
                    if address is None:
                        continue
                    own = _own(me, address)
                    if own is None or address == own:
                        continue  # no IPv6 on this node / a node sharing our address
                    out.append((key, _calico_node_peer(
                        peer_name(prefix, address), address, asn, own, our_asn,
                        data.bgp.listen_port, own if use_node_ip else None)))
        except Problem as problem:
            problems.append(problem)
    return out


def _mesh(data: _Data, me: Node, our_asn: int, version: int,
          problems: list[Problem]) -> list[tuple[str, PeerConfig]]:
    """The node-to-node mesh of one family: bird.cfg's (IPv4 addresses) or bird6.cfg's
    (IPv6 addresses; none at all when this node has no IPv6 address)."""
    own = me.address if version == 4 else me.address6
    if own is None or not data.bgp.mesh_enabled:
        return []
    out: list[tuple[str, PeerConfig]] = []
    for other in sorted(data.nodes.values(), key=lambda n: n.name):
        if other.name == me.name:
            continue
        key = NODE_PREFIX + other.name
        address = other.address if version == 4 else other.address6
        if address is None:
            if version == 4:  # bird6.cfg: "No IPv6 address configured for this node"
                what = "no mesh peer" if other.address6 is None else "no IPv4 mesh peer"
                problems.append(Problem(key, f"spec.bgp.ipv4Address is missing; {what} for "
                                             f"this node"))
            continue
        if address == own:
            problems.append(Problem(key, f"has our own address {own}; skipped"))
            continue
        asn = other.asn if other.asn is not None else data.bgp.asn
        out.append((key, _calico_node_peer(peer_name("Mesh_", address), address, asn, own,
                                           our_asn, data.bgp.listen_port, own)))
    return out


def derive_config(snapshot: Snapshot, node_name: str, template: Config | None = None,
                  source: str | None = None) -> Derivation:
    """This node's Config from ``snapshot``: what confd would render into its bird.cfg and
    bird6.cfg.

    ``template`` gives what the datastore does not hold (control socket, listen address,
    kernel options: the local file's); ``source`` names the origin in the Config."""
    problems: list[Problem] = []
    data = _read(snapshot, problems)
    own_key = NODE_PREFIX + node_name
    me = data.nodes.get(node_name)
    if me is None:
        if own_key not in {p.key for p in problems}:  # else: its parse problem says why
            problems.append(Problem(own_key, "no such key: this node is not registered"))
        return Derivation(None, tuple(problems))
    if me.address is None:
        why = ("it is the router id (4 octets in bird6.cfg too), so an IPv6-only node cannot "
               "peer" if me.address6 is not None else "this node has no BGP address")
        problems.append(Problem(own_key, f"spec.bgp.ipv4Address is missing: {why}"))
        return Derivation(None, tuple(problems))
    router_id = me.address
    our_asn = me.asn if me.asn is not None else data.bgp.asn
    if me.rr_cluster_id:
        problems.append(Problem(own_key, "spec.bgp.routeReflectorClusterID is set; route "
                                         "reflection is not supported, the node is derived "
                                         "as a plain mesh member"))
    exported, silent = _pools(data)
    blocks = _blocks(data, node_name, exported, silent, problems)

    peers = (_mesh(data, me, our_asn, 4, problems) + _mesh(data, me, our_asn, 6, problems)
             + _bgp_peers(data, me, our_asn, problems))
    peers.sort(key=lambda kp: kp[1].address.version)  # bird.cfg's, then bird6.cfg's
    seen: dict[IPv4Address | IPv6Address, str] = {}
    unique: list[PeerConfig] = []
    for key, peer in peers:
        if peer.address in seen:
            problems.append(Problem(key, f"{peer.name}: {peer.address} is already peer "
                                           f"{seen[peer.address]}; the second is left out"))
            continue
        seen[peer.address] = peer.name
        unique.append(peer)

    base = template or Config(source="", router_id=ANY_ADDRESS, asn=0)
    config = replace(
        base, source=source or base.source or f"datastore (node {node_name})",
        router_id=router_id, asn=our_asn, port=data.bgp.listen_port, peers=tuple(unique),
        address6=me.address6,
        originate=OriginateConfig(blocks=blocks, blackhole=base.originate.blackhole),
        pools=PoolsConfig(cidrs=tuple(exported)),
    )
    return Derivation(config, tuple(problems))


def summarize(derivation: Derivation) -> Mapping[str, object]:
    """A short JSON-ready view for logs and status: addresses, peers, blocks, pools and the
    problems."""
    config = derivation.config
    return {
        "router_id": None if config is None else str(config.router_id),
        "address6": None if config is None or config.address6 is None else str(config.address6),
        "peers": [] if config is None else [p.name for p in config.peers],
        "blocks": [] if config is None else [str(b) for b in config.originate.blocks],
        "pools": [] if config is None else [str(c) for c in config.pools.cidrs],
        "problems": [str(p) for p in derivation.problems],
    }
