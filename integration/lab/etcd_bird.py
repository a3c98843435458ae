"""The lab's confd: BIRD nodes' bird.cfg rendered from Calico's keys in etcd, and reloaded.

calico-node's confd watches etcd and renders bird.cfg from templates (mesh peers from the
nodes, blocks from this host's confirmed affinities, filters from the pools), then tells
BIRD to reconfigure.  The lab does the same in two steps the tests call: ``render`` reads
etcd (``etcdctl get`` in etcd's namespace) and turns the keys into
``configs.render_bird_config``'s text; ``sync`` writes each running BIRD node's config and
runs ``birdc configure`` where the text changed.  Tests call ``sync()`` after they change
keys (a helper, not a watcher: each step is explicit and its failure names the node).

This parse is deliberately separate from the speaker's (speaker.datastore): it follows
confd's template, so BIRD and the speaker reading the same keys is a real cross-check.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from integration.lab.configs import KERNEL_PROTOCOL, MeshPeer, render_bird_config
from integration.lab.core import Lab
from integration.lab.etcd import EtcdServer
from integration.lab.netns import LabError
from integration.lab.spec import NodeSpec

__all__ = ["CalicoKeys", "EtcdBirdRenderer", "parse_keys", "read_keys",
           "render_speaker_datastore_config"]

NODES = "/calico/resources/v3/projectcalico.org/nodes/"
POOLS = "/calico/resources/v3/projectcalico.org/ippools/"
BGPCONFIG = "/calico/resources/v3/projectcalico.org/bgpconfigurations/default"
HOSTS = "/calico/ipam/v2/host/"


@dataclass
class CalicoKeys:
    """What confd's templates use: nodes (name -> address, AS), default AS, pools, blocks."""

    nodes: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    asn: int = 64512
    mesh: bool = True
    pools: list[str] = field(default_factory=list)
    blocks: dict[str, list[str]] = field(default_factory=dict)
    """host -> its confirmed blocks, in key order."""
    revision: int = 0
    """etcd's revision the keys were read at (0: not from etcd)."""


def read_keys(etcd: EtcdServer) -> CalicoKeys:
    """Every /calico key, read with etcdctl in etcd's namespace."""
    revision, items = etcd.items("/calico/")
    return parse_keys(items, revision)


def parse_keys(items: Mapping[str, bytes], revision: int = 0) -> CalicoKeys:
    """What confd's templates take from the keys (a key etcd would not hold is skipped)."""
    keys = CalicoKeys(revision=revision)
    for key in sorted(items):
        value = json.loads(items[key] or b"null")
        if key.startswith(NODES):
            bgp = (value.get("spec") or {}).get("bgp") or {}
            if bgp.get("ipv4Address"):
                keys.nodes[key.removeprefix(NODES)] = (bgp["ipv4Address"].split("/")[0],
                                                       bgp.get("asNumber"))
        elif key == BGPCONFIG:
            spec = value.get("spec") or {}
            keys.asn = spec.get("asNumber", keys.asn)
            keys.mesh = spec.get("nodeToNodeMeshEnabled", True) is not False
        elif key.startswith(POOLS):
            spec = value.get("spec") or {}
            cidr = spec.get("cidr", "")
            if (not spec.get("disabled") and not spec.get("disableBGPExport")
                    and ipaddress.ip_network(cidr).version == 4):
                keys.pools.append(cidr)
        elif key.startswith(HOSTS) and "/ipv4/block/" in key:
            host = key.removeprefix(HOSTS).split("/", 1)[0]
            if isinstance(value, dict) and value.get("state", "confirmed") == "confirmed" \
                    and not value.get("deleted"):
                block = key.rsplit("/", 1)[1]
                addr, _, length = block.rpartition("-")
                keys.blocks.setdefault(host, []).append(f"{addr}/{length}")
    return keys


class EtcdBirdRenderer:
    """bird.cfg for the lab's BIRD nodes from etcd; ``sync`` = confd's render + reload."""

    def __init__(self, lab: Lab, etcd: EtcdServer) -> None:
        self.lab = lab
        self.etcd = etcd
        self.reloads: list[str] = []
        """Every ``birdc configure`` done, as ``node``."""

    def render(self, node: NodeSpec, keys: CalicoKeys | None = None) -> str | None:
        """The node's bird.cfg, or None when etcd holds no BGP address for it."""
        keys = keys or read_keys(self.etcd)
        if node.name not in keys.nodes:
            return None
        peers = [MeshPeer(name, address, asn if asn is not None else keys.asn)
                 for name, (address, asn) in sorted(keys.nodes.items())] if keys.mesh else []
        own_asn = keys.nodes[node.name][1]
        me = NodeSpec(node.name, keys.nodes[node.name][0], "bird", node.block, node.pod_address,
                      asn=own_asn if own_asn is not None else keys.asn,
                      password=node.password, ttl_security=node.ttl_security)
        return render_bird_config(me, peers, keys.pools or [self.lab.pool],
                                  log_file=str(self.lab.bird_log_path(node)),
                                  blocks=keys.blocks.get(node.name, []),
                                  header="integration/lab/etcd_bird.py from etcd's keys")

    def write(self, node: NodeSpec, keys: CalicoKeys | None = None) -> bool:
        """Write the node's config file; True if its text changed."""
        text = self.render(node, keys)
        if text is None:
            raise LabError(f"{node.name}: etcd has no BGP address for it; nothing to render")
        path: Path = self.lab.config_path(node)
        old = path.read_text() if path.exists() else ""
        path.write_text(text)
        return text != old

    def sync(self, keys: CalicoKeys | None = None,
             nodes: Sequence[str] | None = None) -> list[str]:
        """Render every BIRD node (or those named) from etcd; ``birdc configure`` each running
        one whose text changed.  A node etcd no longer knows is left as it is (its
        calico-node is gone)."""
        keys = keys or read_keys(self.etcd)
        reloaded = []
        for node in self.lab.bird_nodes():
            if nodes is not None and node.name not in nodes:
                continue
            if node.name not in keys.nodes or not self.lab.daemon_running(node):
                continue
            if self.write(node, keys):
                reply = self.lab.birdc(node, "configure")
                if "Reconfigured" not in reply and "Reconfiguration in progress" not in reply:
                    raise LabError(f"birdc configure on {node.name}: {reply.strip()}")
                reloaded.append(node.name)
        self.reloads += reloaded
        return reloaded


def render_speaker_datastore_config(lab: Lab, node: NodeSpec, etcd: EtcdServer) -> str:
    """The speaker's TOML with ``[datastore]`` pointing at the lab's etcd (TLS): only local
    settings in the file, the mesh from etcd."""
    t = etcd.tls
    return "\n".join([
        f"# speaker config for {node.name}: the mesh from etcd (integration/lab/etcd_bird.py)",
        f'listen = "{node.address}"',
        f'control_socket = "{lab.control_socket(node)}"',
        "",
        "[datastore]",
        'type = "etcdv3"',
        f'endpoints = ["{etcd.endpoint}"]',
        f'node_name = "{node.name}"',
        f'ca_file = "{t.ca}"',
        f'cert_file = "{t.client_cert}"',
        f'key_file = "{t.client_key}"',
        "",
        "[kernel]",
        f"protocol = {KERNEL_PROTOCOL}",
        "learn = true",
        "persist = true",
        "scan_time = 2",
        "merge_paths = true",
        "",
    ])
