"""integration/bench/convergence.py's pure parts (no root, no lab), for both families.

What the IPv6 feed's figures rest on: the feed's /122s inside the lab's IPv6 pool and clear of
the nodes' blocks, the sender's bird6.cfg (routes, neighbor, the case arms bird6's lexer
accepts), the kernel's IPv6 route count from rt6_stats, the address as /proc/net/tcp6 writes it,
the exact count of feed routes in ``ip -6 route``, and the table's heading.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from integration.bench.convergence import (
    PLANS,
    Result,
    bench_nodes,
    count_feed_routes,
    feed_prefixes,
    parse_fib_triestat,
    parse_rt6_stats,
    proc_tcp_address,
    report,
    sender_config,
)

# /proc/net/fib_triestat of a receiver (abridged): the count is the main trie's Prefixes.
FIB_TRIESTAT = """\
Basic info: size of leaf: 40 bytes, size of tnode: 40 bytes.
Local:
\tAver depth:     2.5
\tPrefixes:       6
Main:
\tAver depth:     3.9
\tPrefixes:       100007
"""


def test_ipv6_feed_is_inside_the_pool_aligned_and_clear_of_the_nodes_blocks() -> None:
    plan = PLANS[6]
    pool = ipaddress.IPv6Network(plan.pool)
    nets = [ipaddress.IPv6Network(f"{a}/{plan.prefixlen}") for a in feed_prefixes(100_000, 6)]
    assert plan.prefixlen == 122 and str(nets[0]) == "fd00:10:244::1:0:0/122"
    assert str(nets[1]) == "fd00:10:244::1:0:40/122"  # the next 64 addresses
    assert str(nets[-1]) == "fd00:10:244::1:61:a7c0/122"
    assert len(set(nets)) == 100_000 and all(n.subnet_of(pool) for n in nets)
    blocks = [ipaddress.IPv6Network(b) for b in plan.blocks]
    span = ipaddress.IPv6Network("fd00:10:244::1:0:0/104")  # 2^24 addresses: 262,144 /122s
    assert all(n.subnet_of(span) for n in nets) and not any(span.overlaps(b) for b in blocks)


def test_ipv6_plan_matches_the_lab_s_derived_addresses() -> None:
    sender, receiver = bench_nodes("speaker", 6)
    plan = PLANS[6]
    assert (plan.sender, plan.receiver) == ("fd00:192:168::80", "fd00:192:168::81")
    assert plan.sender == sender.address6 and plan.receiver == receiver.address6
    assert plan.blocks == ("fd00:10:244::ff:ff80/122", "fd00:10:244::ff:ffc0/122")
    assert plan.session_name == "Mesh_fd00_192_168__80" == sender.protocol_name6
    assert bench_nodes("bird", 4)[0].address6 is None  # the IPv4 bench stays single-stack


def test_route_limits_stop_at_the_nodes_blocks_or_the_pool_end() -> None:
    v4 = PLANS[4]
    assert v4.prefixlen == 26 and v4.max_routes() == (1 << 18) - 2
    last = ipaddress.IPv4Network(f"{feed_prefixes(v4.max_routes(), 4)[-1]}/26")
    assert str(last) == "10.255.255.64/26"
    assert not any(last.overlaps(ipaddress.IPv4Network(b)) for b in v4.blocks)
    # IPv6: from 2^32 into the /64 pool to its end; the blocks are below the feed.
    assert PLANS[6].max_routes() == ((1 << 64) - (1 << 32)) // 64
    assert feed_prefixes(2, 4) == ["10.0.0.0", "10.0.0.64"]


def test_sender_config_for_ipv6_feeds_fd00_122s_to_the_receiver_s_ipv6_address() -> None:
    text = sender_config(3, False, Path("/run/x/node80.bird6.log"), 6)
    assert "# convergence bench sender (bird6)" in text
    assert "router id 192.168.0.80;" in text  # a router id is four octets in bird6 too
    routes = re.findall(r"^  route (\S+) blackhole;$", text, re.M)
    assert routes == [
        "fd00:10:244::1:0:0/122", "fd00:10:244::1:0:40/122", "fd00:10:244::1:0:80/122"
    ]
    assert "  if ! (net ~ fd00:10:244::/64) then reject;" in text
    assert "protocol bgp Mesh_fd00_192_168__81 {" in text
    assert "  neighbor fd00:192:168::81 as 64512;" in text
    assert "  source address fd00:192:168::80;" in text
    for line in ("  passive on;", "  add paths on;", "  graceful restart;", "  multihop;"):
        assert line in text
    assert "case" not in text and "192.168.0.81" not in text


def test_distinct_sender_config_gives_each_prefix_its_med_in_both_families() -> None:
    six = sender_config(3, True, Path("/l"), 6)
    assert "    fd00:10:244::1:0:40 : bgp_med = 2;" in six
    four = sender_config(3, True, Path("/l"), 4)
    assert "    10.0.0.128 : bgp_med = 3;" in four
    assert "  neighbor 192.168.0.81 as 64512;" in four and "route 10.0.0.64/26 blackhole;" in four


@pytest.mark.parametrize("family", [4, 6])
def test_bird_parses_the_sender_config(family: int, tmp_path: Path) -> None:
    """bird6's lexer reads ``fd00::1:0:0:`` as one (invalid) address: the arms need a space."""
    program = "bird" if family == 4 else "bird6"
    if shutil.which(program) is None:
        pytest.skip(f"{program} not installed")
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(sender_config(50, True, tmp_path / "log", 4 if family == 4 else 6))
    got = subprocess.run([program, "-p", "-c", str(cfg)], capture_output=True, text=True,
                         timeout=30, check=False)
    assert got.returncode == 0, got.stderr
    cfg.write_text(cfg.read_text().replace(" : bgp_med", ": bgp_med"))
    got = subprocess.run([program, "-p", "-c", str(cfg)], capture_output=True, text=True,
                         timeout=30, check=False)
    assert (got.returncode == 0) == (family == 4), got.stderr


