"""The datastore's IPv6 side: what confd renders into bird6.cfg, bird6_aggr.cfg and
bird6_ipam.cfg, derived into the same Config as the IPv4 side (one speaker plays both BIRD
daemons).  Node ``spec.bgp.ipv6Address``, IPv6 BGPPeers, IPv6 block affinities and pools."""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path
from typing import Any

import pytest

from speaker.cli import main
from speaker.config import Config, PeerConfig, parse_config
from speaker.control.commands import CommandExecutor
from speaker.control.static import StaticBackend
from speaker.core import DaemonEvent
from speaker.datastore import resources as r
from speaker.datastore.derive import Derivation, summarize
from speaker.datastore.model import AFFINITY_PREFIX, BGPPEER_PREFIX, NODE_PREFIX
from speaker.session import SessionDown
from speaker.wire.enums import CeaseSubcode
from tests.corenet import CoreNet
from tests.test_datastore_derive import config_of, derive
from tests.test_datastore_feed import make_feed, until

OWN6 = "fd00:192:168::81"
POOL6 = "fd00:10:244::/64"
BLOCK6 = "fd00:10:244::8100/122"


def dual(**kw: Any) -> dict[str, bytes]:
    """The seed made dual-stack: three nodes with IPv4 and IPv6 addresses, blocks, pools."""
    return r.seed_snapshot(nodes6=r.SEED_NODES6, **kw)




def names(config: Config, version: int | None = None) -> list[str]:
    return [p.name for p in config.peers if version is None or p.address.version == version]


def problems(d: Derivation) -> str:
    return "\n".join(str(p) for p in d.problems)


# ------------------------------------------------------------------------------- the mesh


def test_a_dual_stack_seed_gives_both_meshes_with_calicos_names_and_passive_rule() -> None:
    d = derive(dual())
    assert d.problems == ()
    got = d.config
    assert got is not None
    assert got.router_id == IPv4Address("192.168.0.81")
    assert got.address6 == IPv6Address(OWN6)
    # bird.cfg's peers, then bird6.cfg's (':' written '_', as Calico's template joins them)
    assert names(got) == ["Mesh_192_168_0_80", "Mesh_192_168_0_82",
                          "Mesh_fd00_192_168__80", "Mesh_fd00_192_168__82"]
    v6_80, v6_82 = got.peer("Mesh_fd00_192_168__80"), got.peer("Mesh_fd00_192_168__82")
    # "fd00:192:168::80" < "fd00:192:168::81" as text: we dial; "...::82" is greater: we wait
    assert v6_80.passive is False and v6_82.passive is True
    for peer in (v6_80, v6_82):
        assert peer.families == ("ipv6",) and peer.internal and peer.asn == 64512
        assert peer.source_address == peer.local_address == IPv6Address(OWN6)
        assert "(source_address) compared as text" in peer.passive_reason
    assert got.peer("Mesh_192_168_0_80").families == ("ipv4",)
    assert [str(b) for b in got.originate.blocks] == ["10.244.42.64/26", BLOCK6]
    assert [str(c) for c in got.pools.cidrs] == ["10.244.0.0/16", POOL6]


def test_the_derived_config_equals_the_same_mesh_written_in_a_file() -> None:
    """Datastore and file give the same PeerConfig field by field (incl. passive_reason)."""
    text = ('router_id = "192.168.0.81"\nasn = 64512\naddress6 = "fd00:192:168::81"\n'
            + "".join(f'[[peer]]\naddress = "{a}"\nsource_address = "{s}"\n'
                      for a, s in (("192.168.0.80", "192.168.0.81"),
                                   ("192.168.0.82", "192.168.0.81"),
                                   ("fd00:192:168::80", OWN6), ("fd00:192:168::82", OWN6)))
            + f'[originate]\nblocks = ["10.244.42.64/26", "{BLOCK6}"]\n'
            + f'[pools]\ncidrs = ["10.244.0.0/16", "{POOL6}"]\n')
    want = parse_config(text, "node81.toml")
    got = config_of(dual())
    for f in ("router_id", "asn", "port", "address6", "originate", "pools"):
        assert getattr(got, f) == getattr(want, f), f
    assert len(got.peers) == len(want.peers) == 4
    for mine, wanted in zip(got.peers, want.peers, strict=True):
        for f in fields(PeerConfig):
            assert getattr(mine, f.name) == getattr(wanted, f.name), (mine.name, f.name)


