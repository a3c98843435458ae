"""A lab driven by Calico's etcd: what ``lab_up --datastore etcd``, the datastore benchmark and
the datastore mesh test share.

etcd (integration/lab/etcd.py: Debian's etcd 3.4, TLS, in a node's namespace on its address,
data in the run folder) is seeded with the lab's nodes, pool and blocks as Calico writes them
(``speaker.datastore.resources``); each BIRD node gets the bird.cfg rendered from those keys
(integration/lab/etcd_bird.py) and, where asked, a confd process that keeps it in step
(integration/lab/etcd_confd.py); each speaker node gets a TOML with ``[datastore]`` only.
Everything started here is stopped by its PID (``EtcdLab.stop``), before the lab's own
teardown removes the namespaces and the run folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from integration.lab.core import Lab
from integration.lab.etcd import EtcdServer
from integration.lab.etcd_bird import (
    EtcdBirdRenderer,
    read_keys,
    render_speaker_datastore_config,
)
from integration.lab.etcd_confd import Confd
from integration.lab.spec import NodeSpec
from speaker.datastore import resources

__all__ = ["EtcdLab", "seed_keys", "start_daemons"]


def seed_keys(nodes: Sequence[NodeSpec], pool: str) -> dict[str, bytes]:
    """The lab's nodes, pool and confirmed blocks as Calico stores them (the BGP
    configuration ``default`` too): what etcd holds in a lab driven by it."""
    return resources.seed_snapshot(tuple((n.name, n.address, n.block) for n in nodes), pool)


def start_daemons(lab: Lab, etcd: EtcdServer, renderer: EtcdBirdRenderer,
                  nodes: Sequence[NodeSpec] | None = None) -> list[str]:
    """Start each of ``nodes`` (default all) that etcd knows, from etcd: BIRD with the
    bird.cfg rendered from the keys, the speaker with ``[datastore]`` only.  A node etcd has
    no BGP address for is left alone (it has not registered).  Returns the names started."""
    keys = read_keys(etcd)
    started = []
    for node in lab.nodes if nodes is None else nodes:
        if node.name not in keys.nodes:
            continue
        if node.kind == "bird":
            renderer.write(node, keys)
            lab.start_bird(node)
        else:
            lab.config_path(node).write_text(render_speaker_datastore_config(lab, node, etcd))
            lab.start_speaker(node)
        started.append(node.name)
    return started


class EtcdLab:
    """etcd, the confd processes and the daemons of a lab driven by etcd."""

    def __init__(self, lab: Lab, etcd: EtcdServer) -> None:
        self.lab = lab
        self.etcd = etcd
        self.renderer = EtcdBirdRenderer(lab, etcd)
        self.confds = {n.name: Confd(lab, n.name, etcd) for n in lab.bird_nodes()}
        """Every BIRD node's confd (running or not: ``Confd.pid``)."""

    @classmethod
    def start(cls, lab: Lab, *, etcd_node: str | None = None,
              keys: Mapping[str, bytes] | None = None, confd: bool | Sequence[str] = True,
              ) -> EtcdLab:
        """etcd in ``etcd_node``'s namespace (default the first node), seeded with ``keys``
        (default ``seed_keys`` of the lab), the daemons of the nodes it knows, and a confd
        for each BIRD node started (``confd``: True, False or the node names).  On failure
        what was started is stopped again."""
        etcd = EtcdServer(lab, etcd_node or lab.nodes[0].name)
        etcd.start()
        self = cls(lab, etcd)
        try:
            etcd.put_all(seed_keys(lab.nodes, lab.pool) if keys is None else keys)
            started = start_daemons(lab, etcd, self.renderer)
            for name, process in self.confds.items():
                wanted = confd if isinstance(confd, bool) else name in confd
                if wanted and name in started:
                    process.start()
        except BaseException:
            self.stop()
            raise
        return self

    @classmethod
    def attach(cls, lab: Lab, etcd_node: str) -> EtcdLab:
        """The etcd and confd processes a lab run started earlier (``lab_up``), from its run
        folder."""
        return cls(lab, EtcdServer.attach(lab, etcd_node))

    def stop(self) -> list[str]:
        """Stop every confd, then etcd, each by its PID; what was stopped (``etcd pid N``)."""
        stopped = []
        for name, process in self.confds.items():
            pid = process.pid()
            process.stop()
            if pid is not None:
                stopped.append(f"confd on {name} pid {pid}")
        pid = self.etcd.pid()
        self.etcd.stop()
        if pid is not None:
            stopped.append(f"etcd pid {pid}")
        return stopped
