"""Issue 3, "Join the seed's mesh": our speaker beside real BIRD 1.6.8, over TCP 179 in namespaces.

* The seed mix (speaker on .81, BIRD on .80/.82): sessions Established on both sides, routes
  both ways (control sockets and kernels), real ``birdc`` and ``speaker status`` (calicoctl's
  table) against our control socket, pods reaching each other.
* Three speakers: a full mesh with exactly one TCP connection per pair, dialled by the side
  Calico's text rule names; again where text and numeric order disagree (10.0.0.9, 10.0.0.10,
  10.0.0.100), with speakers only and mixed with BIRD in both roles.
* Add-path: two BIRD paths for one prefix reach the speaker with their path identifiers and
  become one multipath kernel route; withdrawing one path removes only that path.
* A connection from an address that is not a configured peer is closed, logged, creates no state
  and disturbs no session.
* A Cease from BIRD (``birdc disable``) is logged with its subcode; ``enable`` recovers; SIGHUP
  adds a new peer without resetting the others.
* SIGTERM: Cease/Administrative Shutdown to every peer, exit status 0, kernel routes kept.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import pytest

from integration.conftest import LabFactory
from integration.lab import (
    KERNEL_PROTOCOL,
    Lab,
    NodeSpec,
    TcpConnection,
    make_node,
    passive_toward,
    wait_until,
)
from integration.lab.core import REPO_ROOT
from speaker.control.client import ControlClient, ControlReplyError

CONVERGE = 60.0
"""Seconds allowed for sessions to come up (connect delay 2 s, retry 5 s, error wait 5 s)."""
ROUTES = 20.0
"""Seconds allowed for routes to reach a control socket or a kernel."""
SPEAKER_PROTO = {str(KERNEL_PROTOCOL), "bgp"}
"""How ``ip -j route`` names the speaker's kernel protocol (186 is ``bgp`` in rt_protos)."""

SPEAKER_BLOCK = "10.244.42.64/26"
ADDPATH_PREFIX = "10.244.200.0/26"


# ---------------------------------------------------------------------------------- helpers


def log_text(mesh: Lab, ref: NodeSpec | str, offset: int = 0) -> str:
    """The daemon's output log from byte ``offset`` on."""
    with mesh.log_path(ref).open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(mesh: Lab, ref: NodeSpec | str) -> int:
    """Current length of the daemon's output log (an offset for log_text)."""
    return mesh.log_path(ref).stat().st_size


def bird_log_size(mesh: Lab, ref: NodeSpec | str) -> int:
    """Current length of BIRD's own log file (an offset for bird_state_changes)."""
    return mesh.bird_log_path(ref).stat().st_size


def bird_state_changes(mesh: Lab, ref: NodeSpec | str, protocol: str, offset: int) -> list[str]:
    """BIRD's ``<protocol>: State changed to ...`` log lines after ``offset`` (``debug { states
    }``).  Used instead of comparing BIRD's ``since`` column, which was seen to move by one
    second between two calls with no state change logged (BIRD 1.6 keeps times in whole
    seconds)."""
    with mesh.bird_log_path(ref).open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [line for line in text.splitlines() if f"{protocol}: State changed" in line]


def control_json(mesh: Lab, ref: NodeSpec | str, command: str) -> Any:
    """``json <command>`` on the node's control socket: the document's ``data``."""
    with ControlClient(str(mesh.control_socket(ref))) as client:
        return client.json(command)