@pytest.mark.parametrize("node,dials,waits", [
    ("node80", [], ["Mesh_192_168_0_81", "Mesh_192_168_0_82", "Mesh_fd00_192_168__81",
                    "Mesh_fd00_192_168__82"]),
    ("node82", ["Mesh_192_168_0_80", "Mesh_192_168_0_81", "Mesh_fd00_192_168__80",
                "Mesh_fd00_192_168__81"], []),
])
def test_each_dual_stack_node_sees_the_others_in_both_families(
        node: str, dials: list[str], waits: list[str]) -> None:
    got = config_of(dual(), node)
    assert sorted(p.name for p in got.peers if not p.passive) == dials
    assert sorted(p.name for p in got.peers if p.passive) == waits


def test_the_ipv6_passive_rule_compares_text_not_numbers() -> None:
    snap = dual()
    snap.update([r.node("node9", "192.168.0.9", address6="fd00:192:168::9"),
                 r.node("node7", "192.168.0.7", address6="fd00:192:168:0:1::7")])
    got = config_of(snap)
    # 0x9 < 0x81, but "fd00:192:168::9" > "fd00:192:168::81" as text: we wait
    assert got.peer("Mesh_fd00_192_168__9").passive is True
    # numerically far greater, but "fd00:192:168:0:1::7" < "fd00:192:168::81" (':' < '1')
    assert got.peer("Mesh_fd00_192_168_0_1__7").passive is False


def test_a_node_without_ipv6_gets_no_ipv6_peers_and_is_no_ipv6_peer_of_others() -> None:
    snap = dual()
    snap.update([r.node("node82", "192.168.0.82")])  # node82 loses its ipv6Address
    mine = derive(snap)
    assert mine.problems == ()  # IPv6 is optional: nothing to report
    assert mine.config is not None
    assert names(mine.config, 6) == ["Mesh_fd00_192_168__80"]
    assert "Mesh_192_168_0_82" in names(mine.config)
    theirs = config_of(snap, "node82")
    assert theirs.address6 is None
    assert names(theirs) == ["Mesh_192_168_0_80", "Mesh_192_168_0_81"]  # bird6: IPv6 disabled
    assert [str(b) for b in theirs.originate.blocks] == ["10.244.103.64/26",
                                                         "fd00:10:244::8200/122"]


def test_an_ipv4_only_cluster_derives_exactly_what_it_did() -> None:
    got = config_of(r.seed_snapshot())
    assert got.address6 is None and names(got, 6) == []
    assert names(got) == ["Mesh_192_168_0_80", "Mesh_192_168_0_82"]


def test_an_ipv6_only_node_is_an_ipv6_peer_and_reported_for_ipv4() -> None:
    snap = dual()
    snap.update([r.node("node6", None, address6="fd00:192:168::6")])
    d = derive(snap)
    assert d.config is not None
    assert names(d.config, 6) == ["Mesh_fd00_192_168__6", "Mesh_fd00_192_168__80",
                                  "Mesh_fd00_192_168__82"]  # by node name
    assert problems(d) == (f"{NODE_PREFIX}node6: spec.bgp.ipv4Address is missing; no IPv4 "
                           f"mesh peer for this node")
    own = derive(snap, "node6")  # its router id would be its IPv4 address: none
    assert own.config is None
    assert "ipv4Address is missing: it is the router id" in problems(own)


