"""A minimal ICMP echo client, run inside a lab namespace (the machine may lack ``ping``).

Usage (as root, inside a namespace): ``python3 icmp.py --count 3 --interval 0.2 10.244.42.65``.
Prints one JSON object: ``{"sent": N, "received": M, "rtt_ms": [...]}``.

``--continuous`` pings until stdin closes (the graceful-restart tests' pod-to-pod traffic):
it prints ``ready`` once its socket is open, sends one request every ``--interval`` seconds,
and when its stdin reaches end of file waits up to ``--timeout`` seconds for the last replies,
then prints ``{"sent": N, "received": M, "lost_at": [...]}``, the send times
(``time.monotonic()``, the caller's clock too) of the requests that got no reply.

Standard library only, so it runs as a plain script without the package on the path.  An IPv6
address gets ICMPv6 echo (a ping6): the kernel fills in the ICMPv6 checksum (RFC 3542 3.1) and
hands back the message without its IPv6 header.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

ECHO_REQUEST = 8
ECHO_REPLY = 0
ECHO6_REQUEST = 128
ECHO6_REPLY = 129


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo_request(ident: int, seq: int, v6: bool = False) -> bytes:
    payload = struct.pack("!d", time.monotonic()) + b"speaker-lab-icmp"
    if v6:  # the kernel computes an ICMPv6 checksum itself (it covers the IPv6 pseudo-header)
        return struct.pack("!BBHHH", ECHO6_REQUEST, 0, 0, ident, seq) + payload
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    csum = _checksum(header + payload)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, csum, ident, seq) + payload


class Echo:
    """One raw ICMP (or ICMPv6) socket toward one address: requests out, our replies in."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.target = ipaddress.ip_address(address)
        self.v6 = self.target.version == 6
        if self.v6:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.ident = os.getpid() & 0xFFFF

    def send(self, seq: int) -> None:
        """Echo request number ``seq`` (taken modulo 2**16, the field's size)."""
        self.sock.sendto(_echo_request(self.ident, seq & 0xFFFF, self.v6), (self.address, 0))

    def reply(self) -> int | None:
        """Read one datagram: the sequence number of our echo reply, or None for anything
        else (another process's echo, another sender, not a reply)."""
        data, peer = self.sock.recvfrom(65535)
        ihl = 0 if self.v6 else (data[0] & 0x0F) * 4
        if len(data) < ihl + 8 or ipaddress.ip_address(peer[0]) != self.target:
            return None
        icmp_type, _, _, rid, seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
        reply_type = ECHO6_REPLY if self.v6 else ECHO_REPLY
        return seq if icmp_type == reply_type and rid == self.ident else None

    def close(self) -> None:
        self.sock.close()


def ping(address: str, count: int, interval: float, timeout: float) -> dict[str, object]:
    """Send ``count`` echo requests ``interval`` s apart; wait ``timeout`` s after the last."""
    echo = Echo(address)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}

    def receive_until(deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or len(rtts) == count:
                return
            ready, _, _ = select.select([echo.sock], [], [], left)
            if not ready:
                return
            seq = echo.reply()
            if seq is not None and seq in sent_at and seq not in rtts:
                rtts[seq] = (time.monotonic() - sent_at[seq]) * 1000.0

    try:
        for seq in range(count):
            sent_at[seq] = time.monotonic()
            echo.send(seq)
            if seq < count - 1:
                receive_until(sent_at[seq] + interval)
        receive_until(time.monotonic() + timeout)
    finally:
        echo.close()
    return {"sent": count, "received": len(rtts), "rtt_ms": [rtts[s] for s in sorted(rtts)]}


def ping_until_eof(address: str, interval: float, timeout: float) -> dict[str, object]:
    """Ping every ``interval`` s until stdin closes, then wait up to ``timeout`` s for the
    outstanding replies.  A send that fails (no route: the very loss being measured) still
    counts as sent."""
    echo = Echo(address)
    sent: dict[int, float] = {}
    got: set[int] = set()
    seq, next_send, stop_at = 0, time.monotonic(), None
    print("ready", flush=True)
    try:
        while True:
            now = time.monotonic()
            if stop_at is None and now >= next_send:
                with contextlib.suppress(OSError):
                    echo.send(seq)
                sent[seq & 0xFFFF] = now
                seq += 1
                next_send += interval
                continue
            if stop_at is not None and (now >= stop_at or len(got) == len(sent)):
                break
            sock, stdin = echo.sock.fileno(), sys.stdin.fileno()
            fds = [sock] if stop_at is not None else [sock, stdin]
            wait = max(0.0, (stop_at if stop_at is not None else next_send) - now)
            ready, _, _ = select.select(fds, [], [], wait)
            if stdin in ready and not os.read(stdin, 4096):
                stop_at = time.monotonic() + timeout
            if sock in ready:
                number = echo.reply()
                if number is not None and number in sent:
                    got.add(number)
    finally:
        echo.close()
    lost = sorted(sent[s] for s in sent if s not in got)
    return {"sent": len(sent), "received": len(got), "lost_at": lost}


def main() -> None:
    """Command-line entry: parse arguments, ping, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument(
        "--continuous", action="store_true", help="ping until stdin closes (ignores --count)"
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.interval <= 0:
        parser.error("--interval must be positive")
    if args.continuous:
        result = ping_until_eof(args.address, args.interval, args.timeout)
    else:
        result = ping(args.address, args.count, args.interval, args.timeout)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
