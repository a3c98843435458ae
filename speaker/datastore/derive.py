"""From a snapshot of Calico's etcd keys to this node's Config: what confd writes for BIRD.

A pure function (no I/O, no clock), so the whole mapping is tested on snapshots built in the
tests, and the watcher (speaker.datastore.etcd) only has to keep the snapshot current.  It
follows Calico's confd templates: bird.cfg (router id, local AS, the node-to-node mesh with
the text-order passive rule, Global_/Node_ peers), bird_aggr.cfg (confirmed block affinities
announced, with a blackhole) and bird_ipam.cfg (pools; disabled pools and disableBGPExport).
Each bad key is one Problem naming it; the rest of the data is still used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address

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
    BLOCK_PREFIX,
    IPPOOL_PREFIX,
    NODE_PREFIX,
    Affinity,
    BGPConfiguration,
    BGPPeer,
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
            elif key.startswith(BLOCK_PREFIX):
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


def peer_name(prefix: str, address: IPv4Address, port: int | None = None) -> str:
    """Calico's protocol name: Mesh_/Global_/Node_ + the address with ``_`` (+ ``_port_N``)."""
    name = prefix + str(address).replace(".", "_")
    return f"{name}_port_{port}" if port is not None else name


def _passive_reason(passive: bool, address: IPv4Address, local: IPv4Address, kind: str) -> str:
    """Worded exactly as speaker.config words it for a file, so both compare equal."""
    if passive:
        return (f"passive: peer \"{address}\" > own \"{local}\" ({kind}) compared as text, so "
                f"we wait and the peer dials (Calico rule)")
    return (f"active: peer \"{address}\" < own \"{local}\" ({kind}) compared as text, so we "
            f"dial (Calico rule)")


def _calico_node_peer(name: str, address: IPv4Address, asn: int, router_id: IPv4Address,
                      our_asn: int, port: int, source: IPv4Address | None) -> PeerConfig:
    """A peer that is another Calico node: exactly one side dials (the text rule)."""
    local = source if source is not None else router_id
    passive = calico_passive(local, address)
    kind = "source_address" if source is not None else "router_id"
    return PeerConfig(name=name, address=address, asn=asn, local_address=local,
                      passive=passive, passive_reason=_passive_reason(passive, address, local,
                                                                      kind),
                      source_address=source, port=port, internal=(asn == our_asn))


def _pools(data: _Data) -> tuple[list[IPv4Network], list[IPv4Network]]:
    """(exported pools, pools whose blocks are not announced: disableBGPExport)."""
    exported: list[IPv4Network] = []
    silent: list[IPv4Network] = []
    for pool in sorted(data.pools, key=lambda p: p.name):
        if pool.cidr is None or pool.disabled:
            continue
        (silent if pool.disable_bgp_export else exported).append(pool.cidr)
    return exported, silent


def _blocks(data: _Data, node_name: str, exported: list[IPv4Network],
            silent: list[IPv4Network], problems: list[Problem]) -> tuple[IPv4Network, ...]:
    blocks: list[IPv4Network] = []
    for key, affinity in data.affinities:
        if affinity.host != node_name or affinity.state != "confirmed":
            continue  # pending / pendingDeletion / deleted: bird_aggr does not export them
        if any(affinity.block.subnet_of(p) for p in silent):
            continue  # disableBGPExport: bird_ipam rejects it toward peers
        if not any(affinity.block.subnet_of(p) for p in exported):
            known = ", ".join(str(p) for p in exported) or "none enabled"
            problems.append(Problem(key, f"block {affinity.block} is outside every enabled IP "
                                         f"pool ({known}); not announced"))
            continue
        blocks.append(affinity.block)
    return tuple(sorted(set(blocks)))


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