@pytest.mark.parametrize("bad,words", [
    ("192.168.0.80/24", "is not an IPv6 address"),
    ("fd00:zz::1/64", "is not an IPv6 address"),
    ("fe80::80/64", "is link-local"),
    ("::/0", "cannot be a BGP address"),
])
def test_a_bad_ipv6_address_costs_the_node_its_ipv6_side_only(bad: str, words: str) -> None:
    snap = dual()
    key, value = r.node("node80", "192.168.0.80")
    spec = json.loads(value)
    spec["spec"]["bgp"]["ipv6Address"] = bad
    snap[key] = json.dumps(spec).encode()
    d = derive(snap)
    assert d.config is not None
    assert names(d.config) == ["Mesh_192_168_0_80", "Mesh_192_168_0_82",
                               "Mesh_fd00_192_168__82"]
    assert len(d.problems) == 1
    assert problems(d).startswith(f"{key}: spec.bgp.ipv6Address {bad!r} {words}")
    assert problems(d).endswith("; the node is used without IPv6")
    # our own bad ipv6Address: the IPv4 side still runs, no IPv6 peer at all
    mine = derive(snap, "node80")
    assert mine.config is not None and mine.config.address6 is None
    assert names(mine.config, 6) == [] and len(mine.config.peers) == 2
    assert f"{key}: spec.bgp.ipv6Address" in problems(mine)


def test_another_node_with_our_ipv6_address_is_skipped_and_reported() -> None:
    snap = dual()
    snap.update([r.node("clone", "192.168.0.99", address6=OWN6)])
    d = derive(snap)
    assert d.config is not None and "Mesh_192_168_0_99" in names(d.config)
    assert problems(d) == f"{NODE_PREFIX}clone: has our own address {OWN6}; skipped"


def test_mesh_disabled_and_as_numbers_apply_to_the_ipv6_mesh_too() -> None:
    snap = dual()
    snap.update([r.bgp_configuration(asn=65000, listen_port=1790),
                 r.node("node80", "192.168.0.80", address6="fd00:192:168::80", asn=65080)])
    got = config_of(snap)
    v6 = got.peer("Mesh_fd00_192_168__80")
    assert v6.asn == 65080 and not v6.internal and v6.port == 1790 and got.asn == 65000
    snap.update([r.bgp_configuration(mesh=False)])
    assert names(config_of(snap)) == []


# ------------------------------------------------------------------------------ BGPPeers


def test_global_and_node_specific_ipv6_bgp_peers() -> None:
    snap = dual()
    snap.update([
        r.node("node81", "192.168.0.81", address6=OWN6, labels={"rack": "r1"}),
        r.bgp_peer("tor6", peerIP="fd00:192:168::1", asNumber=65001),
        r.bgp_peer("mine6", peerIP="[fd00:192:168::2]:1179", asNumber=64512, node="node81"),
        r.bgp_peer("theirs6", peerIP="fd00:192:168::3", asNumber=64512, node="node80"),
        r.bgp_peer("rack6", peerIP="FD00:192:168:0::4", asNumber=64512,
                   nodeSelector="rack == 'r1'", sourceAddress="None"),
        r.bgp_peer("self6", peerIP=OWN6, asNumber=64512),  # Calico: "Skipping ourselves"
        r.bgp_peer("tor4", peerIP="192.168.0.1", asNumber=65001),
    ])
    d = derive(snap)
    assert d.problems == ()
    got = d.config
    assert got is not None
    assert names(got) == ["Mesh_192_168_0_80", "Mesh_192_168_0_82", "Global_192_168_0_1",
                          "Mesh_fd00_192_168__80", "Mesh_fd00_192_168__82",
                          "Node_fd00_192_168__2_port_1179", "Node_fd00_192_168__4",
                          "Global_fd00_192_168__1"]
    tor = got.peer("Global_fd00_192_168__1")
    assert tor.families == ("ipv6",) and tor.asn == 65001 and not tor.internal
    assert tor.passive is False  # an explicit peerIP dials
    assert tor.source_address == tor.local_address == IPv6Address(OWN6)  # UseNodeIP
    assert got.peer("Node_fd00_192_168__2_port_1179").port == 1179
    rack = got.peer("Node_fd00_192_168__4")  # the canonical text names it, as Go's does
    assert rack.source_address is None and rack.local_address == IPv6Address(OWN6)
    assert got.peer("Global_192_168_0_1").source_address == IPv4Address("192.168.0.81")


