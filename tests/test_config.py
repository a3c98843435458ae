"""Configuration: the keys, the defaults, Calico's passive rule, and every refusal."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speaker.config import (
    AddPaths,
    Config,
    ConfigError,
    ConfigErrors,
    calico_passive,
    default_peer_name,
    load_config,
    parse_config,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

BRIEF_EXAMPLE = """
router_id = "192.168.0.81"
asn = 64512
listen = "0.0.0.0"
port = 179
control_socket = "/run/speaker/node81.ctl"
[[peer]]
address = "192.168.0.80"
asn = 64512
source_address = "192.168.0.81"
[originate]
blocks = ["10.244.42.64/26"]
[pools]
cidrs = ["10.244.0.0/16"]
[kernel]
protocol = 186
learn = true
persist = true
scan_time = 2
merge_paths = true
"""


def node(router_id: str, *peers: str, extra: str = "") -> str:
    text = f'router_id = "{router_id}"\nasn = 64512\n{extra}\n'
    for p in peers:
        text += f'[[peer]]\naddress = "{p}"\n'
    return text


# --------------------------------------------------------------------------- the keys


def test_brief_example_parses_into_the_documented_values() -> None:
    cfg = parse_config(BRIEF_EXAMPLE, "node81.toml")
    assert cfg.source == "node81.toml"
    assert cfg.router_id == IPv4Address("192.168.0.81")
    assert cfg.asn == 64512
    assert cfg.listen == IPv4Address("0.0.0.0")
    assert cfg.port == 179
    assert cfg.control_socket == "/run/speaker/node81.ctl"
    (peer,) = cfg.peers
    assert peer.address == IPv4Address("192.168.0.80")
    assert peer.asn == 64512
    assert peer.source_address == IPv4Address("192.168.0.81")
    assert peer.name == "Mesh_192_168_0_80"
    assert peer.passive is False  # "192.168.0.80" < "192.168.0.81": we dial
    assert peer.internal is True
    assert cfg.originate.blocks == (IPv4Network("10.244.42.64/26"),)
    assert cfg.pools.cidrs == (IPv4Network("10.244.0.0/16"),)
    k = cfg.kernel
    assert (k.protocol, k.learn, k.persist, k.scan_time, k.merge_paths) == (
        186,
        True,
        True,
        2,
        True,
    )


def test_defaults_are_the_seed_bird_cfg_and_bird_defaults() -> None:
    cfg = parse_config(node("192.168.0.81", "192.168.0.80"), "x.toml")
    p = cfg.peers[0]
    assert (p.hold_time, p.keepalive_time) == (240, None)  # None: a third of the negotiated
    assert p.graceful_restart is True
    assert p.restart_time == 120
    assert p.add_paths is AddPaths.BOTH and p.add_paths.send and p.add_paths.receive
    assert p.multihop is True
    assert (p.connect_delay, p.connect_retry) == (2, 5)
    assert (p.error_wait_min, p.error_wait_max) == (5, 30)
    assert p.description == "Connection to BGP peer"
    assert p.asn == 64512 and p.port == 179
    assert p.source_address is None and p.local_address == IPv4Address("192.168.0.81")
    assert cfg.graceful_restart_wait == 240
    assert cfg.control_socket == "/run/speaker/speaker.ctl"
    assert cfg.listen == IPv4Address("0.0.0.0") and cfg.port == 179
    assert cfg.kernel.merge_limit == 16
    assert cfg.kernel.reject_cidrs == ()
    assert cfg.kernel.convergence_wait == 240
    assert cfg.kernel.table == 254 and cfg.kernel.scan_time == 2
    assert cfg.originate.blocks == () and cfg.originate.blackhole is True


def test_every_extension_key_is_read() -> None:
    text = """
