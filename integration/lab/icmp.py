"""A minimal ICMP echo client, run inside a lab namespace (the machine may lack ``ping``).

Usage (as root, inside a namespace): ``python3 icmp.py --count 3 --interval 0.2 10.244.42.65``.
Prints one JSON object: ``{"sent": N, "received": M, "rtt_ms": [...]}``.  Standard library only,
so it runs as a plain script without the package on the path.  An IPv6 address gets ICMPv6 echo
(a ping6): the kernel fills in the ICMPv6 checksum (RFC 3542 3.1) and hands back the message
without its IPv6 header.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
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


def ping(address: str, count: int, interval: float, timeout: float) -> dict[str, object]:
    """Send ``count`` echo requests ``interval`` s apart; wait ``timeout`` s after the last."""
    target = ipaddress.ip_address(address)
    v6 = target.version == 6
    if v6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    reply_type = ECHO6_REPLY if v6 else ECHO_REPLY
    ident = os.getpid() & 0xFFFF
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}

    def receive_until(deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or len(rtts) == count:
                return
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                return
            data, peer = sock.recvfrom(65535)
            ihl = 0 if v6 else (data[0] & 0x0F) * 4
            if len(data) < ihl + 8 or ipaddress.ip_address(peer[0]) != target:
                continue
            icmp_type, _, _, rid, seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if icmp_type == reply_type and rid == ident and seq in sent_at and seq not in rtts:
                rtts[seq] = (time.monotonic() - sent_at[seq]) * 1000.0

    try:
        for seq in range(count):
            sent_at[seq] = time.monotonic()
            sock.sendto(_echo_request(ident, seq, v6), (address, 0))
            if seq < count - 1:
                receive_until(sent_at[seq] + interval)
        receive_until(time.monotonic() + timeout)
    finally:
        sock.close()
    return {"sent": count, "received": len(rtts), "rtt_ms": [rtts[s] for s in sorted(rtts)]}


def main() -> None:
    """Command-line entry: parse arguments, ping, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    print(json.dumps(ping(args.address, args.count, args.interval, args.timeout)))


if __name__ == "__main__":
    main()
