"""The batched writer with a fake netlink channel: chunking, ACK matching, per-route errors."""

from __future__ import annotations

import errno
import ipaddress
import struct

from speaker.kernel.codec import (
    FLAGS_ADD,
    FLAGS_DELETE,
    FLAGS_REPLACE,
    NLM_F_ACK,
    NLMSG_ERROR,
    FibRoute,
    NextHop,
    RouteParser,
    iter_messages,
    net_key,
)
from speaker.kernel.model import KernelEventKind, RouteType
from speaker.kernel.netlink import NetlinkChannel, RouteWriter
from speaker.kernel.reconcile import UNKNOWN_OUTCOME, Op, OpKind


class FakeChannel(NetlinkChannel):
    """Answers like rtnetlink: an NLMSG_ERROR for a message that asked for an ACK or failed,
    queued on send, in order."""

    def __init__(self, errors: dict[str, int] | None = None, lose_after: int | None = None):
        self._seq = 0
        self.closed = False
        self.errors = errors or {}
        self.lose_after = lose_after  # simulate a receive-buffer overrun after N answers
        self.queue: list[bytes] = []
        self.datagrams: list[bytes] = []
        self.answered = 0
        self.acked: list[bool] = []
        self.parser = RouteParser()

    def send(self, data: bytes) -> None:
        self.datagrams.append(data)
        for msg in iter_messages(data):
            route = self.parser.parse(data, msg.offset, msg.end)
            assert route is not None
            code = self.errors.get(str(route.prefix), 0)
            flags_off = msg.offset - 10
            (flags,) = struct.unpack_from("=H", data, flags_off)
            assert flags | NLM_F_ACK in (FLAGS_ADD, FLAGS_REPLACE, FLAGS_DELETE)
            self.acked.append(bool(flags & NLM_F_ACK))
            if not (flags & NLM_F_ACK or code):
                continue
            if self.lose_after is not None and self.answered >= self.lose_after:
                continue
            self.answered += 1
            orig = data[msg.offset - 16 : msg.offset]
            body = struct.pack("=i", -code) + orig
            self.queue.append(
                struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, 0x100, msg.seq, 0) + body
            )

    def recv_nowait(self) -> bytes | None:
        if self.lose_after is not None and self.answered >= self.lose_after and not self.queue:
            self.lose_after = None
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return self.queue.pop(0) if self.queue else None

    async def readable(self, timeout: float) -> None:
        raise TimeoutError


def ops(n: int, kind: OpKind = OpKind.ADD) -> list[Op]:
    out = []
    for i in range(n):
        net = ipaddress.IPv4Network((0x0A000000 + i * 64, 26))
        hop = NextHop(ipaddress.IPv4Address("192.168.0.80"), 2)
        route = FibRoute(net_key(net), 254, 186, RouteType.UNICAST, 0, 0, (hop,))
        out.append(Op(kind, route, KernelEventKind.INSTALLED, "test"))
    return out


async def test_batches_are_bounded_and_every_op_answered() -> None:
    channel = FakeChannel(errors={"10.0.0.64/26": errno.ENETUNREACH})
    writer = RouteWriter(channel, chunk_messages=100)
    batch = ops(250)
    results = await writer.execute(batch)
    assert [len(list(iter_messages(d))) for d in channel.datagrams] == [100, 100, 50]
    assert sorted(r.op.route.key for r in results) == sorted(o.route.key for o in batch)
    failed = [r for r in results if r.error]
    assert [(str(r.op.route.prefix), r.error) for r in failed] == [
        ("10.0.0.64/26", errno.ENETUNREACH)
    ]


async def test_chunks_respect_the_byte_limit() -> None:
    channel = FakeChannel()
    writer = RouteWriter(channel, chunk_messages=1000, chunk_bytes=1000)
    results = await writer.execute(ops(100))
    assert all(len(d) <= 1000 for d in channel.datagrams)
    assert sum(len(list(iter_messages(d))) for d in channel.datagrams) == 100
    # a chunk cut by its size still waits for its own last request's ACK: all succeeded
    assert [r.error for r in results] == [0] * 100


