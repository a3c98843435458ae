"""Mesh dimension: one node joining a mesh of N-1 BIRD 1.6.8 nodes, as BIRD and as our speaker.

Run as root: ``python3 -m integration.bench.mesh [--sizes 10,50,100] [--topology mesh|star]
[--repeat 1] [--timeout 120]``.

For each N the bench builds one lab (integration/lab, namespaces only, torn down afterwards):

* N-1 peers, BIRD 1.6.8 with Calico's bird.cfg, at 192.168.0.1, .2, ... (skipping .99), each
  announcing its /26 block 10.244.<i>.0/26.  ``mesh``: the peers mesh among themselves and with
  the joining node, as Calico's node-to-node mesh; ``star``: each peer has one session, to the
  joining node only, so N can go higher on this machine.
* the joining node, 192.168.0.99 (node99).  It is the greatest address as a string, so by
  Calico's rule every peer is passive toward it and it dials all N-1 of them after its connect
  delay.  It runs once as BIRD (Calico's bird.cfg) and once as the speaker (the lab's TOML), in
  the same lab, one after the other; before each run its kernel routes are flushed and every
  peer's session toward it is back to ``Passive``.

Figures per run, from starting the daemon (``ip netns exec`` execs in place, so the tracked PID
is the daemon's; its start-up, the 2 s connect delay and its jitter are included):

* ``tcp up``: TCP connections to all N-1 peers ESTABLISHED (read from /proc/<pid>/net/tcp of
  an idle process in the joining node's namespace, polled every 10 ms);
* ``all in kernel``: all N-1 peer blocks in the joining node's kernel with a gateway (read from
  /proc/<pid>/net/route, same process).  A block arrives only after its session is Established,
  so this is the time to "all sessions Established and all blocks in the kernel"; that every
  session is Established is then checked once with ``show protocols`` on the control socket;
* ``cpu``: utime+stime of the daemon from its start to all in kernel;
* ``rss start``: VmRSS at the last poll before the first TCP connection came up (the daemon has
  read its config, opened its sockets and waits out its connect delay: before the first route);
* ``peak rss``: VmHWM at all in kernel; ``rss/peer``: (peak - start) / (N-1).

The speaker package is byte-compiled first (``compileall``), as pip does when it installs it:
a checkout run with PYTHONDONTWRITEBYTECODE would compile every module at each start.

The kernel's neighbour (ARP) table is shared by all namespaces: a 50-node mesh needs more than
the default ``gc_thresh3`` of 1024 entries (SYNs are dropped, ping says "No buffer space
available" and sessions take a minute).  When a size needs it, the bench raises
``net.ipv4.neigh.default.gc_thresh1/2/3``, says so, and restores the old values afterwards,
also on failure or SIGTERM.

Prints figures and ratios speaker/BIRD; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import itertools
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from integration.bench.convergence import (
    NamespaceProbe,
    Profiler,
    compile_package,
    cpu_seconds,
    profile_summary,
    status_kb,
)
from integration.lab import Lab, LabError, NodeSpec, make_node, unavailable_reason
from integration.lab.configs import KERNEL_PROTOCOL, render_bird_config, render_speaker_config

JOINER = "192.168.0.99"
POOL = "10.244.0.0/16"
POLL = 0.01
MAX_SIZE = 254
NEIGH = Path("/proc/sys/net/ipv4/neigh/default")
SYSCTLS = ("gc_thresh1", "gc_thresh2", "gc_thresh3")


# ------------------------------------------------------------------------- the lab


def peer_addresses(count: int) -> list[str]:
    """``count`` peer addresses 192.168.0.1 upwards, skipping the joining node's .99."""
    octets = [i for i in range(1, 255) if i != 99][:count]
    return [f"192.168.0.{i}" for i in octets]


def block_of(address: str) -> str:
    return f"10.244.{address.rsplit('.', 1)[1]}.0/26"


def build_nodes(size: int) -> tuple[NodeSpec, list[NodeSpec]]:
    joiner = make_node(JOINER, "bird", block_of(JOINER))
    peers = [make_node(a, "bird", block_of(a)) for a in peer_addresses(size - 1)]
    return joiner, peers


def neighbour_entries(size: int, topology: str) -> int:
    """Neighbour entries the lab needs at most: one per (node, peer) pair, plus the pods."""
    pairs = size * (size - 1) if topology == "mesh" else 2 * (size - 1)
    return pairs + 2 * size


