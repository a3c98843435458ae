"""Session protection in the kernel's TCP: MD5 signatures (RFC 2385) and GTSM (RFC 5082).

Both are socket options, so they live with the sockets, in the asyncio adapter's reach; the
sans-IO layers never see them.  As in BIRD (``password "..."``, ``ttl security``), and as
Calico's BGPPeer ``password`` turns on:

* **TCP MD5** (``TCP_MD5SIG``): the kernel signs every segment to the peer's address and drops
  unsigned or wrongly signed segments from it.  The key is set on the *listening* socket (for
  incoming connections from that address) and on each *connecting* socket before
  ``connect()``.  A wrong or missing key never gets a SYN/ACK: the peer's session stays in
  Connect/Active, and the kernel counts the drops (``TCPMD5Failure``/``TCPMD5NotFound``
  in ``nstat``), which is what BIRD reports as "Kernel MD5 auth failed".
* **GTSM** (RFC 5082): send with TTL 255 (``IP_TTL``/``IPV6_UNICAST_HOPS``) and have the
  kernel drop anything that arrives with a smaller TTL (``IP_MINTTL``/``IPV6_MINHOPCOUNT``), so
  that a forged packet from further than one hop away cannot reach the BGP socket.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from speaker.config import PeerConfig
from speaker.secret import TCP_MD5SIG_MAXKEYLEN, Secret

__all__ = [
    "MD5_SILENT",
    "ListenerKeys",
    "Secret",
    "SignedAttempt",
    "md5sig_option",
    "secure_socket",
    "set_md5_key",
    "set_ttl_security",
]

TCP_MD5SIG = 14
"""linux/tcp.h: set or (with an empty key) remove the key for one peer address."""
IP_MINTTL = 21
"""linux/in.h: drop IPv4 packets with a smaller TTL (not in Python's socket module)."""
IPV6_MINHOPCOUNT = 73
"""linux/in6.h: the same for IPv6's hop limit."""
GTSM_TTL = 255


class SocketOptions(Protocol):
    """What these functions need of a socket: a plain one, or asyncio's ``TransportSocket``
    (a server's listening sockets)."""

    @property
    def family(self) -> int: ...

    def setsockopt(self, level: int, option: int, value: int | bytes, /) -> None: ...


def md5sig_option(address: IPv4Address | IPv6Address, key: bytes) -> bytes:
    """The ``struct tcp_md5sig`` for ``address`` (an empty ``key`` removes the peer's key).

    Layout (linux/tcp.h): a ``sockaddr_storage`` (128 octets) with the peer's address, flags
    and prefix length (unused: one address), the key length (u16), ifindex (u32), the key.
    """
    if len(key) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError(f"an MD5 key has at most {TCP_MD5SIG_MAXKEYLEN} octets, not {len(key)}")
    if address.version == 4:
        sockaddr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + address.packed
    else:
        sockaddr = (
            struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 0, 0) + address.packed
            + struct.pack("=I", 0)
        )
    return (
        sockaddr.ljust(128, b"\0")
        + struct.pack("=BBHI", 0, 0, len(key), 0)
        + key.ljust(TCP_MD5SIG_MAXKEYLEN, b"\0")
    )


def set_md5_key(sock: SocketOptions, address: IPv4Address | IPv6Address, key: bytes) -> None:
    """Sign segments to/from ``address`` with ``key`` (``b""``: stop signing).

    Raises OSError when the kernel refuses (``ENOENT`` removing a key that is not set is
    ignored: removal is idempotent).
    """
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig_option(address, key))
    except FileNotFoundError:
        if key:
            raise


def set_ttl_security(sock: SocketOptions, hops: int = 1) -> None:
    """GTSM on ``sock``: send with TTL 255, accept only TTL >= 256 - ``hops`` (RFC 5082 3)."""
    if not 1 <= hops <= 255:
        raise ValueError(f"GTSM hop count must be 1..255, not {hops}")
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, GTSM_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, 256 - hops)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL)
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 256 - hops)


