"""Calico's keys and values written as libcalico-go's etcdv3 backend writes them.

The speaker only reads the datastore; these builders exist so that the tests and the lab
seed etcd with exactly the shapes the reader (speaker.datastore.model) is written against.
Both families: a node's ``address6``, IPv6 pools, IPv6 block affinities and blocks (the
family of a CIDR picks its key: ``.../ipv4/block/...`` or ``.../ipv6/block/...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import ip_network
from typing import Any

from speaker.datastore.model import (
    AFFINITY_PREFIX,
    BGPCONFIG_KEY,
    BGPPEER_PREFIX,
    BLOCK6_PREFIX,
    BLOCK_PREFIX,
    IPPOOL_PREFIX,
    NODE_PREFIX,
)

__all__ = [
    "SEED_NODES",
    "SEED_NODES6",
    "affinity",
    "bgp_configuration",
    "bgp_peer",
    "block",
    "ip_pool",
    "node",
    "seed_snapshot",
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
         labels: Mapping[str, str] | None = None, address6: str | None = None,
         prefixlen6: int = 64) -> Entry:
    """A Node; ``address`` and ``address6`` None leave spec.bgp out (a node without BGP).
    ``address6`` is spec.bgp.ipv6Address, as calico-node writes it with IP6 set."""
    spec: dict[str, Any] = {}
    if address is not None or address6 is not None:
        bgp: dict[str, Any] = {}
        if address is not None:
            bgp["ipv4Address"] = f"{address}/{prefixlen}"
        if address6 is not None:
            bgp["ipv6Address"] = f"{address6}/{prefixlen6}"
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


def ip_pool(name: str, cidr: str, *, block_size: int | None = None, disabled: bool = False,
            disable_bgp_export: bool = False) -> Entry:
    """An IPPool without encapsulation, like the seed's default-ipv4-ippool (or calico-node's
    default-ipv6-ippool for an IPv6 ``cidr``); ``block_size`` defaults to Calico's 26 (IPv4)
    or 122 (IPv6)."""
    ipv6 = ip_network(cidr).version == 6
    if block_size is None:
        block_size = 122 if ipv6 else 26
    spec = {"cidr": cidr, "blockSize": block_size, "ipipMode": "Never", "vxlanMode": "Never",
            "natOutgoing": not ipv6, "nodeSelector": "all()", "disabled": disabled,
            "disableBGPExport": disable_bgp_export}
    return IPPOOL_PREFIX + name, _resource("IPPool", name, spec)


def _block_name(cidr: str) -> str:
    """The CIDR's text with '/' written '-', as libcalico-go names block keys."""
    return str(ip_network(cidr)).replace("/", "-")


def _family(cidr: str) -> str:
    return f"ipv{ip_network(cidr).version}"


def affinity(host: str, cidr: str, state: str = "confirmed") -> Entry:
    """/calico/ipam/v2/host/<host>/ipv4/block/<a.b.c.d-26>, or .../ipv6/block/<cidr-122>
    (``fd00:10:244::8100-122``) for an IPv6 block."""
    key = f"{AFFINITY_PREFIX}{host}/{_family(cidr)}/block/{_block_name(cidr)}"
    return key, json.dumps({"state": state, "deleted": False}).encode()


def block(cidr: str, host: str) -> Entry:
    """/calico/ipam/v2/assignment/ipv4/block/<a.b.c.d-26> (or .../ipv6/block/...): the
    block, affine to ``host``; one allocation slot per address (keep IPv6 blocks small:
    Calico's are /122, 64 addresses)."""
    size = ip_network(cidr).num_addresses
    value = {"cidr": cidr, "affinity": f"host:{host}", "strictAffinity": False,
             "allocations": [None] * size, "unallocated": list(range(size)),
             "attributes": [], "deleted": False}
    prefix = BLOCK6_PREFIX if _family(cidr) == "ipv6" else BLOCK_PREFIX
    return prefix + _block_name(cidr), json.dumps(value).encode()


SEED_NODES = (("node80", "192.168.0.80", "10.244.152.128/26"),
              ("node81", "192.168.0.81", "10.244.42.64/26"),
              ("node82", "192.168.0.82", "10.244.103.64/26"))
"""The seed's three hosts: name, address, block (README)."""

SEED_NODES6 = (("node80", "fd00:192:168::80", "fd00:10:244::8000/122"),
               ("node81", "fd00:192:168::81", "fd00:10:244::8100/122"),
               ("node82", "fd00:192:168::82", "fd00:10:244::8200/122"))
"""The seed's hosts made dual-stack: name, IPv6 address, IPv6 block (the addresses of
tests/test_dual_stack.py)."""

SEED_POOL6 = "fd00:10:244::/64"


def seed_snapshot(nodes: tuple[tuple[str, str, str], ...] = SEED_NODES,
                  pool: str = "10.244.0.0/16",
                  nodes6: tuple[tuple[str, str, str], ...] = (),
                  pool6: str = SEED_POOL6) -> dict[str, bytes]:
    """The seed cluster as Calico stores it: nodes, default BGP configuration, pool, blocks.

    With ``nodes6`` (e.g. SEED_NODES6) the named nodes also get an IPv6 address and block,
    and the IPv6 pool ``pool6`` is added: a dual-stack cluster."""
    entries = [bgp_configuration(), ip_pool("default-ipv4-ippool", pool)]
    ipv6 = {name: (address6, cidr6) for name, address6, cidr6 in nodes6}
    if ipv6:
        entries.append(ip_pool("default-ipv6-ippool", pool6))
    for name, address, cidr in nodes:
        address6, cidr6 = ipv6.get(name, (None, None))
        entries += [node(name, address, address6=address6), affinity(name, cidr),
                    block(cidr, name)]
        if cidr6 is not None:
            entries += [affinity(name, cidr6), block(cidr6, name)]
    return dict(entries)