@contextlib.contextmanager
def neighbour_table(need: int) -> Iterator[None]:
    """Raise gc_thresh1/2/3 when ``need`` comes near gc_thresh3; restore them afterwards."""
    old = {name: int((NEIGH / name).read_text()) for name in SYSCTLS}
    new = {
        "gc_thresh1": max(old["gc_thresh1"], need),
        "gc_thresh2": max(old["gc_thresh2"], 2 * need),
        "gc_thresh3": max(old["gc_thresh3"], 4 * need),
    }
    if 2 * need <= old["gc_thresh3"]:
        yield
        return
    print(
        "  raising net.ipv4.neigh.default.gc_thresh1/2/3 (neighbour table shared by all "
        f"namespaces) from {'/'.join(str(old[n]) for n in SYSCTLS)} to "
        f"{'/'.join(str(new[n]) for n in SYSCTLS)} for this lab; restored afterwards",
        flush=True,
    )
    try:
        # thresh3 first when raising: the kernel wants thresh1 <= thresh2 <= thresh3
        for name in reversed(SYSCTLS):
            (NEIGH / name).write_text(str(new[name]))
        yield
    finally:
        for name in SYSCTLS:
            with contextlib.suppress(OSError):
                (NEIGH / name).write_text(str(old[name]))
        print(f"  gc_thresh1/2/3 restored to {'/'.join(str(old[n]) for n in SYSCTLS)}")


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the Lab and the sysctl restore


def _hex_address(address: str) -> str:
    return f"{int.from_bytes(ipaddress.IPv4Address(address).packed, 'little'):08X}"


class JoinerProbe(NamespaceProbe):
    """The joining node's namespace: BGP connections and the peers' blocks in its kernel."""

    def __init__(self, netns: str, peers: list[NodeSpec]) -> None:
        super().__init__(netns)
        self._peer_hex = {_hex_address(p.address) for p in peers}
        self._blocks = set()
        for p in peers:
            net = ipaddress.IPv4Network(p.block)
            self._blocks.add(
                (_hex_address(str(net.network_address)), _hex_address(str(net.netmask)))
            )

    def established(self) -> int:
        """Peers with an ESTABLISHED TCP connection on port 179 (either direction)."""
        up = set()
        with open(f"/proc/{self.pid}/net/tcp") as fh:
            next(fh)
            for line in fh:
                parts = line.split(None, 4)
                if parts[3] != "01":
                    continue
                local, remote = parts[1], parts[2]
                if remote.endswith(":00B3") or local.endswith(":00B3"):
                    up.add(remote.split(":")[0])
        return len(up & self._peer_hex)

    def blocks_in_kernel(self) -> int:
        """Peer blocks in the main table with a gateway (``/proc/net/route``)."""
        count = 0
        with open(f"/proc/{self.pid}/net/route") as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if parts[2] != "00000000" and (parts[1], parts[7]) in self._blocks:
                    count += 1
        return count


# ------------------------------------------------------------------------- one run


@dataclass
class Result:
    size: int
    kind: str
    tcp_up: float = float("nan")
    kernel_full: float = float("nan")
    cpu: float = float("nan")
    rss_start_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    established: int = -1
    notes: list[str] = field(default_factory=list)
    profiles: list[Path] = field(default_factory=list)

    @property
    def peers(self) -> int:
        return self.size - 1

    @property
    def cpu_per_peer_ms(self) -> float:
        return 1000 * self.cpu / self.peers

    @property
    def rss_per_peer_kb(self) -> float:
        return 1024 * (self.peak_rss_mb - self.rss_start_mb) / self.peers


def _spawn_joiner(lab: Lab, node: NodeSpec) -> int:
    """Start the joining node's daemon without the lab's pre-start checks (BIRD's ``-p``
    parse and its wait for the control socket), so both kinds are timed from their exec."""
    if node.kind == "speaker":
        return lab.start_speaker(node)
    sock = lab.control_socket(node)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    argv = ["bird", "-f", "-c", str(lab.config_path(node)), "-s", str(sock),
            "-P", str(lab.run_dir / f"{node.name}.bird.pid")]  # fmt: skip
    return lab._spawn(node, argv).pid


