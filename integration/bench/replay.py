"""No-root replay: a 100k-route capture through session + RIB + core + kernel planning.

Run: ``python -m integration.bench.replay [--feed packed|distinct|both] [--repeat 3]
[--profile FILE] [--no-tracemalloc] [--withdraw updates|session]``.  It needs neither root
nor BIRD: the sender's side of ``tests/data/captures/bench-100k-{packed,distinct}.pcap``
(BIRD 1.6.8 at 192.168.0.80) is fed to a :class:`~speaker.core.SpeakerCore` configured as the
receiver (192.168.0.81), in the datagram-sized pieces the capture holds.  The kernel port is a real
:class:`~speaker.kernel.reconcile.Reconciler` whose planned batches are packed into netlink
bytes (:class:`~speaker.kernel.netlink.RouteWriter`'s packing) and acknowledged by a fake
kernel: everything of the daemon's route path except the sockets.

Per stage it prints CPU seconds (``time.process_time``), medians of ``--repeat`` runs and
their range:

* ``decode``: the session alone (framing, FSM, UPDATE decode), events drained;
* ``feed``: session + RIB + core + kernel intents + reconciler + packing, until the last
  route is planned, packed and acknowledged;
* ``withdraw``: every route withdrawn, unwanted and deleted: by UPDATEs withdrawing them all,
  as BIRD sends them when its feed protocol is disabled (the convergence bench's withdrawal),
  or with ``--withdraw session`` by disabling the peer (Cease: a whole peer's routes at once);

and, in a separate pass under tracemalloc, the Python heap the feed leaves behind per route
(bytes/route, after a full ``gc.collect()``), and how far the withdrawal's peak rises above
that heap.  Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import statistics
import struct
import time
import tracemalloc
from collections import deque
from collections.abc import Sequence
from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import cast

from speaker.config import Config, parse_config
from speaker.core import Dial, SpeakerCore
from speaker.events import Event
from speaker.gcpolicy import THRESHOLDS
from speaker.kernel.codec import NLM_F_ACK, NLMSG_ERROR, FibRoute, NextHop
from speaker.kernel.model import KernelConfig, KernelIntent, RouteType, network_key
from speaker.kernel.netlink import CHUNK_MESSAGES, NetlinkChannel, RouteWriter
from speaker.kernel.reconcile import Reconciler
from speaker.pcap import read_capture
from speaker.session import PeerSession
from speaker.wire.nlri import Nlri, encode_prefix

CAPTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "captures"
SENDER = "192.168.0.80"
RECEIVER = "192.168.0.81"
ROUTES = 100_000

CONFIG = f"""
router_id = "{RECEIVER}"
asn = 64512
listen = "{RECEIVER}"
control_socket = "/nonexistent/replay.ctl"

[[peer]]
address = "{SENDER}"
asn = 64512
source_address = "{RECEIVER}"

[originate]
blocks = ["10.255.255.0/26"]

[pools]
cidrs = ["10.0.0.0/8"]

[kernel]
protocol = 186
"""


def sender_stream(feed: str) -> list[bytes]:
    """The sender's bytes to the receiver, one item per captured TCP segment."""
    path = CAPTURES / f"bench-100k-{feed}.pcap"
    return [m.data for m in read_capture(path) if str(m.source) == f"{SENDER}:179"]


class AckingChannel:
    """The bridge's change socket as a kernel where every write succeeds: rtnetlink answers
    only the request that asked for an ACK (the last of each datagram the writer sends)."""

    def __init__(self) -> None:
        self._seq = 0
        self._answers: deque[bytes] = deque()
        self.bytes = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def send(self, data: bytes) -> None:
        self.bytes += len(data)
        off, size, unpack = 0, len(data), _NLMSGHDR.unpack_from
        while off < size:  # a tight walk: the fake should cost next to nothing
            length, _type, flags, seq, _pid = unpack(data, off)
            if flags & NLM_F_ACK:  # nlmsgerr: error 0, the request's header (CAP_ACK)
                self._answers.append(_ACK.pack(36, NLMSG_ERROR, 0x100, seq, 0, 0) + _HDR0)
            off += (length + 3) & ~3

    def recv_nowait(self) -> bytes | None:
        return self._answers.popleft() if self._answers else None

    async def readable(self, timeout: float) -> None:
        raise TimeoutError  # every answer is queued by send()


_NLMSGHDR = struct.Struct("=IHHII")
_ACK = struct.Struct("=IHHIIi")
_HDR0 = bytes(16)


