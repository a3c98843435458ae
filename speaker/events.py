"""The one typed event stream out of the core.

Session state changes (with their cause), messages in and out, route decisions (with their
reason) and kernel changes are all :class:`Event` values.  Logs, ``--json`` output, traces and
metrics are subscribers of one :class:`EventBus`; none of them reaches into the core.  Modules
define their own event classes (frozen dataclasses subclassing :class:`Event`) next to the code
that produces them; ``describe()`` is the human line and ``to_dict()`` the JSON object.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(
        value,
        (
            ipaddress.IPv4Address,
            ipaddress.IPv6Address,
            ipaddress.IPv4Network,
            ipaddress.IPv6Network,
        ),
    ):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, float, bool)) or value is None or type(value) is int:
        return value
    return str(value)  # and an int subclass (a Prefix: its text, not its int value)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: ``KIND`` names it in logs and JSON; ``peer`` says whose it is."""

    KIND: ClassVar[str] = "event"
    LEVEL: ClassVar[int] = 20  # logging.INFO; chatty events override with DEBUG (10)

    def level(self) -> int:
        """The logging level of this event (``LEVEL`` unless an event kind varies it)."""
        return self.LEVEL

    def describe(self) -> str:
        """One human-readable line (the log message)."""
        fields = ", ".join(
            f"{f.name}={_jsonable(getattr(self, f.name))}" for f in dataclasses.fields(self)
        )
        return f"{self.KIND}: {fields}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"event": KIND, ...fields}``."""
        out: dict[str, Any] = {"event": self.KIND}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


Subscriber = Callable[[Event], None]


def _direct(subscriber: Subscriber) -> Subscriber:
    """What to call to deliver to ``subscriber``: a sink object's own ``__call__`` method.

    Calling an instance goes through its type's call slot to find that method each time; the
    bound method is found once (a route feed publishes some 300,000 events to three sinks)."""
    call = next(
        (c.__dict__["__call__"] for c in type(subscriber).__mro__ if "__call__" in c.__dict__), None
    )
    if isinstance(call, types.FunctionType):
        bound: Subscriber = types.MethodType(call, subscriber)
        return bound
    return subscriber


class EventBus:
    """Fan-out of events to subscribers, synchronously, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._deliver: tuple[Subscriber, ...] = ()
        # event class -> the deliverers of the subscribers that want it (see _route)
        self._routes: dict[type[Event], tuple[Subscriber, ...]] = {}

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._set((*self._subscribers, subscriber))
        return lambda: self._unsubscribe(subscriber)

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = list(self._subscribers)
        subscribers.remove(subscriber)
        self._set(tuple(subscribers))

    def _set(self, subscribers: tuple[Subscriber, ...]) -> None:
        self._subscribers = subscribers
        self._deliver = tuple(map(_direct, subscribers))
        self._routes = {}

    def refresh(self) -> None:
        """Ask the subscribers again which event classes they want (after a change of what
        they want: a log level set after the first events)."""
        self._routes = {}

    def publish(self, event: Event) -> None:
        """Deliver an event to every subscriber that wants its class (as subscribed when it
        was published)."""
        route = self._routes.get(type(event))
        if route is None:
            route = self._route(type(event))
        for deliver in route:
            deliver(event)

    def _route(self, cls: type[Event]) -> tuple[Subscriber, ...]:
        """The subscribers of an event class, asked once: three events per UPDATE of a feed
        are debug-level, and the log and the history would each take a call to drop them."""
        route = tuple(
            deliver
            for subscriber, deliver in zip(self._subscribers, self._deliver, strict=True)
            if _wants(subscriber, cls)
        )
        self._routes[cls] = route
        return route


def _wants(subscriber: Subscriber, cls: type[Event]) -> bool:
    """Whether ``subscriber`` takes events of ``cls``: its ``wants(cls)`` if it has one (a
    subscriber that filters by level), else every event."""
    wants = getattr(subscriber, "wants", None)
    return True if wants is None else bool(wants(cls))


def fixed_level(cls: type[Event]) -> int | None:
    """The logging level of every event of ``cls``, or None when its events vary it."""
    return cls.LEVEL if cls.level is Event.level else None
