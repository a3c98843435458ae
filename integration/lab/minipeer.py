"""A minimal BGP peer for lab tests: no graceful restart, no End-of-RIB, ever.

BIRD 1.6.8 sends End-of-RIB to every peer that advertises graceful restart (we always do), so
it cannot play "a peer that never sends End-of-RIB".  This script can: it listens on
``--listen`` (inside a lab namespace: the lab runs it with ``ip netns exec``), accepts one
session, sends an OPEN with only the IPv4-unicast and 4-octet-AS capabilities, answers
KEEPALIVEs, and then obeys one command per line on stdin:

* ``announce PREFIX NEXTHOP [ORIGIN]``: an UPDATE with ORIGIN (default 0, IGP), an empty
  AS_PATH (iBGP), NEXT_HOP, LOCAL_PREF 100 and the prefix.  An ORIGIN above 2 is malformed on
  purpose (RFC 7606 7.1: the receiver treats the UPDATE as a withdrawal);
* ``withdraw PREFIX``: an UPDATE withdrawing it;
* ``quit`` (or end of input): close.

It prints ``established``, ``announced PREFIX``, ``withdrawn PREFIX`` and every message type
it receives, one per line, flushed, so the test can follow it.  Messages are hand-built from
RFC 4271 (nothing from ``speaker``: the peer must not share the speaker's codec bugs).
Standard library only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time

MARKER = b"\xff" * 16


def message(kind: int, body: bytes) -> bytes:
    """A BGP message: marker, length, type, body."""
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def open_message(asn: int, router_id: str, hold: int) -> bytes:
    """OPEN with Multiprotocol IPv4 unicast and 4-octet AS (RFC 4760, RFC 6793)."""
    caps = bytes([1, 4, 0, 1, 0, 1]) + bytes([65, 4]) + struct.pack("!I", asn)
    params = bytes([2, len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack("!BHH", 4, my_as, hold) + ipaddress.IPv4Address(router_id).packed
    return message(1, body + bytes([len(params)]) + params)


def nlri(prefix: str) -> bytes:
    """A prefix as NLRI: length in bits, then the significant octets."""
    net = ipaddress.IPv4Network(prefix)
    return bytes([net.prefixlen]) + net.network_address.packed[: (net.prefixlen + 7) // 8]


def announce(prefix: str, nexthop: str, origin: int = 0) -> bytes:
    """UPDATE announcing ``prefix`` via ``nexthop`` (iBGP: empty AS_PATH, LOCAL_PREF 100)."""
    attrs = (
        bytes([0x40, 1, 1, origin])  # ORIGIN (0 IGP; 3..255 malformed)
        + bytes([0x40, 2, 0])  # AS_PATH, empty
        + bytes([0x40, 3, 4])
        + ipaddress.IPv4Address(nexthop).packed
        + bytes([0x40, 5, 4])
        + struct.pack("!I", 100)
    )
    return message(2, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri(prefix))


def withdraw(prefix: str) -> bytes:
    """UPDATE withdrawing ``prefix``."""
    routes = nlri(prefix)
    return message(2, struct.pack("!H", len(routes)) + routes + struct.pack("!H", 0))


KEEPALIVE = message(4, b"")


def say(text: str) -> None:
    print(text, flush=True)


def read_messages(buf: bytearray) -> list[int]:
    """Complete message types taken off the front of ``buf``."""
    kinds = []
    while len(buf) >= 19:
        length = struct.unpack("!H", buf[16:18])[0]
        if len(buf) < length:
            break
        kinds.append(buf[18])
        del buf[:length]
    return kinds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="address to listen on (port 179)")
    ap.add_argument("--asn", type=int, required=True)
    ap.add_argument("--hold", type=int, default=240)
    args = ap.parse_args(argv)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.listen, 179))
    server.listen(1)
    say("listening")
    conn, peer = server.accept()
    server.close()
    say(f"accepted {peer[0]}")
    conn.sendall(open_message(args.asn, args.listen, args.hold))
    buf = bytearray()
    established = False
    last_keepalive = time.monotonic()
    stdin_open = True
    pending = b""
    while True:
        watch = [conn] + ([sys.stdin] if stdin_open and established else [])
        ready, _, _ = select.select(watch, [], [], 1.0)
        if conn in ready:
            data = conn.recv(65536)
            if not data:
                say("closed by peer")
                return 1
            buf += data
            for kind in read_messages(buf):
                say(f"received type {kind}")
                if kind == 1:
                    conn.sendall(KEEPALIVE)
                elif kind == 4 and not established:
                    established = True
                    say("established")
                elif kind == 3:
                    return 1
        if sys.stdin in ready:
            # os.read, not readline: readline buffers every line that arrived and select()
            # would not wake for the ones after the first
            chunk = os.read(sys.stdin.fileno(), 65536)
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            if not chunk:
                lines.append(b"quit")
            for line in lines:
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "quit":
                    conn.close()
                    say("quit")
                    return 0
                if words[0] == "announce":
                    origin = int(words[3]) if len(words) > 3 else 0
                    conn.sendall(announce(words[1], words[2], origin))
                    say(f"announced {words[1]}" + (f" origin {origin}" if origin else ""))
                elif words[0] == "withdraw":
                    conn.sendall(withdraw(words[1]))
                    say(f"withdrawn {words[1]}")
        if established and time.monotonic() - last_keepalive > args.hold / 3:
            conn.sendall(KEEPALIVE)
            last_keepalive = time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
