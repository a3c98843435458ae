#!/usr/bin/env python3
"""Codec benchmark: our decode and encode rates on the 100k captures, against ExaBGP's decoder.

For each of bench-100k-packed.pcap and bench-100k-distinct.pcap (BIRD 1.6.8 at 192.168.0.80
sending 100,000 /26 prefixes to 192.168.0.81 with add-path and 4-octet AS), this script

1. reads the capture with ``speaker.pcap`` and keeps the messages from .80 to .81, and the
   context .81 negotiated (``speaker.wire.negotiate`` on the two real OPENs);
2. times ``decode_message`` over all of them, keeping the results (as a RIB would), then
   ``encode`` over all decoded messages (checking it gives back the captured bytes), then
   ``decode_message`` again dropping each result (as a stream reader would);
3. creates a throwaway venv, installs ExaBGP 5 (``exabgp==5.0.15`` by default, else the newest
   5.x pip offers), and runs a driver there that builds ExaBGP's own ``Negotiated`` from the
   same two OPENs and times ``Update.unpack_message`` on the same UPDATE bodies, both ways;
4. prints messages/s and prefixes/s for both, and our/ExaBGP ratios.

Each timing is the best of ``--repeat`` runs, in a process holding only the message bytes,
with Python's garbage collector on (as in a real speaker; ``--no-gc`` turns it off in both).
Keeping 100,000 decoded routes makes the collector rescan them repeatedly, which costs both
decoders a lot; dropping each result shows the decoding work alone.
Figures are printed, never asserted.
Usage: ``python3 integration/bench/codec.py [--repeat 3] [--no-exabgp] [--no-gc]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from speaker.pcap import read_capture  # noqa: E402
from speaker.wire import DEFAULT_CONTEXT, Negotiated, Open, Update, decode_message  # noqa: E402
from speaker.wire.attributes import clear_caches  # noqa: E402
from speaker.wire.negotiate import negotiate  # noqa: E402

SENDER = "192.168.0.80"
RECEIVER = "192.168.0.81"
CAPTURES = ("bench-100k-packed.pcap", "bench-100k-distinct.pcap")
DEFAULT_EXABGP = "5.0.15"

# Runs inside the ExaBGP venv: argv[1] is a file of 4-octet-length-prefixed records: the OPEN
# body the receiver sent, the OPEN body it received, then the UPDATE bodies it received.
EXABGP_DRIVER = r"""
import gc, json, struct, sys, time

from exabgp.environment import getenv
from exabgp.logger import log

env = getenv()
log.silence()  # as `exabgp decode` does without --debug
log.init(env)

from exabgp.bgp.message.direction import Direction
from exabgp.bgp.message.open import Open
from exabgp.bgp.message.open.capability.negotiated import Negotiated
from exabgp.bgp.message.update import EOR, Update
from exabgp.bgp.neighbor import Neighbor
from exabgp.protocol.family import AFI, SAFI
from exabgp.version import version


def records(path):
    with open(path, 'rb') as fh:
        blob = fh.read()
    i = 0
    while i < len(blob):
        (n,) = struct.unpack_from('!I', blob, i)
        yield blob[i + 4 : i + 4 + n]
        i += 4 + n


recs = list(records(sys.argv[1]))
repeat = int(sys.argv[2])
if sys.argv[3:] == ['nogc']:
    gc.disable()
sent, received, bodies = recs[0], recs[1], recs[2:]
negotiated = Negotiated(Neighbor())
negotiated.sent(Open.unpack_message(sent))
negotiated.received(Open.unpack_message(received))

def run(keep):
    best = None
    prefixes = 0
    for _ in range(repeat):
        negotiated.cached_attributes, negotiated.cached_wire = None, b''
        gc.collect()
        if keep:
            start = time.perf_counter()
            out = [Update.unpack_message(body, Direction.IN, negotiated) for body in bodies]
            elapsed = time.perf_counter() - start
            prefixes = sum(len(u.nlris) for u in out if not isinstance(u, EOR))
            del out
        else:
            start = time.perf_counter()
            for body in bodies:
                Update.unpack_message(body, Direction.IN, negotiated)
            elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, prefixes