def test_a_peer_selector_picks_both_addresses_of_each_node() -> None:
    snap = dual()
    snap.update([r.bgp_configuration(mesh=False),
                 r.node("node82", "192.168.0.82", address6="fd00:192:168::82",
                        labels={"role": "rr"}),
                 r.bgp_peer("to-rr", peerSelector="role == 'rr'", nodeSelector="all()")])
    got = config_of(snap)
    assert names(got) == ["Node_192_168_0_82", "Node_fd00_192_168__82"]
    v6 = got.peer("Node_fd00_192_168__82")
    assert v6.passive is True and v6.source_address == IPv6Address(OWN6)  # the text rule
    # a node without IPv6 selects only the IPv4 address (bird6.cfg: IPv6 disabled)
    snap.update([r.node("node81", "192.168.0.81")])
    assert names(config_of(snap)) == ["Node_192_168_0_82"]


def test_an_ipv6_bgp_peer_of_a_node_without_ipv6_is_left_out_and_said() -> None:
    snap = r.seed_snapshot()
    snap.update([r.bgp_peer("tor6", peerIP="fd00:192:168::1", asNumber=65001),
                 r.bgp_peer("tor4", peerIP="192.168.0.1", asNumber=65001)])
    d = derive(snap)
    assert d.config is not None and names(d.config)[-1] == "Global_192_168_0_1"
    assert problems(d) == (f"{BGPPEER_PREFIX}tor6: spec.peerIP fd00:192:168::1 is IPv6 and "
                           f"this node has no spec.bgp.ipv6Address (bird6.cfg: IPv6 disabled "
                           f"on this node); peer left out")


@pytest.mark.parametrize("peer_ip,words", [
    ("[192.168.0.1]:179", "brackets are for IPv6 addresses"),
    ("[fd00::1]", "write [IPv6]:port"),
    ("[fd00::1]:0", "has a bad port"),
    ("fe80::1", "is link-local"),
    ("fd00::1%eth0", "has a zone index"),
    ("fd00::g", "is not an IP address"),
])
def test_bad_ipv6_peer_ips_are_named(peer_ip: str, words: str) -> None:
    snap = dual()
    snap.update([r.bgp_peer("bad", peerIP=peer_ip, asNumber=65001)])
    d = derive(snap)
    assert d.config is not None and len(d.config.peers) == 4
    assert problems(d).startswith(f"{BGPPEER_PREFIX}bad: spec.peerIP {peer_ip!r}")
    assert words in problems(d)


def test_keep_original_next_hop_and_duplicates_are_reported_for_ipv6_too() -> None:
    snap = dual()
    snap.update([r.bgp_peer("keep6", peerIP="fd00:192:168::1", asNumber=65001,
                            keepOriginalNextHop=True),
                 r.bgp_peer("again", peerIP="fd00:192:168::80", asNumber=64512)])
    d = derive(snap)
    assert d.config is not None and "Global_fd00_192_168__1" in names(d.config)
    text = problems(d)
    assert f"{BGPPEER_PREFIX}keep6: spec.keepOriginalNextHop is not supported" in text
    assert (f"{BGPPEER_PREFIX}again: Global_fd00_192_168__80: fd00:192:168::80 is already "
            f"peer Mesh_fd00_192_168__80; the second is left out") in text


# --------------------------------------------------------------------- blocks and pools


def test_ipv6_blocks_follow_their_confirmed_affinities() -> None:
    snap = dual()
    snap.update([r.affinity("node81", "fd00:10:244::8140/122", "pending"),
                 r.affinity("node81", "fd00:10:244::8180/122", "pendingDeletion"),
                 r.affinity("node81", "fd00:10:244::81c0/122")])
    assert [str(b) for b in config_of(snap).originate.blocks] == [
        "10.244.42.64/26", BLOCK6, "fd00:10:244::81c0/122"]
    key, _ = r.affinity("node81", BLOCK6)
    assert key == f"{AFFINITY_PREFIX}node81/ipv6/block/fd00:10:244::8100-122"
    snap[key] = b'{"state": "confirmed", "deleted": true}'
    assert BLOCK6 not in [str(b) for b in config_of(snap).originate.blocks]
    # a block moved to node82 (its affinity re-keyed): announced there, not here
    del snap[key]
    snap.update([r.affinity("node82", BLOCK6)])
    assert BLOCK6 in [str(b) for b in config_of(snap, "node82").originate.blocks]


