"""The pure parts of the lab's etcd mode (no root, no etcd): how the report describes Calico's
keys, what the lab's confd takes from them, and how its log is read back."""

from __future__ import annotations

import json

from integration.lab.etcd_bird import parse_keys
from integration.lab.etcd_confd import parse_log
from integration.lab.status import describe_calico_value, format_calico_keys
from speaker.datastore import resources as r


def test_each_seed_key_is_described_by_what_it_holds() -> None:
    seed = r.seed_snapshot()
    lines = format_calico_keys(seed)
    assert len(lines) == len(seed) == 11
    assert [line.split()[0] for line in lines] == sorted(seed)
    said = dict(zip(sorted(seed), (line.split(None, 1)[1] for line in lines), strict=True))
    assert said[r.node("node81", "x")[0]] == "Node, BGP address 192.168.0.81/24"
    assert said[r.affinity("node82", "10.244.103.64/26")[0]] == "block affinity, confirmed"
    assert said[r.block("10.244.42.64/26", "node81")[0]] == (
        "IPAM block 10.244.42.64/26, host:node81")
    assert said[r.ip_pool("default-ipv4-ippool", "10.244.0.0/16")[0]] == "IPPool 10.244.0.0/16"
    assert said[r.bgp_configuration()[0]] == (
        "BGPConfiguration, AS 64512, node-to-node mesh on")


def test_unusual_values_are_described_not_hidden() -> None:
    key, value = r.affinity("node9", "10.244.9.0/26", "pending")
    assert describe_calico_value(key, value) == "block affinity, pending"
    key, value = r.ip_pool("p", "10.9.0.0/16", disabled=True, disable_bgp_export=True)
    assert describe_calico_value(key, value) == "IPPool 10.9.0.0/16, disabled, disableBGPExport"
    key, value = r.bgp_configuration(asn=65000, mesh=False)
    assert describe_calico_value(key, value).endswith("AS 65000, node-to-node mesh off")
    key, value = r.node("nobgp", None)
    assert describe_calico_value(key, value) == "Node, BGP address none"
    key, value = r.bgp_peer("tor", peerIP="10.0.0.1", asNumber=65001)
    assert describe_calico_value(key, value) == "BGPPeer 10.0.0.1 AS 65001"
    assert describe_calico_value(key, b"{broken") == "not JSON (7 bytes)"
    assert describe_calico_value(key, b"[1]").startswith("not a JSON object")
    assert format_calico_keys({}) == []


def test_confd_takes_nodes_pools_and_confirmed_blocks_from_the_keys() -> None:
    items = r.seed_snapshot()
    items.update([r.affinity("node81", "10.244.44.0/26", "pending"),
                  r.node("nobgp", None), r.node("node9", "192.168.0.9", asn=65009)])
    keys = parse_keys(items, 42)
    assert keys.revision == 42 and keys.asn == 64512 and keys.mesh
    assert keys.nodes == {"node80": ("192.168.0.80", None), "node81": ("192.168.0.81", None),
                          "node82": ("192.168.0.82", None), "node9": ("192.168.0.9", 65009)}
    assert keys.pools == ["10.244.0.0/16"]
    assert keys.blocks == {"node80": ["10.244.152.128/26"], "node81": ["10.244.42.64/26"],
                           "node82": ["10.244.103.64/26"]}
    items.update([r.affinity("node81", "10.244.44.0/26")])
    items[r.affinity("node82", "10.244.103.64/26")[0]] = json.dumps(
        {"state": "confirmed", "deleted": True}).encode()
    assert parse_keys(items).blocks == {"node80": ["10.244.152.128/26"],
                                        "node81": ["10.244.42.64/26", "10.244.44.0/26"]}


def test_the_confd_log_is_read_back_with_its_monotonic_times() -> None:
    text = ("12763.997 09:07:54.400 revision 12: unchanged (render 24 ms)\n"
            "12765.000 09:07:55.403 cannot read etcd: connection refused; again in 1 s\n"
            "12775.374 09:08:05.777 revision 13: configured (render 48 ms, birdc configure"
            " 10 ms)\n")
    renders = parse_log(text)
    assert [(x.mono, x.revision, x.what) for x in renders] == [
        (12763.997, 12, "unchanged"), (12775.374, 13, "configured")]
