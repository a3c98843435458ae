"""Datastore: from nodes registering in etcd to their sessions up; speaker vs BIRD with confd.

Time from nodes' registration in Calico's etcd until every session with them is Established
and their blocks are in every kernel: the speaker's live diff against BIRD re-rendered and
reloaded by confd.

Run as root: ``python3 -m integration.bench.datastore [--joiners 1,20] [--repeat 3]
[--timeout 60] [--poll 0.02]``.

For each number of joining nodes N the bench builds one lab (integration/lab, namespaces only,
torn down afterwards), driven by etcd as ``lab.sh --datastore etcd`` is
(integration/lab/etcd_lab.py):

* the seed's three nodes from etcd: BIRD 1.6.8 on .80 and .82, each with the lab's confd
  (integration/lab/etcd_confd.py: watches etcd, renders bird.cfg, ``birdc configure`` when it
  changed, as calico-node's confd does), the speaker on .81 with ``[datastore]`` only; etcd
  3.4 with TLS in node80's namespace;
* N joining nodes 192.168.0.100, .101, ... (blocks 10.244.200.0/26, 10.244.201.0/26, ...),
  BIRD with a bird.cfg written for the whole mesh, already running but not in etcd.  By
  Calico's rule (passive toward a greater address as text: "192.168.0.100" < "192.168.0.80")
  they are passive toward the seed nodes, so the seed nodes dial them: the figures are the
  seed nodes' reaction, not the joiners' start-up.

A run registers the N nodes **in one etcd transaction** (for each: its Node resource, its
block affinity, its IPAM block; made by integration/lab/etcd_txn.py inside node80's
namespace) and times, from etcd's answer to that transaction (the keys are committed; the
watchers are told from then on), for each seed node:

* ``config``: its configuration in force: the speaker's ``show datastore`` says the
  transaction's revision is applied; a BIRD node's confd logged its ``birdc configure`` done;
* ``first up`` / ``all up``: the first / the last of its N new sessions Established (``show
  protocols`` on its control socket, asked every ``--poll`` s);
* ``all blocks``: the N new blocks in its kernel via their nodes (``/proc/<pid>/net/route`` of
  an idle process in its namespace, same poll).

"every node" is the slowest seed node of the run: all sessions Established everywhere, every
block in every kernel.  Then the N nodes are deleted (one transaction), the seed nodes are
checked to have dropped them, and the joining BIRDs are restarted (a BIRD that received a
Cease waits out its error wait before it accepts again), ready for the next run.

Both sides pay a 2 s connect delay before they dial a new peer (Calico's ``connect delay time
2``; the speaker draws it from [1.5, 2] s, RFC 4271 jitter; BIRD 1.6 rounds to whole
seconds), so ``config`` is where the live diff and the confd reload differ.  Prints figures
and medians of ``--repeat`` runs; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import math
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from integration.bench.convergence import NamespaceProbe, compile_package
from integration.bench.mesh import neighbour_entries, neighbour_table
from integration.lab import Lab, LabError, NodeSpec, make_node, seed_nodes, unavailable_reason
from integration.lab.configs import render_bird_config
from integration.lab.etcd import TxnWriter
from integration.lab.etcd_lab import EtcdLab, seed_keys
from integration.lab.status import parse_protocols
from speaker.control.client import ControlClient
from speaker.datastore import resources

ETCD_NODE = "node80"
SPEAKER_NODE = "node81"
OBSERVERS = ("node80", "node81", "node82")
FIRST_JOINER = 100
FIRST_BLOCK = 200
MAX_JOINERS = 50
NAN = float("nan")


# ------------------------------------------------------------------------- the lab


def joiner_nodes(count: int) -> list[NodeSpec]:
    """``count`` BIRD nodes 192.168.0.100.. with blocks 10.244.200.0/26.."""
    return [make_node(f"192.168.0.{FIRST_JOINER + i}", "bird", f"10.244.{FIRST_BLOCK + i}.0/26")
            for i in range(count)]


def registration(joiners: Sequence[NodeSpec]) -> dict[str, bytes]:
    """The keys Calico writes when the nodes register: Node, block affinity, IPAM block."""
    entries = []
    for j in joiners:
        entries += [resources.node(j.name, j.address), resources.affinity(j.name, j.block),
                    resources.block(j.block, j.name)]
    return dict(entries)


def route_key(address: str) -> str:
    """An IPv4 address as /proc/net/route writes it (host order hex of the network bytes)."""
    return f"{int.from_bytes(ipaddress.IPv4Address(address).packed, 'little'):08X}"


class KernelProbe(NamespaceProbe):
    """A seed node's namespace: how many of the joining nodes' blocks its kernel routes via
    their nodes."""

    def __init__(self, netns: str, joiners: Sequence[NodeSpec]) -> None:
        super().__init__(netns)
        self.want: dict[tuple[str, str], str] = {}
        for j in joiners:
            net = ipaddress.IPv4Network(j.block)
            key = (route_key(str(net.network_address)), route_key(str(net.netmask)))
            self.want[key] = route_key(j.address)

    def blocks(self) -> int:
        """Joining nodes' blocks routed via their nodes in this namespace's kernel now."""
        return count_blocks(Path(f"/proc/{self.pid}/net/route").read_text(), self.want)


def count_blocks(route_table: str, want: dict[tuple[str, str], str]) -> int:
    """Routes of ``/proc/net/route`` text whose (destination, mask) is wanted, via the wanted
    gateway (pure: tests/test_bench_datastore.py)."""
    count = 0
    for line in route_table.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 7 and want.get((parts[1], parts[7])) == parts[2]:
            count += 1
    return count


@dataclass
class Bed:
    """One lab for one N: the seed from etcd, N joining BIRDs waiting, a timed writer."""

    lab: Lab
    driven: EtcdLab
    joiners: list[NodeSpec]
    writer: TxnWriter
    keys: dict[str, bytes] = field(default_factory=dict)


@contextlib.contextmanager
def bed(count: int, timeout: float) -> Iterator[Bed]:
    """Build the lab for ``count`` joining nodes, yield it ready, tear it all down."""
    seed = seed_nodes(("bird", "speaker", "bird"))
    joiners = joiner_nodes(count)
    nodes = [*seed, *joiners]
    with neighbour_table(neighbour_entries(len(nodes), "mesh")), \
            Lab(nodes, start_daemons=False) as lab:
        lab.speaker_log_level = "info"  # as a daemon runs: no per-route log lines
        t0 = time.monotonic()
        driven = EtcdLab.start(lab, etcd_node=ETCD_NODE, keys=seed_keys(seed, lab.pool))
        writer: TxnWriter | None = None
        try:
            for j in joiners:
                text = render_bird_config(j, nodes, lab.pool, log_file=str(lab.bird_log_path(j)))
                lab.config_path(j).write_text(text)
                lab.start_bird(j)
            writer = TxnWriter(lab, ETCD_NODE, driven.etcd)
            b = Bed(lab, driven, joiners, writer, registration(joiners))
            wait_ready(b, max(timeout, 60.0))
            print(f"  N={count}: lab of {len(nodes)} nodes from etcd built and ready in "
                  f"{time.monotonic() - t0:.0f} s; load {os.getloadavg()[0]:.2f}", flush=True)
            yield b
        finally:
            if writer is not None:
                writer.close()
            driven.stop()


def sessions(lab: Lab, node: str) -> dict[str, str]:
    """The node's BGP protocols: name -> ``state info``."""
    return {k: f"{v.state} {v.info}" for k, v in lab.protocols(node).items()
            if k.startswith("Mesh_")}


