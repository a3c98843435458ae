"""The lab itself, checked with BIRD alone: if these fail, speaker tests cannot be trusted.

* Three BIRD nodes (the seed with BIRD everywhere): every mesh session Established, each kernel
  holds the two remote blocks via their node (proto bird) and its own block as a blackhole,
  and pods reach each other across nodes.
* Two BIRD nodes whose text and numeric order disagree (10.0.0.9, 10.0.0.10): Calico's text rule
  makes 10.0.0.9 the only dialer; exactly one TCP connection exists.
* The restart helpers: BIRD killed with SIGKILL keeps its kernel routes (persist) and its peer
  keeps them too (graceful-restart helper); ``start_bird(graceful=True)`` recovers.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from typing import Any

from integration.conftest import LabFactory
from integration.lab import Lab, NodeSpec, TcpConnection, make_node, wait_until
from integration.lab.spec import Family

CONVERGE = 60.0
"""Seconds allowed for sessions to come up (BIRD: connect delay 2 s, retry 5 s)."""
KERNEL_SYNC = 20.0
"""Seconds allowed for routes to reach the kernel (BIRD scans every 2 s)."""


def route_problems(node: NodeSpec, nodes: Sequence[NodeSpec], routes: Sequence[dict[str, Any]],
                   family: Family = 4) -> list[str]:
    """Differences between a node's kernel table of ``family`` (``ip -j route`` rows) and what
    Calico's BIRD (bird6) programs there: the other nodes' blocks via their address on eth0,
    the own block as a blackhole.  BIRD's routes are ``proto bird``, the speaker's ``proto
    bgp`` (186)."""
    proto = "bird" if node.kind == "bird" else "bgp"
    by_dst = {r["dst"]: r for r in routes}
    problems: list[str] = []
    block = node.block_of(family)
    own = by_dst.get(block)
    if own is None or own["type"] != "blackhole" or own["protocol"] != proto:
        problems.append(f"{node.name}: own block {block} not 'blackhole proto {proto}': {own}")
    for peer in nodes:
        if peer.name == node.name:
            continue
        got = by_dst.get(peer.block_of(family))
        want = {"type": "unicast", "gateway": peer.address_of(family), "dev": "eth0",
                "protocol": proto}
        if got is None or any(got.get(k) != v for k, v in want.items()):
            problems.append(f"{node.name}: {peer.block_of(family)} want {want}, got {got}")
    return problems


def kernel_problems(mesh: Lab, node: NodeSpec, family: Family = 4) -> list[str]:
    """:func:`route_problems` of the node's table as the lab reads it."""
    return route_problems(node, mesh.nodes, mesh.routes(node, family=family), family)


def all_kernel_problems(mesh: Lab) -> list[str]:
    """kernel_problems for every node."""
    return [p for node in mesh.nodes for p in kernel_problems(mesh, node)]


def test_three_bird_mesh_routes_and_pods(lab: LabFactory) -> None:
    mesh = lab("bird")
    status = mesh.wait_established(CONVERGE)

    for node in mesh.nodes:
        peers = {p.protocol_name for p in mesh.nodes if p.name != node.name}
        assert set(status[node.name]) == peers
        rows = mesh.protocols(node)
        for name in peers:
            assert rows[name].proto == "BGP"
            assert rows[name].established, f"{node.name} {name}: {rows[name]}"

    wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC)
    assert all_kernel_problems(mesh) == []

    for src in mesh.nodes:
        for dst in mesh.nodes:
            if dst.name == src.name:
                continue
            result = mesh.ping(src, dst.pod_address, count=3, interval=0.1)
            assert result.ok, f"pod {src.pod_address} -> pod {dst.pod_address}: {result}"

    # Control: an unused address inside a remote block reaches that node's blackhole and is
    # dropped there, so the ping helper does report loss.
    hole = mesh.nodes[1]
    unused = str(ipaddress.IPv4Address(hole.pod_address) + 1)
    assert ipaddress.IPv4Address(unused) in ipaddress.IPv4Network(hole.block)
    lost = mesh.ping(mesh.nodes[0], unused, count=2, interval=0.1, timeout=1.0)
    assert lost.sent == 2
    assert lost.received == 0


def _non_listening(conns: list[TcpConnection]) -> list[TcpConnection]:
    return [c for c in conns if c.state != "LISTEN"]


def test_text_order_decides_the_dialer(lab: LabFactory) -> None:
    # As text "10.0.0.9" > "10.0.0.10", so 10.0.0.10 is passive toward 10.0.0.9 and 10.0.0.9
    # dials: the opposite of numeric order.  (Were one side to compare numerically against a
    # text-rule peer, both would be passive and no session would ever come up.)
    nine = make_node("10.0.0.9", "bird", "10.244.1.0/26")
    ten = make_node("10.0.0.10", "bird", "10.244.2.0/26")
    pair = lab([nine, ten])

    assert "passive on" in pair.config_path(ten).read_text()
    assert "passive on" not in pair.config_path(nine).read_text()

    pair.wait_established(CONVERGE)
    # Sample across more than one connect-retry period (5 s): the passive side never dials.
    for _ in range(3):
        at_nine = _non_listening(pair.tcp_connections(nine))
        at_ten = _non_listening(pair.tcp_connections(ten))
        assert len(at_nine) == 1, at_nine
        assert len(at_ten) == 1, at_ten
        dialer, listener = at_nine[0], at_ten[0]
        assert dialer.state == listener.state == "ESTAB"
        assert (dialer.local_addr, dialer.peer_addr, dialer.peer_port) == (
            "10.0.0.9",
            "10.0.0.10",
            179,
        )
        assert dialer.local_port != 179
        assert (listener.local_port, listener.peer_port) == (179, dialer.local_port)
        time.sleep(3)


def test_bird_kill_and_graceful_restart(lab: LabFactory) -> None:
    mesh = lab("bird")
    mesh.wait_established(CONVERGE)
    wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC)
    assert all_kernel_problems(mesh) == []
    victim, helper = mesh.node("node82"), mesh.node("node80")

    mesh.kill_bird(victim)  # SIGKILL: TCP closes without a NOTIFICATION
    assert not mesh.daemon_running(victim)
    show_victim = f"show protocols all {victim.protocol_name}"
    helping = wait_until(
        lambda: "Neighbor graceful restart active" in mesh.birdc(helper, show_victim), 15.0
    )
    assert helping, mesh.birdc(helper, show_victim)
    time.sleep(3)  # more than a kernel scan: nothing may be flushed meanwhile
    assert kernel_problems(mesh, victim) == []  # persist: BIRD left its routes behind
    assert kernel_problems(mesh, helper) == []  # helper keeps the stale routes

    mesh.start_bird(victim, graceful=True)
    assert "Graceful restart recovery in progress" in mesh.birdc(victim, "show status")
    mesh.wait_established(CONVERGE)
    recovered = wait_until(
        lambda: "Graceful restart recovery" not in mesh.birdc(victim, "show status"), 30.0
    )
    assert recovered, mesh.birdc(victim, "show status")
    wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC)
    assert all_kernel_problems(mesh) == []
