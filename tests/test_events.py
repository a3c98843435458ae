"""Every event the core emits is printable (describe) and JSON-ready (to_dict): the log and
``speaker run --json`` read nothing else."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from speaker.events import Event, EventBus
from speaker.rib import PeerInfo, Rib
from speaker.session import SessionConfig, SessionDown, SessionUp, StateChange
from speaker.sinks import CounterSink, JsonSink
from speaker.wire import IPV4_UNICAST
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