def ready(b: Bed) -> str | None:
    """What still differs from "ready for a run" (None when ready): the seed meshed and
    knowing no joining node, every joining node passive toward the seed and meshed with the
    others, no joining block in a seed node's kernel."""
    joined = {j.protocol_name for j in b.joiners}
    seed = [b.lab.node(n) for n in OBSERVERS]
    for node in seed:
        try:
            got = sessions(b.lab, node.name)
        except LabError as exc:
            return f"{node.name}: {exc}"
        if joined & set(got):
            return f"{node.name} still has {sorted(joined & set(got))[:3]}"
        if not all(s.startswith("up Established") for s in got.values()) or len(got) != 2:
            return f"{node.name}: {got}"
        kernel = {r.get("dst") for r in b.lab.routes(node)}
        if kernel & {j.block for j in b.joiners}:
            return f"{node.name}'s kernel still has joining blocks"
    for j in b.joiners:
        got = sessions(b.lab, j.name)
        for node in seed:
            if not got.get(node.protocol_name, "").startswith("start Passive"):
                return f"{j.name} toward {node.name}: {got.get(node.protocol_name)}"
        others = [s for name, s in got.items() if name in joined]
        if len(others) != len(b.joiners) - 1 or not all(
                s.startswith("up Established") for s in others):
            return f"{j.name}: not meshed with the other joining nodes"
    return None


