"""The two rtnetlink sockets of the bridge and the batched request/answer plumbing.

* The **change** socket (no multicast groups) carries our writes and our scan dumps, one
  conversation at a time.  Writes are packed many to a datagram: rtnetlink processes a
  datagram's messages synchronously inside ``send()``, queueing one ACK (or error) per
  message on our receive buffer, so the number in flight is bounded by the chunk size and
  the receive buffer is sized for it.  ``NETLINK_CAP_ACK`` keeps ACKs small,
  ``NETLINK_EXT_ACK`` gives the kernel's error text, ``NETLINK_GET_STRICT_CHK`` makes the
  kernel filter dumps by table.
* The **monitor** socket is bound to the IPv4/IPv6 route groups, with a socket filter that
  drops the notifications of our own protocol's routes (our writes' echoes, see
  :func:`own_echo_filter`); its receive buffer may still overrun under a burst (ENOBUFS),
  which the bridge answers with a full re-dump.

Sockets in a named namespace are created by :func:`pyroute2.netns.create_socket` (imported
only then; in our own namespace a plain ``socket.socket``): for a named namespace pyroute2
forks a short-lived child that enters it, opens the socket and passes the descriptor back, so
this process never changes namespace; without a namespace it is a plain socket.  We read
them ourselves (non-blocking, many datagrams per wake-up) rather than through pyroute2's
asyncio transport, which reads one datagram per loop iteration, parses with its generic
marshal (~30k routes/s) and cannot continue after ENOBUFS.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import os
import random
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from speaker.kernel.codec import (
    FLAGS_ADD,
    FLAGS_DELETE,
    FLAGS_REPLACE,
    NLM_F_ACK,
    NLM_F_DUMP_INTR,
    NLMSG_ERROR,
    FibRoute,
    ParsedMessage,
    RouteDump,
    RouteParser,
    pack_delete,
    pack_delroute,
    pack_newroute,
    pack_route_dump,
    parse_error,
)
from speaker.kernel.model import V6_FLAG
from speaker.kernel.reconcile import UNKNOWN_OUTCOME, Op, OpKind, OpResult

AF_NETLINK = 16
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_ROUTE = 0x400

_ACK_HEAD = struct.Struct("=IHHIIi")  # nlmsghdr + nlmsgerr.error
RECV_SIZE = 65536  # the kernel caps dump datagrams at 32 KiB
CHANGE_RCVBUF = 8 << 20
CHANGE_SNDBUF = 4 << 20
MONITOR_RCVBUF = 16 << 20
CHUNK_MESSAGES = 1024  # writes per datagram (and ACKs outstanding)
CHUNK_BYTES = 256 << 10
ANSWER_TIMEOUT = 10.0
DUMP_YIELD = 4  # dump datagrams (up to 32 KiB, ~600 routes each) parsed per loop turn


class KernelError(Exception):
    """The kernel bridge cannot do its job (no namespace, socket or dump failure)."""


class DumpInterrupted(KernelError):
    """NLM_F_DUMP_INTR: the table changed during the dump; it must be repeated."""


def _set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)  # root: beyond net.core.*mem_max
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)


def _netlink_socket(netns: str | None) -> socket.socket:
    """A NETLINK_ROUTE datagram socket in ``netns`` (None: this process's namespace).

    Only a named namespace needs pyroute2 (it enters the namespace to create the socket); it
    is imported then and not before, as importing it costs about 22 MiB and 0.15 s.
    """
    if netns is None:
        return socket.socket(AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    from pyroute2.netns import create_socket

    sock: socket.socket = create_socket(
        netns, AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE, flags=0
    )
    return sock


SO_ATTACH_FILTER = 26
_BPF_LDB_ABS = 0x30  # BPF_LD | BPF_B | BPF_ABS: load the octet at offset k
_BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: keep k octets of the datagram (0: drop it)
_RTM_NEWROUTE = 24
_RTM_DELROUTE = 25
_RTM_PROTOCOL_OFFSET = 16 + 5  # nlmsghdr (16 octets), then rtmsg's rtm_protocol


def own_echo_filter(protocol: int) -> list[tuple[int, int, int, int]]:
    """A classic BPF program for the monitor socket that drops the notifications of routes of
    ``protocol`` (ours): the kernel's echo of every route we write or delete, 100,000 per full
    feed, each a ``recv`` and a parse for nothing.  BIRD's kernel protocol ignores the
    notifications for its own routes the same way; what someone else does to our routes is
    caught by the next scan.  Other protocols' routes (``learn``) still arrive.

    ``nlmsg_type`` is host-endian: on a little-endian host its low octet is at offset 4.
    Each instruction is (code, jump if true, jump if false, k)."""
    low, high = (4, 5) if sys.byteorder == "little" else (5, 4)
    accept, drop = (_BPF_RET_K, 0, 0, 0xFFFFFFFF), (_BPF_RET_K, 0, 0, 0)
    return [
        (_BPF_LDB_ABS, 0, 0, high),
        (_BPF_JEQ_K, 0, 5, 0),  # a type above 255: not a route message, keep
        (_BPF_LDB_ABS, 0, 0, low),
        (_BPF_JEQ_K, 1, 0, _RTM_NEWROUTE),
        (_BPF_JEQ_K, 0, 2, _RTM_DELROUTE),
        (_BPF_LDB_ABS, 0, 0, _RTM_PROTOCOL_OFFSET),
        (_BPF_JEQ_K, 1, 0, protocol),
        accept,
        drop,
    ]


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """``SO_ATTACH_FILTER`` (struct sock_fprog) with ``program``."""
    # the instructions in a buffer that stays alive during the call (array, not ctypes:
    # ctypes would cost the daemon's start-up RSS); the kernel copies the program
    code = array.array("B", b"".join(struct.pack("=HBBI", *ins) for ins in program))
    fprog = struct.pack("@HP", len(program), code.buffer_info()[0])
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class NetlinkChannel:
    """One non-blocking NETLINK_ROUTE socket driven by the running asyncio loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._seq = random.randrange(1, 1 << 31)
        self.closed = False

    @classmethod
    def open(cls, netns: str | None, *, groups: int, rcvbuf: int, sndbuf: int,
             drop_protocol: int | None = None) -> NetlinkChannel:
        """Open, configure and bind a socket in ``netns`` (None: this process's namespace).

        The namespace is never created here: pyroute2's default ``O_CREAT`` would make a
        typo silently program an empty new namespace, so we pass ``flags=0``."""
        try:
            sock = _netlink_socket(netns)
        except (OSError, TimeoutError, RuntimeError) as exc:
            where = "this namespace" if netns is None else f"network namespace {netns!r}"
            raise KernelError(f"cannot open a netlink socket in {where}: {exc}") from exc
        try:
            _set_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
            _set_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
            for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK):
                # older kernels: plain errors, and the table filter happens on our side
                with contextlib.suppress(OSError):
                    sock.setsockopt(SOL_NETLINK, option, 1)
            if drop_protocol is not None:
                attach_filter(sock, own_echo_filter(drop_protocol))
            sock.bind((0, groups))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(f"cannot set up a netlink socket: {exc}") from exc
        return cls(sock)

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self.sock.fileno()

    def next_seq(self) -> int:
        """A fresh sequence number (answers are matched on it)."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def send(self, data: bytes) -> None:
        """Send one datagram (possibly many messages) to the kernel."""
        self.sock.send(data)

    def recv_nowait(self) -> bytes | None:
        """One datagram, or None if none is queued; OSError(ENOBUFS) after an overrun."""
        try:
            return self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return None

    async def readable(self, timeout: float) -> None:
        """Wait until a datagram is queued (TimeoutError after ``timeout``)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        fd = self.fileno()
        loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            loop.remove_reader(fd)

    async def recv(self, timeout: float) -> bytes:
        """The next datagram, waiting up to ``timeout``."""
        while True:
            data = self.recv_nowait()
            if data is not None:
                return data
            await self.readable(timeout)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if not self.closed:
            self.closed = True
            self.sock.close()


