"""Run the speaker's EtcdSource inside a lab namespace; print what it derives as JSON lines.

One ``{"config": {...}}`` line per yielded Config (peers, blocks, router id) and one
``{"status": {...}}`` line whenever the source's status changes, so a test in the root
namespace can follow the watcher through a file without any connection into the lab.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from speaker.config import Config, DatastoreConfig
from speaker.datastore.etcd import EtcdSource


def _emit(doc: object) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def _view(config: Config) -> dict[str, object]:
    return {"router_id": str(config.router_id), "asn": config.asn,
            "peers": {p.name: {"address": str(p.address), "passive": p.passive}
                      for p in config.peers},
            "blocks": [str(b) for b in config.originate.blocks]}


async def _main(args: argparse.Namespace) -> None:
    settings = DatastoreConfig("etcdv3", (args.endpoint,), args.node_name, ca_file=args.ca,
                               cert_file=args.cert, key_file=args.key)
    source = EtcdSource(settings, backoff=(0.2, 1.0))

    async def report_status() -> None:
        last: dict[str, object] = {}
        while True:
            now = source.status.to_dict()
            now.pop("last_change")
            if now != last:
                _emit({"status": now})
                last = now
            await asyncio.sleep(0.05)

    task = asyncio.create_task(report_status())
    try:
        async for config in source.configs():
            _emit({"config": _view(config)})
    finally:
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--endpoint", "--ca", "--cert", "--key", "--node-name"):
        parser.add_argument(name, required=True)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