def join_run(
    lab: Lab,
    kind: str,
    joiner: NodeSpec,
    peers: list[NodeSpec],
    timeout: float,
    py_spy: Path | None = None,
) -> Result:
    result = Result(len(peers) + 1, kind)
    node = dataclasses.replace(joiner, kind=kind)  # type: ignore[arg-type]
    lab.nodes[lab.nodes.index(lab.node(joiner.name))] = node
    path = lab.config_path(node)
    if kind == "bird":
        path.write_text(render_bird_config(node, [node, *peers], POOL,
                                           log_file=str(lab.bird_log_path(node))))  # fmt: skip
    else:
        ctl = str(lab.control_socket(node))
        path.write_text(render_speaker_config(node, [node, *peers], POOL, control_socket=ctl))
    for proto in ("bird", str(KERNEL_PROTOCOL)):  # both keep their routes at exit (persist)
        lab.exec(node, ["ip", "-4", "route", "flush", "proto", proto], check=False)
    probe = JoinerProbe(lab.netns(node), peers)
    want = len(peers)
    spy: Profiler | None = None
    try:
        t0 = time.monotonic()
        pid = _spawn_joiner(lab, node)
        if py_spy is not None and kind == "speaker":
            out = py_spy / f"speaker-join-{len(peers) + 1}-{int(time.time())}.txt"
            spy = Profiler.start(pid, out)
        end = t0 + timeout
        rss_start = 0
        while True:
            up = probe.established()
            now = time.monotonic()
            if up == 0:
                with contextlib.suppress(OSError, KeyError):
                    rss_start = status_kb(pid, "VmRSS")
            if up >= want and result.tcp_up != result.tcp_up:
                result.tcp_up = now - t0
            if probe.blocks_in_kernel() >= want:
                result.kernel_full = time.monotonic() - t0
                if result.tcp_up != result.tcp_up:  # came up since this poll's TCP look
                    result.tcp_up = result.kernel_full
                result.cpu = cpu_seconds(pid)
                result.peak_rss_mb = status_kb(pid, "VmHWM") / 1024
                break
            if now > end or lab.daemon_pid(node) is None:
                result.notes.append(
                    f"{up}/{want} connections, {probe.blocks_in_kernel()}/{want} blocks after "
                    f"{now - t0:.0f} s ({lab.log_path(node)})"
                )
                break
            time.sleep(POLL)
        result.rss_start_mb = rss_start / 1024
        if result.kernel_full == result.kernel_full:
            rows = {}
            with contextlib.suppress(LabError):
                rows = lab.protocols(node)
            result.established = sum(
                1
                for p in peers
                if (r := rows.get(p.protocol_name)) and r.info.startswith("Established")
            )
    finally:
        if spy is not None:
            spy.stop()
            result.profiles.append(spy.out)
        probe.close()
        with contextlib.suppress(Exception):
            lab.stop_node(node)
    return result


def peers_ready(lab: Lab, peers: list[NodeSpec], joiner: NodeSpec, topology: str) -> bool:
    """Every peer waits for the joining node (``Passive``) and, in a mesh, has its other
    sessions Established."""
    name = joiner.protocol_name
    for peer in peers:
        try:
            rows = lab.protocols(peer)
        except LabError:
            return False
        row = rows.get(name)
        if row is None or row.state != "start" or not row.info.startswith("Passive"):
            return False
        if topology == "mesh":
            others = [r for n, r in rows.items() if n.startswith("Mesh_") and n != name]
            if len(others) != len(peers) - 1 or any(
                not r.info.startswith("Established") for r in others
            ):
                return False
    return True


def wait_ready(
    lab: Lab, peers: list[NodeSpec], joiner: NodeSpec, topology: str, timeout: float
) -> float:
    t0 = time.monotonic()
    while not peers_ready(lab, peers, joiner, topology):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(
                f"peers not ready after {timeout:.0f} s:\n{lab.diagnostics()[-3000:]}"
            )
        time.sleep(0.5)
    return time.monotonic() - t0


