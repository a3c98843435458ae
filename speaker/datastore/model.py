"""Calico's etcd v3 keys read into small typed records, one problem per bad key.

libcalico-go's etcdv3 backend stores each resource as a JSON object (apiVersion, kind,
metadata{name, labels}, spec) under /calico/resources/v3/projectcalico.org/<kind>/<name>,
and IPAM block affinities under /calico/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-len> and
/calico/ipam/v2/host/<node>/ipv6/block/<cidr text with '/' written '-'> (dual stack: what
calico-node's confd reads for bird.cfg and for bird6.cfg).
Reading is separate from deriving (speaker.datastore.derive) so that every malformed key
becomes one :class:`Problem` naming it while the other keys are still used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any

__all__ = [
    "AFFINITY_PREFIX",
    "BGPCONFIG_KEY",
    "BGPPEER_PREFIX",
    "BLOCK6_PREFIX",
    "BLOCK_PREFIX",
    "IPPOOL_PREFIX",
    "NODE_PREFIX",
    "WATCH_PREFIXES",
    "Affinity",
    "BGPConfiguration",
    "BGPPeer",
    "IPPool",
    "IpAddress",
    "IpNetwork",
    "Node",
    "Problem",
    "Snapshot",
    "parse_affinity",
    "parse_bgp_configuration",
    "parse_bgp_peer",
    "parse_ip_pool",
    "parse_node",
]

Snapshot = Mapping[str, bytes]
"""etcd keys (text) to their values, as read at one revision."""

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network

RESOURCES = "/calico/resources/v3/projectcalico.org/"
NODE_PREFIX = RESOURCES + "nodes/"
BGPCONFIG_PREFIX = RESOURCES + "bgpconfigurations/"
BGPCONFIG_KEY = BGPCONFIG_PREFIX + "default"
BGPPEER_PREFIX = RESOURCES + "bgppeers/"
IPPOOL_PREFIX = RESOURCES + "ippools/"
AFFINITY_PREFIX = "/calico/ipam/v2/host/"
BLOCK_PREFIX = "/calico/ipam/v2/assignment/ipv4/block/"
BLOCK6_PREFIX = "/calico/ipam/v2/assignment/ipv6/block/"
WATCH_PREFIXES = ("/calico/resources/v3/projectcalico.org/", "/calico/ipam/v2/")
"""What the watcher reads and watches; every other key is ignored by the derivation."""


class Problem(ValueError):
    """Something wrong in the datastore, naming the key; the key is skipped, not the rest."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class Node:
    """A Calico Node: its BGP addresses (IPv4: router id and bird.cfg's neighbor address;
    IPv6: bird6.cfg's), AS, labels."""

    name: str
    address: IPv4Address | None
    asn: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    rr_cluster_id: str = ""
    address6: IPv6Address | None = None
    """spec.bgp.ipv6Address without its prefix length; None: no IPv6 BGP on this node."""
    warnings: tuple[str, ...] = ()
    """What was wrong but did not cost the node (a bad ipv6Address: the node is used
    without IPv6); each becomes a Problem naming the key."""


@dataclass(frozen=True)
class BGPConfiguration:
    """bgpconfigurations/default; absent fields take Calico's defaults."""

    asn: int = 64512
    mesh_enabled: bool = True
    listen_port: int = 179


@dataclass(frozen=True)
class BGPPeer:
    """A BGPPeer: explicit (``peer_ip``) or Calico nodes chosen by ``peer_selector``."""

    name: str
    peer_ip: IpAddress | None
    asn: int | None
    node: str = ""
    node_selector: str = ""
    peer_selector: str = ""
    port: int | None = None
    source_address: str = "UseNodeIP"
    keep_original_next_hop: bool = False
    has_password: bool = False


@dataclass(frozen=True)
class IPPool:
    """An IPPool of either family (bird_ipam.cfg's and bird6_ipam.cfg's filters)."""

    name: str
    cidr: IpNetwork
    disabled: bool = False
    disable_bgp_export: bool = False


@dataclass(frozen=True)
class Affinity:
    """A block affine to a host; only ``confirmed`` ones are announced (bird_aggr)."""

    host: str
    block: IpNetwork
    state: str


