"""A small synchronous client for the control socket (ours or a real BIRD's).

    with ControlClient("/run/speaker/node81.ctl") as c:
        reply = c.command("show protocols")
        print("\\n".join(reply.texts()))
        doc = c.json("show route for 10.244.42.65")   # the `data` of a json reply
"""

from __future__ import annotations

import json
import socket
from types import TracebackType
from typing import Any

from speaker.control.protocol import Reply, ReplyCode, ReplyParser

__all__ = ["ControlClient", "ControlReplyError", "ControlUnreachable", "query"]


class ControlUnreachable(OSError):
    """The socket cannot be reached (no daemon, wrong path, permissions)."""

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


class ControlReplyError(Exception):
    """The daemon answered with an error code."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.code:04d} {reply.error}" if reply.error else str(reply.code))
        self.reply = reply


class ControlClient:
    """One connection; commands are sent one at a time and their replies read whole."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.banner: Reply | None = None
        self._sock: socket.socket | None = None
        self._parser = ReplyParser()
        self._pending: list[Reply] = []

    def connect(self) -> Reply:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise ControlUnreachable(exc.errno, f"cannot reach speaker at {self.path}: "
                                                f"{exc.strerror or exc}") from exc
        self._sock = sock
        self.banner = self._read()
        if self.banner.code != ReplyCode.WELCOME:
            self.close()
            raise ControlUnreachable(0, f"{self.path} did not greet like BIRD "
                                        f"({self.banner.raw[:1]})")
        return self.banner

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def command(self, line: str) -> Reply:
        """Send one command and return its whole reply (errors included, not raised)."""
        if self._sock is None:
            raise ControlUnreachable(0, "not connected")
        if "\n" in line:
            raise ValueError("one command per call")
        self._sock.sendall(line.encode() + b"\n")
        return self._read()

    def json(self, line: str) -> Any:
        """Send ``json <line>`` and return the document's ``data``; raise on error."""
        reply = self.command(f"json {line}")
        if not reply.ok:
            raise ControlReplyError(reply)
        docs = reply.data(ReplyCode.JSON)
        if len(docs) != 1:
            raise ControlReplyError(reply)
        return json.loads(docs[0])["data"]

    def document(self, line: str) -> dict[str, Any]:
        """Like json() but the whole document (schema, command, time, data)."""
        reply = self.command(f"json {line}")
        docs = reply.data(ReplyCode.JSON)
        if not reply.ok or len(docs) != 1:
            raise ControlReplyError(reply)
        doc: dict[str, Any] = json.loads(docs[0])
        return doc

    def _read(self) -> Reply:
        assert self._sock is not None
        while not self._pending:
            try:
                data = self._sock.recv(65536)
            except TimeoutError as exc:
                raise ControlUnreachable(0, f"{self.path}: no reply within "
                                            f"{self.timeout:g} s") from exc
            if not data:
                raise ControlUnreachable(0, f"{self.path}: connection closed by the daemon")
            self._pending.extend(self._parser.feed(data))
        return self._pending.pop(0)


def query(path: str, line: str, timeout: float = 10.0) -> Reply:
    """Connect, send one command, return its reply."""
    with ControlClient(path, timeout) as client:
        return client.command(line)