MD5_COUNTERS = ("TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure")
"""The kernel's TcpExt counters of segments dropped for their TCP MD5 option (linux/snmp.h):
no signature where a key is set, a signature where none is, a wrong signature."""


def md5_drops(netstat: str | None = None) -> dict[str, int]:
    """The MD5 drop counters of this network namespace (``/proc/net/netstat``), zero where
    the kernel does not count them.  Read before and after a connection attempt, a rise
    says why it failed: what BIRD reports as "Kernel MD5 auth failed"."""
    if netstat is None:
        try:
            with open("/proc/net/netstat", encoding="ascii") as f:
                netstat = f.read()
        except OSError:
            return dict.fromkeys(MD5_COUNTERS, 0)
    lines = [line.split() for line in netstat.splitlines()]
    for names, values in itertools.pairwise(lines):
        if names and names[0] == "TcpExt:" and values and values[0] == "TcpExt:":
            table = dict(zip(names[1:], values[1:], strict=False))
            return {k: int(table.get(k, 0)) for k in MD5_COUNTERS}
    return dict.fromkeys(MD5_COUNTERS, 0)


MD5_SILENT = ("no answer with TCP MD5 on: a peer with another key, or none, drops our "
              "signed SYN without a word (RFC 2385)")
"""Why a signed attempt went unanswered when our own kernel dropped nothing: the peer's did."""


class SignedAttempt:
    """The MD5 drop counters around one signed connection attempt."""

    def __init__(self) -> None:
        self.before = md5_drops()

    def why(self) -> str | None:
        """What our kernel dropped since the attempt began, in words (None: nothing)."""
        return md5_failure_reason(self.before, md5_drops())


def md5_failure_reason(before: dict[str, int], after: dict[str, int]) -> str | None:
    """Why an attempt failed, from the counters' rise (None: not for MD5 reasons)."""
    rise = {k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)}
    if not rise:
        return None
    words = {
        "TCPMD5NotFound": "without a signature",
        "TCPMD5Unexpected": "signed while we have no key",
        "TCPMD5Failure": "with a wrong signature",
    }
    what = ", ".join(f"{n} {words[k]}" for k, n in rise.items())
    return f"Kernel MD5 auth failed: segments dropped by TCP MD5 (RFC 2385): {what}"


def secure_socket(sock: socket.socket, peer: PeerConfig) -> None:
    """The peer's TCP MD5 key and GTSM on a socket that will connect to it."""
    if peer.password is not None:
        set_md5_key(sock, peer.address, peer.password.value)
    if peer.ttl_security:
        set_ttl_security(sock)


class ListenerKeys:
    """The MD5 keys on the port-179 listening sockets: one per peer with a password.

    Set at start and updated on reload (a new, changed or removed key), without touching the
    sessions of peers whose key did not change (RFC 2385; BIRD sets them the same way)."""

    def __init__(self, sockets: Sequence[SocketOptions]) -> None:
        self.sockets = list(sockets)
        self.keys: dict[IPv4Address | IPv6Address, bytes] = {}

    def _same_family(self, address: IPv4Address | IPv6Address) -> list[SocketOptions]:
        # an IPv4 listener cannot hold an IPv6 peer's key (EINVAL), nor the reverse
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        return [s for s in self.sockets if s.family == family]

    def add_sockets(self, sockets: Sequence[SocketOptions]) -> None:
        """A listener opened later (the IPv6 one, when the first IPv6 peer is configured)
        gets the keys already set."""
        self.sockets.extend(sockets)
        for address, key in self.keys.items():
            for sock in sockets:
                if sock in self._same_family(address):
                    set_md5_key(sock, address, key)

    def apply(self, peers: tuple[PeerConfig, ...]) -> None:
        """Make the listeners' keys those of ``peers``."""
        wanted = {p.address: p.password.value for p in peers if p.password is not None}
        for address in [a for a in self.keys if a not in wanted]:
            for sock in self._same_family(address):
                set_md5_key(sock, address, b"")
            del self.keys[address]
        for address, key in wanted.items():
            if self.keys.get(address) != key:
                for sock in self._same_family(address):
                    set_md5_key(sock, address, key)
                self.keys[address] = key