def wait_ready(b: Bed, timeout: float) -> None:
    """Poll ``ready`` until it holds; RuntimeError with what differs after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (why := ready(b)) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:.0f} s: {why}")
        time.sleep(0.5)


# ------------------------------------------------------------------------- one run


@dataclass
class Seen:
    """One seed node in one run: seconds from the transaction's commit."""

    node: str
    kind: str
    config: float = NAN
    first_up: float = NAN
    all_up: float = NAN
    all_blocks: float = NAN

    @property
    def done(self) -> bool:
        """Every figure seen (first up comes with all up)."""
        return not any(math.isnan(x) for x in (self.config, self.all_up, self.all_blocks))


@dataclass
class Run:
    """One registration: N, the transaction (round trip, revision), each seed node's figures."""

    joiners: int
    txn_ms: float
    revision: int
    seen: dict[str, Seen]
    notes: list[str] = field(default_factory=list)

    def every(self, attr: str) -> float:
        """The slowest seed node's figure (infinite if one never got there)."""
        return max(never_is_inf(float(getattr(s, attr))) for s in self.seen.values())


def one_run(b: Bed, timeout: float, poll: float) -> Run:
    """Register the joining nodes in one transaction; watch the seed nodes until done."""
    lab = b.lab
    names = {j.protocol_name for j in b.joiners}
    want = len(b.joiners)
    seen = {n: Seen(n, lab.node(n).kind) for n in OBSERVERS}
    probes = {n: KernelProbe(lab.netns(n), b.joiners) for n in OBSERVERS}
    clients = {n: ControlClient(str(lab.control_socket(n)), timeout=10.0) for n in OBSERVERS}
    try:
        for client in clients.values():
            client.connect()
        txn = b.writer.txn(b.keys)
        t0 = txn.done
        run = Run(want, 1000 * (txn.done - txn.sent), txn.revision, seen)
        while not all(s.done for s in seen.values()):
            for name, s in seen.items():
                if name == SPEAKER_NODE and math.isnan(s.config):
                    view = clients[name].json("show datastore")["datastore"]
                    if int(view["applied_revision"]) >= txn.revision:
                        s.config = time.monotonic() - t0
                if math.isnan(s.all_up):
                    text = "\n".join(clients[name].command("show protocols").texts())
                    rows = parse_protocols(text)
                    up = sum(1 for p in names if p in rows and rows[p].established)
                    now = time.monotonic() - t0
                    if up and math.isnan(s.first_up):
                        s.first_up = now
                    if up == want:
                        s.all_up = now
                if math.isnan(s.all_blocks) and probes[name].blocks() == want:
                    s.all_blocks = time.monotonic() - t0
                if name != SPEAKER_NODE and math.isnan(s.config):
                    done = [r.mono for r in b.driven.confds[name].renders()
                            if r.revision >= txn.revision and r.what == "configured"]
                    if done:
                        s.config = done[0] - t0
            if time.monotonic() - t0 > timeout:
                run.notes.append(f"not done after {timeout:.0f} s: " + "; ".join(
                    f"{s.node} {s}" for s in seen.values() if not s.done))
                break
            time.sleep(poll)
    finally:
        for client in clients.values():
            client.close()
        for probe in probes.values():
            probe.close()
    return run


def reset(b: Bed, timeout: float) -> None:
    """Delete the joining nodes (one transaction), wait until the seed has dropped them,
    restart the joining BIRDs (all stopped, then all started) and wait until ready."""
    b.writer.txn({}, list(b.keys))
    deadline = time.monotonic() + timeout
    while (why := ready_seed_only(b)) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the seed did not drop the joining nodes: {why}")
        time.sleep(0.25)
    for j in b.joiners:
        b.lab.stop_bird(j)
    for j in b.joiners:
        b.lab.start_bird(j)
    wait_ready(b, timeout)