async def test_only_the_last_request_of_a_chunk_is_acknowledged() -> None:
    failing = {"10.0.0.0/26": errno.ENETUNREACH, "10.0.1.0/26": errno.EEXIST}
    channel = FakeChannel(errors=failing)
    writer = RouteWriter(channel, chunk_messages=10)
    batch = ops(25)
    results = await writer.execute(batch)
    assert channel.acked == ([False] * 9 + [True]) * 2 + [False] * 4 + [True]
    assert channel.answered == 3 + 2  # one ACK per chunk, one answer per failure
    # every op answered, in request order, failures matched by sequence number
    assert [r.op for r in results] == batch
    assert {str(r.op.route.prefix): r.error for r in results if r.error} == failing


async def test_lost_answers_are_unknown_not_raised() -> None:
    channel = FakeChannel(errors={"10.0.0.64/26": errno.ENETUNREACH}, lose_after=1)
    writer = RouteWriter(channel, chunk_messages=50)
    results = await writer.execute(ops(50, OpKind.DELETE))
    # the failure came; the closing ACK was lost: the others' outcome is unknown
    assert [(str(r.op.route.prefix), r.error) for r in results if r.error != UNKNOWN_OUTCOME] \
        == [("10.0.0.64/26", errno.ENETUNREACH)]
    unknown = [r for r in results if r.error == UNKNOWN_OUTCOME]
    assert len(unknown) == 49
    assert "No buffer space" in unknown[0].message


async def test_sending_from_a_thread_gives_the_same_answers() -> None:
    """send_in_thread: the datagram leaves from the writer's thread (the loop runs on
    meanwhile), answers are collected as before."""
    import threading

    senders: set[str] = set()

    class ThreadedFake(FakeChannel):
        def send(self, data: bytes) -> None:
            senders.add(threading.current_thread().name)
            super().send(data)

    failing = {"10.0.0.0/26": errno.ENETUNREACH}
    channel = ThreadedFake(errors=failing)
    writer = RouteWriter(channel, chunk_messages=10, send_in_thread=True)
    try:
        batch = ops(25)
        results = await writer.execute(batch)
    finally:
        writer.close()
    assert [r.op for r in results] == batch
    assert {str(r.op.route.prefix): r.error for r in results if r.error} == failing
    assert len(channel.datagrams) == 3
    assert senders and all(name.startswith("kernel-send") for name in senders)


async def test_deletes_by_key_are_the_deletes_of_the_routes_and_return_only_failures() -> None:
    """A withdrawal's deletes by prefix key (IPv4 and IPv6) pack exactly as the deletes of
    the routes (tos 0, the family's default metric), chunked and acknowledged as any batch;
    only failures come back, matched to their key by sequence number."""
    keys = [o.route.key for o in ops(25)]
    v6 = ipaddress.IPv6Network("2001:db8:1::/64")
    keys.append(net_key(v6))
    failing = {"10.0.0.64/26": errno.EBUSY, "2001:db8:1::/64": errno.ESRCH}
    channel = FakeChannel(errors=failing)
    writer = RouteWriter(channel, chunk_messages=10)
    failures = await writer.delete(keys, 254, 186)
    assert failures == [(1, errno.EBUSY, ""), (25, errno.ESRCH, "")]
    assert channel.acked == ([False] * 9 + [True]) * 2 + [False] * 5 + [True]
    routes = [o.route for o in ops(25, OpKind.DELETE)]
    routes.append(FibRoute(net_key(v6), 254, 186, RouteType.UNICAST, 0, 1024))
    expected = RouteWriter(FakeChannel(errors=failing), chunk_messages=10)
    results = await expected.execute(
        [Op(OpKind.DELETE, r, KernelEventKind.DELETED, "t") for r in routes]
    )
    assert b"".join(expected.channel.datagrams) == b"".join(  # type: ignore[attr-defined]
        channel.datagrams
    )
    assert [(i, r.error) for i, r in enumerate(results) if r.error] == [
        (i, code) for i, code, _ in failures
    ]


async def test_deletes_by_key_with_lost_answers_are_unknown() -> None:
    channel = FakeChannel(lose_after=0)
    writer = RouteWriter(channel, chunk_messages=50)
    failures = await writer.delete([o.route.key for o in ops(5)], 254, 186)
    assert [(i, code) for i, code, _ in failures] == [(i, UNKNOWN_OUTCOME) for i in range(5)]
    assert "No buffer space" in failures[0][2]
