"""Prefixes and NLRI, with and without add-path path identifiers (RFC 4271 4.3, RFC 7911).

This is the UPDATE hot path: a 100,000-prefix feed decodes here, so a prefix is one small
int (:class:`Prefix`, built with ``int.__new__`` in the loops) rather than an ``ipaddress``
object, which costs twice as much to create and three times the memory.  ``ipaddress`` is
used at the edges (config, display) through :attr:`Prefix.network`.

Decoding reads each entry with one ``struct`` call on a zero-padded copy of the field (the
address bits past the prefix length are shifted out, which also drops the "irrelevant"
trailing bits RFC 4271 4.3 allows), and a run of entries that all have the same prefix length,
the normal case of a packed UPDATE, is read with ``struct.iter_unpack`` in one pass.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from speaker.wire.enums import Afi, UpdateSubcode
from speaker.wire.errors import BgpError, update_error

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


#: Set in an IPv6 prefix's int value (above any IPv6 prefix's bits): keeps IPv6 prefixes
#: apart from IPv4 ones.
V6_FLAG = 1 << 129

_int_new = int.__new__


def prefix_value(addr: int, length: int, v6: bool = False) -> int:
    """A prefix's int value (:class:`Prefix`; the kernel bridge's key for it): its network
    bits under a marker bit, ``1 << length | addr >> (bits - length)`` (so the length is the
    value's highest set bit), with :data:`V6_FLAG` for IPv6.  Host bits are dropped.

    Ints hash for free, where ``ipaddress`` networks recompute their hash on every dict
    lookup (about 1 us).  The network bits are the value's low bits, so values spread over a
    dict's slots: ``address << 8 | length`` had the same low 14 bits for every /26 and made
    each lookup of 100,000 such keys probe along one long collision chain (5x slower)."""
    if v6:
        return (1 << length | addr >> (128 - length)) | V6_FLAG
    return 1 << length | addr >> (32 - length)


def prefix_parts(value: int) -> tuple[Afi, int, int]:
    """(family, network address, length) of a prefix value (:func:`prefix_value`)."""
    if value & V6_FLAG:
        value ^= V6_FLAG
        length = value.bit_length() - 1
        return _IPV6, (value ^ 1 << length) << (128 - length), length
    length = value.bit_length() - 1
    return _IPV4, (value ^ 1 << length) << (32 - length), length


class Prefix(int):
    """An IP prefix, held as one int: its network bits under a marker bit, ``1 << length |
    addr >> (bits - length)`` (so the length is the value's highest set bit), with
    :data:`V6_FLAG` for IPv6.  Read it through :attr:`afi`, :attr:`addr` and :attr:`length`.

    Why an int: a prefix is held once per route (the Loc-RIB's key and its path's prefix),
    and an int is 48 bytes where a 3-tuple with its address int was 96; it hashes in C
    without combining fields; and its value is the kernel bridge's key for the same prefix
    (:func:`speaker.kernel.model.prefix_key`), so the bridge keys its table by the very same
    object.  The network bits are the value's low bits, so prefixes spread over a dict's
    slots.  Host bits are refused here; the decoder drops them (RFC 4271 4.3).

    A prefix equals the plain int of its value.  Sort with :func:`prefix_order` (family,
    address, length, as people read tables): ints sort by family, then length, then address.
    """

    __slots__ = ()

    def __new__(cls, afi: Afi, addr: int, length: int) -> Prefix:
        bits = _BITS.get(afi)
        if bits is None:
            raise ValueError(f"no IP prefixes in address family {afi!r}")
        family = "IPV4" if bits == 32 else "IPV6"  # afi may be a plain int
        if not 0 <= length <= bits:
            raise ValueError(f"prefix length {length} out of range for {family}")
        if addr < 0 or addr >> bits:
            raise ValueError(f"address {addr:#x} out of range for {family}")
        if addr & ((1 << (bits - length)) - 1):
            raise ValueError(f"prefix address {addr:#x}/{length} has host bits set")
        return _int_new(cls, prefix_value(addr, length, bits == 128))

    @classmethod
    def from_value(cls, value: int) -> Prefix:
        """The prefix of an int value (a kernel key; :meth:`__new__`'s result as an int)."""
        bits = 128 if value > 0 and value & V6_FLAG else 32
        rest = value ^ V6_FLAG if bits == 128 else value  # the marker bit and network bits
        if rest <= 0 or rest >> (bits + 1):
            raise ValueError(f"{value:#x} is not a prefix value")
        return _int_new(cls, value)

    @property
    def afi(self) -> Afi:
        """The address family."""
        return _IPV6 if self & V6_FLAG else _IPV4

    @property
    def length(self) -> int:
        """The prefix length."""
        return self.parts[2]

    @property
    def addr(self) -> int:
        """The network address, as an integer."""
        return self.parts[1]

    @property
    def parts(self) -> tuple[Afi, int, int]:
        """(family, address, length) at once: read several with one call."""
        return prefix_parts(self)

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The prefix as an ``ipaddress`` network."""
        afi, addr, length = self.parts
        if afi is _IPV4:
            return ipv4_network(addr, length)
        return ipaddress.IPv6Network((addr, length))

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
        afi, addr, length = self.parts
        o_afi, o_addr, o_length = other.parts
        if o_afi is not afi or o_length < length:
            return False
        shift = _BITS[afi] - length
        return (o_addr >> shift) == (addr >> shift)

    def __str__(self) -> str:
        return str(self.network)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        afi, addr, length = self.parts
        return f"Prefix(afi={afi!r}, addr={addr}, length={length})"

    def __reduce__(self) -> tuple[type[Prefix], tuple[Afi, int, int]]:
        return (Prefix, self.parts)


def prefix_order(prefix: Prefix) -> tuple[Afi, int, int]:
    """Sort key for prefixes as people read tables: family, then address, then length."""
    return prefix.parts


class Nlri(NamedTuple):
    """One NLRI entry: a prefix and, when add-path is negotiated, its path identifier."""

    prefix: Prefix
    path_id: int | None = None

    def __str__(self) -> str:
        if self.path_id is None:
            return str(self.prefix)
        return f"{self.prefix} (path-id {self.path_id})"


_new = tuple.__new__

_IPV4 = Afi.IPV4
_IPV6 = Afi.IPV6
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
                return (_new(Nlri, (_int_new(Prefix, 1 << plen | raw >> (32 - plen)), path_id)),)
    bits = 32 if afi is _IPV4 else 128
    if n >= _UNIFORM_MIN * 5:
        uniform = _decode_uniform(data, afi, bits, addpath)
        if uniform is not None:
            return uniform
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
                append(_new(Nlri, (_int_new(Prefix, 1 << plen | raw >> (32 - plen)), path_id)))
        else:
            unpack = _V4_PLAIN.unpack_from
            while i < n:
                plen, raw = unpack(padded, i)
                if plen > 32:
                    raise _error(f"prefix length {plen} exceeds 32 bits")
                i += 1 + ((plen + 7) >> 3)
                if i > n:
                    raise _error(f"prefix of length {plen} runs past the end of the field")
                append(_new(Nlri, (_int_new(Prefix, 1 << plen | raw >> (32 - plen)), None)))
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
        value = 1 << plen | ((high << 64) | low) >> (128 - plen) | V6_FLAG
        append(_new(Nlri, (_int_new(Prefix, value), pid)))
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
    # the prefix's value (see Prefix): its network bits under the length's marker bit
    flag = 1 << plen | (V6_FLAG if bits == 128 else 0)
    if bits == 32 and size == 4:
        drop = 32 - plen
        if addpath:
            return tuple(
                [
                    _new(Nlri, (_int_new(Prefix, raw >> drop | flag), path_id))
                    for path_id, _, raw in struct.iter_unpack("!IBI", data)
                ]
            )
        return tuple(
            [
                _new(Nlri, (_int_new(Prefix, raw >> drop | flag), None))
                for _, raw in struct.iter_unpack("!BI", data)
            ]
        )
    from_bytes = int.from_bytes
    drop = size * 8 - plen  # the "irrelevant" trailing bits of the last octet
    if addpath:
        return tuple(
            [
                _new(Nlri, (_int_new(Prefix, from_bytes(raw) >> drop | flag), path_id))
                for path_id, _, raw in struct.iter_unpack(f"!IB{size}s", data)
            ]
        )
    return tuple(
        [
            _new(Nlri, (_int_new(Prefix, from_bytes(raw) >> drop | flag), None))
            for _, raw in struct.iter_unpack(f"!B{size}s", data)
        ]
    )


def encode_prefix(nlri: Nlri, addpath: bool) -> bytes:
    """Encode one NLRI entry (with its path identifier when ``addpath``)."""
    afi, addr, length = nlri.prefix.parts
    bits = _BITS[afi]
    size = (length + 7) >> 3
    body = bytes((length,)) + addr.to_bytes(bits // 8, "big")[:size]
    if addpath:
        return (nlri.path_id or 0).to_bytes(4, "big") + body
    return body


def encode_prefixes(nlris: tuple[Nlri, ...] | list[Nlri], addpath: bool) -> bytes:
    """Encode a run of NLRI entries."""
    return b"".join([encode_prefix(n, addpath) for n in nlris])