def speaker_cli(mesh: Lab, ref: NodeSpec | str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python3 -m speaker ARGS --socket <node's control socket>`` (a Unix socket, no network)."""
    argv = [sys.executable, "-m", "speaker", *args, "--socket", str(mesh.control_socket(ref))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)


def route_lines(text: str, prefix: str) -> list[str]:
    """Lines of a ``show route`` reply that start with ``prefix``."""
    return [line for line in text.splitlines() if line.split()[:1] == [prefix]]


def kernel_route(mesh: Lab, ref: NodeSpec | str, prefix: str) -> dict[str, Any] | None:
    """The node's main-table kernel route for exactly ``prefix``, or None."""
    for entry in mesh.routes(ref):
        if entry.get("dst") == prefix:
            return entry
    return None


def gateways(entry: dict[str, Any] | None) -> set[str]:
    """Next-hop addresses of a kernel route (single-path or multipath)."""
    if entry is None:
        return set()
    if "nexthops" in entry:
        return {hop["gateway"] for hop in entry["nexthops"] if "gateway" in hop}
    return {entry["gateway"]} if "gateway" in entry else set()


def speaker_kernel_problems(mesh: Lab, node: NodeSpec) -> list[str]:
    """Differences between a speaker node's kernel table and what Calico's BIRD would program:
    its own block as a blackhole, every other node's block via that node on eth0, all with the
    speaker's protocol."""
    problems: list[str] = []
    routes = {r["dst"]: r for r in mesh.routes(node)}
    own = routes.get(node.block)
    if own is None or own["type"] != "blackhole" or str(own["protocol"]) not in SPEAKER_PROTO:
        problems.append(f"{node.name}: own block {node.block} not a speaker blackhole: {own}")
    for peer in mesh.nodes:
        if peer.name == node.name:
            continue
        got = routes.get(peer.block)
        if (
            got is None
            or got["type"] != "unicast"
            or got.get("gateway") != peer.address
            or got.get("dev") != "eth0"
            or str(got["protocol"]) not in SPEAKER_PROTO
        ):
            problems.append(f"{node.name}: {peer.block} want via {peer.address} dev eth0, {got}")
    return problems


def settled_kernel_problems(mesh: Lab, node: NodeSpec) -> list[str]:
    """speaker_kernel_problems once they are gone, or when ROUTES seconds have passed."""
    wait_until(lambda: not speaker_kernel_problems(mesh, node), ROUTES)
    return speaker_kernel_problems(mesh, node)


def bgp_sockets(mesh: Lab, ref: NodeSpec | str, peer: NodeSpec) -> list[TcpConnection]:
    """Non-listening TCP sockets in the node's namespace toward ``peer`` on port 179."""
    return [
        c
        for c in mesh.tcp_connections(ref)
        if c.state != "LISTEN"
        and c.peer_addr == peer.address
        and 179 in (c.local_port, c.peer_port)
    ]


def check_one_connection_per_pair(
    mesh: Lab, dialers: set[tuple[str, str]], samples: int = 3, gap: float = 2.6
) -> None:
    """Every pair has exactly one BGP connection, opened by the (dialer, listener) in
    ``dialers``; sampled across more than one connect-retry period (5 s)."""
    pairs = [(a, b) for i, a in enumerate(mesh.nodes) for b in mesh.nodes[i + 1 :]]
    assert len(dialers) == len(pairs)
    for sample in range(samples):
        if sample:
            time.sleep(gap)
        for a, b in pairs:
            dialer, listener = (a, b) if (a.address, b.address) in dialers else (b, a)
            assert (dialer.address, listener.address) in dialers, (a.address, b.address)
            at_dialer = bgp_sockets(mesh, dialer, listener)
            at_listener = bgp_sockets(mesh, listener, dialer)
            assert len(at_dialer) == 1, f"{dialer.address}->{listener.address}: {at_dialer}"
            assert len(at_listener) == 1, f"{listener.address}<-{dialer.address}: {at_listener}"
            out, inc = at_dialer[0], at_listener[0]
            assert out.state == inc.state == "ESTAB", (out, inc)
            assert (out.local_addr, out.peer_port) == (dialer.address, 179), out
            assert out.local_port != 179, out
            assert (inc.local_addr, inc.local_port, inc.peer_port) == (
                listener.address,
                179,
                out.local_port,
            ), (inc, out)


def drop_peer(toml_text: str, address: str) -> str:
    """A speaker TOML (as configs.render_speaker_config writes it) without one [[peer]]."""
    block = re.compile(r'\[\[peer\]\]\naddress = "' + re.escape(address) + r'"\n(?:[^\n]+\n)*\n')
    new, count = block.subn("", toml_text)
    assert count == 1, f"no single [[peer]] {address} in:\n{toml_text}"
    return new


# ---------------------------------------------------------------------------------- 1. seed


def test_seed_mix_joins_the_mesh(lab: LabFactory) -> None:
    mesh = lab("seed")
    sp, b80, b82 = mesh.node("node81"), mesh.node("node80"), mesh.node("node82")
    status = mesh.wait_established(CONVERGE)  # both sides: BIRD's birdc and ours
    assert set(status["node81"]) == {b80.protocol_name, b82.protocol_name}
    assert status["node80"][sp.protocol_name].startswith("up Established")
    assert status["node82"][sp.protocol_name].startswith("up Established")

    # Real birdc against our control socket.
    rows = mesh.protocols(sp)
    for peer in (b80, b82):
        assert rows[peer.protocol_name].proto == "BGP"
        assert rows[peer.protocol_name].established, rows[peer.protocol_name]

    # BIRD learned our block, via us.
    def bird_has_our_block(node: NodeSpec) -> list[str]:
        return [
            line
            for line in route_lines(mesh.birdc(node, "show route"), SPEAKER_BLOCK)
            if f"via {sp.address} on eth0 [{sp.protocol_name} " in line
        ]

    for node in (b80, b82):
        assert wait_until(partial(bird_has_our_block, node), ROUTES), mesh.birdc(node, "show route")

    # We learned both other blocks, each via its node.
    def our_routes_ok() -> bool:
        text = mesh.birdc(sp, "show route")
        return all(
            any(
                f"via {p.address} on eth0 [{p.protocol_name} " in line
                for line in route_lines(text, p.block)
            )
            for p in (b80, b82)
        )

    assert wait_until(our_routes_ok, ROUTES), mesh.birdc(sp, "show route")
    own = route_lines(mesh.birdc(sp, "show route"), SPEAKER_BLOCK)
    assert len(own) == 1 and "blackhole" in own[0], own

    # show route for ADDR: longest match, one route.
    found = route_lines(mesh.birdc(sp, "show route for 10.244.152.129"), b80.block)
    assert len(found) == 1, found
    assert f"via {b80.address} on eth0 [{b80.protocol_name} " in found[0]
    assert "*" in found[0]
    assert route_lines(mesh.birdc(sp, "show route for 10.244.152.129"), b82.block) == []

    # calicoctl node status, as `speaker status` prints it.
    proc = speaker_cli(mesh, sp, "status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Calico process is running.\n"), proc.stdout
    table = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and "PEER ADDRESS" not in line
    ]
    assert sorted(table) == [
        [b80.address, "node-to-node mesh", "up", rows[b80.protocol_name].since, "Established"],
        [b82.address, "node-to-node mesh", "up", rows[b82.protocol_name].since, "Established"],
    ], proc.stdout

    # Kernels: ours holds the two blocks via their nodes; BIRD's hold ours via .81.
    assert settled_kernel_problems(mesh, sp) == []
    for node in (b80, b82):
        got = wait_until(partial(kernel_route, mesh, node, SPEAKER_BLOCK), ROUTES)
        assert got is not None and got.get("gateway") == sp.address, got
        assert got["protocol"] == "bird", got

    # Pods reach each other through the speaker node, both ways.
    for src, dst in ((sp, b80), (sp, b82), (b80, sp), (b82, sp)):
        result = mesh.ping(src, dst.pod_address, count=2, interval=0.1)
        assert result.ok, f"pod {src.pod_address} -> pod {dst.pod_address}: {result}"


