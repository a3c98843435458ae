"""The mesh from Calico's datastore (etcd v3): read, derive a Config, watch for changes.

model (keys to records), selector (label selectors), derive (pure: snapshot to Config),
etcd (the asyncio watcher at the edge).  docs/datastore.md has the key-by-key mapping.
"""