held, prefixes = run(True)
streamed, _ = run(False)
print(json.dumps({
    'version': version,
    'addpath_receive_ipv4': bool(negotiated.addpath.receive(AFI.ipv4, SAFI.unicast)),
    'asn4': bool(negotiated.asn4),
    'updates': len(bodies),
    'prefixes': prefixes,
    'seconds': held,
    'seconds_streamed': streamed,
}))
"""


@dataclass
class Figures:
    """One tool's timing on one capture."""

    messages: int
    updates: int
    prefixes: int
    seconds: float

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.seconds

    @property
    def prefixes_per_s(self) -> float:
        return self.prefixes / self.seconds


@dataclass
class Capture:
    """The .80 -> .81 half of a capture, with .81's negotiated context."""

    name: str
    messages: list[bytes]
    sent_open: bytes  # .81's OPEN
    received_open: bytes  # .80's OPEN
    ctx: Negotiated


def load(path: Path) -> Capture:
    """Read a capture, keep the sender's messages and negotiate .81's context."""
    messages: list[bytes] = []
    opens: dict[str, bytes] = {}
    for raw in read_capture(path):
        if raw.data[18] == 1:
            opens[raw.source.address] = raw.data
        if raw.source.address == SENDER and raw.destination.address == RECEIVER:
            messages.append(raw.data)
    if SENDER not in opens or RECEIVER not in opens:
        raise SystemExit(f"{path}: the OPEN exchange between {SENDER} and {RECEIVER} is missing")
    local = decode_message(opens[RECEIVER], DEFAULT_CONTEXT)
    remote = decode_message(opens[SENDER], DEFAULT_CONTEXT)
    assert isinstance(local, Open) and isinstance(remote, Open)
    return Capture(path.name, messages, opens[RECEIVER], opens[SENDER], negotiate(local, remote))


