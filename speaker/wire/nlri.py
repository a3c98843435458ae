"""Prefixes and NLRI, with and without add-path path identifiers (RFC 4271 4.3, RFC 7911).

This is the UPDATE hot path: a 100,000-prefix feed decodes here, so prefixes are small
immutable tuples (``NamedTuple``; built with ``tuple.__new__`` in the loops) rather than
``ipaddress`` objects, which cost twice as much to create.  ``ipaddress`` is used at the
edges (config, display, kernel) through :attr:`Prefix.network`.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from speaker.wire.enums import Afi, UpdateSubcode
from speaker.wire.errors import update_error

_BITS = {Afi.IPV4: 32, Afi.IPV6: 128}


class Prefix(NamedTuple):
    """An IP prefix: address family, network address as an integer, prefix length."""

    afi: Afi
    addr: int
    length: int

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The prefix as an ``ipaddress`` network."""
        if self.afi is Afi.IPV4:
            return ipaddress.IPv4Network((self.addr, self.length))
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


def decode_prefixes(data: bytes, afi: Afi, addpath: bool) -> tuple[Nlri, ...]:
    """Decode a run of (path id,) length, prefix entries.

    Raises the UPDATE error RFC 4271 6.3 prescribes (3/10 Invalid Network Field) when an
    entry is longer than the address or runs past the field; RFC 7606 5.3 says the session
    must then be reset, since the NLRI cannot be trusted.
    """
    out: list[Nlri] = []
    append = out.append
    bits = _BITS[afi]
    nbytes_addr = bits // 8
    i = 0
    n = len(data)
    while i < n:
        if addpath:
            if i + 5 > n:
                raise update_error(
                    UpdateSubcode.INVALID_NETWORK_FIELD,
                    reason=f"add-path NLRI truncated at offset {i}",
                )
            path_id: int | None = int.from_bytes(data[i : i + 4], "big")
            i += 4
        else:
            path_id = None
        plen = data[i]
        i += 1
        if plen > bits:
            raise update_error(
                UpdateSubcode.INVALID_NETWORK_FIELD,
                reason=f"prefix length {plen} exceeds {bits} bits",
            )
        size = (plen + 7) >> 3
        end = i + size
        if end > n:
            raise update_error(
                UpdateSubcode.INVALID_NETWORK_FIELD,
                reason=f"prefix of length {plen} runs past the end of the field",
            )
        addr = int.from_bytes(data[i:end], "big") << ((nbytes_addr - size) << 3)
        if plen & 7:
            # trailing bits beyond the prefix length are irrelevant (RFC 4271 4.3)
            addr &= ~((1 << (bits - plen)) - 1)
        i = end
        append(_new(Nlri, (_new(Prefix, (afi, addr, plen)), path_id)))
    return tuple(out)


def encode_prefix(nlri: Nlri, addpath: bool) -> bytes:
    """Encode one NLRI entry (with its path identifier when ``addpath``)."""
    prefix = nlri.prefix
    bits = _BITS[prefix.afi]
    size = (prefix.length + 7) >> 3
    body = bytes((prefix.length,)) + prefix.addr.to_bytes(bits // 8, "big")[:size]
    if addpath:
        return (nlri.path_id or 0).to_bytes(4, "big") + body
    return body


def encode_prefixes(nlris: tuple[Nlri, ...] | list[Nlri], addpath: bool) -> bytes:
    """Encode a run of NLRI entries."""
    return b"".join([encode_prefix(n, addpath) for n in nlris])