# ---------------------------------------------------------------------------------- 2. dialers


def test_three_speakers_full_mesh(lab: LabFactory) -> None:
    mesh = lab("speaker")
    mesh.wait_established(CONVERGE)
    dialers = {
        (a.address, b.address)
        for a in mesh.nodes
        for b in mesh.nodes
        if a.name != b.name and not passive_toward(a.address, b.address)
    }
    # In the seed numeric and text order agree: a node dials the peers below it and waits
    # for those above it (the seed's bird.cfg: .80 is passive toward .81 and .82).
    assert dialers == {
        ("192.168.0.81", "192.168.0.80"),
        ("192.168.0.82", "192.168.0.80"),
        ("192.168.0.82", "192.168.0.81"),
    }
    check_one_connection_per_pair(mesh, dialers)
    for node in mesh.nodes:
        assert settled_kernel_problems(mesh, node) == []
    for src, dst in ((mesh.nodes[0], mesh.nodes[2]), (mesh.nodes[2], mesh.nodes[1])):
        result = mesh.ping(src, dst.pod_address, count=2, interval=0.1)
        assert result.ok, f"pod {src.pod_address} -> pod {dst.pod_address}: {result}"


@pytest.mark.parametrize(
    "kinds",
    [
        ("speaker", "speaker", "speaker"),
        ("speaker", "bird", "speaker"),
        ("bird", "speaker", "bird"),
    ],
    ids=["speakers", "speaker-bird-speaker", "bird-speaker-bird"],
)
def test_text_order_decides_the_dialer(lab: LabFactory, kinds: Sequence[str]) -> None:
    # As text "10.0.0.9" > "10.0.0.100" > "10.0.0.10": the opposite of numeric order.  So .9
    # dials both others, .100 dials .10, and .10 (numerically in the middle) dials nobody.
    # A speaker comparing numerically would wait for a BIRD peer that waits too (no session),
    # or dial a peer that also dials (two connections).
    nine = make_node("10.0.0.9", kinds[0], "10.244.1.0/26")
    ten = make_node("10.0.0.10", kinds[1], "10.244.2.0/26")
    hundred = make_node("10.0.0.100", kinds[2], "10.244.3.0/26")
    mesh = lab([nine, ten, hundred])
    dialers = {("10.0.0.9", "10.0.0.10"), ("10.0.0.9", "10.0.0.100"), ("10.0.0.100", "10.0.0.10")}
    for a, b in dialers:
        assert not passive_toward(a, b) and passive_toward(b, a)

    mesh.wait_established(CONVERGE)
    check_one_connection_per_pair(mesh, dialers)
    for node in mesh.speaker_nodes():
        assert settled_kernel_problems(mesh, node) == []


