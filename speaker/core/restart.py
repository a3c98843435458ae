"""Graceful restart (RFC 4724), the restarting side: our own recovery after a restart.

The speaker is *restarting* when started with ``--graceful-restart`` or when it finds routes
of its own protocol in the kernel (a crash, a planned restart, ``kill -9``: the forwarding
state survived).  While recovering it sends OPENs with the Restart State and Forwarding
flags, defers its own announcements and the kernel sweep until every graceful-restart-capable
peer has sent End-of-RIB or ``graceful_restart_wait`` passes (BIRD's ``graceful restart
wait``), then sends its routes and End-of-RIB.  From then on OPENs carry neither flag (as
BIRD): a later session flap is not a restart.

The helper side (keeping a restarting *peer's* routes stale) is the session's restart timer
(:mod:`speaker.session.core`) and the RIB's ``mark_stale``/``sweep_stale``.  See
docs/graceful-restart.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Recovery:
    """The restarting side's state: active from start-up until End-of-RIB or the wait."""

    wait: float
    deadline: float | None = None

    @property
    def active(self) -> bool:
        return self.deadline is not None

    def begin(self, now: float) -> None:
        self.deadline = now + self.wait

    def end(self) -> bool:
        """Stop recovering; False if it was not active."""
        was = self.deadline is not None
        self.deadline = None
        return was

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def left(self, now: float) -> int:
        return 0 if self.deadline is None else max(0, int(self.deadline - now))


def restart_cause(requested: bool, adopted: int, protocol: int | str) -> str | None:
    """Why we are restarting (None: a cold start)."""
    if requested:
        return "started with --graceful-restart"
    if adopted:
        return f"{adopted} routes of protocol {protocol} survived in the kernel"
    return None
