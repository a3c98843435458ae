"""``calicoctl node status``, reproduced: the same parse of ``show protocols`` and the same table.

Parsing follows calicoctl's scanBIRDPeers (calicoctl/commands/node/status.go): ``0001``
greeting, ``2002`` heading that must be exactly name/proto/table/state/since/info, ``1002``
first row, rows continued with a leading space, ``0000`` end; only BGP rows named
``^(Global|Node|Mesh)_(.+)$`` are peers, the address is the name's tail with ``_`` turned
back into dots.  The table is olekukonko/tablewriter v0.0.5 with its defaults: upper-case
centred headings, cells left-aligned unless they look like a number, words wrapped to 30
columns with minimum raggedness.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CalicoParseError",
    "CalicoPeer",
    "parse_bird_protocols",
    "render_node_status",
    "render_table",
]

_PEER_NAME = re.compile(r"^(Global|Node|Mesh)_(.+)$")
_PEER_TYPES = {"Global": "global", "Mesh": "node-to-node mesh", "Node": "node specific"}
_HEADINGS = ["name", "proto", "table", "state", "since", "info"]
_DECIMAL = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$")
_MAX_WIDTH = 30
_PENALTY = 100_000


class CalicoParseError(ValueError):
    """The output does not look like BIRD's (calicoctl would refuse it the same way)."""


@dataclass(frozen=True)
class CalicoPeer:
    """One row of calicoctl's table."""

    peer_address: str
    peer_type: str
    state: str
    since: str
    bgp_state: str
    info: str = ""

    @property
    def info_column(self) -> str:
        return f"{self.bgp_state} {self.info}" if self.info else self.bgp_state


def _peer(line: str, sep: str) -> CalicoPeer | None:
    cols = line.split()
    if len(cols) < 6 or cols[1] != "BGP":
        return None
    m = _PEER_NAME.match(cols[0])
    if m is None:
        return None
    return CalicoPeer(
        peer_address=m.group(2).replace("_", sep),
        peer_type=_PEER_TYPES[m.group(1)],
        state=cols[3],
        since=cols[4],
        bgp_state=cols[5],
        info=" ".join(cols[6:]),
    )


def parse_bird_protocols(lines: Iterable[str], ip_version: int = 4) -> list[CalicoPeer]:
    """Peers from the raw lines of ``show protocols`` (greeting optional), as calicoctl."""
    sep = ":" if ip_version == 6 else "."
    peers: list[CalicoPeer] = []
    for line in lines:
        if line.startswith("0000"):
            break
        if line.startswith("0001"):
            continue
        if line.startswith("2002"):
            if line[5:].split() != _HEADINGS:
                raise CalicoParseError("unknown BIRD table output format")
        elif line.startswith("1002"):
            peer = _peer(line[5:], sep)
            if peer is not None:
                peers.append(peer)
        elif line.startswith(" "):
            peer = _peer(line[1:], sep)
            if peer is not None:
                peers.append(peer)
        else:
            raise CalicoParseError(f"unexpected output line from BIRD: {line!r}")
    return peers


def split_families(lines: Sequence[str]) -> tuple[list[CalicoPeer], list[CalicoPeer]]:
    """(IPv4 peers, IPv6 peers) of one ``show protocols`` that lists both families (one
    speaker, one socket): a name's address part is read as calicoctl reads it for each
    family, and kept where it makes a valid address of that family."""
    def valid(text: str, version: int) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False

    v6_rows = [valid(p.peer_address, 6) for p in parse_bird_protocols(lines, 6)]
    v4 = [p for p, is6 in zip(parse_bird_protocols(lines, 4), v6_rows, strict=True) if not is6]
    v6 = [p for p, is6 in zip(parse_bird_protocols(lines, 6), v6_rows, strict=True) if is6]
    return v4, v6


