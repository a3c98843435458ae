"""``--filter``: which messages to show, by type, by prefix or by peer (all must match).

Filtering happens after decoding: every message is still read in order, so the OPENs still
fix the context of later messages and a meaning is still explained at its first *shown*
occurrence.  A gap is shown unless a ``peer=`` filter excludes its direction.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from speaker.annotate.explain import Decoded
from speaker.annotate.gaps import Lost
from speaker.annotate.tables import MESSAGE_TYPES
from speaker.wire.attributes import MpReachAttr, MpUnreachAttr
from speaker.wire.messages import Update
from speaker.wire.nlri import Prefix


class FilterError(ValueError):
    """A ``--filter`` expression we cannot read; the message says what is accepted."""


_TYPES = {m.name.lower(): code for code, m in MESSAGE_TYPES.items()}
_TYPES.update({"route_refresh": 5, "refresh": 5})


@dataclass(frozen=True, slots=True)
class Filter:
    """One ``key=value`` condition."""

    key: str
    value: str
    type_code: int | None = None
    prefix: Prefix | None = None

    def matches(self, item: Decoded | Lost) -> bool:
        """Whether the message (or gap) satisfies this condition."""
        if isinstance(item, Lost):
            return self.key != "peer" or self.value in _addresses(item.source, item.destination)
        if self.key == "type":
            return item.type_code == self.type_code
        if self.key == "peer":
            return self.value in _addresses(item.source, item.destination)
        assert self.prefix is not None
        cover = self.prefix
        return any(cover.contains(p) for p in announced_and_withdrawn(item))


def _addresses(*endpoints: str | None) -> set[str]:
    """``192.168.0.80:179`` and ``[fd00::80]:179`` -> the addresses (and the text itself)."""
    out = set()
    for text in endpoints:
        if text is None:
            continue
        out.add(text)
        address = text.rsplit(":", 1)[0] if text.count(":") == 1 or text.startswith("[") else text
        out.add(address.strip("[]"))
    return out


def announced_and_withdrawn(item: Decoded) -> Iterable[Prefix]:
    """Every prefix an UPDATE announces or withdraws, MP_REACH/MP_UNREACH included."""
    message = item.message
    if not isinstance(message, Update):
        return ()
    out = [n.prefix for n in message.withdrawn]
    out.extend(n.prefix for n in message.nlri)
    for attr in message.attributes:
        if isinstance(attr, MpReachAttr):
            out.extend(n.prefix for n in attr.nlri)
        elif isinstance(attr, MpUnreachAttr):
            out.extend(n.prefix for n in attr.withdrawn)
    return out


def parse_filter(text: str) -> Filter:
    """``type=update``, ``prefix=10.244.0.0/16``, ``peer=192.168.0.80``."""
    key, sep, value = text.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not sep or not value:
        raise FilterError(f"{text!r}: expected KEY=VALUE (type=, prefix= or peer=)")
    if key == "type":
        code = int(value) if value.isdigit() else _TYPES.get(value.lower().replace(" ", "-"))
        if code is None:
            names = ", ".join(sorted(m.name.lower() for m in MESSAGE_TYPES.values()))
            raise FilterError(f"{text!r}: unknown message type (one of {names}, or a number)")
        return Filter(key, value, type_code=code)
    if key == "prefix":
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise FilterError(f"{text!r}: {exc}") from None
        return Filter(key, value, prefix=Prefix.from_network(net))
    if key == "peer":
        with contextlib.suppress(ValueError):  # else a hex file's side, A or B
            value = str(ipaddress.ip_address(value))
        return Filter(key, value)
    raise FilterError(f"{text!r}: unknown filter {key!r} (type=, prefix= or peer=)")


def matches_all(filters: Iterable[Filter], item: Decoded | Lost) -> bool:
    """True when every filter matches (no filter: everything is shown)."""
    return all(f.matches(item) for f in filters)


__all__ = ["Filter", "FilterError", "announced_and_withdrawn", "matches_all", "parse_filter"]
