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
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


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


class EventBus:
    """Fan-out of events to subscribers, synchronously, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers = (*self._subscribers, subscriber)
        return lambda: self._unsubscribe(subscriber)

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = list(self._subscribers)
        subscribers.remove(subscriber)
        self._subscribers = tuple(subscribers)

    def publish(self, event: Event) -> None:
        """Deliver an event to every subscriber (as subscribed when it was published)."""
        for subscriber in self._subscribers:
            subscriber(event)