def test_kernel_route_counts_from_proc() -> None:
    assert parse_fib_triestat(FIB_TRIESTAT) == 100_007
    # fib_nodes fib_route_nodes fib_rt_alloc fib_rt_entries fib_rt_cache dst_entries discarded
    assert parse_rt6_stats("0018 000e 0013 0011 0000 0000 0000\n") == 0x11
    assert parse_rt6_stats("30d5a 186b1 186b9 186b5 0000 0002 0000\n") == 100_021  # > 4 digits


def test_proc_tcp_addresses_are_host_order_words() -> None:
    assert proc_tcp_address("192.168.0.80") == "5000A8C0"
    assert proc_tcp_address("fd00:192:168::80") == "920100FD" "00006801" "00000000" "80000000"


def test_proc_tcp6_address_matches_a_real_socket() -> None:
    """A listening socket on ::1 shows in /proc/self/net/tcp6 under the address we compute."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    with sock:
        sock.listen(1)
        port = sock.getsockname()[1]
        want = f"{proc_tcp_address('::1')}:{port:04X}"
        lines = Path("/proc/self/net/tcp6").read_text().splitlines()[1:]
        assert any(line.split()[1] == want for line in lines)


IP6_ROUTE = """\
blackhole fd00:10:244::ff:ffc0/122 dev lo proto bird metric 1024 pref medium
fd00:10:244::1:0:0/122 via fd00:192:168::80 dev eth0 proto bird metric 1024 pref medium
fd00:10:244::1:0:40/122 via fd00:192:168::80 dev eth0 proto bird metric 1024 pref medium
fd00:10:244::1:0:80/122 via fd00:192:168::80 dev eth0 proto bird metric 1024 pref medium
fd00:10:244::ff:ff80/122 via fd00:192:168::80 dev eth0 proto bird metric 1024 pref medium
fd00:10:244::1:0:40/124 via fd00:192:168::80 dev eth0 proto bird metric 1024 pref medium
"""


def test_exact_count_takes_only_feed_prefixes() -> None:
    assert count_feed_routes(IP6_ROUTE, PLANS[6], 3) == 3
    assert count_feed_routes(IP6_ROUTE, PLANS[6], 2) == 2  # the third is beyond a 2-route feed
    v4 = "10.0.0.0/26 via 192.168.0.80 dev eth0 proto bird\n10.255.255.128/26 via x\n"
    assert count_feed_routes(v4, PLANS[4], 100) == 1
    assert count_feed_routes(IP6_ROUTE, PLANS[4], 100) == 0


def test_report_names_the_family_and_keeps_families_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(kind: str, family: int, full: float) -> Result:
        r = Result(kind, "packed", 4 if family == 4 else 6)
        r.kernel_full = full
        return r

    results = [run("bird", 4, 1.0), run("speaker", 4, 4.0), run("bird", 6, 2.0),
               run("speaker", 6, 10.0)]
    report(results, "packed", 1000, 6)
    out = capsys.readouterr().out
    assert ("IPv6 packed feed: 1000 x /122 from BIRD 1.6.8 (bird6) at fd00:192:168::80; "
            "median of 1 run(s)") in out
    row = next(line for line in out.splitlines() if line.startswith("kernel full"))
    assert row.split()[-3:] == ["2.00", "10.00", "5.0x"]
    assert "`ip -6 route` shows" in out
    report(results, "packed", 1000, 4)
    out = capsys.readouterr().out
    assert "IPv4 packed feed: 1000 x /26 from BIRD 1.6.8 at 192.168.0.80" in out
    row = next(line for line in out.splitlines() if line.startswith("kernel full"))
    assert row.split()[-3:] == ["1.00", "4.00", "4.0x"]


def test_a_million_ipv4_routes_fit_as_28s_clear_of_the_nodes_blocks() -> None:
    plan = PLANS[4].with_prefix_length(28)
    assert plan.prefixlen == 28 and plan.block_size == 16
    assert PLANS[4].prefixlen == 26  # the default plan is left alone
    assert PLANS[4].max_routes() < 1_000_000 <= plan.max_routes()
    last = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(plan.first) + 999_999 * 16}/28")
    assert str(last) == "10.244.35.240/28"
    blocks = [ipaddress.IPv4Network(b) for b in plan.blocks]
    assert last.subnet_of(ipaddress.IPv4Network(plan.pool))
    assert not any(last.overlaps(b) for b in blocks)
    with pytest.raises(ValueError, match="prefix length 33"):
        PLANS[4].with_prefix_length(33)
