"""Every event the core emits is printable (describe) and JSON-ready (to_dict): the log and
``speaker run --json`` read nothing else."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import ClassVar

import pytest

from speaker.events import Event, EventBus
from speaker.rib import PeerInfo, Rib
from speaker.session import SessionConfig, SessionDown, SessionUp, StateChange
from speaker.sinks import CounterSink, JsonSink
from speaker.wire import IPV4_UNICAST
from speaker.wire.nlri import Prefix
from tests.sessiontesting import SessionPair, mirror


def _pair() -> SessionPair:
    a = SessionConfig(
        local_as=64512,
        router_id=IPv4Address("192.168.0.81"),
        peer_as=64512,
        peer_address=IPv4Address("192.168.0.80"),
    )
    return SessionPair(a, mirror(a, passive=True))


def test_session_and_route_events_serialise() -> None:
    pair = _pair()
    pair.start()
    pair.run_until(lambda: pair.a.negotiated is not None and pair.b.negotiated is not None)
    pair.a.send_end_of_rib(IPV4_UNICAST)
    pair.pump()
    pair.crash("b", peer_notices=True)
    pair.pump()
    rib = Rib(asn=64512, router_id="192.168.0.81")
    rib.add_peer(PeerInfo.mesh("192.168.0.80", 64512))
    events: list[Event] = [*pair.events["a"], *pair.events["b"], *rib.set_origins(["10.0.0.0/26"])]
    kinds = {type(e) for e in events}
    assert {StateChange, SessionUp, SessionDown} <= kinds
    for event in events:
        line = event.describe()
        assert line and "\n" not in line
        record = json.loads(json.dumps(event.to_dict()))
        assert record["event"] == event.KIND


def test_bus_feeds_json_and_counter_sinks() -> None:
    import io

    out = io.StringIO()
    bus = EventBus()
    counter = CounterSink()
    bus.subscribe(counter)
    unsubscribe = bus.subscribe(JsonSink(out))
    rib = Rib(asn=64512, router_id="192.168.0.81")
    for change in rib.set_origins(["10.0.0.0/26", "10.0.1.0/26"]):
        bus.publish(change)
    unsubscribe()
    for change in rib.set_origins([]):
        bus.publish(change)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["counter"] for line in lines] == [1, 2]
    assert counter.counts["route"] == 4


def test_bus_calls_sink_objects_through_their_bound_call_and_unsubscribes() -> None:
    got: list[tuple[str, Event]] = []

    class Sink:
        def __call__(self, event: Event) -> None:
            got.append(("sink", event))

    def plain(event: Event) -> None:
        got.append(("plain", event))

    bus = EventBus()
    sink = Sink()
    drop = bus.subscribe(sink)
    bus.subscribe(plain)
    assert bus._deliver[1] is plain and bus._deliver[0].__self__ is sink  # type: ignore[attr-defined]
    event = Event()
    bus.publish(event)
    drop()
    bus.publish(event)
    assert got == [("sink", event), ("plain", event), ("plain", event)]


def test_log_sink_levels_fixed_and_varying(caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import dataclass

    from speaker.sinks import LogSink

    @dataclass(frozen=True, slots=True)
    class Loud(Event):
        KIND = "loud"
        n: int = 0

        def level(self) -> int:
            return 30 if self.n else 10

    sink = LogSink()
    with caplog.at_level(logging.INFO, logger="speaker"):
        for event in (Loud(0), Loud(1), Event(), Loud(2)):
            sink(event)
    assert [(r.name, r.levelno) for r in caplog.records] == [
        ("speaker.loud", 30),
        ("speaker.event", 20),
        ("speaker.loud", 30),
    ]


def test_an_event_field_holding_a_prefix_serialises_as_its_text() -> None:
    """A Prefix is an int; an event's JSON and log line must still show the prefix."""

    @dataclass(frozen=True)
    class Seen(Event):
        KIND: ClassVar[str] = "seen"
        prefix: Prefix
        count: int
        flag: bool

    event = Seen(Prefix.parse("10.244.42.64/26"), 3, True)
    assert json.loads(json.dumps(event.to_dict())) == {
        "event": "seen",
        "prefix": "10.244.42.64/26",
        "count": 3,
        "flag": True,
    }
    assert "prefix=10.244.42.64/26" in event.describe()


def test_bus_routes_each_event_class_to_the_subscribers_that_want_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Debug-level events (three per UPDATE in a feed) skip the log at INFO and the history,
    without a call to each; plain subscribers and the counters get every event; a change of
    level takes effect at refresh()."""
    from speaker.history import EventHistory
    from speaker.sinks import LogSink

    @dataclass(frozen=True, slots=True)
    class Chatty(Event):
        KIND: ClassVar[str] = "chatty"
        LEVEL: ClassVar[int] = logging.DEBUG

    calls: list[str] = []

    class CountingLog(LogSink):
        def __call__(self, event: Event) -> None:
            calls.append(event.KIND)
            super().__call__(event)

    got: list[Event] = []
    counter = CounterSink()
    history = EventHistory()
    bus = EventBus()
    for subscriber in (counter, history, CountingLog(), got.append):
        bus.subscribe(subscriber)
    caplog.set_level(logging.INFO, logger="speaker")
    chatty, plain = Chatty(), Event()
    bus.publish(chatty)
    bus.publish(plain)
    assert calls == ["event"]  # the log sink never saw the debug-level event
    assert got == [chatty, plain] and counter.counts == {"chatty": 1, "event": 1}
    assert [e.kind for e in history.entries()] == ["event"]
    caplog.set_level(logging.DEBUG, logger="speaker")
    bus.publish(chatty)
    assert calls == ["event"]  # routes are kept until refresh()
    bus.refresh()
    bus.publish(chatty)
    assert calls == ["event", "chatty"]
    assert [r.name for r in caplog.records] == ["speaker.event", "speaker.chatty"]


def test_json_sink_with_a_minimum_level_is_not_given_the_events_below_it() -> None:
    import io

    @dataclass(frozen=True, slots=True)
    class Chatty(Event):
        KIND: ClassVar[str] = "chatty"
        LEVEL: ClassVar[int] = logging.DEBUG

    out = io.StringIO()
    assert not JsonSink(out, min_level=logging.INFO).wants(Chatty)
    assert JsonSink(out, min_level=logging.INFO).wants(Event)
    assert JsonSink(out).wants(Chatty)  # --json: every event
