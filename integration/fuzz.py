"""Coverage-guided fuzzing of the wire codec and the session state machine (atheris/libFuzzer).

    .venv/bin/python -m integration.fuzz --target codec --runs 1000000      # the long run
    .venv/bin/python -m integration.fuzz --target session --runs 20000      # CI's short slice

Why atheris rather than hypothesis: hypothesis (tests/test_wire_properties.py) generates
*well-typed* messages and random byte strings, a few thousand per test; libFuzzer's mutator
grows a corpus by code coverage, so from real captures it reaches the corners of each
decoder (a length one octet short inside the third attribute of an add-path UPDATE) at tens of
thousands of inputs a second, and a million inputs is a run of minutes.

The seed corpus is every message of the real BIRD captures and of the synthetic capture in
tests/data/ (one file each, prefixed with the context octet that reads it as its session
negotiated it); libFuzzer mutates those.  Each input's first octet picks the context:

* bit 0: 4-octet AS; bit 1/2: add-path receive for IPv4/IPv6 unicast; bit 3/4: add-path send
  for IPv4/IPv6; bit 5: extended messages (65,535 octets); for ``session``, bit 6 feeds the
  input in OpenSent (as the peer's OPEN) instead of Established.

What counts as a finding (an exception out of the target):

* ``codec``: ``decode_message`` raises anything but :class:`BgpError`; a BgpError (raised, or
  recorded on an UPDATE for RFC 7606) whose NOTIFICATION is not well formed (code 1..7, a
  subcode of that code's registry, bytes that decode back to the same NOTIFICATION); a
  message that decodes but does not encode again.
* ``session``: :meth:`PeerSession.receive_data` raises anything at all (every decoding error
  must become a NOTIFICATION or an RFC 7606 outcome inside the session), or the session
  closes the connection with a NOTIFICATION it could not have sent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

from speaker.events import Event
from speaker.pcap import read_capture
from speaker.session import CloseConnection, PeerSession, SessionConfig, State, build_open
from speaker.wire import BgpError, Keepalive, Negotiated, Notification, decode_message
from speaker.wire.context import IPV4_UNICAST, IPV6_UNICAST
from speaker.wire.enums import SUBCODES

REPO = Path(__file__).resolve().parents[1]
CAPTURES = [
    REPO / "tests" / "data" / "captures" / "lifecycle.pcap",
    REPO / "tests" / "data" / "captures" / "mesh-restart.pcap",
    REPO / "tests" / "data" / "synthetic.pcap",
]
FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)
OPEN_SENT_BIT = 0x40
SEED_CONTEXT = 0x01 | 0x02 | 0x04  # what the BIRD captures negotiated: ASN4, add-path receive


def context_of(selector: int) -> Negotiated:
    """The negotiated context an input's first octet asks for."""
    return Negotiated(
        asn4=bool(selector & 0x01),
        addpath_receive=frozenset(f for i, f in enumerate(FAMILIES) if selector & (0x02 << i)),
        addpath_send=frozenset(f for i, f in enumerate(FAMILIES) if selector & (0x08 << i)),
        max_message_size=65535 if selector & 0x20 else 4096,
    )


def check_error(error: BgpError) -> None:
    """A decoding error names a NOTIFICATION that exists and survives the wire."""
    if not 1 <= error.code <= 7:
        raise AssertionError(f"NOTIFICATION code {error.code} out of range: {error!r}")
    SUBCODES[error.code](error.subcode)  # ValueError: not a subcode of that code
    note = Notification.from_error(error)
    ctx = Negotiated()
    if decode_message(note.encode(ctx), ctx) != note:
        raise AssertionError(f"NOTIFICATION does not decode back: {note!r}")
    if not error.reason:
        raise AssertionError(f"BgpError without a reason: {error!r}")


def check_codec(data: bytes) -> None:
    """One codec input: context octet, then a message's bytes."""
    if not data:
        return
    ctx = context_of(data[0])
    try:
        message = decode_message(data[1:], ctx)
    except BgpError as exc:
        check_error(exc)
        return
    for error in getattr(message, "errors", ()):
        check_error(error)
    message.encode(ctx)