_NO_ACK = ~NLM_F_ACK & 0xFFFF
_KIND_FLAGS = ((OpKind.ADD, FLAGS_ADD), (OpKind.REPLACE, FLAGS_REPLACE),
               (OpKind.DELETE, FLAGS_DELETE))
_FLAGS_ACK = dict(_KIND_FLAGS)  # kind -> nlmsg_flags
_FLAGS_NO_ACK = {kind: flags & _NO_ACK for kind, flags in _KIND_FLAGS}
_FLAGS_AT = struct.Struct("=H")  # nlmsg_flags, at offset 6 of the header
_DELETE = OpKind.DELETE  # a module global: an enum member's class lookup is slow on 3.11
_DELETE_ACK, _DELETE_NO_ACK = _FLAGS_ACK[_DELETE], _FLAGS_NO_ACK[_DELETE]
_new_tuple = tuple.__new__
_TIMEOUT = "no answer from the kernel (timeout)"
_T = TypeVar("_T")
#: A request that failed, as :meth:`RouteWriter.delete` reports it: (index, errno, message)
Failure = tuple[int, int, str]


def pack_op(op: Op, seq: int, ack: bool = True) -> bytes:
    """The request for one planned change (``ack=False``: the kernel answers only if it
    fails: rtnetlink sends an NLMSG_ERROR for a failed request whatever its flags)."""
    kind = op.kind
    flags = (_FLAGS_ACK if ack else _FLAGS_NO_ACK)[kind]
    if kind is _DELETE:
        return pack_delroute(op.route, seq, flags=flags)
    return pack_newroute(op.route, seq, flags)


