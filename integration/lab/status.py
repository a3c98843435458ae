"""Parsers for what the lab reads back: BIRD's ``show protocols``, ``ss -tanH``, and Calico's
etcd keys as the lab report lists them; the ``calicoctl node status`` tables made from
bird.ctl's and bird6.ctl's ``show protocols``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# name proto table state since info; "since" is a time (12:00:00) or a date, optionally + time.
_PROTO_ROW: Final = re.compile(
    r"^(?P<name>\S+)\s+(?P<proto>\S+)\s+(?P<table>\S+)\s+(?P<state>\S+)\s+"
    r"(?P<since>\S+(?: \d\d:\d\d(?::\d\d)?)?)\s*(?P<info>.*)$"
)


@dataclass(frozen=True)
class ProtocolState:
    """One row of BIRD's ``show protocols`` (the speaker's control socket emits the same)."""

    name: str
    proto: str
    table: str
    state: str
    since: str
    info: str

    @property
    def established(self) -> bool:
        """True when the BGP session is up (info column starts with ``Established``)."""
        return self.state == "up" and self.info.startswith("Established")


def parse_protocols(text: str) -> dict[str, ProtocolState]:
    """Rows of ``birdc show protocols`` keyed by protocol name (banner/heading skipped)."""
    rows: dict[str, ProtocolState] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("BIRD ", "name ", " ")):
            continue
        m = _PROTO_ROW.match(line.rstrip())
        if m:
            rows[m["name"]] = ProtocolState(**m.groupdict())
    return rows


@dataclass(frozen=True)
class TcpConnection:
    """One TCP socket from ``ss -tan`` inside a namespace."""

    state: str
    local_addr: str
    local_port: int
    peer_addr: str
    peer_port: int


def _split_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else 0


def parse_ss(text: str) -> list[TcpConnection]:
    """Sockets from ``ss -tanH`` output (columns: State Recv-Q Send-Q Local Peer)."""
    conns: list[TcpConnection] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        local_addr, local_port = _split_endpoint(parts[3])
        peer_addr, peer_port = _split_endpoint(parts[4])
        conns.append(TcpConnection(parts[0], local_addr, local_port, peer_addr, peer_port))
    return conns


def describe_calico_value(key: str, value: bytes) -> str:
    """What a Calico key holds, in a few words (the lab report lists etcd's keys with it)."""
    try:
        doc: Any = json.loads(value)
    except ValueError:
        return f"not JSON ({len(value)} bytes)"
    if not isinstance(doc, dict):
        return f"not a JSON object: {value[:40]!r}"
    if key.startswith("/calico/ipam/v2/host/"):
        return f"block affinity, {doc.get('state', 'confirmed')}" + (
            ", deleted" if doc.get("deleted") else "")
    if key.startswith("/calico/ipam/v2/assignment/"):
        return f"IPAM block {doc.get('cidr', '?')}, {doc.get('affinity', 'no affinity')}"
    kind = str(doc.get("kind", "?"))
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    if kind == "Node":
        bgp = spec.get("bgp") or {}
        asn = f", AS {bgp['asNumber']}" if "asNumber" in bgp else ""
        return f"Node, BGP address {bgp.get('ipv4Address', 'none')}{asn}"
    if kind == "IPPool":
        flags = [f for f in ("disabled", "disableBGPExport") if spec.get(f)]
        return f"IPPool {spec.get('cidr', '?')}" + "".join(f", {f}" for f in flags)
    if kind == "BGPConfiguration":
        mesh = "off" if spec.get("nodeToNodeMeshEnabled", True) is False else "on"
        return f"BGPConfiguration, AS {spec.get('asNumber', 64512)}, node-to-node mesh {mesh}"
    if kind == "BGPPeer":
        return f"BGPPeer {spec.get('peerIP', '(selector)')} AS {spec.get('asNumber', '?')}"
    return kind


def format_calico_keys(items: Mapping[str, bytes]) -> list[str]:
    """One line per key, in key order: the key, then what it holds."""
    width = max((len(k) for k in items), default=0)
    return [f"  {k:<{width}}  {describe_calico_value(k, items[k])}" for k in sorted(items)]


def calico_node_status(protocols_v4: str, protocols_v6: str | None = None) -> str:
    """``calicoctl node status`` for a node, from birdc's ``show protocols`` of bird.ctl and
    (dual stack) birdc6's of bird6.ctl, as calicoctl reads the two sockets.

    The rows go through the speaker's reproduction of calicoctl's parser and table
    (speaker/control/calicoctl.py), so BIRD nodes and speaker nodes print alike; birdc's text
    has no reply codes, so each row is handed over as a continuation line.
    """
    from speaker.control.calicoctl import parse_bird_protocols, render_node_status

    def rows(text: str | None) -> list[str]:
        if text is None:
            return []
        return [
            " " + line
            for line in text.splitlines()
            if line.strip() and not line.startswith(("BIRD ", "name ", " "))
        ]

    peers_v4 = parse_bird_protocols(rows(protocols_v4), ip_version=4)
    peers_v6 = parse_bird_protocols(rows(protocols_v6), ip_version=6)
    return render_node_status(peers_v4, peers_v6)