def test_an_ipv6_block_needs_an_enabled_ipv6_pool() -> None:
    snap = dual()
    snap.update([r.affinity("node81", "fd00:99::/122")])
    d = derive(snap)
    assert d.config is not None and len(d.config.originate.blocks) == 2
    assert problems(d) == (f"{AFFINITY_PREFIX}node81/ipv6/block/fd00:99::-122: block "
                           f"fd00:99::/122 is outside every enabled IP pool ({POOL6}); not "
                           f"announced")
    # an IPv4-only pool set never holds an IPv6 block (no cross-family comparison)
    v4_only = r.seed_snapshot()
    v4_only.update([r.affinity("node81", BLOCK6)])
    d = derive(v4_only)
    assert "outside every enabled IP pool (none enabled)" in problems(d)


def test_ipv6_pool_filters_disabled_and_disable_bgp_export() -> None:
    snap = dual()
    snap.update([r.ip_pool("default-ipv6-ippool", POOL6, disable_bgp_export=True),
                 r.ip_pool("other6", "fd00:10:245::/64"),
                 r.ip_pool("off6", "fd00:10:246::/64", disabled=True),
                 r.affinity("node81", "fd00:10:245::8100/122"),
                 r.affinity("node81", "fd00:10:246::8100/122")])
    d = derive(snap)
    assert d.config is not None
    assert [str(c) for c in d.config.pools.cidrs] == ["10.244.0.0/16", "fd00:10:245::/64"]
    assert [str(b) for b in d.config.originate.blocks] == ["10.244.42.64/26",
                                                           "fd00:10:245::8100/122"]
    # the disabled pool's block is reported; the disableBGPExport pool's is silently held back
    assert len(d.problems) == 1
    assert "fd00:10:246::8100/122 is outside every enabled IP pool (fd00:10:245::/64)" in (
        problems(d))


@pytest.mark.parametrize("tail,words", [
    ("fd00:10:244::8101-122", "is not a block (want fd00:10:244::8100-122)"),
    ("10.244.9.0-26", "is not a block (want fd00:10:244::8100-122)"),
])
def test_bad_ipv6_affinity_keys_are_named(tail: str, words: str) -> None:
    snap = dual()
    key = f"{AFFINITY_PREFIX}node81/ipv6/block/{tail}"
    snap[key] = b'{"state": "confirmed"}'
    d = derive(snap)
    assert d.config is not None and len(d.config.originate.blocks) == 2
    assert problems(d) == f"{key}: {tail!r} {words}"


def test_a_bad_ipv6_pool_or_assignment_block_is_named() -> None:
    snap = dual()
    pool_key, _ = r.ip_pool("bad6", POOL6)
    snap[pool_key] = json.dumps({"kind": "IPPool", "spec": {"cidr": "fd00:10:244::1/64"}}
                                ).encode()
    block_key, _ = r.block(BLOCK6, "node81")
    snap[block_key] = b"{corrupt"
    d = derive(snap)
    assert d.config is not None and len(d.config.originate.blocks) == 2
    assert f"{pool_key}: spec.cidr 'fd00:10:244::1/64' is not an IPv4 or IPv6 CIDR" in (
        problems(d))
    assert f"{block_key}: not valid JSON" in problems(d)


# -------------------------------------------------------------------- the builders


