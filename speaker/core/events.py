"""Events of the speaker core itself, outside any one session."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from speaker.events import Event


@dataclass(frozen=True, slots=True)
class DaemonEvent(Event):
    """Something the speaker did or saw, outside any one session."""

    KIND: ClassVar[str] = "daemon"
    what: str

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True, slots=True)
class ConnectionRefused(Event):
    """A TCP connection to port 179 from an address that is not a configured peer."""

    KIND: ClassVar[str] = "refused"
    LEVEL: ClassVar[int] = logging.WARNING
    address: str
    port: int

    def describe(self) -> str:
        return (
            f"connection from {self.address}:{self.port} refused: not a configured peer "
            "(closed at once, no state created)"
        )


@dataclass(frozen=True, slots=True)
class RefusalsSuppressed(Event):
    """How many refusals were not logged one by one (a flood of connection attempts)."""

    KIND: ClassVar[str] = "refused-summary"
    LEVEL: ClassVar[int] = logging.WARNING
    count: int
    sources: int
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.count} more connections from {self.sources} unconfigured sources refused "
            f"in the last {self.seconds:.0f} s (not logged one by one)"
        )


@dataclass(frozen=True, slots=True)
class RecoveryEvent(Event):
    """Graceful-restart recovery of our own restart began or ended (RFC 4724 4.1)."""

    KIND: ClassVar[str] = "recovery"
    active: bool
    cause: str

    def describe(self) -> str:
        state = "started" if self.active else "ended"
        return f"graceful restart recovery {state}: {self.cause} (RFC 4724 4.1)"


@dataclass(frozen=True, slots=True)
class ImportRefused(Event):
    """The import guard kept a peer's route out of the kernel (docs/security.md).

    The route stays in the RIB (``show route all`` shows it "not installed" with the rule),
    the session stays up: a peer's mistake costs that route, not the node's connectivity."""

    KIND: ClassVar[str] = "import-guard"
    LEVEL: ClassVar[int] = logging.WARNING
    prefix: str
    peer: str
    rule: str
    """The guard's rule, as ``KernelDecision.describe()`` words it."""

    def describe(self) -> str:
        return f"{self.prefix} from {self.peer} not installed in the kernel: {self.rule}"
