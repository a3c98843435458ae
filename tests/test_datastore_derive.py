"""The pure derivation: Calico's etcd keys to this node's Config, as confd renders bird.cfg."""

from __future__ import annotations

from dataclasses import fields
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from speaker.config import Config, load_config, parse_config
from speaker.datastore import resources as r
from speaker.datastore.derive import Derivation, derive_config
from speaker.datastore.model import NODE_PREFIX
from speaker.datastore.selector import SelectorError, parse_selector

ROOT = Path(__file__).resolve().parent.parent


def derive(snapshot: dict[str, bytes], node: str = "node81") -> Derivation:
    return derive_config(snapshot, node)


def config_of(snapshot: dict[str, bytes], node: str = "node81") -> Config:
    d = derive(snapshot, node)
    assert d.config is not None, d.problems
    return d.config


def test_seed_gives_exactly_node81_toml() -> None:
    want = load_config(ROOT / "config" / "node81.toml")
    got = config_of(r.seed_snapshot())
    assert derive(r.seed_snapshot()).problems == ()
    for f in ("router_id", "asn", "port", "originate", "pools"):
        assert getattr(got, f) == getattr(want, f), f
    assert len(got.peers) == len(want.peers) == 2
    by_address = {p.address: p for p in got.peers}
    for wanted in want.peers:
        peer = by_address[wanted.address]
        for f in fields(wanted):
            assert getattr(peer, f.name) == getattr(wanted, f.name), (peer.name, f.name)
    # .81 dials .80 ("192.168.0.80" < "192.168.0.81") and waits for .82.
    assert got.peer("Mesh_192_168_0_80").passive is False
    assert got.peer("Mesh_192_168_0_82").passive is True


def test_template_keeps_the_local_file_settings() -> None:
    template = parse_config('control_socket = "/run/x.ctl"\n[kernel]\nprotocol = 190\n'
                            '[datastore]\ntype = "etcdv3"\nendpoints = ["http://10.0.0.1:2379"]\n'
                            'node_name = "node81"\n', "t.toml")
    got = derive_config(r.seed_snapshot(), "node81", template).config
    assert got is not None
    assert got.control_socket == "/run/x.ctl" and got.kernel.protocol == 190
    assert got.router_id == IPv4Address("192.168.0.81") and got.datastore is not None


@pytest.mark.parametrize("node,dials,waits", [
    ("node80", [], ["Mesh_192_168_0_81", "Mesh_192_168_0_82"]),
    ("node82", ["Mesh_192_168_0_80", "Mesh_192_168_0_81"], []),
])
def test_each_seed_node_sees_the_two_others(node: str, dials: list[str], waits: list[str]
                                            ) -> None:
    got = config_of(r.seed_snapshot(), node)
    assert sorted(p.name for p in got.peers if not p.passive) == dials
    assert sorted(p.name for p in got.peers if p.passive) == waits


def test_a_fourth_node_adds_a_peer_and_deleting_one_removes_it() -> None:
    snap = r.seed_snapshot()
    snap.update([r.node("node9", "192.168.0.9"), r.affinity("node9", "10.244.7.0/26")])
    got = config_of(snap)
    peer = got.peer("Mesh_192_168_0_9")
    # "192.168.0.9" > "192.168.0.81" as text: we wait although 9 < 81.
    assert peer.passive is True and peer.asn == 64512
    assert got.originate.blocks == (IPv4Network("10.244.42.64/26"),)
    del snap[NODE_PREFIX + "node80"]
    assert sorted(p.name for p in config_of(snap).peers) == ["Mesh_192_168_0_82",
                                                             "Mesh_192_168_0_9"]


def test_pending_and_deleted_affinities_are_not_announced() -> None:
    snap = r.seed_snapshot()
    snap.update([r.affinity("node81", "10.244.42.128/26", "pending"),
                 r.affinity("node81", "10.244.43.0/26", "pendingDeletion")])
    assert config_of(snap).originate.blocks == (IPv4Network("10.244.42.64/26"),)
    key, _ = r.affinity("node81", "10.244.42.64/26")
    snap[key] = b'{"state": "confirmed", "deleted": true}'
    assert config_of(snap).originate.blocks == ()


def test_a_moved_block_follows_its_affinity() -> None:
    snap = r.seed_snapshot()
    old_key, _ = r.affinity("node82", "10.244.103.64/26")
    del snap[old_key]
    snap.update([r.affinity("node81", "10.244.103.64/26")])
    assert config_of(snap).originate.blocks == (IPv4Network("10.244.42.64/26"),
                                                IPv4Network("10.244.103.64/26"))
    assert config_of(snap, "node82").originate.blocks == ()