# ---------------------------------------------------------------------------------- 3. add-path


def test_add_path_two_paths_one_withdrawn(lab: LabFactory) -> None:
    mesh = lab("seed")
    sp, b80, b82 = mesh.node("node81"), mesh.node("node80"), mesh.node("node82")
    mesh.wait_established(CONVERGE)

    # BIRD on .80 gets two routes for one prefix (two static protocols, gateways on the
    # connected subnet) and, with add paths on, announces both.
    cfg = mesh.config_path(b80)
    cfg.write_text(
        cfg.read_text()
        + textwrap.dedent(
            f"""
            # test_speaker_mesh: two paths for one prefix
            protocol static st_a {{ route {ADDPATH_PREFIX} via {b80.address}; }}
            protocol static st_b {{ route {ADDPATH_PREFIX} via {b82.address}; }}
            """
        )
    )
    reply = mesh.birdc(b80, "configure")
    assert "Reconfigured" in reply, reply

    def paths() -> list[dict[str, Any]]:
        try:
            data = control_json(mesh, sp, f"show route all for {ADDPATH_PREFIX}")
        except ControlReplyError as exc:  # 8001: not announced yet (or withdrawn), no path
            if "8001" not in str(exc):
                raise
            return []
        return [r for r in data["routes"] if r["prefix"] == ADDPATH_PREFIX]

    def paths_if(count: int) -> list[dict[str, Any]] | None:
        found = paths()
        return found if len(found) == count else None

    two = wait_until(lambda: paths_if(2), ROUTES)
    assert two is not None, paths()
    by_hop = {r["bgp"]["next_hop"]: r for r in two}
    assert set(by_hop) == {b80.address, b82.address}, two
    for hop, route in by_hop.items():
        assert route["protocol"] == b80.protocol_name, route
        assert [h["gateway"] for h in route["nexthops"]] == [hop], route
        assert isinstance(route["path_id"], int) and route["path_id"] > 0, route
    ids = {hop: r["path_id"] for hop, r in by_hop.items()}
    assert len(set(ids.values())) == 2, ids
    assert sum(1 for r in two if r["primary"]) == 1, two

    # One multipath kernel route with both next hops.
    def multipath() -> dict[str, Any] | None:
        entry = kernel_route(mesh, sp, ADDPATH_PREFIX)
        return entry if entry is not None and "nexthops" in entry else None

    entry = wait_until(multipath, ROUTES)
    assert entry is not None, kernel_route(mesh, sp, ADDPATH_PREFIX)
    assert str(entry["protocol"]) in SPEAKER_PROTO, entry
    assert gateways(entry) == {b80.address, b82.address}, entry
    assert {hop["dev"] for hop in entry["nexthops"]} == {"eth0"}, entry

    # iBGP: the speaker does not pass .80's paths on to .82 (.82 has them from .80 only).
    at82 = mesh.birdc(b82, f"show route all for {ADDPATH_PREFIX}")
    assert sp.protocol_name not in at82, at82
    assert b80.protocol_name in at82, at82

    # Withdraw one path: only it goes, the other stays with its path identifier.
    reply = mesh.birdc(b80, "disable st_b")
    assert "disabled" in reply, reply
    one = wait_until(lambda: paths_if(1), ROUTES)
    assert one is not None, paths()
    assert one[0]["bgp"]["next_hop"] == b80.address, one
    assert one[0]["path_id"] == ids[b80.address], (one, ids)
    assert one[0]["primary"], one

    def single_path() -> dict[str, Any] | None:
        entry = kernel_route(mesh, sp, ADDPATH_PREFIX)
        return entry if entry is not None and "nexthops" not in entry else None

    entry = wait_until(single_path, ROUTES)
    assert entry is not None, kernel_route(mesh, sp, ADDPATH_PREFIX)
    assert entry.get("gateway") == b80.address and entry.get("dev") == "eth0", entry
    assert str(entry["protocol"]) in SPEAKER_PROTO, entry
    # The rest of the table was not disturbed.
    assert speaker_kernel_problems(mesh, sp) == []