class PlanningKernel:
    """A KernelPort: the bridge's Reconciler and its RouteWriter, writing to a fake kernel
    that accepts every request (the daemon's route path minus the sockets).

    ``route_events``: publish an event per routine write, as the daemon does at
    ``--log-level debug`` (off: as it runs by default, at info)."""

    def __init__(self, route_events: bool = False) -> None:
        self.rec = Reconciler(KernelConfig(protocol=186))
        self.rec.route_events = route_events
        connected = FibRoute(
            network_key(ip_network("192.168.0.0/24")), 254, 2, RouteType.UNICAST,
            nexthops=(NextHop(None, 2),),
        )
        self.rec.load([connected], 0.0, initial=True)
        self.rec.converge("replay")
        self.rec.take_events()
        self.channel = AckingChannel()
        self.writer = RouteWriter(cast(NetlinkChannel, self.channel))

    def apply(self, intents: Sequence[KernelIntent]) -> None:
        self.rec.want_all(intents)

    def converged(self) -> None:
        pass

    def flush(self) -> None:
        """What the bridge's flush loop does: plan, write (pack, send, collect the ACKs),
        apply the results.  The writer only ever awaits ``asyncio.sleep(0)`` here (the fake
        kernel has answered before it is asked), so the coroutine is stepped by hand: an
        event loop round per segment would cost more than a segment's routes (distinct)."""
        step = self._flush()
        with contextlib.suppress(StopIteration):
            while True:
                step.send(None)

    async def _flush(self) -> None:
        rec = self.rec
        while rec.has_work():
            ops, keys = rec.plan_batch(CHUNK_MESSAGES * 4)
            rec.apply(await self.writer.execute(ops), 0.0)
            rec.apply_deletes(keys, await self.writer.delete(keys, 254, 186), 0.0)
            rec.take_events()

    def installed(self) -> int:
        return rec_ours(self.rec)


def rec_ours(rec: Reconciler) -> int:
    return int(rec.stats()["ours"])


def _null(_event: Event) -> None:
    pass


def establish(core: SpeakerCore) -> tuple[str, int]:
    """Let the core dial the sender; the connection is made at once."""
    core.start(0.0)
    now = 0.0
    while True:
        now += 1.0
        core.handle_timer(now)
        action = core.next_action()
        while action is not None and not isinstance(action, Dial):
            action = core.next_action()
        if action is not None:
            core.connection_made(action.peer, action.conn_id, now, outgoing=True,
                                 local_address=IPv4Address(RECEIVER))
            return action.peer, action.conn_id


def run_feed(config: Config, segments: list[bytes], route_events: bool = False,
             ) -> tuple[SpeakerCore, PlanningKernel, str, int, float]:
    kernel = PlanningKernel(route_events)
    core = SpeakerCore(config, kernel, _null)
    peer, conn = establish(core)
    gc.collect()
    elapsed = _pump(core, kernel, peer, conn, segments, 10.0)
    return core, kernel, peer, conn, elapsed


def _pump(core: SpeakerCore, kernel: PlanningKernel, peer: str, conn: int,
          segments: list[bytes], now: float) -> float:
    """The sender's bytes through the core, the kernel flushed after each read: CPU seconds."""
    t0 = time.process_time()
    for data in segments:
        core.receive_data(peer, conn, data, now)
        core.data_to_send(peer, conn)
        if core.flush_due:
            core.flush()
        kernel.flush()
    return time.process_time() - t0


WITHDRAWALS = ("updates", "session")
"""How the routes go: in UPDATEs (what BIRD sends on ``disable feed``, as the convergence
bench does) or with the session (the peer disabled: Cease, every route dropped at once)."""


def withdrawal_stream(core: SpeakerCore, peer: str) -> list[bytes]:
    """What BIRD sends when its feed protocol is disabled: every route the peer announced,
    withdrawn (with its path id) in UPDATEs of at most 4,096 bytes, in table order; cut into
    4 KiB reads as the daemon reads them."""
    room = 4096 - 19 - 4  # header, withdrawn routes length, path attribute length
    updates: list[bytes] = []
    items: list[bytes] = []
    size = 0
    for path in core.rib.adj_in(peer):
        item = encode_prefix(Nlri(path.prefix, path.path_id), path.path_id is not None)
        if size + len(item) > room:
            updates.append(_withdraw_update(items))
            items, size = [], 0
        items.append(item)
        size += len(item)
    if items:
        updates.append(_withdraw_update(items))
    stream = b"".join(updates)
    return [stream[i : i + 4096] for i in range(0, len(stream), 4096)]


def _withdraw_update(items: list[bytes]) -> bytes:
    withdrawn = b"".join(items)
    head = b"\xff" * 16 + struct.pack("!HBH", 19 + 4 + len(withdrawn), 2, len(withdrawn))
    return head + withdrawn + b"\0\0"


def run_withdraw(core: SpeakerCore, kernel: PlanningKernel, peer: str, conn: int,
                 stream: list[bytes] | None) -> float:
    """Every route withdrawn: by ``stream`` (:func:`withdrawal_stream`), or with None by the
    session (the peer disabled); CPU seconds, the kernel emptied."""
    if stream is not None:
        return _pump(core, kernel, peer, conn, stream, 20.0)
    t0 = time.process_time()
    core.disable(peer, 20.0)
    if core.flush_due:
        core.flush()
    kernel.flush()
    return time.process_time() - t0


