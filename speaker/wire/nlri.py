"""Prefixes and NLRI, with and without add-path path identifiers (RFC 4271 4.3, RFC 7911).

This is the UPDATE hot path: a 100,000-prefix feed decodes here, so prefixes are small
immutable tuples (``NamedTuple``; built with ``tuple.__new__`` in the loops) rather than
``ipaddress`` objects, which cost twice as much to create.  ``ipaddress`` is used at the
edges (config, display, kernel) through :attr:`Prefix.network`.

Decoding reads each entry with one ``struct`` call on a zero-padded copy of the field (the
address bits past the prefix length are masked off, which also clears the "irrelevant"
trailing bits RFC 4271 4.3 allows), and a run of entries that all have the same prefix length,
the normal case of a packed UPDATE, is read with ``struct.iter_unpack`` in one pass.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from speaker.wire.enums import Afi, UpdateSubcode
from speaker.wire.errors import BgpError, LocalProtocolError, update_error

_BITS = {Afi.IPV4: 32, Afi.IPV6: 128}


_object_new = object.__new__
_V4Net = ipaddress.IPv4Network
_V4Addr = ipaddress.IPv4Address
_v4_netmask = ipaddress.IPv4Network._make_netmask  # type: ignore[attr-defined]  # memoised


def ipv4_network(addr: int, length: int) -> ipaddress.IPv4Network:
    """``IPv4Network((addr, length))`` for a decoded prefix, without re-parsing it: what
    ``IPv4Network.__init__`` sets, for a network address whose host bits are zero and a
    length below 31 (the kernel intent of every route; 0.5 us instead of 2.5 us).  Anything
    else goes through the constructor."""
    if length >= 31 or not 0 <= addr <= 0xFFFFFFFF or addr & ((1 << (32 - length)) - 1):
        return _V4Net((addr, length))
    net = _object_new(_V4Net)
    address = _object_new(_V4Addr)
    address._ip = addr  # type: ignore[attr-defined]
    net.network_address = address
    net.netmask, net._prefixlen = _v4_netmask(length)  # type: ignore[attr-defined]
    return net


class Prefix(NamedTuple):
    """An IP prefix: address family, network address as an integer, prefix length."""

    afi: Afi
    addr: int
    length: int

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The prefix as an ``ipaddress`` network."""
        if self.afi is Afi.IPV4:
            return ipv4_network(self.addr, self.length)
        return ipaddress.IPv6Network((self.addr, self.length))

    @classmethod
    def parse(cls, text: str) -> Prefix:
        """Read ``"10.244.42.64/26"`` (host bits must be zero)."""
        return cls.from_network(ipaddress.ip_network(text))

    @classmethod
    def from_network(cls, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Prefix:
        """Convert an ``ipaddress`` network."""
        afi = Afi.IPV4 if net.version == 4 else Afi.IPV6
        return cls(afi, int(net.network_address), net.prefixlen)

    def contains(self, other: Prefix) -> bool:
        """True if ``other`` lies inside this prefix (or is equal to it)."""
        if other.afi is not self.afi or other.length < self.length:
            return False
        shift = _BITS[self.afi] - self.length
        return (other.addr >> shift) == (self.addr >> shift)

    def __str__(self) -> str:
        return str(self.network)


class Nlri(NamedTuple):
    """One NLRI entry: a prefix and, when add-path is negotiated, its path identifier."""

    prefix: Prefix
    path_id: int | None = None

    def __str__(self) -> str:
        if self.path_id is None:
            return str(self.prefix)
        return f"{self.prefix} (path-id {self.path_id})"


_new = tuple.__new__

# _MASKS[bits][plen]: the network mask of a prefix length, as an integer
_MASKS = {
    bits: tuple(((1 << plen) - 1) << (bits - plen) for plen in range(bits + 1))
    for bits in (32, 128)
}
_MASKS32 = _MASKS[32]
_IPV4 = Afi.IPV4
_PAD = b"\x00" * 16

_V4_ADDPATH = struct.Struct("!IBI")  # path id, length, 4 address octets (padded)
_V4_PLAIN = struct.Struct("!BI")
_V6_ADDPATH = struct.Struct("!IBQQ")
_V6_PLAIN = struct.Struct("!BQQ")
_UNIFORM_MIN = 4  # entries before the iter_unpack fast path pays off


def _error(reason: str) -> BgpError:
    # RFC 4271 6.3: Invalid Network Field; RFC 7606 3(j)/5.3: the session must be reset
    return update_error(UpdateSubcode.INVALID_NETWORK_FIELD, reason=reason)


def decode_prefixes(data: bytes, afi: Afi, addpath: bool) -> tuple[Nlri, ...]:
    """Decode a run of (path id,) length, prefix entries.

    Raises the UPDATE error RFC 4271 6.3 prescribes (3/10 Invalid Network Field) when an
    entry is longer than the address or runs past the field; RFC 7606 5.3 says the session
    must then be reset, since the NLRI cannot be trusted.
    """
    n = len(data)
    if not n:
        return ()
    if n <= 9 and afi is _IPV4:
        # one entry, as in an UPDATE per route: skip the loop
        head = 5 if addpath else 1
        if n >= head:
            plen = data[head - 1]
            if head + ((plen + 7) >> 3) == n and plen <= 32:
                path_id: int | None = None
                if addpath:
                    path_id, plen, raw = _V4_ADDPATH.unpack_from(data + _PAD)
                else:
                    plen, raw = _V4_PLAIN.unpack_from(data + _PAD)
                return (_new(Nlri, (_new(Prefix, (afi, raw & _MASKS32[plen], plen)), path_id)),)
    bits = 32 if afi is _IPV4 else 128
    if n >= _UNIFORM_MIN * 5:
        uniform = _decode_uniform(data, afi, bits, addpath)
        if uniform is not None:
            return uniform
    masks = _MASKS[bits]
    out: list[Nlri] = []
    append = out.append
    padded = data + _PAD
    i = 0
    if bits == 32:
        if addpath:
            unpack = _V4_ADDPATH.unpack_from
            while i < n:
                if i + 5 > n:
                    raise _error(f"add-path NLRI truncated at offset {i}")
                path_id, plen, raw = unpack(padded, i)
                if plen > 32:
                    raise _error(f"prefix length {plen} exceeds 32 bits")
                i += 5 + ((plen + 7) >> 3)
                if i > n:
                    raise _error(f"prefix of length {plen} runs past the end of the field")
                append(_new(Nlri, (_new(Prefix, (afi, raw & masks[plen], plen)), path_id)))
        else:
            unpack = _V4_PLAIN.unpack_from
            while i < n:
                plen, raw = unpack(padded, i)
                if plen > 32:
                    raise _error(f"prefix length {plen} exceeds 32 bits")
                i += 1 + ((plen + 7) >> 3)
                if i > n:
                    raise _error(f"prefix of length {plen} runs past the end of the field")
                append(_new(Nlri, (_new(Prefix, (afi, raw & masks[plen], plen)), None)))
        return tuple(out)
    pid: int | None = None
    while i < n:
        if addpath:
            if i + 5 > n:
                raise _error(f"add-path NLRI truncated at offset {i}")
            pid, plen, high, low = _V6_ADDPATH.unpack_from(padded, i)
            i += 5
        else:
            plen, high, low = _V6_PLAIN.unpack_from(padded, i)
            i += 1
        if plen > bits:
            raise _error(f"prefix length {plen} exceeds {bits} bits")
        i += (plen + 7) >> 3
        if i > n:
            raise _error(f"prefix of length {plen} runs past the end of the field")
        addr = ((high << 64) | low) & masks[plen]
        append(_new(Nlri, (_new(Prefix, (afi, addr, plen)), pid)))
    return tuple(out)


def _decode_uniform(data: bytes, afi: Afi, bits: int, addpath: bool) -> tuple[Nlri, ...] | None:
    """Fast path: every entry has the first entry's prefix length (else None)."""
    head = 4 if addpath else 0
    plen = data[head]
    if plen > bits:
        return None  # let the general loop report it
    size = (plen + 7) >> 3
    step = head + 1 + size
    n = len(data)
    if n % step or data[head::step].count(plen) != n // step:
        return None
    mask = _MASKS[bits][plen]
    shift = (bits // 8 - size) * 8
    if bits == 32 and size == 4:
        if addpath:
            return tuple(
                [
                    _new(Nlri, (_new(Prefix, (afi, raw & mask, plen)), path_id))
                    for path_id, _, raw in struct.iter_unpack("!IBI", data)
                ]
            )
        return tuple(
            [
                _new(Nlri, (_new(Prefix, (afi, raw & mask, plen)), None))
                for _, raw in struct.iter_unpack("!BI", data)
            ]
        )
    from_bytes = int.from_bytes
    if addpath:
        return tuple(
            [
                _new(
                    Nlri,
                    (_new(Prefix, (afi, (from_bytes(raw) << shift) & mask, plen)), path_id),
                )
                for path_id, _, raw in struct.iter_unpack(f"!IB{size}s", data)
            ]
        )
    return tuple(
        [
            _new(Nlri, (_new(Prefix, (afi, (from_bytes(raw) << shift) & mask, plen)), None))
            for _, raw in struct.iter_unpack(f"!B{size}s", data)
        ]
    )


def encode_prefix(nlri: Nlri, addpath: bool) -> bytes:
    """Encode one NLRI entry (with its path identifier when ``addpath``)."""
    prefix = nlri.prefix
    bits = _BITS[prefix.afi]
    length = prefix.length
    if not 0 <= length <= bits:
        raise LocalProtocolError(f"prefix length {length} out of range for {prefix.afi.name}")
    size = (length + 7) >> 3
    body = bytes((length,)) + prefix.addr.to_bytes(bits // 8, "big")[:size]
    if addpath:
        return (nlri.path_id or 0).to_bytes(4, "big") + body
    return body


def encode_prefixes(nlris: tuple[Nlri, ...] | list[Nlri], addpath: bool) -> bytes:
    """Encode a run of NLRI entries."""
    return b"".join([encode_prefix(n, addpath) for n in nlris])