def test_global_and_node_specific_bgp_peers() -> None:
    snap = r.seed_snapshot()
    snap.update([
        r.node("node81", "192.168.0.81", labels={"rack": "r1"}),
        r.bgp_peer("tor", peerIP="192.168.0.1", asNumber=65001),
        r.bgp_peer("mine", peerIP="192.168.0.2", asNumber=64512, node="node81"),
        r.bgp_peer("theirs", peerIP="192.168.0.3", asNumber=64512, node="node80"),
        r.bgp_peer("rack1", peerIP="192.168.0.4:1179", asNumber=64512,
                   nodeSelector="rack == 'r1'"),
        r.bgp_peer("rack2", peerIP="192.168.0.5", asNumber=64512,
                   nodeSelector="rack == 'r2'"),
    ])
    got = config_of(snap)
    names = {p.name for p in got.peers}
    assert names == {"Mesh_192_168_0_80", "Mesh_192_168_0_82", "Global_192_168_0_1",
                     "Node_192_168_0_2", "Node_192_168_0_4_port_1179"}
    tor = got.peer("Global_192_168_0_1")
    assert tor.internal is False and tor.asn == 65001 and tor.passive is False
    assert tor.source_address == IPv4Address("192.168.0.81")
    assert got.peer("Node_192_168_0_4_port_1179").port == 1179


def test_mesh_disabled_leaves_only_bgp_peers_and_peer_selector_picks_nodes() -> None:
    snap = r.seed_snapshot()
    snap.update([r.bgp_configuration(mesh=False),
                 r.node("node82", "192.168.0.82", labels={"role": "rr"}),
                 r.bgp_peer("to-rr", peerSelector="role == 'rr'", nodeSelector="all()")])
    got = config_of(snap)
    assert [p.name for p in got.peers] == ["Node_192_168_0_82"]
    assert got.peers[0].passive is True  # still a Calico node: the text rule


def test_as_and_port_from_node_then_bgp_configuration_then_default() -> None:
    snap = r.seed_snapshot()
    snap.update([r.bgp_configuration(asn=65000, listen_port=1790)])
    got = config_of(snap)
    assert got.asn == 65000 and got.port == 1790
    assert {p.port for p in got.peers} == {1790}
    snap.update([r.node("node81", "192.168.0.81", asn=65081)])
    got = config_of(snap)
    assert got.asn == 65081 and all(not p.internal for p in got.peers)
    snap.update([r.bgp_configuration(asn=None)])
    assert config_of(snap, "node80").asn == 64512


def test_problems_name_the_key_and_keep_the_rest() -> None:
    snap = r.seed_snapshot()
    snap.update([r.node("nobgp", None), r.affinity("node81", "172.16.0.0/26")])
    snap[NODE_PREFIX + "broken"] = b"{not json"
    d = derive(snap)
    assert d.config is not None and len(d.config.peers) == 2
    text = "\n".join(str(p) for p in d.problems)
    assert f"{NODE_PREFIX}nobgp: spec.bgp.ipv4Address is missing" in text
    assert f"{NODE_PREFIX}broken: not valid JSON" in text
    assert "172.16.0.0/26 is outside every enabled IP pool (10.244.0.0/16)" in text
    assert len(d.problems) == 3


def test_our_own_node_missing_gives_no_config() -> None:
    d = derive(r.seed_snapshot(), "node99")
    assert d.config is None
    assert [str(p) for p in d.problems] == [
        f"{NODE_PREFIX}node99: no such key: this node is not registered"]


def test_disabled_pools_and_disable_bgp_export() -> None:
    snap = r.seed_snapshot()
    snap.update([r.ip_pool("default-ipv4-ippool", "10.244.0.0/16", disable_bgp_export=True),
                 r.ip_pool("other", "10.245.0.0/16"), r.ip_pool("off", "10.246.0.0/16",
                                                                  disabled=True),
                 r.affinity("node81", "10.245.0.0/26")])
    got = config_of(snap)
    assert got.pools.cidrs == (IPv4Network("10.245.0.0/16"),)
    assert got.originate.blocks == (IPv4Network("10.245.0.0/26"),)


def test_a_password_peer_is_left_out_with_a_reason() -> None:
    snap = r.seed_snapshot()
    snap.update([r.bgp_peer("secret", peerIP="192.168.0.1", asNumber=65001,
                            password={"secretKeyRef": {"name": "s", "key": "k"}})])
    d = derive(snap)
    assert d.config is not None and len(d.config.peers) == 2
    assert "secret" in str(d.problems[0]) and "MD5" in str(d.problems[0])


def test_selectors() -> None:
    labels = {"rack": "r1", "zone": "a"}
    assert parse_selector("all()")(labels)
    assert parse_selector("rack == 'r1' && zone == \"a\"")(labels)
    assert not parse_selector("rack == 'r1' && has(gpu)")(labels)
    assert parse_selector("!has(gpu) && rack != 'r2'")(labels)
    for bad in ("rack in {'r1'}", "a == 'b' || c == 'd'", "", "(a == 'b')"):
        with pytest.raises(SelectorError):
            parse_selector(bad)
