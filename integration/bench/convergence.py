"""Convergence on a large feed from a real BIRD 1.6.8: a BIRD 1.6.8 receiver vs our speaker.

Run as root: ``python3 -m integration.bench.convergence [--routes 100000] [--repeat 1]
[--prefix-length 26] [--feed packed|distinct|both] [--family 4|6|both]
[--receivers bird,speaker] [--py-spy DIR]``.

Each run builds a fresh two-node lab (integration/lab, namespaces only, torn down afterwards):

* ``node80`` (192.168.0.80): the sender, BIRD 1.6.8 with a bench config (written here) holding
  ``protocol static feed`` with N blackhole routes ``10.x.y.z/26`` (10.0.0.0 upwards) and a
  passive BGP session toward .81 (add-path, graceful restart, multihop, like Calico's template)
  whose export filter accepts 10.0.0.0/8.  ``packed``: every route has the same attributes, so
  BIRD packs several hundred prefixes per UPDATE.  ``distinct``: the export filter gives each
  prefix its own MED (``case net.ip { 10.0.0.0 : bgp_med = 1; ... }``, one arm per prefix, as
  BIRD 1.6 has no way to turn an address into a number), so BIRD sends one UPDATE per prefix.
* ``node81`` (192.168.0.81): the receiver, with the lab's own config (Calico's bird.cfg for
  BIRD, the lab's TOML for the speaker) for a pool of 10.0.0.0/8.  It dials .80 after its
  connect delay (2 s for both).

``--family 6``: the same over IPv6 in a dual-stack lab (docs/lab.md).  The sender is bird6 on
node80 (fd00:192:168::80) with N blackholes ``fd00:10:244::1:0:0/122`` upwards (steps of 64
addresses, 2^32 into the pool fd00:10:244::/64, above the nodes' /122 twins), the session toward
fd00:192:168::81 and an export filter over the IPv6 pool.  bird6 reads an arm's trailing ``:``
as part of the address, so the arms are written ``fd00:10:244::1:0:0 : bgp_med = 1;`` (for
IPv4 too).  The receiver is bird6 alone (bird is not started) or the speaker, which runs both
families from the lab's TOML: its IPv4 peer 192.168.0.80 finds no listener (bird6's socket is
IPv6-only) and retries every 5 s, two log lines each time.  Kernel count from
``/proc/<pid>/net/rt6_stats`` (route entries), session from ``tcp6``, RIB from bird6.ctl or
the speaker's ``control_socket6`` (``show route count protocol Mesh_fd00_192_168__80``), the
exact check ``ip -6 route show proto P via fd00:192:168::80``.  ``--family both`` runs IPv4
first, then IPv6, and prints a table per family and feed.

The sender is started and loaded first; then the receiver daemon is started and watched:

* ``session``: from starting the receiver to its TCP connection to .80 being ESTABLISHED;
  the times below count from that moment (the OPEN/KEEPALIVE exchange is included in them);
* ``rib full``: all N routes in the receiver's RIB: ``show route count protocol
  Mesh_192_168_0_80`` on its control socket, asked again 0.05 s after each answer (both answer
  in milliseconds, the speaker from counters kept by its RIB, but only between their own
  tasks, so the figure is an upper bound).  Each poll also asks ``show protocols all``; the
  slowest of these answers during the feed is shown.  Speaker without a control socket: the
  timestamp (ms) of its log line for the sender's End-of-RIB;
* ``kernel full``: all N routes in the receiver's kernel table.  Polled every 0.05 s by
  reading ``/proc/<pid>/net/fib_triestat`` (IPv6: ``rt6_stats``; a route count kept by the
  kernel, read through an idle ``sleep`` process inside the receiver's namespace) instead of
  dumping 100,000 routes with ``ip route`` each time, which would steal a core from the
  daemons on a small machine.  The final count is checked exactly once with ``ip route show
  proto P via 192.168.0.80``;
* ``cpu``: receiver CPU time (utime+stime from /proc/PID/stat) from session up to kernel full,
  during the withdrawal, and in total (daemon start to kernel empty, without the exact checks
  made between the phases); the sender's CPU during the feed is shown too;
* ``rss``: VmRSS when the session comes up and at kernel full, the peak (VmHWM) of the feed
  alone, and the peak over the feed and the withdrawal (reset with ``clear_refs`` after the
  exact checks between them);
* ``kernel empty``: ``disable feed`` on the sender (BIRD withdraws all N routes), then the time
  until the receiver's kernel holds none of them.

``--py-spy DIR`` samples the speaker with py-spy (``pip install py-spy``) during the feed and
during the withdrawal, writes collapsed stacks to DIR and prints the top functions.

Both receivers run on the same machine as the sender, one after the other, so figures share
the same conditions; the table prints medians of ``--repeat`` runs and the speaker/BIRD ratios.
Asserts nothing about time: a run that does not converge within ``--timeout`` is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from integration.lab import Lab, make_node, unavailable_reason
from integration.lab.configs import KERNEL_PROTOCOL
from integration.lab.core import BIRD_PROGRAMS
from integration.lab.netns import netns_exec_argv
from integration.lab.spec import (
    DEFAULT_POOL6,
    FAMILIES,
    Family,
    NodeSpec,
    mesh_protocol_name,
    with_ipv6,
)

SENDER = "192.168.0.80"
RECEIVER = "192.168.0.81"
POOL = "10.0.0.0/8"
POOL6 = DEFAULT_POOL6
SENDER_BLOCK = "10.255.255.128/26"
RECEIVER_BLOCK = "10.255.255.192/26"
BLOCK_SIZE = 64
"""Addresses per feed prefix: a /26, and its IPv6 twin a /122 (as the lab's blocks)."""
FIRST_FEED: dict[Family, str] = {4: "10.0.0.0", 6: "fd00:10:244::1:0:0"}
"""Where each family's feed starts.  IPv4: the pool's start, the nodes' blocks are at its top.
IPv6: 2^32 into the pool, above the nodes' /122 twins (fd00:10:244::ff:ff80 and ::ff:ffc0)."""
ASN = 64512
FEED_PROTOCOL = "feed"
BIRD_KERNEL_PROTOCOL = "bird"  # rtm_protocol 12
KERNEL_POLL = 0.05
RIB_POLL = 0.05
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------- the plan


def bench_nodes(kind: str, family: Family) -> list[NodeSpec]:
    """Sender (BIRD) and receiver (``kind``); for family 6 with the IPv6 parts the Lab derives."""
    nodes = [make_node(SENDER, "bird", SENDER_BLOCK), make_node(RECEIVER, kind, RECEIVER_BLOCK)]
    return nodes if family == 4 else [with_ipv6(n, POOL, POOL6) for n in nodes]


@dataclass(frozen=True)
class Plan:
    """One family's feed: who sends to whom, inside which pool, which prefixes."""

    family: Family
    sender: str
    receiver: str
    pool: str
    first: str
    blocks: tuple[str, ...]
    """The nodes' own blocks, which the feed must stay clear of."""
    block_size: int = BLOCK_SIZE
    """Addresses per feed prefix: 64 (a /26 or /122) unless ``--prefix-length`` says; a
    million IPv4 routes need /28s (10.0.0.0/8 holds 262,142 /26s below the nodes' blocks)."""

    @classmethod
    def of(cls, family: Family) -> Plan:
        sender, receiver = bench_nodes("bird", family)
        return cls(
            family,
            sender.address_of(family),
            receiver.address_of(family),
            POOL if family == 4 else POOL6,
            FIRST_FEED[family],
            (sender.block_of(family), receiver.block_of(family)),
        )

    @property
    def prefixlen(self) -> int:
        """26 or 122 by default: prefixes of ``block_size`` addresses."""
        return (32 if self.family == 4 else 128) - (self.block_size.bit_length() - 1)

    def with_prefix_length(self, length: int) -> Plan:
        """The same plan with feed prefixes of this length (block_size a power of two)."""
        width = 32 if self.family == 4 else 128
        if not 1 <= length <= width:
            raise ValueError(f"prefix length {length}: want 1..{width} for IPv{self.family}")
        return replace(self, block_size=1 << (width - length))

    @property
    def session_name(self) -> str:
        """The receiver's protocol toward the sender (``Mesh_fd00_192_168__80`` for IPv6)."""
        return mesh_protocol_name(self.sender)

    @property
    def daemon(self) -> str:
        """The sending daemon, as the table heading names it."""
        return "BIRD 1.6.8" if self.family == 4 else "BIRD 1.6.8 (bird6)"

    def max_routes(self) -> int:
        """Feed prefixes from ``first`` up to the pool's end or the first node block above it."""
        first = int(ipaddress.ip_address(self.first))
        limit = int(ipaddress.ip_network(self.pool).broadcast_address) + 1
        for block in self.blocks:
            start = int(ipaddress.ip_network(block).network_address)
            if start >= first:
                limit = min(limit, start)
        return max(0, (limit - first) // self.block_size)


PLANS: dict[Family, Plan] = {f: Plan.of(f) for f in FAMILIES}


# ------------------------------------------------------------------------- the sender


def feed_prefixes(count: int, family: Family = 4) -> list[str]:
    """The ``count`` network addresses of the feed (/26 or /122), from FIRST_FEED up."""
    first = ipaddress.ip_address(FIRST_FEED[family])
    step = PLANS[family].block_size
    return [str(first + i * step) for i in range(count)]


def sender_config(count: int, distinct: bool, log_file: Path, family: Family = 4) -> str:
    """bird.cfg (bird6.cfg) of the sender: N static blackholes, one passive iBGP session
    toward the receiver's address of the family."""
    plan = PLANS[family]
    nets = feed_prefixes(count, family)
    lines = [
        f"# convergence bench sender ({BIRD_PROGRAMS[family][0]}), "
        "written by integration/bench/convergence.py",
        f'log "{log_file}" all;',
        f"router id {SENDER};",  # four octets in bird6 too
        "protocol device { scan time 2; }",
        f"protocol static {FEED_PROTOCOL} {{",
        *(f"  route {net}/{plan.prefixlen} blackhole;" for net in nets),
        "}",
        "filter feed_out {",
        f"  if ! (net ~ {plan.pool}) then reject;",
    ]
    if distinct:
        # One MED per prefix: no two routes share attributes, so one UPDATE each.  The space
        # before ':' matters to bird6, whose lexer would read "fd00::1:0:0:" as one address.
        lines.append("  case net.ip {")
        lines += [f"    {net} : bgp_med = {i + 1};" for i, net in enumerate(nets)]
        lines.append("  }")
    lines += [
        "  accept;",
        "}",
        f"protocol bgp {mesh_protocol_name(plan.receiver)} {{",
        f"  local as {ASN};",
        f"  neighbor {plan.receiver} as {ASN};",
        f"  source address {plan.sender};",
        "  multihop;",
        "  passive on;",
        "  add paths on;",
        "  graceful restart;",
        "  import all;",
        "  export filter feed_out;",
        "}",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ reading a process


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status (VmHWM, VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def parse_fib_triestat(text: str) -> int:
    """Prefixes in the main (and merged local) IPv4 FIB trie, from /proc/net/fib_triestat."""
    main = text.index("Main:")
    start = text.index("Prefixes:", main) + len("Prefixes:")
    return int(text[start : text.index("\n", start)])


def parse_rt6_stats(text: str) -> int:
    """IPv6 route entries (fib_rt_entries, all tables), the 4th hex field of /proc/net/rt6_stats.

    The kernel keeps the count; cached clones are a field of their own, not in it.
    """
    return int(text.split()[3], 16)


KERNEL_COUNTERS: dict[Family, tuple[str, Callable[[str], int]]] = {
    4: ("fib_triestat", parse_fib_triestat),
    6: ("rt6_stats", parse_rt6_stats),
}
"""Per family: the /proc/PID/net file with the kernel's own route count, and its parser."""


def proc_tcp_address(address: str) -> str:
    """An address as /proc/net/tcp{,6} writes it: each 32-bit word in host (little-endian)
    order, in upper-case hex."""
    packed = ipaddress.ip_address(address).packed
    return "".join(packed[i : i + 4][::-1].hex() for i in range(0, len(packed), 4)).upper()


class NamespaceProbe:
    """An idle ``sleep`` inside a namespace: its /proc/PID/net shows that namespace's tables
    (``family``: which kernel route count ``kernel_routes`` reads)."""

    def __init__(self, netns: str, family: Family = 4) -> None:
        self.proc = subprocess.Popen(
            netns_exec_argv(netns, ["sleep", "3600"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid  # `ip netns exec` execs in place: this is sleep's PID
        deadline = time.monotonic() + 5
        while Path(f"/proc/{self.pid}/comm").read_text().strip() != "sleep":
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"probe in {netns} did not start")
            time.sleep(0.01)
        name, self._parse = KERNEL_COUNTERS[family]
        self._routes = f"/proc/{self.pid}/net/{name}"

    def kernel_routes(self) -> int:
        """The family's route count in the namespace's kernel (IPv4: FIB trie prefixes, IPv6:
        route entries): the kernel keeps it, nothing is dumped."""
        with open(self._routes) as fh:
            return self._parse(fh.read())

    def bgp_established(self, peer: str) -> bool:
        """A TCP connection to ``peer`` (IPv4 or IPv6) port 179 is ESTABLISHED in the namespace."""
        want = f"{proc_tcp_address(peer)}:00B3"
        table = "tcp" if ipaddress.ip_address(peer).version == 4 else "tcp6"
        with open(f"/proc/{self.pid}/net/{table}") as fh:
            next(fh)
            for line in fh:
                parts = line.split(None, 4)
                if parts[2] == want and parts[3] == "01":
                    return True
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


class ControlClient:
    """BIRD's control protocol on a Unix socket, one connection kept open (BIRD or speaker)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(str(path))
        self.buf = b""
        self._reply()  # greeting: 0001 BIRD 1.6.8 ready.

    def _line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("control socket closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def _reply(self) -> list[str]:
        lines = []
        while True:
            line = self._line().decode()
            lines.append(line)
            if len(line) >= 5 and line[:4].isdigit() and line[4] == " ":
                return lines

    def command(self, text: str) -> list[str]:
        self.sock.sendall(text.encode() + b"\n")
        return self._reply()

    def route_count(self, protocol: str) -> int:
        """First number of ``show route count protocol P``: routes from that protocol."""
        lines = self.command(f"show route count protocol {protocol}")
        final = lines[-1]
        if not final.startswith("0014 "):
            raise RuntimeError(f"show route count: {' | '.join(lines)}")
        return int(final[5:].split()[0])

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------------- one run


@dataclass
class Result:
    """Figures of one receiver run (seconds unless said otherwise)."""

    receiver: str
    feed: str
    family: Family = 4
    session: float = float("nan")
    rib_full: float = float("nan")
    kernel_full: float = float("nan")
    cpu_feed: float = float("nan")
    sender_cpu_feed: float = float("nan")
    kernel_empty: float = float("nan")
    cpu_withdraw: float = float("nan")
    cpu_total: float = float("nan")
    rss_start_mb: float = float("nan")
    rss_full_mb: float = float("nan")
    peak_feed_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    rib_polls: int = 0
    rib_poll_s: float = 0.0
    control_max_ms: float = float("nan")
    rib_checked: int = -1
    routes_checked: int = -1
    profiles: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


FIGURES: tuple[tuple[str, str, str], ...] = (
    ("session", "session up (s, from daemon start)", "{:.2f}"),
    ("rib_full", "RIB full (s, from session up)", "{:.2f}"),
    ("kernel_full", "kernel full (s, from session up)", "{:.2f}"),
    ("cpu_feed", "CPU, session up to kernel full (s)", "{:.2f}"),
    ("sender_cpu_feed", "  sender BIRD's CPU meanwhile (s)", "{:.2f}"),
    ("kernel_empty", "kernel empty (s, from disable)", "{:.2f}"),
    ("cpu_withdraw", "CPU during withdrawal (s)", "{:.2f}"),
    ("cpu_total", "CPU total (s, start, feed, withdrawal)", "{:.2f}"),
    ("rss_start_mb", "RSS at session up (MiB)", "{:.1f}"),
    ("rss_full_mb", "RSS at kernel full (MiB)", "{:.1f}"),
    ("peak_feed_mb", "  peak RSS in the feed (MiB)", "{:.1f}"),
    ("peak_rss_mb", "peak RSS, VmHWM (MiB)", "{:.1f}"),
    ("control_max_ms", "slowest control answer in the feed (ms)", "{:.0f}"),
)


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def speaker_eor_time(log: Path, peer: str) -> float | None:
    """Wall-clock time of the speaker's log line for the peer's End-of-RIB, if any.

    The daemon applies every UPDATE to the RIB before it handles the End-of-RIB that follows
    them, so this line marks "all routes in the RIB"; its timestamp has millisecond resolution.
    """
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if f"{peer}: End-of-RIB" in line:
            m = _LOG_TIME.match(line)
            if m:
                stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
                return stamp.timestamp()
    return None


def _open_control(path: Path, deadline: float) -> ControlClient | None:
    while time.monotonic() < deadline:
        if path.exists():
            with contextlib.suppress(OSError, ConnectionError):
                return ControlClient(path)
        time.sleep(0.05)
    return None


def one_run(
    kind: str,
    count: int,
    distinct: bool,
    timeout: float,
    py_spy: Path | None,
    family: Family = 4,
) -> Result:
    """Build a lab, feed ``count`` routes of ``family`` to a ``kind`` receiver, withdraw them,
    measure.  Family 6: a dual-stack lab where only bird6 runs on the sender and on a BIRD
    receiver (the speaker runs both families; its IPv4 peer finds nobody and keeps retrying)."""
    feed = "distinct" if distinct else "packed"
    plan = PLANS[family]
    result = Result(kind, feed, family)
    spy: Profiler | None = None
    spy_name = f"speaker{'' if family == 4 else '-ipv6'}-{feed}-{count}"
    with Lab(
        bench_nodes(kind, family), pool=POOL, pool6=POOL6, start_daemons=False,
        dual_stack=family == 6,
    ) as lab:  # fmt: skip
        lab.speaker_log_level = "info"  # as a daemon runs: no per-route log lines
        sender, receiver = lab.nodes
        lab.config_path(sender, family).write_text(
            sender_config(count, distinct, lab.bird_log_path(sender, family), family)
        )
        sender_pid = lab.start_bird(sender, family=family)
        sender_ctl = ControlClient(lab.control_socket(sender, family))
        deadline = time.monotonic() + 60
        while sender_ctl.route_count(FEED_PROTOCOL) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sender did not load {count} static routes in 60 s")
            time.sleep(0.1)
        probe = NamespaceProbe(lab.netns(receiver), family)
        control: ControlClient | None = None
        try:
            baseline = probe.kernel_routes()
            t_start = time.monotonic()
            if kind == "bird":
                pid = lab.start_bird(receiver, family=family)
            else:
                pid = lab.start_speaker(receiver)
            cpu_start = cpu_seconds(pid)
            end = t_start + timeout
            # 1. session: the TCP connection to the sender is ESTABLISHED.  Each sample reads
            #    the FIB first, so the last sample before the session is free of feed routes
            #    and holds the receiver's own routes (its blackhole).
            before = baseline
            while True:
                fib = probe.kernel_routes()
                if probe.bgp_established(plan.sender):
                    t_up = time.monotonic()
                    wall_up = time.time()
                    break
                before = fib
                if time.monotonic() > end or lab.daemon_pid(receiver, family) is None:
                    raise RuntimeError(
                        f"{kind}: no session to {plan.sender} ({lab.log_path(receiver, family)})"
                    )
                time.sleep(0.01)
            cpu_up = cpu_seconds(pid)
            sender_cpu_up = cpu_seconds(sender_pid)
            result.session = t_up - t_start
            result.rss_start_mb = status_kb(pid, "VmRSS") / 1024
            if py_spy is not None and kind == "speaker":
                spy = Profiler.start(pid, py_spy / f"{spy_name}-feed.txt")
            # Both answer `show route count` in milliseconds (the speaker from counters):
            # poll it, and `show protocols all`, timing every answer.
            control = _open_control(lab.control_socket(receiver, family), end)
            if control is not None:
                result.control_max_ms = 0.0
            else:
                result.notes.append("control socket never answered: no RIB figure")
            full_fib = before + count
            cpu_full = float("nan")
            # 2. feed: RIB full and kernel full.
            rib_done = control is None
            kernel_done = False
            next_rib = 0.0
            while not (rib_done and kernel_done):
                now = time.monotonic()
                if now > end:
                    result.notes.append(f"feed not complete after {timeout:.0f} s")
                    break
                if not kernel_done and probe.kernel_routes() >= full_fib:
                    result.kernel_full = time.monotonic() - t_up
                    cpu_full = cpu_seconds(pid)
                    result.cpu_feed = cpu_full - cpu_up
                    result.sender_cpu_feed = cpu_seconds(sender_pid) - sender_cpu_up
                    result.rss_full_mb = status_kb(pid, "VmRSS") / 1024
                    kernel_done = True
                if not rib_done and control is not None and now >= next_rib:
                    t0 = time.monotonic()
                    rib = control.route_count(plan.session_name)
                    t1 = time.monotonic()
                    control.command("show protocols all")
                    t2 = time.monotonic()
                    result.rib_polls += 1
                    result.rib_poll_s += t1 - t0
                    result.control_max_ms = max(result.control_max_ms,
                                                1000 * (t1 - t0), 1000 * (t2 - t1))
                    t1 = t2
                    next_rib = t1 + RIB_POLL
                    if rib >= count:
                        result.rib_full = t1 - t_up
                        rib_done = True
                time.sleep(KERNEL_POLL)
            if spy is not None:
                spy.stop()
                result.profiles.append(spy.out)
                spy = None
            if kind == "speaker" and result.rib_full != result.rib_full:
                # no answer from the control socket: the End-of-RIB log line instead
                eor = speaker_eor_time(lab.log_path(receiver), plan.sender)
                if eor is None:
                    result.notes.append("no End-of-RIB line in the speaker's log: no RIB figure")
                else:
                    result.rib_full = eor - wall_up
            # Exact checks, outside the measured phases: the speaker's `show route count`
            # builds a view of every route, so the peak RSS is reset after it (clear_refs 5).
            peak_feed = status_kb(pid, "VmHWM")
            result.peak_feed_mb = peak_feed / 1024
            result.routes_checked = _count_kernel(lab, receiver.name, kind, plan, count)
            if control is None:
                control = _open_control(
                    lab.control_socket(receiver, family), time.monotonic() + 10
                )
            if control is not None:
                result.rib_checked = control.route_count(plan.session_name)
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            # 3. withdrawal: disable the static protocol on the sender.
            if py_spy is not None and kind == "speaker":
                spy = Profiler.start(pid, py_spy / f"{spy_name}-withdraw.txt")
            cpu_w = cpu_seconds(pid)
            reply = sender_ctl.command(f"disable {FEED_PROTOCOL}")
            t_w = time.monotonic()
            if not any(line.startswith("0009") for line in reply):
                result.notes.append(f"disable {FEED_PROTOCOL}: {' | '.join(reply)}")
            end = t_w + timeout
            while probe.kernel_routes() > before:
                if time.monotonic() > end:
                    result.notes.append(f"withdrawal not complete after {timeout:.0f} s")
                    break
                time.sleep(KERNEL_POLL)
            else:
                result.kernel_empty = time.monotonic() - t_w
            cpu_end = cpu_seconds(pid)
            if spy is not None:
                spy.stop()
                result.profiles.append(spy.out)
                spy = None
            result.cpu_withdraw = cpu_end - cpu_w
            # start to empty, without the exact checks in between
            result.cpu_total = cpu_full - cpu_start + result.cpu_withdraw
            result.peak_rss_mb = max(peak_feed, status_kb(pid, "VmHWM")) / 1024
        finally:
            if spy is not None:
                spy.stop()
            if control is not None:
                control.close()
            sender_ctl.close()
            probe.close()
            with contextlib.suppress(Exception):
                lab.stop_node(receiver)
    return result


def _count_kernel(lab: Lab, node: str, kind: str, plan: Plan, count: int) -> int:
    """Exact count of feed routes in the kernel: ``ip -4|-6 route show proto P via SENDER``."""
    proto = BIRD_KERNEL_PROTOCOL if kind == "bird" else str(KERNEL_PROTOCOL)
    argv = ["ip", f"-{plan.family}", "route", "show", "proto", proto, "via", plan.sender]
    return count_feed_routes(lab.exec(node, argv).stdout, plan, count)


def count_feed_routes(ip_route: str, plan: Plan, count: int) -> int:
    """Lines of ``ip route`` output whose destination is one of the ``count`` feed prefixes."""
    first = int(ipaddress.ip_address(plan.first))
    end = first + count * plan.block_size
    n = 0
    for line in ip_route.splitlines():
        dest = line.split(None, 1)[0] if line.strip() else ""
        if "/" not in dest:
            continue
        try:
            net = ipaddress.ip_network(dest)
        except ValueError:
            continue
        addr = int(net.network_address)
        if net.version == plan.family and net.prefixlen == plan.prefixlen and first <= addr < end:
            n += 1
    return n


@dataclass
class Profiler:
    """py-spy sampling the speaker (CPU only: idle samples are dropped) into collapsed stacks."""

    proc: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, pid: int, out: Path) -> Profiler | None:
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
        try:
            proc = subprocess.Popen(
                [*argv, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except FileNotFoundError:
            print("py-spy not found (pip install py-spy): no profile", file=sys.stderr)
            return None
        time.sleep(0.05)  # let it attach
        return cls(proc, out)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def profile_summary(path: Path, top: int = 12) -> list[str]:
    """Top functions of a py-spy raw profile, by own samples and by samples under them."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        return [f"(no profile: {exc})"]
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            under[frame] += count
    if not total:
        return ["(empty profile)"]
    out = [f"{path.name}: {total} samples"]
    out.append("  own time:")
    out += [f"    {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    out.append("  inclusive (frames below the event loop):")
    skip = ("<module>", "run (", "run_forever", "_run_once", "run_until_complete", "_run (")
    rows = [(f, c) for f, c in under.most_common() if not f.startswith(skip)][:top]
    out += [f"    {100 * c / total:5.1f}%  {f}" for f, c in rows]
    return out


# ------------------------------------------------------------------------- report


def _median(values: list[float]) -> float:
    clean = [v for v in values if v == v]  # drop NaN
    return statistics.median(clean) if clean else float("nan")


def report(results: list[Result], feed: str, count: int, family: Family = 4) -> None:
    """The table of one family and feed: medians per receiver and the speaker/BIRD ratios."""
    plan = PLANS[family]
    by_kind: dict[str, list[Result]] = {}
    for r in results:
        if r.feed == feed and r.family == family:
            by_kind.setdefault(r.receiver, []).append(r)
    if not by_kind:
        return
    kinds = list(by_kind)
    runs = max(len(v) for v in by_kind.values())
    print(
        f"\nIPv{family} {feed} feed: {count} x /{plan.prefixlen} from {plan.daemon} at "
        f"{plan.sender}; median of {runs} run(s)"
    )
    head = f"{'figure':38}" + "".join(f"{k:>12}" for k in kinds)
    if "bird" in by_kind and "speaker" in by_kind:
        head += f"{'speaker/BIRD':>14}"
    print(head)
    medians: dict[str, dict[str, float]] = {
        k: {attr: _median([float(getattr(r, attr)) for r in rs]) for attr, _, _ in FIGURES}
        for k, rs in by_kind.items()
    }
    for attr, label, fmt in FIGURES:
        line = f"{label:38}" + "".join(f"{fmt.format(medians[k][attr]):>12}" for k in kinds)
        if "bird" in medians and "speaker" in medians:
            b, s = medians["bird"][attr], medians["speaker"][attr]
            ratio = s / b if b and b == b and s == s else float("nan")
            line += f"{ratio:>13.1f}x"
        print(line)
    for k, rs in by_kind.items():
        rate = _median([count / r.kernel_full for r in rs if r.kernel_full > 0])
        polls = sum(r.rib_polls for r in rs)
        poll_s = sum(r.rib_poll_s for r in rs)
        kernel = ", ".join(str(n) for n in sorted({r.routes_checked for r in rs}))
        rib = ", ".join(str(n) for n in sorted({r.rib_checked for r in rs}))
        how = (
            f"RIB polled {polls} times ({poll_s:.2f} s answering)"
            if polls
            else "RIB full from its End-of-RIB log line"
        )
        print(
            f"  {k}: {rate:,.0f} routes/s into the kernel; {how}; after the feed "
            f"`ip -{family} route` shows {kernel} feed routes, the RIB {rib}"
        )
        for r in rs:
            for note in r.notes:
                print(f"  {k}: NOTE {note}")


def _load() -> str:
    """The load averages, for the header: figures of a busy machine are slower."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def compile_package() -> None:
    """Byte-compile the speaker package, as pip does when it installs it: without bytecode
    (PYTHONDONTWRITEBYTECODE, a fresh checkout) every start of the daemon would compile ~70
    modules, 0.5 s of CPU and 2 MiB of RSS that an installed speaker does not spend."""
    package = Path(__file__).resolve().parents[2] / "speaker"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--routes", type=int, default=100_000, help="prefixes in the feed")
    parser.add_argument(
        "--prefix-length", type=int, metavar="LEN",
        help="IPv4 feed prefix length (default 26; 28 holds 1,000,000 routes in 10.0.0.0/8)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="runs per receiver and feed")
    parser.add_argument(
        "--feed", choices=("packed", "distinct", "both"), default="packed",
        help="identical attributes (packed UPDATEs) or one MED per prefix (one UPDATE each)",
    )  # fmt: skip
    parser.add_argument("--distinct", action="store_true", help="same as --feed distinct")
    parser.add_argument(
        "--family", choices=("4", "6", "both"), default="4",
        help="IPv4 feed (/26 from bird), IPv6 feed (/122 from bird6), or both, each its table",
    )  # fmt: skip
    parser.add_argument("--receivers", default="bird,speaker", help="comma list, in run order")
    parser.add_argument("--timeout", type=float, default=120.0, help="per phase, seconds")
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR",
        help="profile each speaker run with py-spy (feed and withdrawal) into DIR",
    )  # fmt: skip
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(f"convergence bench: {reason}", file=sys.stderr)
        return 2
    compile_package()
    families: list[Family] = [4, 6] if args.family == "both" else [4 if args.family == "4" else 6]
    if args.prefix_length is not None:
        if families != [4]:
            parser.error("--prefix-length: IPv4 only (--family 4)")
        try:
            PLANS[4] = PLANS[4].with_prefix_length(args.prefix_length)
        except ValueError as exc:
            parser.error(f"--prefix-length: {exc}")
    for family in families:
        plan = PLANS[family]
        if not 1 <= args.routes <= plan.max_routes():
            parser.error(
                f"--routes {args.routes}: want 1..{plan.max_routes()} "
                f"(/{plan.prefixlen}s of {plan.pool} from {plan.first})"
            )
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: want at least 1")
    kinds = [k.strip() for k in args.receivers.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ("bird", "speaker")]
    if bad or not kinds:
        parser.error(f"--receivers {args.receivers!r}: want a comma list of bird, speaker")
    feed = "distinct" if args.distinct else args.feed
    feeds = ["packed", "distinct"] if feed == "both" else [feed]
    sizes = ", ".join(f"IPv{f} /{PLANS[f].prefixlen}" for f in families)
    print(
        f"convergence benchmark: {args.routes} x ({sizes}), receivers {', '.join(kinds)}, "
        f"feeds {', '.join(feeds)}, {args.repeat} run(s) each; {os.cpu_count()} CPUs; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load {_load()}"
    )
    results: list[Result] = []
    for family in families:
        for f in feeds:
            for i in range(args.repeat):
                for kind in kinds:
                    t0 = time.monotonic()
                    r = one_run(
                        kind, args.routes, f == "distinct", args.timeout, args.py_spy, family
                    )
                    results.append(r)
                    print(
                        f"  run {i + 1} IPv{family} {f:8} {kind:8} kernel full "
                        f"{r.kernel_full:6.2f} s, kernel empty {r.kernel_empty:6.2f} s, peak RSS "
                        f"{r.peak_rss_mb:6.1f} MiB ({time.monotonic() - t0:.0f} s incl. lab)",
                        flush=True,
                    )
    print(f"load at the end {_load()}")
    for family in families:
        for f in feeds:
            report(results, f, args.routes, family)
    for r in results:
        for path in r.profiles:
            print()
            print("\n".join(profile_summary(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