def test_the_builders_write_ipv6_as_libcalico_go_does() -> None:
    key, value = r.node("node81", "192.168.0.81", address6=OWN6)
    assert json.loads(value)["spec"]["bgp"] == {"ipv4Address": "192.168.0.81/24",
                                                "ipv6Address": f"{OWN6}/64"}
    key, value = r.ip_pool("default-ipv6-ippool", POOL6)
    assert json.loads(value)["spec"]["blockSize"] == 122
    assert json.loads(r.ip_pool("p", "10.0.0.0/16")[1])["spec"]["blockSize"] == 26
    key, value = r.block(BLOCK6, "node81")
    assert key == "/calico/ipam/v2/assignment/ipv6/block/fd00:10:244::8100-122"
    assert len(json.loads(value)["allocations"]) == 64
    snap = dual()
    assert sum(k.startswith(AFFINITY_PREFIX) for k in snap) == 6
    assert ip_network(BLOCK6).prefixlen == 122


# ------------------------------------------------------- show datastore, check-config


def test_summarize_shows_the_ipv6_parts() -> None:
    s = summarize(derive(dual()))
    assert s["address6"] == OWN6
    assert s["peers"] == names(config_of(dual()))
    assert s["blocks"] == ["10.244.42.64/26", BLOCK6]
    assert s["pools"] == ["10.244.0.0/16", POOL6]


async def test_show_datastore_shows_the_ipv6_address_peers_and_blocks() -> None:
    snap = dual()
    snap.update([r.bgp_peer("far", peerIP="[fd00:192:168:1234::5678]:1179", asNumber=65001)])
    feed, _ = make_feed(snap)
    await feed.first()
    executor = CommandExecutor(StaticBackend([], datastore=feed.view()))
    text = [line.text for line in await executor.run_line("show datastore")]
    assert "Derived: router id 192.168.0.81, AS 64512, IPv6 address fd00:192:168::81" in text
    assert f"  blocks: 10.244.42.64/26, {BLOCK6}" in text
    assert f"  pools: 10.244.0.0/16, {POOL6}" in text
    lines = [t for t in text if t.startswith("    ")]
    rows = [t.split() for t in lines]
    assert rows[0] == ["Mesh_192_168_0_80", "192.168.0.80", "AS", "64512", "active"]
    assert rows[2] == ["Mesh_fd00_192_168__80", "fd00:192:168::80", "AS", "64512", "active"]
    assert rows[4] == ["Global_fd00_192_168_1234__5678_port_1179", "fd00:192:168:1234::5678",
                       "AS", "65001", "active"]
    # the long IPv6 names and addresses widen the columns: they stay aligned
    assert len({t.index(" AS ") for t in lines}) == 1
    assert len({t.index(str(p.address)) for t, p in zip(lines, feed.view().peers,
                                                         strict=True)}) == 1
    json_lines = await executor.run_line("json show datastore")
    doc = json.loads(json_lines[0].text)["data"]["datastore"]
    assert doc["address6"] == OWN6 and BLOCK6 in doc["blocks"]
    await feed.close()