def render_node_status(peers_v4: Sequence[CalicoPeer],
                       peers_v6: Sequence[CalicoPeer] = ()) -> str:
    """The whole output of ``calicoctl node status`` for these peers."""
    out = ["Calico process is running.\n"]
    for version, peers in ((4, peers_v4), (6, peers_v6)):
        out.append(f"\nIPv{version} BGP status\n")
        if not peers:
            out.append(f"No IPv{version} peers found.\n")
            continue
        out.append(render_table(
            ["Peer address", "Peer type", "State", "Since", "Info"],
            [[p.peer_address, p.peer_type, p.state, p.since, p.info_column] for p in peers],
        ))
    out.append("\n")
    return "".join(out)


# --------------------------------------------------------------------------- tablewriter


def _wrap_words(words: list[str], lim: int) -> list[list[str]]:
    """tablewriter's WrapWords: line breaks with minimum raggedness (squared slack)."""
    n = len(words)
    length = [[0] * n for _ in range(n)]
    for i in range(n):
        length[i][i] = len(words[i])
        for j in range(i + 1, n):
            length[i][j] = length[i][j - 1] + 1 + len(words[j])
    nbrk = [0] * n
    cost = [2**31 - 1] * n
    for i in range(n - 1, -1, -1):
        if length[i][n - 1] <= lim:
            cost[i] = 0
            nbrk[i] = n
            continue
        for j in range(i + 1, n):
            d = lim - length[i][j - 1]
            c = d * d + cost[j]
            if length[i][j - 1] > lim:
                c += _PENALTY
            if c < cost[i]:
                cost[i] = c
                nbrk[i] = j
    lines: list[list[str]] = []
    i = 0
    while i < n:
        lines.append(words[i:nbrk[i]])
        i = nbrk[i]
    return lines


def _wrap_string(s: str, lim: int) -> list[str]:
    words = s.replace("\n", " ").split(" ")
    for w in words:
        lim = max(lim, len(w))
    return [" ".join(line) for line in _wrap_words(words, lim)]


def _cell(text: str) -> tuple[list[str], int]:
    """tablewriter's parseDimension with autoWrap and reflow on."""
    raw = text.split("\n")
    width = min(max(len(line) for line in raw), _MAX_WIDTH)
    lines = _wrap_string(" ".join(raw), width)
    return lines, max([width, *(len(line) for line in lines)])


def _center(s: str, width: int) -> str:
    gap = width - len(s)
    if gap <= 0:
        return s
    left = gap // 2
    return " " * left + s + " " * (gap - left)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table drawn exactly like tablewriter v0.0.5's defaults (as calicoctl uses it)."""
    widths: dict[int, int] = {}
    head_cells: list[list[str]] = []
    for i, h in enumerate(headers):
        lines, w = _cell(h)
        widths[i] = max(widths.get(i, 0), w)
        head_cells.append(lines)
    body: list[list[list[str]]] = []
    for row in rows:
        cells: list[list[str]] = []
        for i, value in enumerate(row):
            lines, w = _cell(value)
            widths[i] = max(widths.get(i, 0), w)
            cells.append(lines)
        body.append(cells)
    ncols = len(widths)
    rule = "+" + "".join("-" * (widths[i] + 2) + "+" for i in range(ncols)) + "\n"
    out = [rule]
    height = max(len(c) for c in head_cells)
    for x in range(height):
        out.append("|" + "".join(
            " " + _center((head_cells[y][x] if x < len(head_cells[y]) else "").upper(),
                          widths[y]) + " |"
            for y in range(ncols)) + "\n")
    out.append(rule)
    for cells in body:
        height = max(len(c) for c in cells)
        padded = [c + ["  "] * (height - len(c)) for c in cells]
        for x in range(height):
            parts = []
            for y in range(len(padded)):
                s = padded[y][x]
                if _DECIMAL.match(s.strip()):
                    parts.append("| " + s.rjust(widths[y]) + " ")
                else:
                    parts.append("| " + s.ljust(widths[y]) + " ")
            out.append("".join(parts) + "|\n")
    out.append(rule)
    return "".join(out)