# ---------------------------------------------------------------------------------- 4. stranger

_STRANGER = """
import json, socket, sys, time
src, dst = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((src, 0))
s.settimeout(5.0)
t0 = time.monotonic()
s.connect((dst, 179))
connected = time.monotonic() - t0
try:
    data = s.recv(4096)
    how = "eof" if not data else "data"
except ConnectionResetError:
    data, how = b"", "reset"
except TimeoutError:
    data, how = b"", "timeout"
print(json.dumps({"connected": connected, "closed_after": time.monotonic() - t0,
                  "how": how, "received": len(data), "port": s.getsockname()[1]}))
"""


def test_unconfigured_address_is_refused(lab: LabFactory) -> None:
    mesh = lab("seed")
    sp, b80, b82 = mesh.node("node81"), mesh.node("node80"), mesh.node("node82")
    mesh.wait_established(CONVERGE)
    before_sp = mesh.protocols(sp)
    bird_offsets = {n.name: bird_log_size(mesh, n) for n in (b80, b82)}
    offset = log_size(mesh, sp)

    stranger = "192.168.0.99"
    mesh.exec(b80, ["ip", "addr", "add", f"{stranger}/24", "dev", "eth0"])
    out = mesh.exec(b80, [sys.executable, "-c", _STRANGER, stranger, sp.address])
    result = json.loads(out.stdout)
    assert result["how"] in ("reset", "eof"), result  # closed, not left hanging
    assert result["received"] == 0, result  # no OPEN, nothing at all
    assert result["closed_after"] < 5.0, result

    def refused_line() -> list[str]:
        return [
            line
            for line in log_text(mesh, sp, offset).splitlines()
            if f"connection from {stranger}:{result['port']} refused" in line
        ]

    assert wait_until(refused_line, 5.0), log_text(mesh, sp, offset)
    assert "not a configured peer" in refused_line()[0]

    # No state: the same protocols, none of them reset, no socket left toward the stranger.
    after_sp = mesh.protocols(sp)
    assert after_sp == before_sp, (before_sp, after_sp)
    assert not any(stranger.replace(".", "_") in name for name in after_sp)
    # At most a TIME-WAIT remains (the kernel's, and proof that our side closed first, as BIRD
    # does for unknown addresses); nothing open.
    left = [c for c in mesh.tcp_connections(sp) if c.peer_addr == stranger]
    assert all(c.state == "TIME-WAIT" and c.local_port == 179 for c in left), left
    for node in (b80, b82):
        assert mesh.protocols(node)[sp.protocol_name].established
        changes = bird_state_changes(mesh, node, sp.protocol_name, bird_offsets[node.name])
        assert changes == [], changes
    later = log_text(mesh, sp, offset)
    assert "session down" not in later and "OPEN" not in later, later
    mesh.exec(b80, ["ip", "addr", "del", f"{stranger}/24", "dev", "eth0"])


