"""Make etcd transactions on request inside a lab namespace, and say when (integration/lab/etcd.py
``TxnWriter``).

Reads one JSON request per line on stdin, ``{"put": {key: base64 value}, "delete": [key]}``,
makes it one transaction through the speaker's gateway client, and answers one line:
``{"sent": t, "done": t, "revision": r}`` (``time.monotonic()``: the same clock in every
namespace, so the caller in the root namespace can compare) or ``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from typing import Any

from speaker.datastore.gateway import EtcdError, Gateway


async def _one(gateway: Gateway, request: dict[str, Any]) -> dict[str, object]:
    put = {str(k): base64.b64decode(v) for k, v in (request.get("put") or {}).items()}
    delete = [str(k) for k in request.get("delete") or []]
    sent = time.monotonic()
    try:
        revision = await gateway.txn(put, delete)
    except EtcdError as exc:
        return {"error": str(exc)}
    return {"sent": sent, "done": time.monotonic(), "revision": revision}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for name in ("--endpoint", "--ca", "--cert", "--key"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    gateway = Gateway((args.endpoint,), ca_file=args.ca, cert_file=args.cert,
                      key_file=args.key, timeout=10.0)
    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        if line.strip():
            reply = loop.run_until_complete(_one(gateway, json.loads(line)))
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    loop.close()


if __name__ == "__main__":
    main()
