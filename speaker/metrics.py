"""Prometheus metrics, read from the event stream like every other sink.

Names follow what dashboards built for GoBGP and bird_exporter expect (``bgp_`` prefix,
``_total`` only on counters; the FSM state as a prometheus-client ``Enum``).  The sink keeps
its own registry, so tests and several speakers in one process do not share state.  Served by
``speaker run --metrics-listen ADDR:PORT`` (prometheus-client's HTTP server thread only reads
the registry; the event loop alone writes it).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, start_http_server

from speaker.events import Event
from speaker.session import MessageIn, MessageOut, SessionDown, SessionUp, State, StateChange

_STATES = [s.value for s in State]


class MetricsSink:
    """Turns events into Prometheus counters and gauges."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "bgp_received_messages", "BGP messages received", ["peer", "type"], registry=r
        )
        self.sent = Counter("bgp_sent_messages", "BGP messages sent", ["peer", "type"], registry=r)
        self.state = Enum(
            "bgp_peer_session_state", "BGP FSM state", ["peer"], states=_STATES, registry=r
        )
        self.up = Gauge("bgp_peer_up", "1 while the session is Established", ["peer"], registry=r)
        self.downs = Counter(
            "bgp_peer_session_down",
            "Sessions that left Established",
            ["peer", "graceful"],
            registry=r,
        )
        self.routes = Counter(
            "bgp_route_changes", "Best-path or ECMP changes in the Loc-RIB", registry=r
        )
        self.kernel = Counter(
            "speaker_kernel_events", "Kernel bridge events by kind", ["kind"], registry=r
        )
        self.other = Counter("speaker_events", "Other events by kind", ["kind"], registry=r)

    def __call__(self, event: Event) -> None:
        if isinstance(event, MessageIn):
            self.received.labels(event.peer, event.type.name).inc()
        elif isinstance(event, MessageOut):
            self.sent.labels(event.peer, event.type.name).inc()
        elif isinstance(event, StateChange):
            self.state.labels(event.peer).state(event.new.value)
        elif isinstance(event, SessionUp):
            self.up.labels(event.peer).set(1)
        elif isinstance(event, SessionDown):
            self.up.labels(event.peer).set(0)
            self.downs.labels(event.peer, str(event.graceful).lower()).inc()
        elif event.KIND == "route":
            self.routes.inc()
        elif event.KIND == "kernel":
            self.kernel.labels(str(getattr(event, "kind", "?"))).inc()
        else:
            self.other.labels(event.KIND).inc()

    def watch_datastore(self, connected: Callable[[], bool], revision: Callable[[], int]) -> None:
        """Gauges read at scrape time: ``speaker_datastore_connected`` (0/1) and
        ``speaker_datastore_revision`` (the store revision our snapshot reflects)."""
        r = self.registry
        Gauge("speaker_datastore_connected", "1 while the datastore (etcd) is read and watched",
              registry=r).set_function(lambda: float(connected()))
        Gauge("speaker_datastore_revision", "The datastore revision the configuration reflects",
              registry=r).set_function(lambda: float(revision()))

    def serve(self, address: str, port: int) -> None:
        """Start the HTTP endpoint (``/metrics``) in prometheus-client's thread."""
        start_http_server(port, addr=address, registry=self.registry)