# ---------------------------------------------------------------------------------- 5. ops


def test_reload_adds_peer_then_cease_and_enable(lab: LabFactory) -> None:
    mesh = lab("seed", start_daemons=False)
    sp, b80, b82 = mesh.node("node81"), mesh.node("node80"), mesh.node("node82")
    # Start without the peer .80 (which is passive toward .81: we are the ones to dial it).
    cfg = mesh.config_path(sp)
    full = cfg.read_text()
    cfg.write_text(drop_peer(full, b80.address))
    for node in (b80, b82, sp):
        mesh.start_node(node)
    mesh.wait_established(CONVERGE, nodes=[b82])
    # .82's initial exchange ends with its End-of-RIB: wait for it, so that nothing of .82's
    # in the log after the reload can be the tail of that exchange (a race on a busy machine)
    assert wait_until(
        lambda: f"{b82.address}: received End-of-RIB" in log_text(mesh, sp, 0), ROUTES
    ), log_text(mesh, sp, 0)
    rows = mesh.protocols(sp)
    assert b80.protocol_name not in rows, rows
    assert rows[b82.protocol_name].established, rows
    assert not mesh.protocols(b80)[sp.protocol_name].established

    # SIGHUP with the peer added: it comes up, the session to .82 is not touched.
    since_sp = rows[b82.protocol_name].since
    bird82_offset = bird_log_size(mesh, b82)
    offset = log_size(mesh, sp)
    cfg.write_text(full)
    pid = mesh.daemon_pid(sp)
    assert pid is not None
    os.kill(pid, signal.SIGHUP)
    mesh.wait_established(CONVERGE)
    assert mesh.daemon_pid(sp) == pid  # reloaded, not restarted
    after = log_text(mesh, sp, offset)
    assert re.search(r"reloaded .*peers added \['?Mesh_192_168_0_80'?\]", after), after
    assert f"{b80.address}: session Established" in after, after
    for line in after.splitlines():
        assert not line.split(": ", 1)[-1].startswith(f"{b82.address}:"), line
    assert mesh.protocols(sp)[b82.protocol_name].since == since_sp
    assert bird_state_changes(mesh, b82, sp.protocol_name, bird82_offset) == []
    assert wait_until(lambda: route_lines(mesh.birdc(b80, "show route"), SPEAKER_BLOCK), ROUTES), (
        mesh.birdc(b80, "show route")
    )

    # BIRD disables the session: Cease / Administrative Shutdown (6/2) reaches us and is logged.
    offset = log_size(mesh, sp)
    mesh.birdc(b80, f"disable {sp.protocol_name}")

    def cease_logged() -> list[str]:
        return [
            line
            for line in log_text(mesh, sp, offset).splitlines()
            if f"{b80.address}: received NOTIFICATION" in line
        ]

    assert wait_until(cease_logged, 10.0), log_text(mesh, sp, offset)
    line = cease_logged()[0]
    assert "(6/2)" in line and "cease" in line.lower() and "shutdown" in line.lower(), line
    left = wait_until(lambda: not mesh.protocols(sp)[b80.protocol_name].established, 10.0)
    assert left, mesh.birdc(sp, "show protocols")
    row = mesh.protocols(sp)[b80.protocol_name]
    assert row.state != "up", row
    assert mesh.protocols(sp)[b82.protocol_name].since == since_sp  # the other one untouched

    # enable: back to Established (.80 is passive toward us: the speaker dials again).
    mesh.birdc(b80, f"enable {sp.protocol_name}")
    mesh.wait_established(CONVERGE)
    assert mesh.protocols(sp)[b82.protocol_name].since == since_sp
    assert bird_state_changes(mesh, b82, sp.protocol_name, bird82_offset) == []


