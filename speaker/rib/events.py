"""The RIB's events: every change of a prefix's best path or ECMP set, with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from speaker.events import Event
from speaker.rib.decision import DEFAULT_POLICY, BestPathReason, SelectionPolicy, explain_step
from speaker.rib.path import Path
from speaker.wire.nlri import Prefix


@dataclass(frozen=True, slots=True, init=False)
class RouteChange(Event):
    """A prefix's best path or ECMP set changed (what the kernel and the peers must follow).

    ``reason`` is the selection step that picked ``new_best`` over ``runner_up`` (see
    :mod:`speaker.rib.decision`); :attr:`detail` says it in words ("lower MED 10 < 50").
    """

    KIND: ClassVar[str] = "route"
    LEVEL: ClassVar[int] = 10  # one per prefix: a full feed is 100,000 of them

    prefix: Prefix
    old_best: Path | None
    new_best: Path | None
    old_ecmp: tuple[Path, ...]
    new_ecmp: tuple[Path, ...]
    reason: BestPathReason
    runner_up: Path | None = None
    policy: SelectionPolicy = field(default=DEFAULT_POLICY, compare=False, repr=False)

    def __init__(
        self,
        prefix: Prefix,
        old_best: Path | None,
        new_best: Path | None,
        old_ecmp: tuple[Path, ...],
        new_ecmp: tuple[Path, ...],
        reason: BestPathReason,
        runner_up: Path | None = None,
        policy: SelectionPolicy = DEFAULT_POLICY,
    ) -> None:
        # the slots set directly: a frozen dataclass's own __init__ goes through
        # object.__setattr__ per field, twice the cost (one change per prefix: a feed, a
        # peer's withdrawal, is 100,000 of them)
        _set_prefix(self, prefix)
        _set_old_best(self, old_best)
        _set_new_best(self, new_best)
        _set_old_ecmp(self, old_ecmp)
        _set_new_ecmp(self, new_ecmp)
        _set_reason(self, reason)
        _set_runner_up(self, runner_up)
        _set_policy(self, policy)

    @property
    def detail(self) -> str:
        """The deciding comparison in words (built on request)."""
        return explain_step(self.reason, self.new_best, self.runner_up, self.policy)

    @property
    def withdrawn(self) -> bool:
        """True when the prefix has no path left."""
        return self.new_best is None

    def describe(self) -> str:
        """e.g. ``10.244.152.128/26: best via 192.168.0.80 (only path)``."""
        best = self.new_best
        if best is None:
            was = "" if self.old_best is None else f" (was via {self.old_best.via})"
            return f"{self.prefix}: unreachable, no path left{was}"
        stale = " (stale)" if best.stale else ""
        if self.reason is BestPathReason.ONLY_PATH:
            text = f"{self.prefix}: best via {best.via}{_source(best)}{stale} (only path)"
        else:
            text = (
                f"{self.prefix}: path from {best.peer}{stale} wins on {self.detail} "
                f"({self.reason.rule})"
            )
        if len(self.new_ecmp) > 1:
            text += "; ECMP via " + ", ".join(p.via for p in self.new_ecmp)
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: paths as dicts, the reason by name."""
        return {
            "event": self.KIND,
            "prefix": str(self.prefix),
            "old_best": None if self.old_best is None else self.old_best.to_dict(),
            "new_best": None if self.new_best is None else self.new_best.to_dict(),
            "old_ecmp": [p.via for p in self.old_ecmp],
            "new_ecmp": [p.via for p in self.new_ecmp],
            "reason": self.reason.name,
            "rule": self.reason.rule,
            "detail": self.detail,
            "runner_up": None if self.runner_up is None else self.runner_up.to_dict(),
        }


# RouteChange's slot descriptors' setters, in field order (see RouteChange.__init__)
(_set_prefix, _set_old_best, _set_new_best, _set_old_ecmp, _set_new_ecmp, _set_reason,
 _set_runner_up, _set_policy) = [getattr(RouteChange, f.name).__set__ for f in fields(RouteChange)]


def _source(path: Path) -> str:
    return "" if path.peer.address is not None else f" [{path.peer.name}]"
