"""The hot path: 100,000 prefixes from one peer in 306 UPDATEs (BIRD's packing), then a second
announcer of every prefix (100,000 two-path selections), then withdrawal.  Figures are printed
(run with -s), never asserted."""

from __future__ import annotations

import ipaddress
import time

import pytest

from speaker.rib import AttributeSet, BestPathReason, PeerInfo, Rib
from speaker.wire import IPV4_UNICAST, Negotiated, decode_message
from speaker.wire.enums import Afi
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
N = 100_000
PER_UPDATE = 327  # BIRD 1.6.8 packs about 330 /26s with path ids per UPDATE: 306 UPDATEs
CTX = Negotiated(addpath_receive=frozenset({IPV4_UNICAST}), addpath_send=frozenset({IPV4_UNICAST}))


def feed(next_hop: str, count: int) -> list[Update]:
    """``count`` /26s of 10.0.0.0/8 with one attribute set, as decoded UPDATEs."""
    attrs = AttributeSet.build(next_hop=ipaddress.IPv4Address(next_hop), local_pref=100)
    nlri = [Nlri(Prefix(Afi.IPV4, (10 << 24) + (i << 6), 26), 4) for i in range(count)]
    out = []
    for i in range(0, count, PER_UPDATE):
        raw = Update(attributes=attrs.attributes, nlri=tuple(nlri[i : i + PER_UPDATE])).encode(CTX)
        msg = decode_message(raw, CTX)
        assert isinstance(msg, Update)
        out.append(msg)
    return out


def run(count: int) -> dict[str, float]:
    a80 = PeerInfo.mesh("192.168.0.80", ASN)
    a82 = PeerInfo.mesh("192.168.0.82", ASN)
    rib = Rib(asn=ASN, router_id="192.168.0.81")
    rib.add_peer(a80)
    rib.add_peer(a82)
    rib.add_out_peer(a82, CTX, local_address="192.168.0.81")
    rib.initial_feed(a82)
    first, second = feed("192.168.0.80", count), feed("192.168.0.82", count)
    figures: dict[str, float] = {"updates": len(first)}

    t = time.perf_counter()
    changes = [c for u in first for c in rib.apply_update(a80, u)]
    figures["announce"] = time.perf_counter() - t
    assert len(changes) == count == len(rib)
    assert {c.reason for c in changes} == {BestPathReason.ONLY_PATH}

    t = time.perf_counter()
    changes = [c for u in second for c in rib.apply_update(a82, u)]
    figures["second path"] = time.perf_counter() - t
    assert len(changes) == count  # every ECMP set grew
    assert {c.reason for c in changes} == {BestPathReason.ROUTER_ID}
    assert all(len(c.new_ecmp) == 2 and c.new_best is c.old_best for c in changes)
    assert rib.flush(a82) == []  # mesh routes are not sent to a mesh peer

    t = time.perf_counter()
    changes = rib.mark_stale(a80)
    figures["mark stale"] = time.perf_counter() - t
    assert len(changes) == count
    assert all(c.new_best is not None and c.new_best.peer is a82 for c in changes)

    t = time.perf_counter()
    changes = rib.sweep_stale(a80)
    figures["sweep"] = time.perf_counter() - t
    assert changes == []  # the fresh path was already best and alone in the ECMP set
    assert rib.count().paths == count

    t = time.perf_counter()
    changes = rib.drop_peer(a82)
    figures["withdraw all"] = time.perf_counter() - t
    assert len(changes) == count and all(c.withdrawn for c in changes)
    assert len(rib) == 0
    return figures


@pytest.mark.slow
def test_100k_prefixes_announce_select_and_withdraw() -> None:
    small = run(N // 4)
    big = run(N)
    assert big["updates"] == 306
    print()
    for key in ("announce", "second path", "mark stale", "sweep", "withdraw all"):
        per = big[key] / N * 1e6
        ratio = big[key] / max(small[key], 1e-9)
        print(f"{key:>13}: {big[key]:.3f} s for {N} prefixes ({per:.1f} us each), "
              f"x{ratio:.1f} the time of {N // 4}")  # fmt: skip