def ready_seed_only(b: Bed) -> str | None:
    """The part of ``ready`` about the seed nodes (the joining BIRDs are restarted next)."""
    joined = {j.protocol_name for j in b.joiners}
    for name in OBSERVERS:
        left = joined & set(sessions(b.lab, name))
        if left:
            return f"{name} still has {len(left)} sessions with joining nodes"
        if {r.get("dst") for r in b.lab.routes(name)} & {j.block for j in b.joiners}:
            return f"{name}'s kernel still has joining blocks"
    return None


# ------------------------------------------------------------------------- report


def never_is_inf(value: float) -> float:
    """A figure never reached (NaN: not within the run's timeout) is slower than any."""
    return math.inf if math.isnan(value) else value


def median(values: Sequence[float]) -> float:
    """The median of the runs, a run that never got there counting as the slowest (so it
    shows, as ``inf``, once it is half of them)."""
    return statistics.median([never_is_inf(v) for v in values]) if values else NAN


FIGURES = (("config", "config in force"), ("first_up", "first Established"),
           ("all_up", "all Established"), ("all_blocks", "all blocks in kernel"))
DAEMON = {"speaker": "speaker, live diff", "bird": "BIRD, confd reload"}


def report(runs: Sequence[Run], joiners: Sequence[int]) -> list[str]:
    """The table of medians of each N's runs (returned as lines, printed by main)."""
    lines = ["", "seconds from the registration's commit (etcd's answer to the one "
             "transaction); medians of each N's runs (inf: not within --timeout)",
             f"{'N':>3}  {'node':8} {'daemon':20}"
             + "".join(f"{label:>22}" for _, label in FIGURES)]
    for n in joiners:
        rs = [r for r in runs if r.joiners == n]
        if not rs:
            continue
        for name in OBSERVERS:
            kind = rs[0].seen[name].kind
            cells = [median([float(getattr(r.seen[name], a)) for r in rs]) for a, _ in FIGURES]
            lines.append(f"{n:>3}  {name:8} {DAEMON[kind]:20}"
                         + "".join(f"{c:>22.3f}" for c in cells))
        every = [median([r.every(a) for r in rs]) for a, _ in FIGURES]
        lines.append(f"{n:>3}  {'every':8} {'slowest seed node':20}"
                     + "".join(f"{c:>22.3f}" for c in every))
        lines.append(f"{n:>3}  ({len(rs)} runs; the transaction of {3 * n} keys: "
                     f"{median([r.txn_ms for r in rs]):.1f} ms round trip)")
    return lines


def describe(run: Run) -> str:
    """One run on one line."""
    parts = [f"{s.node} {s.kind}: config {s.config:.3f}, first up {s.first_up:.3f}, all up "
             f"{s.all_up:.3f}, all blocks {s.all_blocks:.3f}" for s in run.seen.values()]
    return f"txn {run.txn_ms:.1f} ms (revision {run.revision}); " + "; ".join(parts)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the lab, etcd and the sysctl restore


def parse_joiners(text: str) -> list[int]:
    """``--joiners``: a comma list of counts, each 1..MAX_JOINERS."""
    try:
        counts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want a comma list of numbers") from None
    if not counts or any(not 1 <= c <= MAX_JOINERS for c in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: each count in 1..{MAX_JOINERS}")
    return counts


def main(argv: list[str] | None = None) -> int:
    """Build a lab per count, run ``--repeat`` registrations in it, print runs and medians."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--joiners", type=parse_joiners, default=[1, 20],
                        help="comma list of how many nodes register at once (default 1,20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per count (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per run, seconds")
    parser.add_argument("--poll", type=float, default=0.02,
                        help="seconds between two looks at the seed nodes (default 0.02)")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(f"datastore bench: {reason}", file=sys.stderr)
        return 2
    compile_package()  # as installed
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    print(f"datastore benchmark: {', '.join(map(str, args.joiners))} node(s) registering in "
          f"one etcd transaction, {args.repeat} run(s) each, poll {args.poll} s; "
          f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}; load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    runs: list[Run] = []
    for count in args.joiners:
        with bed(count, args.timeout) as b:
            for i in range(args.repeat):
                if i:
                    reset(b, max(args.timeout, 60.0))
                    time.sleep(1.0)
                run = one_run(b, args.timeout, args.poll)
                runs.append(run)
                print(f"  run {i + 1} N={count}: {describe(run)}; load "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
                for note in run.notes:
                    print(f"    NOTE {note}", flush=True)
    print("\n".join(report(runs, args.joiners)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
