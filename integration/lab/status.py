"""Parsers for what the lab reads back: BIRD's ``show protocols`` and ``ss -tanH``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# name proto table state since info; "since" is a time (12:00:00) or a date, optionally + time.
_PROTO_ROW: Final = re.compile(
    r"^(?P<name>\S+)\s+(?P<proto>\S+)\s+(?P<table>\S+)\s+(?P<state>\S+)\s+"
    r"(?P<since>\S+(?: \d\d:\d\d(?::\d\d)?)?)\s*(?P<info>.*)$"
)


@dataclass(frozen=True)
class ProtocolState:
    """One row of BIRD's ``show protocols`` (the speaker's control socket emits the same)."""

    name: str
    proto: str
    table: str
    state: str
    since: str
    info: str

    @property
    def established(self) -> bool:
        """True when the BGP session is up (info column starts with ``Established``)."""
        return self.state == "up" and self.info.startswith("Established")


def parse_protocols(text: str) -> dict[str, ProtocolState]:
    """Rows of ``birdc show protocols`` keyed by protocol name (banner/heading skipped)."""
    rows: dict[str, ProtocolState] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("BIRD ", "name ", " ")):
            continue
        m = _PROTO_ROW.match(line.rstrip())
        if m:
            rows[m["name"]] = ProtocolState(**m.groupdict())
    return rows


@dataclass(frozen=True)
class TcpConnection:
    """One TCP socket from ``ss -tan`` inside a namespace."""

    state: str
    local_addr: str
    local_port: int
    peer_addr: str
    peer_port: int


def _split_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else 0


def parse_ss(text: str) -> list[TcpConnection]:
    """Sockets from ``ss -tanH`` output (columns: State Recv-Q Send-Q Local Peer)."""
    conns: list[TcpConnection] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        local_addr, local_port = _split_endpoint(parts[3])
        peer_addr, peer_port = _split_endpoint(parts[4])
        conns.append(TcpConnection(parts[0], local_addr, local_port, peer_addr, peer_port))
    return conns