def _json_object(key: str, value: bytes) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(key, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Problem(key, f"must be a JSON object, not {type(data).__name__}")
    return data


def _spec(key: str, value: bytes, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, spec) of a v3 resource; a wrong ``kind`` is refused (wrong prefix)."""
    data = _json_object(key, value)
    if "kind" in data and data["kind"] != kind:
        raise Problem(key, f"kind is {data['kind']!r}, expected {kind!r}")
    metadata, spec = data.get("metadata", {}), data.get("spec", {})
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        raise Problem(key, "metadata and spec must be JSON objects")
    return metadata, spec


def _asn(key: str, value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():  # numorstring.ASNumber may be a string
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**32 - 1:
        raise Problem(key, f"{what} {value!r} is not an AS number (1..4294967295)")
    if value == 23456:
        raise Problem(key, f"{what} 23456 is AS_TRANS (RFC 6793), not a real AS")
    return value


def _str(key: str, spec: Mapping[str, Any], name: str) -> str:
    value = spec.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Problem(key, f"spec.{name} must be a string, not {value!r}")
    return value


def parse_node(key: str, value: bytes) -> Node:
    """A Node; ``address`` is None when spec.bgp.ipv4Address is absent (BGP not on),
    ``address6`` when spec.bgp.ipv6Address is (bird6.cfg: "IPv6 disabled on this node")."""
    metadata, spec = _spec(key, value, "Node")
    name = key.removeprefix(NODE_PREFIX)
    bgp = spec.get("bgp") or {}
    if not isinstance(bgp, dict):
        raise Problem(key, "spec.bgp must be a JSON object")
    address = None
    text = bgp.get("ipv4Address")
    if text:
        try:
            address = IPv4Interface(str(text)).ip  # "192.168.0.81/24": the prefix is dropped
        except ValueError:
            raise Problem(key, f"spec.bgp.ipv4Address {text!r} is not an IPv4 address") from None
    address6, warnings = _node_address6(bgp.get("ipv6Address"))
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        raise Problem(key, "metadata.labels must be a JSON object")
    rr = bgp.get("routeReflectorClusterID") or ""
    return Node(name=name, address=address, asn=_asn(key, bgp.get("asNumber"), "spec.bgp.asNumber"),
                labels={str(k): str(v) for k, v in labels.items()}, rr_cluster_id=str(rr),
                address6=address6, warnings=warnings)


def _node_address6(text: Any) -> tuple[IPv6Address | None, tuple[str, ...]]:
    """spec.bgp.ipv6Address ("fd00:192:168::81/64": the prefix is dropped, as libcalico-go's
    BGP node processor does).  A bad one costs the node its IPv6 side only (a warning), not
    its IPv4 mesh: the IPv4 address is what the router id and bird.cfg need."""
    if not text:
        return None, ()
    try:
        address = IPv6Interface(str(text)).ip
    except ValueError:
        return None, (f"spec.bgp.ipv6Address {text!r} is not an IPv6 address; the node is "
                      f"used without IPv6",)
    why = _unusable6(address)
    if why:
        return None, (f"spec.bgp.ipv6Address {text!r} {why}; the node is used without IPv6",)
    return address, ()


def _unusable6(address: IPv6Address) -> str:
    """Why ``address`` cannot be a BGP neighbor or source address ("" if it can)."""
    if address.scope_id is not None:
        return "has a zone index (%...): not a BGP address"
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        return "cannot be a BGP address"
    if address.is_link_local:
        return ("is link-local: a link-local neighbor needs an interface, which is not "
                "supported (use the global or unique-local address)")
    return ""


def parse_bgp_configuration(key: str, value: bytes) -> BGPConfiguration:
    """bgpconfigurations/default, Calico's defaults for what it leaves out."""
    _, spec = _spec(key, value, "BGPConfiguration")
    asn = _asn(key, spec.get("asNumber"), "spec.asNumber")
    mesh = spec.get("nodeToNodeMeshEnabled", True)
    if mesh is None:
        mesh = True
    if not isinstance(mesh, bool):
        raise Problem(key, f"spec.nodeToNodeMeshEnabled must be true or false, not {mesh!r}")
    port = spec.get("listenPort", 179) or 179
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise Problem(key, f"spec.listenPort {port!r} is not a port (1..65535)")
    return BGPConfiguration(asn=asn if asn is not None else 64512, mesh_enabled=mesh,
                            listen_port=port)


def _peer_ip(key: str, text: str) -> tuple[IpAddress | None, int | None]:
    """``peerIP`` is "a.b.c.d", "a.b.c.d:port", "fd00::1" or "[fd00::1]:port" (Calico splits
    host and port as Go's net.SplitHostPort does, so a bare IPv6 address has no port)."""
    if not text:
        return None, None
    port_text = ""
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise Problem(key, f"spec.peerIP {text!r}: write [IPv6]:port, or the IPv6 address "
                               f"without brackets")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    try:
        address = ip_address(host)
    except ValueError:
        raise Problem(key, f"spec.peerIP {text!r} is not an IP address") from None
    if text.startswith("[") and address.version == 4:
        raise Problem(key, f"spec.peerIP {text!r}: brackets are for IPv6 addresses")
    if isinstance(address, IPv6Address) and (why := _unusable6(address)):
        raise Problem(key, f"spec.peerIP {text!r} {why}")
    if not port_text:
        return address, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise Problem(key, f"spec.peerIP {text!r} has a bad port")
    return address, int(port_text)


def parse_bgp_peer(key: str, value: bytes) -> BGPPeer:
    """A BGPPeer; refuses one that sets both peerIP and peerSelector, or neither."""
    _, spec = _spec(key, value, "BGPPeer")
    peer_ip, port = _peer_ip(key, _str(key, spec, "peerIP"))
    peer_selector = _str(key, spec, "peerSelector")
    if (peer_ip is None) == (not peer_selector):
        raise Problem(key, "set exactly one of spec.peerIP and spec.peerSelector")
    asn = _asn(key, spec.get("asNumber"), "spec.asNumber")
    if peer_ip is not None and asn is None:
        raise Problem(key, "spec.asNumber is missing (required with spec.peerIP)")
    keep = spec.get("keepOriginalNextHop", False)
    return BGPPeer(
        name=key.removeprefix(BGPPEER_PREFIX), peer_ip=peer_ip, asn=asn,
        node=_str(key, spec, "node"), node_selector=_str(key, spec, "nodeSelector"),
        peer_selector=peer_selector, port=port,
        source_address=_str(key, spec, "sourceAddress") or "UseNodeIP",
        keep_original_next_hop=keep is True, has_password=bool(spec.get("password")),
    )


def parse_ip_pool(key: str, value: bytes) -> IPPool:
    """An IPPool, IPv4 or IPv6."""
    _, spec = _spec(key, value, "IPPool")
    text = _str(key, spec, "cidr")
    name = key.removeprefix(IPPOOL_PREFIX)
    try:
        cidr = ip_network(text)
    except ValueError as exc:
        raise Problem(key, f"spec.cidr {text!r} is not an IPv4 or IPv6 CIDR ({exc})") from None
    return IPPool(name=name, cidr=cidr, disabled=spec.get("disabled") is True,
                  disable_bgp_export=spec.get("disableBGPExport") is True)


def parse_affinity(key: str, value: bytes) -> Affinity | None:
    """A host block affinity of either family, or None for a key under the prefix that is
    not one."""
    rest = key.removeprefix(AFFINITY_PREFIX)
    host, sep, tail = rest.partition("/ipv4/block/")
    try:
        if sep:
            block: IpNetwork = IPv4Network(tail.replace("-", "/"))
        else:
            host, sep, tail = rest.partition("/ipv6/block/")
            if not sep:
                return None
            block = IPv6Network(tail.replace("-", "/"))  # no '-' in IPv6 text: one is the '/'
    except ValueError:
        example = "a.b.c.d-26" if "/ipv4/" in key else "fd00:10:244::8100-122"
        raise Problem(key, f"{tail!r} is not a block (want {example})") from None
    data = _json_object(key, value)
    state = data.get("state", "confirmed") or "confirmed"  # old affinities have no state
    if data.get("deleted") is True:
        state = "deleted"
    return Affinity(host=host, block=block, state=str(state))
