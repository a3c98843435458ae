"""Timer jitter (RFC 4271 section 10), injected into the session so tests stay deterministic.

RFC 4271 10: "jitter SHOULD be applied to the timers associated with MinASOriginationInterval,
Keepalive, MinRouteAdvertisementInterval, and ConnectRetry", by "multiplying the base value of
the appropriate timer by a random factor, which is uniformly distributed in the range from 0.75
to 1.0", with "a new random value ... picked each time the timer is set".

BIRD 1.6 does the same in whole seconds: ``bgp_start_timer`` sets ``randomize = value / 4``
and starts the timer at ``value - randomize``; ``tm_start`` adds ``random() % (randomize + 1)``.
So a connect retry of 5 s fires after 4 or 5 s and a keepalive of 80 s after 60..80 s; a value
of 2 s (Calico's connect delay) gets ``randomize = 0``.  In the lab (integration/bench/mesh.py)
BIRD's first connects came 2.0 s after its start; ours come after 1.5..2.0 s plus our start-up.

A session takes a :data:`Jitter` (a function from a base value to the value to use); the core
gives each session :func:`rfc4271_jitter` over one ``random.Random``.  :func:`no_jitter` keeps
the base value (the session's default, for unit tests that count exact seconds).
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["JITTER_HIGH", "JITTER_LOW", "Jitter", "no_jitter", "rfc4271_jitter"]

JITTER_LOW = 0.75
JITTER_HIGH = 1.0

Jitter = Callable[[float], float]
"""Base timer value (seconds) -> the value to set the timer to this time."""


def no_jitter(value: float) -> float:
    """The base value itself."""
    return value


def rfc4271_jitter(rng: random.Random | None = None) -> Jitter:
    """Multiply by a factor drawn uniformly from [0.75, 1.0] on each call (RFC 4271 10).

    ``rng`` is the source of randomness (a seeded ``random.Random`` in tests); None: a new
    ``random.Random()`` seeded from the system.
    """
    source = rng if rng is not None else random.Random()
    uniform = source.uniform

    def jitter(value: float) -> float:
        return value * uniform(JITTER_LOW, JITTER_HIGH)

    return jitter
