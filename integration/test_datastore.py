"""Issue 15, the mesh from Calico's datastore: a real etcd 3.4 (TLS) in a lab namespace.

etcd runs in node80's namespace on 192.168.0.80:2379, seeded as libcalico-go writes the
seed cluster (three nodes, the pool, the blocks); the speaker's watcher (EtcdSource) runs in
node81's namespace, as .81's speaker would, and prints what it derives.  Checked: the seed
gives .81's mesh; a node registered, deleted, a block moved, all within a second; etcd
stopped (the last config stays, status disconnected) and restarted with changes made
meanwhile; history compacted past the watcher's revision while it was away: a full re-read,
no missed change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integration.conftest import LabFactory
from integration.lab import Lab, wait_until
from integration.lab.etcd import EtcdServer, Watcher
from speaker.datastore import resources as r

SEED_PEERS = {"Mesh_192_168_0_80": {"address": "192.168.0.80", "passive": False},
              "Mesh_192_168_0_82": {"address": "192.168.0.82", "passive": True}}
FAST = 1.0
"""A change in etcd must reach the derived config within this many seconds."""


@pytest.fixture
def cluster(lab: LabFactory) -> Iterator[tuple[Lab, EtcdServer, Watcher]]:
    """The seed lab's namespaces (daemons not started), etcd seeded, the watcher on .81."""
    the_lab = lab("bird,speaker,bird", start_daemons=False)
    etcd = EtcdServer(the_lab, "node80")
    etcd.start()
    etcd.put_all(r.seed_snapshot())
    watcher = Watcher(the_lab, "node81", etcd, "node81")
    try:
        yield the_lab, etcd, watcher
    finally:
        watcher.stop()
        etcd.stop()


def latest(watcher: Watcher) -> dict[str, Any]:
    configs = watcher.configs()
    return configs[-1] if configs else {}


def wait_config(watcher: Watcher, check: Callable[[dict[str, Any]], bool],
                timeout: float) -> dict[str, Any]:
    found = wait_until(lambda: check(latest(watcher)), timeout, interval=0.02)
    assert found, (f"derived config not as expected after {timeout} s: {latest(watcher)}; "
                   f"status {watcher.status()}")
    return latest(watcher)


def test_watcher_derives_seed_then_follows_nodes_and_blocks(
        cluster: tuple[Lab, EtcdServer, Watcher]) -> None:
    _, etcd, watcher = cluster
    config = wait_config(watcher, lambda c: bool(c), 15.0)
    assert config == {"router_id": "192.168.0.81", "asn": 64512, "peers": SEED_PEERS,
                      "blocks": ["10.244.42.64/26"]}
    assert wait_until(lambda: watcher.status().get("connected") is True, 2.0, interval=0.02)

    etcd.put_all(dict([r.node("node9", "192.168.0.9"), r.affinity("node9", "10.244.9.0/26")]))
    config = wait_config(watcher, lambda c: "Mesh_192_168_0_9" in c["peers"], FAST)
    assert config["peers"]["Mesh_192_168_0_9"] == {"address": "192.168.0.9", "passive": True}

    etcd.delete(r.node("node80", None)[0])
    config = wait_config(watcher, lambda c: "Mesh_192_168_0_80" not in c["peers"], FAST)
    assert set(config["peers"]) == {"Mesh_192_168_0_82", "Mesh_192_168_0_9"}

    etcd.delete(r.affinity("node82", "10.244.103.64/26")[0])
    etcd.put_all(dict([r.affinity("node81", "10.244.103.64/26")]))
    wait_config(watcher, lambda c: c["blocks"] == ["10.244.42.64/26", "10.244.103.64/26"],
                FAST)
    etcd.put_all(dict([r.affinity("node81", "10.244.44.0/26", "pending")]))
    revision = etcd.revision()
    assert wait_until(lambda: watcher.status().get("revision") == revision, FAST, interval=0.02)
    assert latest(watcher)["blocks"] == ["10.244.42.64/26", "10.244.103.64/26"]


def test_etcd_restart_keeps_last_config_and_compaction_forces_a_full_reread(
        cluster: tuple[Lab, EtcdServer, Watcher]) -> None:
    _, etcd, watcher = cluster
    wait_config(watcher, lambda c: c.get("peers") == SEED_PEERS, 15.0)
    assert wait_until(lambda: watcher.status().get("connected") is True, 2.0, interval=0.02)
    seen_revision = watcher.status()["revision"]
    configs_before = len(watcher.configs())

    etcd.stop()
    assert wait_until(lambda: watcher.status().get("connected") is False
                      and watcher.status().get("last_error"), 5.0, interval=0.05)
    assert str(watcher.status()["last_error"]).startswith(etcd.endpoint)  # names etcd
    assert len(watcher.configs()) == configs_before  # the last config stays in force

    # Changes while the watcher is away, then history compacted past what it has seen:
    # a watch from seen_revision + 1 is impossible, only a full re-read is right.
    # etcd is started without the watcher being able to finish a read in between: the
    # watcher's namespace loses its route to etcd while we write.
    the_lab = cluster[0]
    the_lab.exec("node81", ["ip", "link", "set", "eth0", "down"])
    etcd.start()
    etcd.put_all(dict([r.node("node7", "192.168.0.7")]))
    etcd.delete(r.node("node82", None)[0])
    etcd.put_all(dict([r.affinity("node81", "10.244.45.0/26")]))
    revision = etcd.revision()
    etcd.compact(revision)
    assert revision > seen_revision + 2
    the_lab.exec("node81", ["ip", "link", "set", "eth0", "up"])

    config = wait_config(watcher, lambda c: "Mesh_192_168_0_7" in c["peers"], 15.0)
    assert set(config["peers"]) == {"Mesh_192_168_0_80", "Mesh_192_168_0_7"}
    assert config["blocks"] == ["10.244.42.64/26", "10.244.45.0/26"]
    assert wait_until(lambda: watcher.status().get("connected") is True, 5.0, interval=0.05)
    assert watcher.status()["reads"] >= 2

    # And a compaction under a live watch changes nothing: the watch goes on.
    reads = watcher.status()["reads"]
    etcd.put_all(dict([r.node("node6", "192.168.0.6")]))
    etcd.compact(etcd.revision())
    etcd.put_all(dict([r.node("node5", "192.168.0.5")]))
    wait_config(watcher, lambda c: "Mesh_192_168_0_5" in c["peers"], FAST)
    assert watcher.status()["reads"] == reads
    assert "Mesh_192_168_0_6" in latest(watcher)["peers"]
