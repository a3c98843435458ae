"""Calico's etcd v3 keys read into small typed records, one problem per bad key.

libcalico-go's etcdv3 backend stores each resource as a JSON object (apiVersion, kind,
metadata{name, labels}, spec) under /calico/resources/v3/projectcalico.org/<kind>/<name>,
and IPAM block affinities under /calico/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-len>.
Reading is separate from deriving (speaker.datastore.derive) so that every malformed key
becomes one :class:`Problem` naming it while the other keys are still used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

__all__ = [
    "AFFINITY_PREFIX",
    "BGPCONFIG_KEY",
    "BGPPEER_PREFIX",
    "IPPOOL_PREFIX",
    "NODE_PREFIX",
    "WATCH_PREFIXES",
    "Affinity",
    "BGPConfiguration",
    "BGPPeer",
    "IPPool",
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

RESOURCES = "/calico/resources/v3/projectcalico.org/"
NODE_PREFIX = RESOURCES + "nodes/"
BGPCONFIG_PREFIX = RESOURCES + "bgpconfigurations/"
BGPCONFIG_KEY = BGPCONFIG_PREFIX + "default"
BGPPEER_PREFIX = RESOURCES + "bgppeers/"
IPPOOL_PREFIX = RESOURCES + "ippools/"
AFFINITY_PREFIX = "/calico/ipam/v2/host/"
BLOCK_PREFIX = "/calico/ipam/v2/assignment/ipv4/block/"
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
    """A Calico Node: its BGP address (router id and mesh neighbor address), AS, labels."""

    name: str
    address: IPv4Address | None
    asn: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    rr_cluster_id: str = ""


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
    peer_ip: IPv4Address | None
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
    """An IPPool; IPv6 pools are read but not used (the speaker is IPv4-only)."""

    name: str
    cidr: IPv4Network | None
    disabled: bool = False
    disable_bgp_export: bool = False


@dataclass(frozen=True)
class Affinity:
    """A block affine to a host; only ``confirmed`` ones are announced (bird_aggr)."""

    host: str
    block: IPv4Network
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
    """A Node; ``address`` is None when spec.bgp.ipv4Address is absent (BGP not on)."""
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
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        raise Problem(key, "metadata.labels must be a JSON object")
    rr = bgp.get("routeReflectorClusterID") or ""
    return Node(name=name, address=address, asn=_asn(key, bgp.get("asNumber"), "spec.bgp.asNumber"),
                labels={str(k): str(v) for k, v in labels.items()}, rr_cluster_id=str(rr))


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


def _peer_ip(key: str, text: str) -> tuple[IPv4Address | None, int | None]:
    """``peerIP`` is "a.b.c.d" or "a.b.c.d:port" (Calico accepts both)."""
    if not text:
        return None, None
    host, _, port_text = text.partition(":") if text.count(":") == 1 else (text, "", "")
    try:
        address = IPv4Address(host)
    except ValueError:
        raise Problem(key, f"spec.peerIP {text!r} is not an IPv4 address (IPv6 peers are not "
                           f"supported)") from None
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
    """An IPPool; ``cidr`` is None for an IPv6 pool."""
    _, spec = _spec(key, value, "IPPool")
    text = _str(key, spec, "cidr")
    name = key.removeprefix(IPPOOL_PREFIX)
    if ":" in text:
        return IPPool(name=name, cidr=None)
    try:
        cidr = IPv4Network(text)
    except ValueError as exc:
        raise Problem(key, f"spec.cidr {text!r} is not an IPv4 CIDR ({exc})") from None
    return IPPool(name=name, cidr=cidr, disabled=spec.get("disabled") is True,
                  disable_bgp_export=spec.get("disableBGPExport") is True)


def parse_affinity(key: str, value: bytes) -> Affinity | None:
    """A host block affinity, or None for a key under the prefix that is not one (IPv6)."""
    rest = key.removeprefix(AFFINITY_PREFIX)
    host, sep, tail = rest.partition("/ipv4/block/")
    if not sep:
        return None
    try:
        block = IPv4Network(tail.replace("-", "/"))
    except ValueError:
        raise Problem(key, f"{tail!r} is not a block (want a.b.c.d-26)") from None
    data = _json_object(key, value)
    state = data.get("state", "confirmed") or "confirmed"  # old affinities have no state
    if data.get("deleted") is True:
        state = "deleted"
    return Affinity(host=host, block=block, state=str(state))
