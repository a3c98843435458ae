"""The asyncio Unix-socket server speaking BIRD 1.6.8's control protocol.

``birdc -s PATH``, ``calicoctl node status`` (pointed at the path) and calico-node's
readiness check read it as if it were BIRD.  The socket file is created with mode 0600
(root only, like BIRD's); a stale file left by a dead daemon is replaced, but a socket
that still answers, or a path that is not a socket, is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

from speaker.control.commands import (
    CommandError,
    CommandExecutor,
    Request,
    Watch,
    parse_command,
)
from speaker.control.jsonview import to_jsonable
from speaker.control.protocol import (
    MAX_COMMAND,
    ReplyCode,
    ReplyLine,
    encode_continuation,
    encode_reply,
)
from speaker.control.render import BirdRenderer
from speaker.control.views import ControlBackend, EventView

__all__ = ["ControlServer", "ControlSocketError"]

log = logging.getLogger(__name__)

DEFAULT_VERSION = "1.6.8"


class ControlSocketError(OSError):
    """The control socket cannot be created (path in use or not a socket)."""


class ControlServer:
    """Serves ControlBackend on a Unix socket; ``async with ControlServer(...)``."""

    def __init__(
        self,
        backend: ControlBackend,
        path: str | os.PathLike[str],
        *,
        version: str = DEFAULT_VERSION,
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        """``version`` is shown in the banner and ``show status`` (``BIRD <version>``);
        Calico's fork says ``v0.3.3+birdv1.6.8``, stock BIRD ``1.6.8``."""
        self.path = Path(path)
        self.version = version
        self.executor = CommandExecutor(backend, version=version, clock=clock, tz=tz)
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        sock = _bind(self.path)
        try:
            self._server = await asyncio.start_unix_server(self._client, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._inode = os.stat(self.path).st_ino
        log.info("control socket listening on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        self._inode = None

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            writer.write(encode_reply([ReplyLine(ReplyCode.WELCOME,
                                                 f"BIRD {self.version} ready.")]))
            await writer.drain()
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        too_long = False
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_COMMAND:
                        too_long, buf = True, b""
                    break
                raw, buf = buf[:nl], buf[nl + 1:]
                if too_long or len(raw.replace(b"\r", b"")) > MAX_COMMAND:
                    too_long = False
                    lines = [ReplyLine(ReplyCode.COMMAND_TOO_LONG, "Command too long")]
                else:
                    line = raw.replace(b"\r", b"").decode("utf-8", errors="replace")
                    watch = _watch_request(line)
                    if watch is not None:
                        await self._stream(watch, reader, writer)
                        return
                    lines = await self._run(line)
                writer.write(encode_reply(lines))
                await writer.drain()

    async def _stream(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """``watch [NAME]``: one continuation line per event until the client goes away.

        Events reach a bounded queue from the event loop's own callbacks; a client that reads
        too slowly loses the oldest (and is told how many), it never makes the daemon wait."""
        assert isinstance(request.command, Watch)
        name = request.command.name
        backend = self.executor.backend
        if name is not None and name not in {p.name for p in backend.protocols()}:
            writer.write(encode_reply([ReplyLine(ReplyCode.NO_PROTOCOLS_MATCH,
                                                 "No protocols match")]))
            await writer.drain()
            return
        queue: asyncio.Queue[EventView] = asyncio.Queue(WATCH_QUEUE)
        dropped = 0

        def push(event: EventView) -> None:
            nonlocal dropped
            if queue.full():
                queue.get_nowait()
                dropped += 1
            queue.put_nowait(event)

        renderer = BirdRenderer(datetime.now().astimezone(), self.executor.tz)
        stop = backend.watch(name, push)
        gone = asyncio.ensure_future(reader.read())  # EOF (or anything): the client left
        try:
            writer.write(encode_continuation(
                ReplyCode.EVENTS, f"Watching {name or 'all protocols'}; Ctrl-C to stop"))
            await writer.drain()
            while not gone.done():
                got = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({got, gone}, return_when=asyncio.FIRST_COMPLETED)
                if got not in done:
                    got.cancel()
                    break
                event = got.result()
                if dropped:
                    text, dropped = f"({dropped} events not shown: the reader was slow)", 0
                    writer.write(encode_continuation(ReplyCode.EVENTS, text))
                text = (json.dumps(to_jsonable(event), separators=(",", ":"))
                        if request.json else renderer.event_line(event))
                writer.write(encode_continuation(ReplyCode.EVENTS, text))
                await writer.drain()
        finally:
            stop()
            gone.cancel()

    async def _run(self, line: str) -> list[ReplyLine]:
        try:
            return await self.executor.run_line(line)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the backend must not kill the socket
            log.exception("control command %r failed", line)
            return [ReplyLine(ReplyCode.COMMAND_FAILED, f"internal error: {exc}")]


WATCH_QUEUE = 1000
"""Events held for one ``watch`` client that reads slowly."""


def _watch_request(line: str) -> Request | None:
    """The parsed request if ``line`` is a ``watch`` (streamed), else None."""
    try:
        request = parse_command(line)
    except CommandError:
        return None
    return request if isinstance(request.command, Watch) else None


def _bind(path: Path) -> socket.socket:
    """Bind a listening socket at ``path`` with mode 0600, replacing a stale file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlSocketError(f"{path} exists and is not a socket; not replacing it")
        if _answers(path):
            raise ControlSocketError(f"{path} is in use by a running process")
        log.info("replacing stale control socket %s", path)
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the file is born 0600: no window where others can connect
    try:
        sock.bind(str(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    sock.setblocking(False)
    return sock


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
