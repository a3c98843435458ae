"""The lab report's dual-stack parts that need no lab: calicoctl's two tables from birdc's and
birdc6's ``show protocols`` text, and a verdict that speaks for both families."""

from __future__ import annotations

from integration.lab.status import calico_node_status
from integration.lab_up import verdict

BIRD_V4 = """BIRD 1.6.8 ready.
name     proto    table    state  since       info
static1  Static   master   up     09:08:03
kernel1  Kernel   master   up     09:08:03
Mesh_192_168_0_81 BGP      master   up     09:08:05    Established
Mesh_192_168_0_82 BGP      master   start  09:08:05    Connect
"""
BIRD_V6 = """BIRD 1.6.8 ready.
name     proto    table    state  since       info
static1  Static   master   up     09:08:03
Mesh_fd00_192_168__81 BGP      master   up     09:08:05    Established
Mesh_fd00_192_168__82 BGP      master   up     09:08:06    Established
"""


def test_both_tables_as_calicoctl_prints_them() -> None:
    text = calico_node_status(BIRD_V4, BIRD_V6)
    v4, v6 = text.split("IPv6 BGP status")
    assert "IPv4 BGP status" in v4
    assert "| 192.168.0.81 | node-to-node mesh | up    | 09:08:05 | Established |" in v4
    assert "| 192.168.0.82 | node-to-node mesh | start | 09:08:05 | Connect     |" in v4
    # calicoctl turns the name's '_' back into ':' for IPv6: '__' is the '::'
    assert "| fd00:192:168::81 | node-to-node mesh | up    | 09:08:05 | Established |" in v6
    assert "| fd00:192:168::82 |" in v6
    assert "static1" not in text and "fd00" not in v4


def test_an_ipv4_only_node_has_no_ipv6_peers() -> None:
    text = calico_node_status(BIRD_V4)
    assert text.rstrip().endswith("IPv6 BGP status\nNo IPv6 peers found.")


def test_the_verdict_names_the_families() -> None:
    assert verdict([], 3) == (
        "VERDICT: all up: 3 nodes, every session Established, every pod answers"
    )
    assert verdict([], 3, dual_stack=True) == (
        "VERDICT: all up: 3 nodes, dual stack: every IPv4 and IPv6 session Established, "
        "every pod answers ping and ping6"
    )
    bad = verdict(["bird6 on node82 not running"], 3, dual_stack=True)
    assert bad == "VERDICT: NOT all up: bird6 on node82 not running"