_CONFIG = SessionConfig(64512, IPv4Address("192.168.0.81"), 64512, IPv4Address("192.168.0.80"))
_PEER_OPEN = build_open(
    SessionConfig(64512, IPv4Address("192.168.0.80"), 64512, IPv4Address("192.168.0.81"))
).encode(Negotiated())
_KEEPALIVE = Keepalive().encode(Negotiated())


def session_at(established: bool) -> tuple[PeerSession, int]:
    """A session against a scripted peer, in Established (or OpenSent, awaiting the OPEN)."""
    session = PeerSession(_CONFIG)
    session.start(0.0)
    session.handle_timer(_CONFIG.connect_delay)
    (conn,) = session.connections()
    session.connection_made(conn, _CONFIG.connect_delay, outgoing=True)
    if established:
        session.receive_data(conn, _PEER_OPEN + _KEEPALIVE, _CONFIG.connect_delay)
        if session.state is not State.ESTABLISHED:
            raise AssertionError(f"scripted handshake ended in {session.state}")
    session.data_to_send(conn)
    drain(session)
    return session, conn


def drain(session: PeerSession) -> list[Event]:
    """Every event the session has queued."""
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def check_session(data: bytes) -> None:
    """One session input: selector octet, then bytes the peer sends on the connection."""
    if not data:
        return
    established = not data[0] & OPEN_SENT_BIT
    session, conn = session_at(established)
    session.receive_data(conn, data[1:], _CONFIG.connect_delay + 1)
    session.data_to_send(conn)
    for event in drain(session):
        if isinstance(event, CloseConnection) and event.notification is not None:
            note = event.notification
            SUBCODES[note.code](note.subcode)


TARGETS: dict[str, Callable[[bytes], None]] = {"codec": check_codec, "session": check_session}


def seed_inputs() -> Iterator[bytes]:
    """Every message of the repository's captures, prefixed with the context that reads it."""
    for path in CAPTURES:
        for message in read_capture(path):
            yield bytes((SEED_CONTEXT,)) + message.data
            # the same bytes in OpenSent too, for the session target
            yield bytes((SEED_CONTEXT | OPEN_SENT_BIT,)) + message.data


def write_corpus(directory: Path) -> int:
    """Write the seed corpus (deduplicated) into ``directory``; returns the number of files."""
    directory.mkdir(parents=True, exist_ok=True)
    seen = set()
    for data in seed_inputs():
        if data not in seen:
            seen.add(data)
            (directory / f"seed-{len(seen):05d}").write_bytes(data)
    return len(seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="codec")
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to try")
    parser.add_argument("--corpus", type=Path, help="corpus directory (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    parser.add_argument("--max-len", type=int, default=4200, help="longest input, octets")
    parser.add_argument(
        "--no-instrument", action="store_true", help="no coverage feedback (plain mutation)"
    )
    args = parser.parse_args(argv)

    import atheris  # imported here: the module's checks are also used without it (tests)

    if not args.no_instrument:
        atheris.instrument_all()  # coverage feedback from every loaded function, speaker's too

    target = TARGETS[args.target]
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"speaker-fuzz-{args.target}-"))
    seeds = write_corpus(corpus)
    print(f"fuzz {args.target}: {seeds} seed inputs in {corpus}, {args.runs:,} runs", flush=True)
    libfuzzer_args = [
        sys.argv[0],
        str(corpus),
        f"-runs={args.runs}",
        f"-seed={args.seed}",
        f"-max_len={args.max_len}",
        "-print_final_stats=1",
        "-close_fd_mask=1",  # our targets print nothing; keep libFuzzer's stats readable
    ]
    atheris.Setup(libfuzzer_args, target)
    atheris.Fuzz()  # exits the process: 0 when no input raised, non-zero with the crash input
    return 0


if __name__ == "__main__":
    sys.exit(main())
