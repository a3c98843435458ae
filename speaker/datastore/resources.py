"""Calico's keys and values written as libcalico-go's etcdv3 backend writes them.

The speaker only reads the datastore; these builders exist so that the tests and the lab
seed etcd with exactly the shapes the reader (speaker.datastore.model) is written against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Any

from speaker.datastore.model import (
    AFFINITY_PREFIX,
    BGPCONFIG_KEY,
    BGPPEER_PREFIX,
    BLOCK_PREFIX,
    IPPOOL_PREFIX,
    NODE_PREFIX,
)

__all__ = [
    "affinity",
    "bgp_configuration",
    "bgp_peer",
    "block",
    "ip_pool",
    "node",
]

Entry = tuple[str, bytes]


def _resource(kind: str, name: str, spec: Mapping[str, Any],
              labels: Mapping[str, str] | None = None) -> bytes:
    metadata: dict[str, Any] = {"name": name, "uid": f"{kind.lower()}-{name}",
                                "creationTimestamp": "2024-01-01T00:00:00Z"}
    if labels:
        metadata["labels"] = dict(labels)
    return json.dumps({"kind": kind, "apiVersion": "projectcalico.org/v3",
                       "metadata": metadata, "spec": dict(spec)}).encode()


def node(name: str, address: str | None, *, prefixlen: int = 24, asn: int | None = None,
         labels: Mapping[str, str] | None = None) -> Entry:
    """A Node; ``address`` None leaves spec.bgp out (a node without BGP)."""
    spec: dict[str, Any] = {}
    if address is not None:
        bgp: dict[str, Any] = {"ipv4Address": f"{address}/{prefixlen}"}
        if asn is not None:
            bgp["asNumber"] = asn
        spec["bgp"] = bgp
    spec["orchRefs"] = [{"nodeName": name, "orchestrator": "k8s"}]
    return NODE_PREFIX + name, _resource("Node", name, spec, labels)


def bgp_configuration(*, asn: int | None = 64512, mesh: bool | None = True,
                      listen_port: int | None = None) -> Entry:
    """bgpconfigurations/default as ``calicoctl`` creates it."""
    spec: dict[str, Any] = {"logSeverityScreen": "Info"}
    if asn is not None:
        spec["asNumber"] = asn
    if mesh is not None:
        spec["nodeToNodeMeshEnabled"] = mesh
    if listen_port is not None:
        spec["listenPort"] = listen_port
    return BGPCONFIG_KEY, _resource("BGPConfiguration", "default", spec)


def bgp_peer(name: str, **spec: Any) -> Entry:
    """A BGPPeer with the given spec fields (peerIP, asNumber, node, nodeSelector, ...)."""
    return BGPPEER_PREFIX + name, _resource("BGPPeer", name, spec)


def ip_pool(name: str, cidr: str, *, block_size: int = 26, disabled: bool = False,
            disable_bgp_export: bool = False) -> Entry:
    """An IPPool without encapsulation, like the seed's default-ipv4-ippool."""
    spec = {"cidr": cidr, "blockSize": block_size, "ipipMode": "Never", "vxlanMode": "Never",
            "natOutgoing": True, "nodeSelector": "all()", "disabled": disabled,
            "disableBGPExport": disable_bgp_export}
    return IPPOOL_PREFIX + name, _resource("IPPool", name, spec)


def _block_name(cidr: str) -> str:
    return str(IPv4Network(cidr)).replace("/", "-")


def affinity(host: str, cidr: str, state: str = "confirmed") -> Entry:
    """/calico/ipam/v2/host/<host>/ipv4/block/<a.b.c.d-26>."""
    key = f"{AFFINITY_PREFIX}{host}/ipv4/block/{_block_name(cidr)}"
    return key, json.dumps({"state": state, "deleted": False}).encode()


def block(cidr: str, host: str) -> Entry:
    """/calico/ipam/v2/assignment/ipv4/block/<a.b.c.d-26>: the block, affine to ``host``."""
    size = IPv4Network(cidr).num_addresses
    value = {"cidr": cidr, "affinity": f"host:{host}", "strictAffinity": False,
             "allocations": [None] * size, "unallocated": list(range(size)),
             "attributes": [], "deleted": False}
    return BLOCK_PREFIX + _block_name(cidr), json.dumps(value).encode()


SEED_NODES = (("node80", "192.168.0.80", "10.244.152.128/26"),
              ("node81", "192.168.0.81", "10.244.42.64/26"),
              ("node82", "192.168.0.82", "10.244.103.64/26"))
"""The seed's three hosts: name, address, block (README)."""


def seed_snapshot(nodes: tuple[tuple[str, str, str], ...] = SEED_NODES,
                  pool: str = "10.244.0.0/16") -> dict[str, bytes]:
    """The seed cluster as Calico stores it: nodes, default BGP configuration, pool, blocks."""
    entries = [bgp_configuration(), ip_pool("default-ipv4-ippool", pool)]
    for name, address, cidr in nodes:
        entries += [node(name, address), affinity(name, cidr), block(cidr, name)]
    return dict(entries)