def one_size(
    size: int,
    topology: str,
    kinds: list[str],
    repeat: int,
    timeout: float,
    py_spy: Path | None = None,
) -> list[Result]:
    joiner, peers = build_nodes(size)
    results: list[Result] = []
    with neighbour_table(neighbour_entries(size, topology)):
        t_build = time.monotonic()
        with Lab([joiner, *peers], pool=POOL, start_daemons=False) as lab:
            lab.speaker_log_level = "info"  # as a daemon runs: no per-route log lines
            if topology == "star":
                for peer in peers:
                    log = str(lab.bird_log_path(peer))
                    text = render_bird_config(peer, [peer, joiner], POOL, log_file=log)
                    lab.config_path(peer).write_text(text)
            for peer in peers:
                lab.start_bird(peer)
            built = time.monotonic() - t_build
            ready = wait_ready(lab, peers, joiner, topology, max(timeout, 120.0))
            print(f"  N={size} {topology}: lab built in {built:.0f} s, peers ready "
                  f"{ready:.0f} s later; load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
            for i in range(repeat):
                for kind in kinds:
                    if results:
                        wait_ready(lab, peers, joiner, topology, 60.0)
                        time.sleep(0.5)
                    r = join_run(lab, kind, joiner, peers, timeout, py_spy)
                    results.append(r)
                    print(
                        f"  run {i + 1} N={size:<4} {kind:8} tcp up {r.tcp_up:6.2f} s, "
                        f"all in kernel {r.kernel_full:6.2f} s, cpu {r.cpu:5.2f} s, rss start "
                        f"{r.rss_start_mb:5.1f} MiB, peak {r.peak_rss_mb:5.1f} MiB, "
                        f"{r.established}/{size - 1} Established; load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                    for note in r.notes:
                        print(f"    NOTE {note}")
    return results


# ------------------------------------------------------------------------- report


def _median(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def _ratio(s: float, b: float) -> str:
    return f"{s / b:.2f}x" if b and b == b and s == s else "-"


COLUMNS = (
    ("tcp_up", "tcp up s", "{:.2f}"),
    ("kernel_full", "all in kernel s", "{:.2f}"),
    ("cpu", "CPU s", "{:.2f}"),
    ("rss_start_mb", "RSS start MiB", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MiB", "{:.1f}"),
    ("cpu_per_peer_ms", "CPU/peer ms", "{:.2f}"),
    ("rss_per_peer_kb", "RSS/peer KiB", "{:.0f}"),
)


def report(results: list[Result], topology: str, kinds: list[str]) -> None:
    sizes = sorted({r.size for r in results})
    med: dict[tuple[int, str], dict[str, float]] = {}
    for size in sizes:
        for kind in kinds:
            rs = [r for r in results if r.size == size and r.kind == kind]
            med[size, kind] = {
                a: _median([float(getattr(r, a)) for r in rs]) for a, _, _ in COLUMNS
            }
    print(f"\n{topology}: one node (.99) joining N-1 BIRD 1.6.8 peers; medians")
    head = f"{'N':>4} {'daemon':8}" + "".join(f"{label:>16}" for _, label, _ in COLUMNS)
    print(head)
    for size in sizes:
        for kind in kinds:
            m = med[size, kind]
            print(
                f"{size:>4} {kind:8}" + "".join(f"{fmt.format(m[a]):>16}" for a, _, fmt in COLUMNS)
            )
        if "bird" in kinds and "speaker" in kinds:
            b, s = med[size, "bird"], med[size, "speaker"]
            print(
                f"{size:>4} {'ratio':8}"
                + "".join(f"{_ratio(s[a], b[a]):>16}" for a, _, _ in COLUMNS)
            )
    if len(sizes) > 1:
        print("\ngrowth between sizes (slope per added peer):")
        for kind in kinds:
            parts = []
            for lo, hi in itertools.pairwise(sizes):
                a, b = med[lo, kind], med[hi, kind]
                cpu = 1000 * (b["cpu"] - a["cpu"]) / (hi - lo)
                rss = 1024 * (b["peak_rss_mb"] - a["peak_rss_mb"]) / (hi - lo)
                parts.append(f"{lo}->{hi}: {cpu:.2f} ms CPU, {rss:.0f} KiB RSS")
            print(f"  {kind:8} " + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100", help="comma list of N (nodes, 3..254)")
    parser.add_argument("--topology", choices=("mesh", "star"), default="mesh")
    parser.add_argument("--daemons", default="bird,speaker", help="joining node's kinds, in order")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="per run, seconds")
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR",
        help="sample each speaker run with py-spy (start to all in kernel) into DIR",
    )  # fmt: skip
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(f"mesh bench: {reason}", file=sys.stderr)
        return 2
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: want a comma list of numbers")
    if not sizes or any(not 3 <= s <= MAX_SIZE for s in sizes):
        parser.error(f"--sizes {args.sizes!r}: each N in 3..{MAX_SIZE}")
    kinds = [k.strip() for k in args.daemons.split(",") if k.strip()]
    if not kinds or any(k not in ("bird", "speaker") for k in kinds):
        parser.error(f"--daemons {args.daemons!r}: want a comma list of bird, speaker")
    compile_package()  # as installed
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    print(
        f"mesh benchmark: sizes {sizes}, topology {args.topology}, joining node {JOINER} as "
        f"{', '.join(kinds)}, {args.repeat} run(s); {os.cpu_count()} CPUs; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    results: list[Result] = []
    for size in sizes:
        results += one_size(size, args.topology, kinds, args.repeat, args.timeout, args.py_spy)
    report(results, args.topology, kinds)
    for r in results:
        for path in r.profiles:
            print()
            print("\n".join(profile_summary(path, top=20)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
