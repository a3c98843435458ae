"""The Prometheus sink counts what the event stream says."""

from __future__ import annotations

from prometheus_client import generate_latest

from speaker.metrics import MetricsSink
from speaker.session import MessageIn, MessageOut, SessionDown, State, StateChange
from speaker.session.state import DownReason
from speaker.wire.enums import MessageType


def _value(sink: MetricsSink, line_start: str) -> float:
    for line in generate_latest(sink.registry).decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starting with {line_start!r}")


def test_messages_and_state_are_counted() -> None:
    sink = MetricsSink()
    for _ in range(3):
        sink(
            MessageIn(
                peer="192.168.0.80",
                conn_id=1,
                type=MessageType.KEEPALIVE,
                length=19,
                summary="KEEPALIVE",
            )
        )
    sink(
        MessageOut(peer="192.168.0.80", conn_id=1, type=MessageType.OPEN, length=61, summary="OPEN")
    )
    sink(
        StateChange(
            peer="192.168.0.80",
            old=State.OPENCONFIRM,
            new=State.ESTABLISHED,
            cause="KEEPALIVE received",
        )
    )
    assert _value(sink, 'bgp_received_messages_total{peer="192.168.0.80",type="KEEPALIVE"}') == 3
    assert _value(sink, 'bgp_sent_messages_total{peer="192.168.0.80",type="OPEN"}') == 1
    established = 'bgp_peer_session_state{bgp_peer_session_state="Established",peer="192.168.0.80"}'
    assert _value(sink, established) == 1
    idle = 'bgp_peer_session_state{bgp_peer_session_state="Idle",peer="192.168.0.80"}'
    assert _value(sink, idle) == 0


def test_session_down_is_labelled_graceful_or_not() -> None:
    sink = MetricsSink()
    sink(
        SessionDown(
            peer="192.168.0.82",
            conn_id=1,
            reason=DownReason.HOLD_TIMER_EXPIRED,
            graceful=False,
            cause="hold timer expired",
        )
    )
    assert _value(sink, 'bgp_peer_session_down_total{graceful="false",peer="192.168.0.82"}') == 1
    assert _value(sink, 'bgp_peer_up{peer="192.168.0.82"}') == 0


def test_datastore_gauges_read_at_scrape_time() -> None:
    from prometheus_client import generate_latest

    from speaker.metrics import MetricsSink

    sink = MetricsSink()
    state = {"connected": True, "revision": 57}
    sink.watch_datastore(lambda: bool(state["connected"]), lambda: int(state["revision"]))
    text = generate_latest(sink.registry).decode()
    assert "speaker_datastore_connected 1.0" in text and "speaker_datastore_revision 57.0" in text
    state.update(connected=False, revision=58)
    text = generate_latest(sink.registry).decode()
    assert "speaker_datastore_connected 0.0" in text and "speaker_datastore_revision 58.0" in text