def _bgp_peers(data: _Data, me: Node, router_id: IPv4Address, our_asn: int,
               problems: list[Problem]) -> list[tuple[str, PeerConfig]]:
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
            source = router_id if peer.source_address == "UseNodeIP" else None
            if peer.keep_original_next_hop:
                problems.append(Problem(key, "spec.keepOriginalNextHop is not supported by "
                                             "the speaker; the peer is used without it"))
            if peer.peer_ip is not None:
                if peer.peer_ip == router_id:
                    continue  # Calico: "Skipping ourselves"
                assert peer.asn is not None
                local = source if source is not None else router_id
                out.append((key, PeerConfig(
                    name=peer_name(prefix, peer.peer_ip, peer.port), address=peer.peer_ip,
                    asn=peer.asn, local_address=local, passive=False,
                    passive_reason="active: an explicit BGPPeer (peerIP); Calico sets passive "
                                   "only between Calico nodes",
                    source_address=source, port=peer.port or 179,
                    internal=(peer.asn == our_asn))))
                continue
            try:
                wanted = parse_selector(peer.peer_selector)
            except SelectorError as exc:
                raise Problem(key, f"spec.peerSelector: {exc}") from None
            for other in sorted(data.nodes.values(), key=lambda n: n.name):
                if other.name == me.name or other.address is None:
                    continue
                if other.address == router_id or not wanted(other.labels):
                    continue
                asn = other.asn if other.asn is not None else (peer.asn or data.bgp.asn)
                out.append((key, _calico_node_peer(peer_name(prefix, other.address),
                                                   other.address, asn, router_id, our_asn,
                                                   data.bgp.listen_port, source)))
        except Problem as problem:
            problems.append(problem)
    return out


def derive_config(snapshot: Snapshot, node_name: str, template: Config | None = None,
                  source: str | None = None) -> Derivation:
    """This node's Config from ``snapshot``: what confd would render into its bird.cfg.

    ``template`` gives what the datastore does not hold (control socket, listen address,
    kernel options: the local file's); ``source`` names the origin in the Config."""
    problems: list[Problem] = []
    data = _read(snapshot, problems)
    own_key = NODE_PREFIX + node_name
    me = data.nodes.get(node_name)
    if me is None or me.address is None:
        if own_key not in {p.key for p in problems}:
            why = ("no such key: this node is not registered" if me is None
                   else "spec.bgp.ipv4Address is missing: this node has no BGP address")
            problems.append(Problem(own_key, why))
        return Derivation(None, tuple(problems))
    router_id = me.address
    our_asn = me.asn if me.asn is not None else data.bgp.asn
    if me.rr_cluster_id:
        problems.append(Problem(own_key, "spec.bgp.routeReflectorClusterID is set; route "
                                         "reflection is not supported, the node is derived "
                                         "as a plain mesh member"))
    exported, silent = _pools(data)
    blocks = _blocks(data, node_name, exported, silent, problems)

    peers: list[tuple[str, PeerConfig]] = []
    if data.bgp.mesh_enabled:
        for other in sorted(data.nodes.values(), key=lambda n: n.name):
            if other.name == node_name:
                continue
            key = NODE_PREFIX + other.name
            if other.address is None:
                problems.append(Problem(key, "spec.bgp.ipv4Address is missing; no mesh peer "
                                             "for this node"))
                continue
            if other.address == router_id:
                problems.append(Problem(key, f"has our own address {router_id}; skipped"))
                continue
            asn = other.asn if other.asn is not None else data.bgp.asn
            peers.append((key, _calico_node_peer(peer_name("Mesh_", other.address),
                                                 other.address, asn, router_id, our_asn,
                                                 data.bgp.listen_port, router_id)))
    seen: dict[IPv4Address | IPv6Address, str] = {}
    unique: list[PeerConfig] = []
    for key, peer in peers + _bgp_peers(data, me, router_id, our_asn, problems):
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
        originate=OriginateConfig(blocks=blocks, blackhole=base.originate.blackhole),
        pools=PoolsConfig(cidrs=tuple(exported)),
    )
    return Derivation(config, tuple(problems))


def summarize(derivation: Derivation) -> Mapping[str, object]:
    """A short JSON-ready view for logs and status: peers, blocks and the problems."""
    config = derivation.config
    return {
        "router_id": None if config is None else str(config.router_id),
        "peers": [] if config is None else [p.name for p in config.peers],
        "blocks": [] if config is None else [str(b) for b in config.originate.blocks],
        "problems": [str(p) for p in derivation.problems],
    }
