"""What ``speaker run`` loads before the daemon's own modules: asyncio without TLS when
nothing in the configuration can ever use it.

asyncio imports :mod:`ssl` unconditionally (``base_events``, ``selector_events`` and
``sslproto`` each ``try: import ssl``), and :mod:`ssl` maps libssl and libcrypto: about 4.5
MiB of the daemon's 27 MiB at start (issue #12 asks for under 25), for a daemon whose BGP
sessions, control socket and netlink sockets never use TLS.  Only the etcd datastore does
(``[datastore]`` with ``https://`` endpoints, through ``asyncio.open_connection(ssl=...)``),
and a ``[datastore]`` section cannot be added by a reload (the daemon refuses that and asks
for a restart).  So when the configuration at start has no ``[datastore]``, asyncio is
imported as on a Python built without ssl -- a mode asyncio supports -- and :mod:`ssl`
itself stays importable for anyone else (``prometheus_client``, say).
"""

from __future__ import annotations

import sys


def import_asyncio(*, tls: bool) -> bool:
    """Import asyncio, with its TLS support only if ``tls``; returns whether asyncio has it.

    Does nothing but report when asyncio is already imported (tests, embedding programs)."""
    if "asyncio" in sys.modules or tls or "ssl" in sys.modules:
        import asyncio.sslproto

        return getattr(asyncio.sslproto, "ssl", None) is not None
    sys.modules["ssl"] = None  # type: ignore[assignment]  # "import ssl" raises ImportError
    try:
        import asyncio
    finally:
        del sys.modules["ssl"]
    return False