# ---------------------------------------------------------------------------------- 6. SIGTERM


def test_sigterm_ceases_and_keeps_kernel_routes(lab: LabFactory) -> None:
    mesh = lab("seed")
    sp, b80, b82 = mesh.node("node81"), mesh.node("node80"), mesh.node("node82")
    mesh.wait_established(CONVERGE)
    assert settled_kernel_problems(mesh, sp) == []
    ours = sorted(
        json.dumps(r, sort_keys=True)
        for r in mesh.routes(sp)
        if str(r["protocol"]) in SPEAKER_PROTO
    )
    assert len(ours) == 3, ours  # own blackhole + two blocks
    offset = log_size(mesh, sp)
    bird_offsets = {n.name: bird_log_size(mesh, n) for n in (b80, b82)}

    code = mesh.stop_speaker(sp)
    assert code == 0, log_text(mesh, sp, offset)
    out = log_text(mesh, sp, offset)
    for peer in (b80, b82):
        assert re.search(
            rf"{re.escape(peer.address)}: sending NOTIFICATION Cease/Administrative.Shutdown "
            r"\(6/2\)",
            out,
            re.IGNORECASE,
        ), out
    assert "kernel deleted" not in out, out  # nothing withdrawn from the kernel on the way out

    # BIRD on the passive side (.80) shows why the session ended.
    row = mesh.protocols(b80)[sp.protocol_name]
    assert not row.established
    assert "Received: Administrative shutdown" in row.info, row
    for node in (b80, b82):

        def received(n: NodeSpec = node) -> bool:
            with mesh.bird_log_path(n).open("rb") as f:
                f.seek(bird_offsets[n.name])
                text = f.read().decode(errors="replace")
            return f"{sp.protocol_name}: Received: Administrative shutdown" in text

        assert wait_until(received, 5.0), mesh.bird_log_path(node).read_text()

    # persist: the speaker's routes stay in its kernel after it exits.
    time.sleep(1.0)
    kept = sorted(
        json.dumps(r, sort_keys=True)
        for r in mesh.routes(sp)
        if str(r["protocol"]) in SPEAKER_PROTO
    )
    assert kept == ours