def with_ack(request: bytes) -> bytes:
    """The same packed request, asking for an acknowledgement."""
    (flags,) = _FLAGS_AT.unpack_from(request, 6)
    return request[:6] + _FLAGS_AT.pack(flags | NLM_F_ACK) + request[8:]


class RouteWriter:
    """Batched writes: chunks of packed requests, one datagram each, without per-request
    ACKs: only the chunk's last request asks for one.

    rtnetlink handles a datagram's messages in order, inside ``send()``, and answers a
    request without ``NLM_F_ACK`` only when it fails (``netlink_rcv_skb``: ``if (flags &
    NLM_F_ACK || err) netlink_ack(...)``).  So when the last request's answer arrives, every
    earlier failure is already queued before it, matched to its request by sequence number;
    the requests with no answer succeeded.  That is one ``recv`` per chunk instead of one
    per route, and 1,024 routes' ACKs no longer fill the receive buffer.

    Every request gets an entry in the result list (errors are reported, never raised); if
    the closing answer never comes (our receive buffer overran, a timeout), the requests not
    answered get UNKNOWN_OUTCOME and the bridge re-dumps.

    ``send_in_thread``: each datagram is sent from a worker thread while the event loop goes
    on.  The kernel does a datagram's writes inside ``send()``, and now and then one costs it
    50-200 ms (the table's trie resized as it crosses 16k, 32k, 64k routes): time the loop
    would otherwise stand still, with control queries and keepalives waiting.  ``send``
    releases the GIL, so that kernel time also runs beside the speaker's Python work."""

    def __init__(
        self,
        channel: NetlinkChannel,
        *,
        chunk_messages: int = CHUNK_MESSAGES,
        chunk_bytes: int = CHUNK_BYTES,
        send_in_thread: bool = False,
    ) -> None:
        self.channel = channel
        self.chunk_messages = chunk_messages
        self.chunk_bytes = chunk_bytes
        self._thread: ThreadPoolExecutor | None = None
        if send_in_thread:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="kernel-send")

    def close(self) -> None:
        """Let the sending thread go (it ends once a send in progress is done)."""
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def execute(self, ops: Sequence[Op]) -> list[OpResult]:
        """Send all ``ops``; returns one OpResult per op."""
        failures = await self._write(ops, pack_op)
        results = [_new_tuple(OpResult, (op, 0, "")) for op in ops]
        for index, error, message in failures:
            results[index] = OpResult(ops[index], error, message)
        return results

    async def delete(self, keys: Sequence[int], table: int, proto: int) -> list[Failure]:
        """Delete the routes of protocol ``proto`` at the primary keys (tos 0, the family's
        default metric) of these prefixes in ``table``: a withdrawal's deletes, packed from
        the keys with no object per route.  Only the failures come back, as (index in
        ``keys``, errno, message), each matched to its request by sequence number (a route
        already gone fails with ESRCH); every other delete was done."""

        def pack(key: int, seq: int, ack: bool) -> bytes:
            metric = 1024 if key >= V6_FLAG else 0
            flags = _DELETE_ACK if ack else _DELETE_NO_ACK
            return pack_delete(key, table, proto, 0, metric, seq, flags)

        return await self._write(keys, pack)

    async def _write(
        self, items: Sequence[_T], pack: Callable[[_T, int, bool], bytes]
    ) -> list[Failure]:
        """One request per item (``pack(item, seq, ack)``), sent in chunks of a datagram;
        the failures, (index in ``items``, errno, message), in request order: a request not
        answered succeeded if the answer to its chunk's last one came, else its outcome is
        unknown."""
        failures: list[Failure] = []
        index = 0
        count = len(items)
        next_seq = self.channel.next_seq
        chunk_messages, chunk_bytes = self.chunk_messages, self.chunk_bytes
        while index < count:
            pending: dict[int, int] = {}  # seq -> index
            parts: list[bytes] = []
            size = 0
            acked = False  # the last request of the batch is packed asking for its ACK
            last = 0  # the chunk's last request (not one packed and left for the next chunk)
            while index < count and len(parts) < chunk_messages:
                seq = next_seq()
                acked = index + 1 == count
                data = pack(items[index], seq, acked)
                if parts and size + len(data) > chunk_bytes:
                    acked = False
                    break
                last = seq
                pending[seq] = index
                parts.append(data)
                size += len(data)
                index += 1
            if not acked:
                parts[-1] = with_ack(parts[-1])
            try:
                if self._thread is None:
                    self.channel.send(b"".join(parts))
                else:
                    await asyncio.get_running_loop().run_in_executor(
                        self._thread, self.channel.send, b"".join(parts)
                    )
            except OSError as exc:
                failures.extend((i, UNKNOWN_OUTCOME, f"send: {exc}") for i in pending.values())
                continue
            # the answers already queued (a local kernel answers inside send()), without a
            # coroutine per batch; the wait, only when the last one is not among them
            failed: dict[int, tuple[int, str]] = {}
            answers, problem = self._receive()
            closed = answers is not None and self._take(answers, pending, last, failed)
            if not closed and not problem:
                closed, problem = await self._wait(pending, last, failed)
            if failed or not closed:  # else the usual case: all done
                for seq, i in pending.items():
                    fault = failed.get(seq)
                    if fault is not None:
                        failures.append((i, *fault))
                    elif not closed:
                        failures.append((i, UNKNOWN_OUTCOME, problem))
            if index < count:
                await asyncio.sleep(0)  # let BGP sessions breathe between chunks
        return failures

    async def _wait(
        self, pending: dict[int, int], last: int, failed: dict[int, tuple[int, str]]
    ) -> tuple[bool, str]:
        """The answers still to come, until the one to ``last`` (the chunk's acknowledged
        request): whether it came, and else what went wrong."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            data, problem = self._receive()
            if problem:
                return False, problem
            if data is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False, _TIMEOUT
                try:
                    await self.channel.readable(remaining)
                except TimeoutError:
                    return False, _TIMEOUT
                except OSError as exc:
                    return False, f"answers lost: {exc}"
                continue
            if self._take(data, pending, last, failed):
                return True, ""

    def _receive(self) -> tuple[bytes | None, str]:
        """One datagram of answers if one is queued (None if not), or what went wrong."""
        try:
            return self.channel.recv_nowait(), ""
        except TimeoutError:
            return None, _TIMEOUT
        except OSError as exc:
            return None, f"answers lost: {exc}"

    @staticmethod
    def _take(
        data: bytes, pending: dict[int, int], last: int, failed: dict[int, tuple[int, str]]
    ) -> bool:
        """One datagram of answers: failures into ``failed``; True if it holds the answer to
        ``last``: answers come in order, so nothing else can fail after it."""
        closed = False
        off = 0
        size = len(data)
        while off + 20 <= size:  # inlined walk
            length, mtype, _flags, seq, _pid, err = _ACK_HEAD.unpack_from(data, off)
            if length < 16:
                break
            if mtype == NLMSG_ERROR:
                if err != 0 and seq in pending:  # else: a late answer, given up on
                    msg = ParsedMessage(mtype, _flags, seq, off + 16, off + length)
                    failed[seq] = parse_error(data, msg)
                if seq == last:
                    closed = True
            off += (length + 3) & ~3
        return closed


async def dump_routes(
    channel: NetlinkChannel,
    parser: RouteParser,
    family: int,
    table: int,
    expected: Callable[[int], FibRoute | None] | None = None,
) -> RouteDump:
    """All routes of one family in ``table`` (DumpInterrupted if the table changed meanwhile);
    those found exactly as ``expected`` gives them are only counted (:class:`RouteDump`)."""
    seq = channel.next_seq()
    channel.send(pack_route_dump(family, table, seq))
    routes = RouteDump()
    flags = 0
    datagrams = 0
    try:
        while True:
            data = await channel.recv(ANSWER_TIMEOUT)
            datagrams += 1
            done, seen = parser.parse_datagram(data, seq, routes, expected)
            flags |= seen
            if done:
                break
            if datagrams % DUMP_YIELD == 0:
                await asyncio.sleep(0)  # a scan must not starve BGP keepalives
    except TimeoutError as exc:
        raise KernelError("route dump: no answer from the kernel") from exc
    except OSError as exc:
        if exc.errno == errno.ENOBUFS:
            raise DumpInterrupted(f"route dump overrun: {exc}") from exc
        raise KernelError(f"route dump failed: {exc}") from exc
    code = flags >> 16
    if code:
        raise KernelError(f"route dump failed: ({code}, {os.strerror(code)!r})")
    if flags & NLM_F_DUMP_INTR:
        raise DumpInterrupted("the table changed during the dump")
    return routes
