"""RFC 4271 10 jitter on connect delay, connect retry and keepalive, with injected randomness."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest

from speaker.session import (
    ConnectRequest,
    PeerSession,
    SessionConfig,
    State,
    no_jitter,
    rfc4271_jitter,
)
from tests.sessiontesting import drain, handshake

A80 = IPv4Address("192.168.0.80")


def cfg(peer: int = 81, **kw: object) -> SessionConfig:
    base: dict[str, object] = {
        "local_as": 64512,
        "router_id": A80,
        "peer_as": 64512,
        "peer_address": IPv4Address(f"192.168.0.{peer}"),
    }
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def test_factor_is_uniform_in_three_quarters_to_one() -> None:
    jitter = rfc4271_jitter(random.Random(7))
    values = [jitter(2.0) for _ in range(2000)]
    assert all(1.5 <= v <= 2.0 for v in values)
    assert min(values) < 1.55 and max(values) > 1.95  # the whole range is used
    assert len(set(values)) == len(values)  # a new factor each time the timer is set


def test_same_seed_same_values() -> None:
    a, b = rfc4271_jitter(random.Random(1)), rfc4271_jitter(random.Random(1))
    assert [a(5.0) for _ in range(5)] == [b(5.0) for _ in range(5)]
    assert no_jitter(5.0) == 5.0


def test_connect_delay_is_jittered_and_differs_between_sessions() -> None:
    jitter = rfc4271_jitter(random.Random(42))
    sessions = [PeerSession(cfg(peer), jitter=jitter) for peer in range(81, 121)]
    for s in sessions:
        s.start(10.0)
    delays = [s.get_timer() - 10.0 for s in sessions]  # type: ignore[operator]
    assert all(1.5 <= d <= 2.0 for d in delays)
    assert len(set(delays)) == len(delays)
    # and the session dials exactly at its own deadline, not at the base value
    s, d = sessions[0], delays[0]
    s.handle_timer(10.0 + d - 0.001)
    assert not [e for e in drain(s) if isinstance(e, ConnectRequest)]
    s.handle_timer(10.0 + d)
    assert [e for e in drain(s) if isinstance(e, ConnectRequest)]


def test_without_jitter_the_delay_is_exact() -> None:
    s = PeerSession(cfg())
    s.start(0.0)
    assert s.get_timer() == pytest.approx(2.0)


def test_connect_retry_is_jittered_after_a_failure() -> None:
    s = PeerSession(cfg(connect_delay=0), jitter=rfc4271_jitter(random.Random(3)))
    s.start(0.0)
    (conn,) = s.connections()
    timeout = s.get_timer()  # the attempt's connect timeout: ConnectRetryTime, jittered
    assert timeout is not None and 3.75 <= timeout <= 5.0
    s.connection_failed(conn, 1.0, "refused")
    assert s.state is State.ACTIVE
    retry = s.get_timer()
    assert retry is not None and 1.0 + 3.75 <= retry <= 1.0 + 5.0 and retry != 1.0 + timeout


def test_keepalive_timer_is_jittered_each_time() -> None:
    s = PeerSession(cfg(connect_delay=0), jitter=rfc4271_jitter(random.Random(9)))
    conn = handshake(s)
    s.data_to_send(conn)
    drain(s)
    assert s.state is State.ESTABLISHED
    now = 0.0
    gaps = []
    for _ in range(5):
        nxt = s.get_timer()
        assert nxt is not None
        gaps.append(nxt - now)
        now = nxt
        s.handle_timer(now)
        s.data_to_send(conn)
        s.receive_data(conn, bytes.fromhex("ff" * 16 + "001304"), now)  # peer's KEEPALIVE
    assert all(60.0 <= g <= 80.0 for g in gaps)  # keepalive 80 s (hold 240 / 3)
    assert len(set(gaps)) == len(gaps)