def time_ours(capture: Capture, repeat: int) -> tuple[Figures, Figures, Figures, int]:
    """Best-of-``repeat`` figures: decode keeping the results, decode dropping each result,
    encode; and how many encodings differ from the captured bytes."""
    ctx = capture.ctx
    data = capture.messages
    held = streamed = encoding = float("inf")
    mismatches = updates = prefixes = 0
    for _ in range(repeat):
        clear_caches()  # every run starts cold: interning must earn its keep within the run
        gc.collect()
        start = time.perf_counter()
        decoded = [decode_message(m, ctx) for m in data]
        held = min(held, time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        encoded = [m.encode(ctx) for m in decoded]
        encoding = min(encoding, time.perf_counter() - start)
        mismatches = sum(1 for a, b in zip(encoded, data, strict=True) if a != b)
        updates = sum(1 for m in decoded if isinstance(m, Update))
        prefixes = sum(len(m.nlri) for m in decoded if isinstance(m, Update))
        del decoded, encoded
        clear_caches()
        gc.collect()
        start = time.perf_counter()
        for m in data:
            decode_message(m, ctx)
        streamed = min(streamed, time.perf_counter() - start)
    return (
        Figures(len(data), updates, prefixes, held),
        Figures(len(data), updates, prefixes, streamed),
        Figures(len(data), updates, prefixes, encoding),
        mismatches,
    )


def _pip_versions(python: Path) -> list[str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "index", "versions", "exabgp"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(r"Available versions:\s*(.+)", out)
    return [v.strip() for v in match.group(1).split(",")] if match else []


def make_exabgp_venv(where: Path, wanted: str) -> tuple[Path, str]:
    """A venv with ExaBGP ``wanted`` installed (else the newest 5.x available)."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    versions = _pip_versions(python)
    fives = [v for v in versions if re.fullmatch(r"5\.\d+\.\d+", v)]
    version = wanted if wanted in versions or not fives else fives[0]
    print(f"  installing exabgp=={version} into {where} (available 5.x: {', '.join(fives[:5])})")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"exabgp=={version}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"pip could not install exabgp=={version}:\n{done.stderr}")
    return python, version


def time_exabgp(
    python: Path, capture: Capture, repeat: int, workdir: Path, no_gc: bool
) -> tuple[Figures, Figures]:
    """Run the driver in the ExaBGP venv on the capture's UPDATE bodies."""
    records = workdir / f"{capture.name}.records"
    bodies = [m[19:] for m in capture.messages if m[18] == 2]
    with open(records, "wb") as fh:
        for rec in [capture.sent_open[19:], capture.received_open[19:], *bodies]:
            fh.write(struct.pack("!I", len(rec)) + rec)
    driver = workdir / "exabgp_driver.py"
    driver.write_text(EXABGP_DRIVER)
    done = subprocess.run(
        [str(python), str(driver), str(records), str(repeat), *(["nogc"] if no_gc else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"ExaBGP driver failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["addpath_receive_ipv4"] or not result["asn4"]:
        raise SystemExit(f"ExaBGP did not negotiate add-path/asn4 from the OPENs: {result}")
    print(f"  (ExaBGP {result['version']})")
    count, prefixes = result["updates"], result["prefixes"]
    return (
        Figures(count, count, prefixes, result["seconds"]),
        Figures(count, count, prefixes, result["seconds_streamed"]),
    )


def _row(label: str, f: Figures) -> str:
    return (
        f"  {label:<30} {f.messages:>8,} msgs {f.prefixes:>8,} pfx {f.seconds:7.3f} s "
        f"{f.messages_per_s:>10,.0f} msgs/s {f.prefixes_per_s:>10,.0f} pfx/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = REPO / "tests" / "data" / "captures"
    parser.add_argument("--captures", type=Path, default=default_dir, help="capture directory")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best one counts")
    parser.add_argument("--no-exabgp", action="store_true", help="skip the ExaBGP comparison")
    parser.add_argument("--exabgp-version", default=DEFAULT_EXABGP)
    parser.add_argument(
        "--no-gc", action="store_true", help="disable Python's cyclic GC in both (for comparison)"
    )
    parser.add_argument(
        "--exabgp-venv",
        type=Path,
        help="reuse this venv (created if missing) instead of a temp one",
    )
    args = parser.parse_args()

    if args.no_gc:
        gc.disable()
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"GC {'off' if args.no_gc else 'on'}, best of {args.repeat}"
    )
    captures = [load(args.captures / name) for name in CAPTURES]
    with tempfile.TemporaryDirectory(prefix="speaker-bench-") as tmp:
        workdir = Path(tmp)
        python = None
        if not args.no_exabgp:
            venv = args.exabgp_venv or workdir / "venv"
            if (venv / "bin" / "python").exists():
                python = venv / "bin" / "python"
            else:
                python, _ = make_exabgp_venv(venv, args.exabgp_version)
        for capture in captures:
            addpath = sorted(f"{a.name}/{s.name}" for a, s in capture.ctx.addpath_receive)
            print(
                f"\n{capture.name}: {len(capture.messages):,} messages {SENDER} -> {RECEIVER}, "
                f"add-path receive {addpath}, asn4 {capture.ctx.asn4}"
            )
            held, streamed, encode, mismatches = time_ours(capture, args.repeat)
            print(_row("speaker decode, kept", held))
            print(_row("speaker decode, dropped", streamed))
            print(_row("speaker encode", encode) + f"  ({mismatches} differ from the capture)")
            if python is None:
                continue
            exa_held, exa_streamed = time_exabgp(python, capture, args.repeat, workdir, args.no_gc)
            print(_row("ExaBGP decode, kept", exa_held))
            print(_row("ExaBGP decode, dropped", exa_streamed))
            if exa_held.prefixes != held.prefixes:
                print(
                    f"  warning: ExaBGP read {exa_held.prefixes} prefixes, we read {held.prefixes}"
                )
            for label, ours, theirs in (
                ("kept", held, exa_held),
                ("dropped", streamed, exa_streamed),
            ):
                print(
                    f"  speaker/ExaBGP decode ({label}): "
                    f"{ours.updates_per_s / theirs.updates_per_s:.1f}x UPDATEs/s, "
                    f"{ours.prefixes_per_s / theirs.prefixes_per_s:.1f}x prefixes/s"
                )
    return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
