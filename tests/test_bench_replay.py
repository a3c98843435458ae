"""integration/bench/replay.py's withdrawal: the UPDATEs it makes are BIRD's on ``disable
feed`` (every route of the peer withdrawn with its path id, UPDATEs of at most 4,096 bytes),
and feeding them empties the RIB and the (fake) kernel."""

from __future__ import annotations

from integration.bench.replay import (
    CONFIG,
    run_feed,
    run_withdraw,
    sender_stream,
    withdrawal_stream,
)
from speaker.config import parse_config
from speaker.wire import Update
from speaker.wire.context import IPV4_UNICAST, Negotiated
from speaker.wire.messages import decode_message, split_messages


def test_withdrawal_stream_withdraws_every_route_in_full_sized_updates() -> None:
    config = parse_config(CONFIG)
    segments = sender_stream("packed")[:12]  # the OPEN, then some 3,000 routes
    core, kernel, peer, conn, _ = run_feed(config, segments)
    held = {(p.prefix, p.path_id) for p in core.rib.adj_in(peer)}
    assert len(held) > 1000 and kernel.installed() > 1000
    stream = withdrawal_stream(core, peer)
    assert all(len(piece) <= 4096 for piece in stream)
    ctx = Negotiated(addpath_receive=frozenset({IPV4_UNICAST}))
    raws = [raw for _, raw in split_messages(b"".join(stream), ctx)]
    assert sum(map(len, raws)) == sum(map(len, stream))  # whole messages, nothing left over
    assert all(len(raw) <= 4096 for raw in raws)
    updates = [decode_message(raw, ctx) for raw in raws]
    withdrawn = []
    for update in updates:
        assert isinstance(update, Update) and not update.nlri and not update.attributes
        withdrawn += [(n.prefix, n.path_id) for n in update.withdrawn]
    assert len(withdrawn) == len(held) and set(withdrawn) == held
    assert len(updates) == -(-len(held) * 9 // (4096 - 23))  # full UPDATEs but the last
    run_withdraw(core, kernel, peer, conn, stream)
    assert len(core.rib.adj_in(peer)) == 0 and len(core.rib) == 1  # our own block is left
    assert kernel.installed() == 1
