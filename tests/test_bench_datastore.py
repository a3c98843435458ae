"""integration/bench/datastore.py's pure parts (no root, no lab), and every bench's ``--help``.

The bench itself needs root and prints figures; what is tested here is what its figures rest
on: which kernel routes count as a joining node's block, the keys a registration writes, the
table of medians when a run never got there, and that each bench script starts.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from integration.bench.datastore import (
    Run,
    Seen,
    count_blocks,
    joiner_nodes,
    parse_joiners,
    registration,
    report,
    route_key,
)

REPO = Path(__file__).resolve().parents[1]

# /proc/net/route of a seed node: 10.244.200.0/26 via .100, 10.244.201.0/26 via .80 (not the
# joining node's), a blackhole of its own, the connected /24.
ROUTE_TABLE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00C8F40A\t6400A8C0\t0003\t0\t0\t0\tC0FFFFFF\t0\t0\t0
eth0\t00C9F40A\t5000A8C0\t0003\t0\t0\t0\tC0FFFFFF\t0\t0\t0
*\t402AF40A\t00000000\t0201\t0\t0\t0\tC0FFFFFF\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_a_block_counts_only_via_its_own_node() -> None:
    joiners = joiner_nodes(2)
    assert [(j.address, j.block) for j in joiners] == [
        ("192.168.0.100", "10.244.200.0/26"), ("192.168.0.101", "10.244.201.0/26")]
    assert route_key("10.244.200.0") == "00C8F40A" and route_key("192.168.0.100") == "6400A8C0"
    want = {(route_key("10.244.200.0"), route_key("255.255.255.192")): route_key(j.address)
            for j in joiners[:1]}
    want[(route_key("10.244.201.0"), route_key("255.255.255.192"))] = route_key("192.168.0.101")
    assert count_blocks(ROUTE_TABLE, want) == 1  # .201 goes via .80: not there yet
    assert count_blocks(ROUTE_TABLE.splitlines()[0], want) == 0


def test_a_registration_writes_node_affinity_and_block_for_each() -> None:
    keys = registration(joiner_nodes(20))
    assert len(keys) == 60
    node = json.loads(keys["/calico/resources/v3/projectcalico.org/nodes/node119"])
    assert node["spec"]["bgp"]["ipv4Address"] == "192.168.0.119/24"
    affinity = json.loads(keys["/calico/ipam/v2/host/node119/ipv4/block/10.244.219.0-26"])
    assert affinity["state"] == "confirmed"
    assert "/calico/ipam/v2/assignment/ipv4/block/10.244.219.0-26" in keys


def test_counts_are_checked() -> None:
    assert parse_joiners("1,20") == [1, 20]
    for bad in ("0", "51", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=r"want a comma list|each count"):
            parse_joiners(bad)


def test_the_table_shows_medians_and_a_run_that_never_got_there_as_the_slowest() -> None:
    def run(speaker_all_up: float, bird_all_up: float = 1.1) -> Run:
        seen = {"node80": Seen("node80", "bird", 0.05, 1.1, bird_all_up, 1.2),
                "node81": Seen("node81", "speaker", 0.01, 1.5, speaker_all_up, 2.1),
                "node82": Seen("node82", "bird", 0.06, 1.0, 1.0, 1.0)}
        return Run(20, 9.0, 13, seen)

    def rows(runs: list[Run]) -> dict[str, list[str]]:
        lines = report(runs, [20])
        assert "(3 runs; the transaction of 60 keys: 9.0 ms round trip)" in lines[-1]
        return {line.split()[1]: line.split()[-4:] for line in lines if line.startswith(" 20  ")}

    got = rows([run(1.9), run(math.nan), run(1.7)])
    assert got["node81"] == ["0.010", "1.500", "1.900", "2.100"]  # NaN: above 1.9, not left out
    assert got["node80"] == ["0.050", "1.100", "1.100", "1.200"]
    assert got["every"] == ["0.060", "1.500", "1.900", "2.100"]
    got = rows([run(1.9), run(1.6, math.nan), run(math.nan)])
    assert got["every"][2] == "inf" and got["node81"][2] == "1.900"  # two of three never


@pytest.mark.parametrize("bench", ["codec", "kernel", "convergence", "mesh", "replay",
                                   "datastore"])
def test_every_bench_script_starts_and_explains_itself(bench: str) -> None:
    got = subprocess.run([sys.executable, "-m", f"integration.bench.{bench}", "--help"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("usage:") and "--" in got.stdout
