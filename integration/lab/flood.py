"""A bounded TCP connection flood, for the lab only (run inside a lab namespace).

    python3 flood.py --target 192.168.0.81 --port 179 --seconds 20 --max 200000 --parallel 200

Opens connections to ``target:port`` as fast as it can, ``parallel`` attempts in flight, each
closed as soon as it is established (or refused/reset), until ``seconds`` pass or ``max``
attempts were made; prints one JSON line: attempts, established, refused, seconds, per
second.  Standard library only, so it runs with any python3 in any namespace.  It never
sends anything on a connection: the point is what the listener does with the attempts.
"""

from __future__ import annotations

import argparse
import errno
import json
import selectors
import socket
import time


def flood(target: str, port: int, seconds: float, limit: int, parallel: int) -> dict[str, float]:
    sel = selectors.DefaultSelector()
    attempts = established = refused = 0
    start = time.monotonic()
    deadline = start + seconds

    def launch() -> None:
        nonlocal attempts
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        attempts += 1
        code = sock.connect_ex((target, port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return
        sel.register(sock, selectors.EVENT_WRITE)

    while True:
        now = time.monotonic()
        in_flight = len(sel.get_map())
        while in_flight < parallel and attempts < limit and now < deadline:
            launch()
            in_flight += 1
        if in_flight == 0:
            break
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            sel.unregister(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established += 1
            else:
                refused += 1
            sock.close()  # SO_LINGER 0: a RST, no TIME_WAIT pile-up
        if time.monotonic() > deadline + 5:  # stragglers: give up on them
            for key in list(sel.get_map().values()):
                sel.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
            break
    took = time.monotonic() - start
    return {
        "attempts": attempts,
        "established": established,
        "refused": refused,
        "seconds": round(took, 3),
        "per_second": round(attempts / took, 1) if took else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, default=179)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max", type=int, default=100_000)
    parser.add_argument("--parallel", type=int, default=100)
    args = parser.parse_args()
    if not 0 < args.seconds <= 120 or not 0 < args.max <= 1_000_000:
        parser.error("bounded runs only: --seconds in (0, 120], --max in (0, 1000000]")
    print(json.dumps(flood(args.target, args.port, args.seconds, args.max, args.parallel)))


if __name__ == "__main__":
    main()