router_id = "10.0.0.1"
asn = 65001
graceful_restart_wait = 100
[[peer]]
address = "10.0.0.2"
asn = 65002
port = 1179
name = "Global_10_0_0_2"
description = "ToR"
passive = true
hold_time = 90
keepalive_time = 20
graceful_restart = false
restart_time = 60
add_paths = "receive"
multihop = false
connect_delay = 1
connect_retry = 7
error_wait_min = 2
error_wait_max = 9
[kernel]
table = 100
scan_time = 0.5
merge_limit = 4
reject_cidrs = ["10.96.0.0/12"]
convergence_wait = 0
"""
    cfg = parse_config(text, "ext.toml")
    p = cfg.peers[0]
    assert cfg.graceful_restart_wait == 100
    assert (p.asn, p.port, p.name, p.description) == (65002, 1179, "Global_10_0_0_2", "ToR")
    assert p.internal is False
    assert p.passive is True and "configuration" in p.passive_reason
    assert (p.hold_time, p.keepalive_time, p.restart_time) == (90, 20, 60)
    assert p.graceful_restart is False and p.multihop is False
    assert p.add_paths is AddPaths.RECEIVE and p.add_paths.receive and not p.add_paths.send
    assert (p.connect_delay, p.connect_retry, p.error_wait_min, p.error_wait_max) == (1, 7, 2, 9)
    assert cfg.kernel.merge_limit == 4
    assert cfg.kernel.reject_cidrs == (IPv4Network("10.96.0.0/12"),)
    assert cfg.kernel.convergence_wait == 0
    assert (cfg.kernel.table, cfg.kernel.scan_time) == (100, 0.5)


@pytest.mark.parametrize(("hold", "keepalive"), [(240, 80), (90, 30), (3, 1), (0, 0), (10, 9)])
def test_keepalive_is_free_below_hold(hold: int, keepalive: int) -> None:
    text = node("10.0.0.1", "10.0.0.2") + f"hold_time = {hold}\nkeepalive_time = {keepalive}\n"
    p = parse_config(text, "x.toml").peers[0]
    assert (p.hold_time, p.keepalive_time) == (hold, keepalive)
    assert (
        parse_config(node("10.0.0.1", "10.0.0.2") + f"hold_time = {hold}\n", "x.toml")
        .peers[0]
        .keepalive_time
        is None
    )


def test_config_is_frozen_and_json_ready() -> None:
    cfg = parse_config(BRIEF_EXAMPLE, "node81.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.asn = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.peers[0].passive = True  # type: ignore[misc]
    doc = json.loads(json.dumps(cfg.to_dict()))
    assert doc["peers"][0]["address"] == "192.168.0.80"
    assert doc["peers"][0]["passive"] is False
    assert doc["originate"]["blocks"] == ["10.244.42.64/26"]
    assert cfg.peer("Mesh_192_168_0_80").address == IPv4Address("192.168.0.80")
    with pytest.raises(KeyError):
        cfg.peer("Mesh_nope")


# --------------------------------------------------------------------------- passive rule


def test_text_order_not_numeric_order_decides_who_dials() -> None:
    # 10.0.0.10 > 10.0.0.9 numerically, but "10.0.0.9" > "10.0.0.10" as text.
    ten = parse_config(node("10.0.0.10", "10.0.0.9"), "ten.toml").peers[0]
    nine = parse_config(node("10.0.0.9", "10.0.0.10"), "nine.toml").peers[0]
    assert ten.passive is True, ten.passive_reason
    assert nine.passive is False, nine.passive_reason
    assert '"10.0.0.9" > own "10.0.0.10"' in ten.passive_reason
    assert '"10.0.0.10" < own "10.0.0.9"' in nine.passive_reason
    assert calico_passive("10.0.0.10", "10.0.0.9") is True
    assert calico_passive(IPv4Address("10.0.0.9"), IPv4Address("10.0.0.10")) is False


def test_own_address_is_source_address_when_set_else_router_id() -> None:
    # router_id "10.0.0.5" < "10.0.0.7" would make us passive; source "10.0.0.8" > "10.0.0.7"
    # makes us dial.
    text = node("10.0.0.5", "10.0.0.7") + 'source_address = "10.0.0.8"\n'
    p = parse_config(text, "x.toml").peers[0]
    assert p.local_address == IPv4Address("10.0.0.8")
    assert p.passive is False
    assert "source_address" in p.passive_reason
    p2 = parse_config(node("10.0.0.5", "10.0.0.7"), "x.toml").peers[0]
    assert p2.passive is True and "router_id" in p2.passive_reason


def test_explicit_passive_overrides_the_rule() -> None:
    p = parse_config(node("10.0.0.9", "10.0.0.10") + "passive = true\n", "x.toml").peers[0]
    assert p.passive is True
    p = parse_config(node("10.0.0.10", "10.0.0.9") + "passive = false\n", "x.toml").peers[0]
    assert p.passive is False


def test_seed_node_files_give_exactly_one_dialer_per_pair() -> None:
    configs = {n: load_config(CONFIG_DIR / f"node{n}.toml") for n in (80, 81, 82)}
    blocks = {80: "10.244.152.128/26", 81: "10.244.42.64/26", 82: "10.244.103.64/26"}
    dials: set[tuple[str, str]] = set()
    for n, cfg in configs.items():
        assert cfg.router_id == IPv4Address(f"192.168.0.{n}")
        assert cfg.control_socket == f"/run/speaker/node{n}.ctl"
        assert cfg.originate.blocks == (IPv4Network(blocks[n]),)
        assert cfg.pools.cidrs == (IPv4Network("10.244.0.0/16"),)
        assert len(cfg.peers) == 2
        for p in cfg.peers:
            assert p.source_address == cfg.router_id
            if not p.passive:
                dials.add((str(cfg.router_id), str(p.address)))
    # The seed's rule: a node dials peers with a lower address.
    assert dials == {
        ("192.168.0.81", "192.168.0.80"),
        ("192.168.0.82", "192.168.0.80"),
        ("192.168.0.82", "192.168.0.81"),
    }


def test_example_file_is_valid_and_documents_every_key() -> None:
    cfg = load_config(CONFIG_DIR / "example.toml")
    assert len(cfg.peers) == 2
    text = (CONFIG_DIR / "example.toml").read_text()
    keys = [
        "router_id",
        "asn",
        "listen",
        "port",
        "control_socket",
        "graceful_restart_wait",
        "address",
        "source_address",
        "name",
        "description",
        "passive",
        "hold_time",
        "keepalive_time",
        "graceful_restart",
        "restart_time",
        "add_paths",
        "multihop",
        "connect_delay",
        "connect_retry",
        "error_wait_min",
        "error_wait_max",
        "blocks",
        "blackhole",
        "cidrs",
        "protocol",
        "table",
        "learn",
        "persist",
        "scan_time",
        "merge_paths",
        "merge_limit",
        "reject_cidrs",
        "convergence_wait",
    ]
    for key in keys:
        assert f"{key} =" in text or f"# {key} =" in text, key


UNICAST = st.integers(1, int(IPv4Address("223.255.255.255")))  # below multicast 224/4


@given(UNICAST, UNICAST)
def test_any_two_nodes_agree_on_exactly_one_dialer(a: int, b: int) -> None:
    ip_a, ip_b = IPv4Address(a), IPv4Address(b)
    if ip_a == ip_b:
        return
    pa = parse_config(node(str(ip_a), str(ip_b)), "a.toml").peers[0]
    pb = parse_config(node(str(ip_b), str(ip_a)), "b.toml").peers[0]
    assert pa.passive != pb.passive
    assert default_peer_name(ip_b) == pa.name


# --------------------------------------------------------------------------- refusals

BASE = 'router_id = "192.168.0.81"\nasn = 64512\n'
PEER = '[[peer]]\naddress = "192.168.0.80"\n'
POOLS = '[pools]\ncidrs = ["10.244.0.0/16"]\n'

REFUSALS = [
    # (text, key, words that must appear in the problem)
    (BASE + "routerid = 1\n", "routerid", "unknown key"),
    (BASE + PEER + "adress = 1\n", "peer[0].adress", "unknown key"),
    (BASE + PEER + PEER.replace(".80", ".300"), "peer[1].address", "not a valid IPv4"),
    (BASE + PEER + '[[peer]]\naddress = "192.168.0.80"\n', "peer[1].address", "already peer[0]"),
    (
        BASE + PEER + 'name = "X"\n[[peer]]\naddress = "192.168.0.82"\nname = "X"\n',
        "peer[1].name",
        "already the name of peer[0]",
    ),
    ('router_id = "0.0.0.0"\nasn = 64512\n', "router_id", "non-zero"),
    ('router_id = "192.168.0.81"\n', "asn", "missing"),
    ("asn = 64512\n", "router_id", "missing"),
    ('router_id = "192.168.0.81"\nasn = 0\n', "asn", "out of range 1..4294967295"),
    ('router_id = "192.168.0.81"\nasn = 4294967296\n', "asn", "out of range"),
    ('router_id = "192.168.0.81"\nasn = 23456\n', "asn", "AS_TRANS"),
    ('router_id = "192.168.0.81"\nasn = "64512"\n', "asn", "must be an integer"),
    ('router_id = "192.168.0.81"\nasn = true\n', "asn", "boolean"),
    ("router_id = 192\nasn = 1\n", "router_id", "IPv4 address in quotes"),
    (BASE + PEER + "asn = 0\n", "peer[0].asn", "out of range"),
    (BASE + PEER + 'address = "192.168.0.81"\n', "", "TOML syntax error"),
    (BASE + '[[peer]]\naddress = "192.168.0.81"\n', "peer[0].address", "own router_id"),
    (BASE + '[[peer]]\naddress = "224.0.0.5"\n', "peer[0].address", "cannot be a BGP neighbor"),
    (
        BASE + PEER + 'source_address = "192.168.0.80"\n',
        "peer[0].source_address",
        "peer's own address",
    ),
    (BASE + PEER + "hold_time = 2\n", "peer[0].hold_time", "at least 3"),
    (
        BASE + PEER + "hold_time = 90\nkeepalive_time = 90\n",
        "peer[0].keepalive_time",
        "below hold_time",
    ),
    (BASE + PEER + "hold_time = 0\nkeepalive_time = 5\n", "peer[0].keepalive_time", "must be 0"),
    (BASE + PEER + 'add_paths = "yes"\n', "peer[0].add_paths", '"both", "receive"'),
    (BASE + PEER + "restart_time = 5000\n", "peer[0].restart_time", "0..4095"),
    (
        BASE + PEER + "error_wait_min = 10\nerror_wait_max = 5\n",
        "peer[0].error_wait_max",
        "below error_wait_min",
    ),
    (BASE + PEER + 'name = "Mesh-1"\n', "peer[0].name", "not a valid protocol name"),
    (BASE + PEER + 'name = "all"\n', "peer[0].name", "keyword"),
    (BASE + PEER + "passive = 1\n", "peer[0].passive", "true or false"),
    (BASE + 'peer = { address = "192.168.0.80" }\n', "peer", "[[peer]]"),
    (
        BASE + '[originate]\nblocks = ["10.244.42.64/26"]\n',
        "originate.blocks[0]",
        "outside every pool",
    ),
    (
        BASE + POOLS + '[originate]\nblocks = ["10.245.42.64/26"]\n',
        "originate.blocks[0]",
        "outside every pool",
    ),
    (
        BASE + POOLS + '[originate]\nblocks = ["10.244.42.65/26"]\n',
        "originate.blocks[0]",
        "did you mean 10.244.42.64/26",
    ),
    (
        BASE + POOLS + '[originate]\nblocks = ["10.244.42.64"]\n',
        "originate.blocks[0]",
        "no prefix length",
    ),
    (
        BASE + POOLS + '[originate]\nblocks = ["10.244.42.0/24", "10.244.42.64/26"]\n',
        "originate.blocks[1]",
        "overlaps blocks[0]",
    ),
    (
        BASE + POOLS + '[originate]\nblocks = ["10.244.42.64/26", "10.244.42.64/26"]\n',
        "originate.blocks[1]",
        "listed twice",
    ),
    (
        BASE + POOLS + '[originate]\nblocks = "10.244.42.64/26"\n',
        "originate.blocks",
        "must be a list",
    ),
    (
        BASE + '[pools]\ncidrs = ["10.0.0.0/8", "10.244.0.0/16"]\n',
        "pools.cidrs[1]",
        "must not overlap",
    ),
    (BASE + '[pools]\ncidrs = ["10.0.0.0/33"]\n', "pools.cidrs[0]", "not a valid IPv4 CIDR"),
    (BASE + "[kernel]\nprotocol = 2\n", "kernel.protocol", "kernel itself"),
    (BASE + "[kernel]\nprotocol = 300\n", "kernel.protocol", "out of range"),
    (BASE + "[kernel]\nprotocol = 12\n", "kernel.protocol", "BIRD's"),
    (BASE + "[kernel]\ntable = 255\n", "kernel.table", "local table"),
    (BASE + "[kernel]\nmerge_limit = 256\n", "kernel.merge_limit", "1..255"),
    (BASE + "[kernel]\nconvergence_wait = -1\n", "kernel.convergence_wait", "out of range"),
    (BASE + '[kernel]\nscan_time = "2s"\n', "kernel.scan_time", "number of seconds"),
    (BASE + "[kernel]\nscan_time = 0\n", "kernel.scan_time", "out of range"),
    (BASE + '[kernel]\nlearn = "yes"\n', "kernel.learn", "true or false"),
    (BASE + "[kernel]\nfoo = 1\n", "kernel.foo", "unknown key"),
    (BASE + "[kernel]\nreject_cidrs = [1]\n", "kernel.reject_cidrs[0]", "CIDR string"),
    (BASE + "kernel = 1\n", "kernel", "must be a table"),
    (BASE + 'control_socket = "/' + "x" * 120 + '"\n', "control_socket", "at most 107"),
    (BASE + 'control_socket = ""\n', "control_socket", "must not be empty"),
    (BASE + "port = 0\n", "port", "out of range 1..65535"),
]


@pytest.mark.parametrize(("text", "key", "words"), REFUSALS)
def test_mistakes_are_refused_naming_file_key_and_problem(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.toml")
    err = info.value
    assert err.source == "bad.toml"
    assert err.key == key
    assert words in err.problem
    prefix = f"bad.toml: {key}: " if key else "bad.toml: "
    assert str(err).startswith(prefix)


def test_unknown_key_message_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known keys here: .*hold_time"):
        parse_config(BASE + PEER + "hold = 3\n", "x.toml")


def test_load_config_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(missing) in str(info.value) and "no such file" in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + PEER + "hold_time = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(info.value).startswith(f"{bad}: peer[0].hold_time: ")
    good = tmp_path / "good.toml"
    good.write_text(BRIEF_EXAMPLE)
    assert isinstance(load_config(good), Config)
    assert load_config(good).source == str(good)


# --------------------------------------------------------------------------- [datastore]

_DS = '[datastore]\ntype = "etcdv3"\nendpoints = ["https://10.0.0.1:2379"]\nnode_name = "n81"\n'


def test_datastore_table_makes_a_template(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    text = (_DS + 'ca_file = "ca.pem"\ncert_file = "cert.pem"\nkey_file = "key.pem"\n'
            + '[kernel]\nprotocol = 190\n')
    path = tmp_path / "s.toml"
    path.write_text('control_socket = "/run/s.ctl"\n' + text)
    cfg = load_config(path)
    assert cfg.datastore is not None and cfg.datastore.node_name == "n81"
    assert cfg.datastore.endpoints == ("https://10.0.0.1:2379",)
    assert cfg.datastore.ca_file == str(tmp_path / "ca.pem")
    assert cfg.kernel.protocol == 190 and cfg.control_socket == "/run/s.ctl"
    assert cfg.peers == () and cfg.to_dict()["datastore"]["type"] == "etcdv3"


def test_datastore_errors_name_every_key() -> None:
    text = ('router_id = "10.0.0.1"\n[[peer]]\naddress = "10.0.0.2"\n'
            '[datastore]\ntype = "kubernetes"\nendpoints = ["10.0.0.1:2379"]\n'
            'cert_file = "/nonexistent.pem"\nfoo = 1\n')
    with pytest.raises(ConfigErrors) as info:
        parse_config(text, "x.toml")
    keys = [e.key for e in info.value.errors]
    assert "datastore.type" in keys and "datastore.endpoints[0]" in keys
    assert "datastore.node_name" in keys and "datastore.cert_file" in keys
    assert "datastore.foo" in keys and "router_id" in keys and "peer" in keys
    assert "comes from the datastore" in str(info.value)


def test_datastore_endpoints_comma_form_and_tls_needs_https(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    cfg = parse_config(_DS.replace('["https://10.0.0.1:2379"]',
                                   '"http://10.0.0.1:2379,http://10.0.0.2:2379"'), "x.toml")
    assert cfg.datastore is not None and len(cfg.datastore.endpoints) == 2
    with pytest.raises(ConfigErrors, match="use https:// endpoints"):
        parse_config(_DS.replace("https", "http") + f'ca_file = "{tmp_path}/ca.pem"\n', "x")
