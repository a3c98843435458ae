"""Render each node's daemon configuration: Calico's bird.cfg for BIRD nodes, TOML for ours.

The BIRD config is what Calico's confd renders for a host in a no-encapsulation pool (the seed's
reference bird.cfg, with bird_aggr.cfg and bird_ipam.cfg inlined), for stock BIRD 1.6.8: the
Calico-fork attribute ``krt_tunnel`` is dropped, since stock BIRD rejects it and ``""`` (no
tunnel) is what it would be set to anyway.  The only lab additions are a ``log`` line, so each
BIRD writes its own log file into the run directory.

A dual-stack node also gets a bird6.cfg from the same renderer (``family=6``), as Calico's
bird6 templates of the same generation make it: the same filters, kernel, device, direct and
template sections over the IPv6 block and pool; router id still the node's IPv4 address (a
router id is 4 octets even in MP-BGP); mesh sessions ``Mesh_<IPv6 with ':' -> '_'>`` to the
peers' IPv6 addresses from the node's own, passive toward a greater address as text.

The speaker TOML schema is shared with the daemon (speaker/), which parses it; keep them in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from integration.lab.spec import Family, NodeSpec, mesh_protocol_name, passive_toward

KERNEL_PROTOCOL = 186
"""Route protocol number the speaker uses for kernel routes (not BIRD's 12, see facts e.17)."""


@dataclass(frozen=True)
class MeshPeer:
    """A mesh peer known only by what the datastore says (name, address, AS, IPv6 address)."""

    name: str
    address: str
    asn: int
    address6: str | None = None

    @property
    def protocol_name(self) -> str:
        return mesh_protocol_name(self.address)


def _peer_address(peer: NodeSpec | MeshPeer, family: Family) -> str:
    """The peer's session address in ``family``; ValueError for an IPv4-only peer in bird6."""
    if family == 4:
        return peer.address
    if peer.address6 is None:
        raise ValueError(f"peer {peer.name} has no IPv6 address: it cannot be in bird6.cfg")
    return peer.address6


def bird_config_name(family: Family) -> str:
    """The file Calico's confd writes for ``family``: ``bird.cfg`` or ``bird6.cfg``."""
    return "bird.cfg" if family == 4 else "bird6.cfg"


def _peers(node: NodeSpec, nodes: Sequence[NodeSpec]) -> list[NodeSpec]:
    return [n for n in nodes if n.name != node.name]


def render_bird_config(
    node: NodeSpec,
    nodes: Sequence[NodeSpec | MeshPeer],
    pool: str | Sequence[str],
    *,
    log_file: str | None = None,
    blocks: Sequence[str] | None = None,
    header: str = "integration/lab/configs.py",
    family: Family = 4,
) -> str:
    """bird.cfg (``family=6``: bird6.cfg) for ``node`` in a mesh of ``nodes`` (``node`` itself
    is skipped as a peer).

    ``blocks``: the node's confirmed blocks (default: its one ``block``, or ``block6``);
    ``pool``: one CIDR or several of the family (integration/lab/etcd_bird.py renders from
    etcd's keys with both).  One renderer for both files, so bird.cfg and bird6.cfg cannot
    drift apart: only addresses, blocks, pools and names depend on the family."""
    own_address = node.address_of(family)
    own_blocks = [node.block_of(family)] if blocks is None else list(blocks)
    pools = [pool] if isinstance(pool, str) else list(pool)
    cfg = bird_config_name(family)
    stem = cfg.removesuffix(".cfg")
    templates = f"{stem}.cfg, {stem}_aggr.cfg, {stem}_ipam.cfg"
    lines: list[str] = [
        f"# {cfg} for {node.name} ({own_address}), rendered by {header}",
        f"# after Calico's confd templates ({templates} inlined);",
        "# stock BIRD 1.6.8: the Calico-fork `krt_tunnel` statement is left out.",
    ]
    if log_file is not None:
        lines += [f'log "{log_file}" all;  # lab addition: per-node log file', ""]
    lines += [
        "function apply_communities ()",
        "{",
        "}",
        "",
        f"# ---- {stem}_aggr.cfg ----",
        "protocol static {",
        "   # IP blocks for this host.",
        *[f"   route {block} blackhole;" for block in own_blocks],
        "}",
        "",
        "# Aggregation of routes on this host; export the block, nothing beneath it.",
        "function calico_aggr ()",
        "{",
        *[line for block in own_blocks for line in (
            f"      # Block {block} is confirmed",
            f"      if ( net = {block} ) then {{ accept; }}",
            f"      if ( net ~ {block} ) then {{ reject; }}")],
        "}",
        "",
        f"# ---- {stem}_ipam.cfg ----",
        "filter calico_export_to_bgp_peers {",
        "  # filter code terminates when it calls `accept;` or `reject;`, "
        "call apply_communities() before calico_aggr()",
        "  apply_communities();",
        "  calico_aggr();",
        "",
        *[line for p in pools for line in (f"  if ( net ~ {p} ) then {{", "    accept;", "  }")],
        "  reject;",
        "}",
        "",
        "filter calico_kernel_programming {",
        *[line for p in pools for line in (f"  if ( net ~ {p} ) then {{", "    accept;", "  }")],
        "  accept;",
        "}",
        "",
        f"# ---- {cfg} ----",
        f"router id {node.address};"
        + ("" if family == 4 else "  # IPv4 address: a router id is 4 octets, even in MP-BGP"),
        "",
        "# Configure synchronization between routing tables and kernel.",
        "protocol kernel {",
        "  learn;             # Learn all alien routes from the kernel",
        "  persist;           # Don't remove routes on bird shutdown",
        "  scan time 2;       # Scan kernel routing table every 2 seconds",
        "  import all;",
        "  export filter calico_kernel_programming; # Default is export none",
        "  graceful restart;  # Turn on graceful restart to reduce potential flaps in",
        "                     # routes when reloading BIRD configuration.",
        "  merge paths on;    # Allow export multipath routes (ECMP)",
        "}",
        "",
        "# Watch interface up/down events.",
        "protocol device {",
        "  debug { states };",
        "  scan time 2;    # Scan interfaces every 2 seconds",
        "}",
        "",
        "protocol direct {",
        "  debug { states };",
        '  interface -"cali*", -"kube-ipvs*", "*"; # Exclude cali* and kube-ipvs*',
        "}",
        "",
        "# Template for all BGP clients",
        "template bgp bgp_template {",
        "  debug { states };",
        '  description "Connection to BGP peer";',
        f"  local as {node.asn};",
        "  multihop;",
        "  gateway recursive; # This should be the default, but just in case.",
        "  import all;        # Import all routes, since we don't know what the upstream",
        "                     # topology is and therefore have to trust the ToR/RR.",
        "  export filter calico_export_to_bgp_peers;  # Only want to export routes for workloads.",
        "  add paths on;",
        "  graceful restart;  # See comment in kernel section about graceful restart.",
        "  connect delay time 2;",
        "  connect retry time 5;",
        "  error wait time 5,30;",
        "}",
        "",
        "# ------------- Node-to-node mesh -------------",
    ]
    for peer in nodes:
        if peer.name == node.name:
            lines += [f"# For peer {peer.name} ({own_address})"]
            lines += [f"# Skipping ourselves ({own_address})", ""]
            continue
        peer_address = _peer_address(peer, family)
        lines += [
            f"# For peer {peer.name} ({peer_address})",
            f"protocol bgp {mesh_protocol_name(peer_address)} from bgp_template {{",
            f"  neighbor {peer_address} as {peer.asn};",
            f"  source address {own_address};  # The local address we use for the TCP connection",
        ]
        if passive_toward(own_address, peer_address):
            lines.append("  passive on; # Mesh is unidirectional, peer will connect to us.")
        if node.password is not None:
            lines.append(f"  password {_bird_str(node.password)};  # TCP MD5 (RFC 2385)")
        if node.ttl_security:
            # GTSM (RFC 5082): TTL 255 out, at least 255 in, so a direct neighbour only
            lines += ["  direct;", "  ttl security on;"]
        lines += ["}", ""]
    lines += [
        "# ------------- Global peers -------------",
        "# No global peers configured.",
        "",
        "# ------------- Node-specific peers -------------",
        "# No node-specific peers configured.",
        "",
    ]
    return "\n".join(lines)


def _bird_str(value: str) -> str:
    """A string in bird.cfg (the lab's keys are plain text; refuse what BIRD would misread)."""
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError(f"lab password {value!r}: no quotes, backslashes or newlines")
    return f'"{value}"'


def _toml_str(value: str) -> str:
    """A TOML basic string (our values are paths and addresses; escape the two specials)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_speaker_config(
    node: NodeSpec,
    nodes: Sequence[NodeSpec],
    pool: str,
    *,
    control_socket: str,
    port: int = 179,
    pool6: str | None = None,
    control_socket6: str | None = None,
) -> str:
    """The speaker daemon's TOML config for ``node`` (schema agreed with the daemon's author).

    ``passive`` is deliberately not written: the daemon applies Calico's text rule itself.
    A dual-stack node (``node.dual_stack``; then ``pool6`` and ``control_socket6`` are needed)
    also gets what bird6 would have: ``control_socket6`` (answers as bird6.ctl, only the IPv6
    protocols), one ``[[peer]]`` per peer's IPv6 address from its own (an IPv6 unicast session),
    its IPv6 block among ``[originate] blocks`` and ``pool6`` among ``[pools] cidrs``.
    """
    dual = node.dual_stack
    if dual and (pool6 is None or control_socket6 is None):
        raise ValueError(f"{node.name} is dual-stack: pool6 and control_socket6 are needed")
    lines = [
        f"# speaker config for {node.name}, rendered by integration/lab/configs.py",
        f"router_id = {_toml_str(node.address)}",
        f"asn = {node.asn}",
        f"listen = {_toml_str(node.address)}",
        f"port = {port}",
        f"control_socket = {_toml_str(control_socket)}",
    ]
    if control_socket6 is not None and dual:
        lines.append(
            f"control_socket6 = {_toml_str(control_socket6)}  "
            "# answers as bird6.ctl: only the IPv6 protocols"
        )
    lines.append("")
    families: tuple[Family, ...] = (4, 6) if dual else (4,)
    for family in families:
        for peer in _peers(node, nodes):
            lines.append("[[peer]]")
            if family == 6:
                lines.append("# an IPv6 peer: an IPv6 unicast session, as bird6 makes")
            lines += [
                f"address = {_toml_str(_peer_address(peer, family))}",
                f"asn = {peer.asn}",
                f"source_address = {_toml_str(node.address_of(family))}",
                "# passive omitted: the daemon applies the text rule itself",
            ]
            if node.password is not None:
                lines.append(f"password = {_toml_str(node.password)}")
            if node.ttl_security:
                lines.append("ttl_security = true")
            lines.append("")
    blocks = [node.block_of(f) for f in families]
    pools = [pool] if pool6 is None or not dual else [pool, pool6]
    lines += [
        "[originate]",
        f"blocks = [{', '.join(_toml_str(b) for b in blocks)}]",
        "",
        "[pools]",
        f"cidrs = [{', '.join(_toml_str(p) for p in pools)}]",
        "",
        "[kernel]",
        f"protocol = {KERNEL_PROTOCOL}",
        "learn = true",
        "persist = true",
        "scan_time = 2",
        "merge_paths = true",
        "",
    ]
    return "\n".join(lines)