def _withdrawal(core: SpeakerCore, peer: str, how: str) -> list[bytes] | None:
    return withdrawal_stream(core, peer) if how == "updates" else None


def decode_only(config: Config, segments: list[bytes]) -> float:
    from speaker.core.peers import session_config

    session = PeerSession(session_config(config, config.peers[0], restarting=False))
    session.start(0.0)
    session.handle_timer(10.0)
    (conn,) = session.connections()
    session.connection_made(conn, 10.0, outgoing=True)
    gc.collect()
    t0 = time.process_time()
    for data in segments:
        session.receive_data(conn, data, 11.0)
        while session.next_event() is not None:
            pass
        session.data_to_send(conn)
    return time.process_time() - t0


def measure(feed: str, repeat: int, profile: str | None, use_tracemalloc: bool,
            route_events: bool = False, how: str = "updates") -> None:
    config = parse_config(CONFIG)
    segments = sender_stream(feed)
    decode: list[float] = []
    feeds: list[float] = []
    withdraws: list[float] = []
    for _ in range(repeat):
        decode.append(decode_only(config, segments))
        core, kernel, peer, conn, elapsed = run_feed(config, segments, route_events)
        feeds.append(elapsed)
        installed = kernel.installed()
        stream = _withdrawal(core, peer, how)
        withdraws.append(run_withdraw(core, kernel, peer, conn, stream))
        left = kernel.installed()
        del core, kernel
        gc.collect()
    print(f"{feed:9s} decode {_spread(decode)}   feed {_spread(feeds)}"
          f"   withdraw {_spread(withdraws)}"
          f"   (installed {installed}, left {left}; {len(segments)} segments)")
    if profile:
        prof = cProfile.Profile()
        kernel = PlanningKernel(route_events)
        core = SpeakerCore(config, kernel, _null)
        peer, conn = establish(core)
        prof.enable()
        _pump(core, kernel, peer, conn, segments, 10.0)
        prof.disable()
        stream = _withdrawal(core, peer, how)
        prof.enable()
        run_withdraw(core, kernel, peer, conn, stream)
        prof.disable()
        out = f"{profile}-{feed}.prof"
        prof.dump_stats(out)
        print(f"          cProfile of feed + withdraw: {out}")
    if use_tracemalloc:
        _memory(feed, config, segments, route_events, how)


def _spread(values: list[float]) -> str:
    """``median s (min-max)``; the range only when there is more than one run."""
    text = f"{statistics.median(values):6.3f} s"
    if len(values) > 1:
        text += f" ({min(values):.3f}-{max(values):.3f})"
    return text


def _memory(feed: str, config: Config, segments: list[bytes], route_events: bool,
            how: str) -> None:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    core, kernel, peer, conn, _ = run_feed(config, segments, route_events)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    peak = tracemalloc.get_traced_memory()[1] - base
    snap = tracemalloc.take_snapshot()
    stream = _withdrawal(core, peer, how)
    held_stream = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()  # the withdrawal's own peak, above the heap the feed left
    run_withdraw(core, kernel, peer, conn, stream)
    during = tracemalloc.get_traced_memory()[1] - base - held_stream
    tracemalloc.stop()
    print(f"          heap after feed {held / 2**20:6.1f} MiB = {held / ROUTES:5.0f} bytes/route;"
          f" peak {peak / 2**20:6.1f} MiB; withdrawal peak +{during / 2**20:.1f} MiB")
    top = snap.statistics("lineno")[:8]
    for stat in top:
        frame = stat.traceback[0]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        print(f"            {stat.size / ROUTES:6.0f} B/route  {stat.count:8d} blocks  {where}")
    del core, kernel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed", choices=("packed", "distinct", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", metavar="PREFIX",
                        help="write cProfile stats to PREFIX-<feed>.prof")
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--withdraw", choices=WITHDRAWALS, default="updates",
                        help="the routes go in UPDATEs, as BIRD sends them on `disable feed`"
                             " (default), or with the session (the peer disabled)")
    parser.add_argument("--route-events", action="store_true",
                        help="an event per routine kernel write, as the daemon at debug level"
                             " (default: none, as the daemon at info)")
    args = parser.parse_args(argv)
    gc.set_threshold(*THRESHOLDS)  # as speaker.daemon.run_daemon sets it
    feeds = ("packed", "distinct") if args.feed == "both" else (args.feed,)
    print(f"replay benchmark: {ROUTES} routes from BIRD captures, CPU seconds, median of"
          f" {args.repeat}; route events {'on' if args.route_events else 'off'};"
          f" withdrawal by {args.withdraw}")
    for feed in feeds:
        measure(feed, args.repeat, args.profile, not args.no_tracemalloc, args.route_events,
                args.withdraw)

if __name__ == "__main__":
    main()