def test_check_config_with_a_dual_stack_datastore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from speaker.datastore.etcd import EtcdSource

    snapshot = dual()
    snapshot.update([r.bgp_peer("tor6", peerIP="fd00:192:168::1", asNumber=65001,
                                keepOriginalNextHop=True)])

    async def fake_read(self: EtcdSource) -> Any:
        self.snapshot = snapshot
        return self.derive()

    monkeypatch.setattr(EtcdSource, "read_once", fake_read)
    path = tmp_path / "ds.toml"
    path.write_text('[datastore]\ntype = "etcdv3"\nendpoints = ["http://10.255.0.1:2379"]\n'
                    'node_name = "node81"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  problem: {BGPPEER_PREFIX}tor6: spec.keepOriginalNextHop" in out
    assert f"  IPv6 address {OWN6}" in out
    assert (f"Mesh_fd00_192_168__82: fd00:192:168::82 AS 64512 (iBGP, IPv6 unicast), from "
            f"{OWN6}, passive (waits for the peer)") in out
    assert f"{BLOCK6}" in out
    assert main(["check-config", "--config", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["address6"] == OWN6
    assert [p["families"] for p in doc["config"]["peers"]].count(["ipv6"]) == 3


# ----------------------------------------------------------------- live, in the core


async def _running(snapshot: dict[str, bytes]) -> tuple[CoreNet, Any, Any, list[Config]]:
    """The feed's first Config running in a core with a BIRD per peer, all established;
    later Configs go to the core's reconfigure, as the daemon's apply_config does."""
    feed, gateway = make_feed(snapshot)
    net = CoreNet(await feed.first())
    net.start()
    net.run_until(lambda: net.established(*names(net.config)))
    applied: list[Config] = []

    def apply(config: Config) -> bool:
        applied.append(config)
        return net.core.reconfigure(config, net.now)

    feed.start(apply)
    return net, feed, gateway, applied


def _downs(net: CoreNet) -> dict[str, int]:
    return {name: len(net.remote_of(name, SessionDown)) for name in net.remotes}


async def _settle(net: CoreNet, applied: list[Config], count: int) -> Config:
    """The ``count``-th applied Config, with BIRDs started for its new peers, established."""
    await until(lambda: len(applied) >= count)
    await asyncio.sleep(0.05)  # nothing else may follow
    assert len(applied) == count
    new = applied[-1]
    net.config = new
    for peer in new.peers:
        if peer.name not in net.remotes:
            net.add_remote(peer.name).start(net.now)
    net.pump()
    net.run_until(lambda: net.established(*names(new)))
    return new


async def test_a_node_gaining_an_ipv6_address_starts_only_its_ipv6_session() -> None:
    snap = dual()
    snap.update([r.node("node82", "192.168.0.82")])  # node82 is IPv4-only for now
    net, feed, gateway, applied = await _running(snap)
    assert names(net.config) == ["Mesh_192_168_0_80", "Mesh_192_168_0_82",
                                 "Mesh_fd00_192_168__80"]
    since = {p.name: net.core.peer(p.name).since for p in net.config.peers}
    downs = _downs(net)
    gateway.put(*r.node("node82", "192.168.0.82", address6="fd00:192:168::82"))
    new = await _settle(net, applied, 1)
    assert names(new, 6) == ["Mesh_fd00_192_168__80", "Mesh_fd00_192_168__82"]
    assert "peers added ['Mesh_fd00_192_168__82'], removed -" in net.of(DaemonEvent)[-1].what
    assert _downs(net) == {**downs, "Mesh_fd00_192_168__82": 0}  # nothing was reset
    assert {n: net.core.peer(n).since for n in since} == since
    # and losing it again ends that session only (Cease 3, Peer De-configured)
    gateway.put(*r.node("node82", "192.168.0.82"))
    await until(lambda: len(applied) == 2)
    net.pump()
    assert [p.name for p in net.core.peers()] == list(since)
    down = net.remote_of("Mesh_fd00_192_168__82", SessionDown)
    assert down and down[-1].notification is not None
    assert down[-1].notification.subcode == CeaseSubcode.PEER_DECONFIGURED
    assert {n: d for n, d in _downs(net).items() if n in since} == downs
    await feed.close()


async def test_our_node_gaining_an_ipv6_address_starts_the_ipv6_mesh_only() -> None:
    snap = dual()
    snap.update([r.node("node81", "192.168.0.81")])
    net, feed, gateway, applied = await _running(snap)
    assert net.config.address6 is None and names(net.config, 6) == []
    since = {p.name: net.core.peer(p.name).since for p in net.config.peers}
    downs = _downs(net)
    gateway.put(*r.node("node81", "192.168.0.81", address6=OWN6))
    new = await _settle(net, applied, 1)
    assert net.core.config.address6 == IPv6Address(OWN6)
    assert names(new, 6) == ["Mesh_fd00_192_168__80", "Mesh_fd00_192_168__82"]
    assert {n: net.core.peer(n).since for n in since} == since
    assert {n: d for n, d in _downs(net).items() if n in since} == downs
    # our IPv6 block reaches the IPv6 peers in MP_REACH with our IPv6 next hop
    net.run_until(lambda: BLOCK6 in net.received("Mesh_fd00_192_168__80"))
    assert net.received("Mesh_fd00_192_168__80") == {BLOCK6}
    await feed.close()
