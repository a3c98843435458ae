"""Session protection against BIRD 1.6.8: TCP MD5 (RFC 2385, BIRD ``password``) and GTSM
(RFC 5082, BIRD ``ttl security``), as a Calico operator turns them on.

* MD5: with the same key everywhere the seed mesh comes up; a node with another key never gets
  past Connect/Active with anyone (its SYNs are dropped by the kernel, no OPEN is read); the key
  never shows in our log, ``show protocols all`` or ``check-config --json``; a new key on
  SIGHUP brings that session up without resetting the others.
* GTSM: with ``ttl security`` on every node the mesh comes up; a BIRD node without it sends
  with TTL 64, so our session to it never establishes (our kernel drops its segments).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

from integration.conftest import LabFactory
from integration.lab import NodeSpec, seed_nodes, wait_until
from integration.test_speaker_mesh import bird_log_size, bird_state_changes

CONVERGE = 60.0
KEY = "calico-secret-81"


def _seed(**changes: object) -> list[NodeSpec]:
    """The seed mix (speaker on .81) with ``changes`` on every node."""
    return [dataclasses.replace(n, **changes) for n in seed_nodes(("bird", "speaker", "bird"))]


def test_md5_same_key_everywhere_comes_up_and_the_key_is_never_shown(lab: LabFactory) -> None:
    mesh = lab(_seed(password=KEY))
    mesh.wait_established(CONVERGE)
    shown = mesh.birdc("node81", "show protocols all")
    assert "Established" in shown and KEY not in shown
    assert KEY not in mesh.log_path("node81").read_text()
    check = subprocess.run(
        [sys.executable, "-m", "speaker", "check-config", "--json",
         "--config", str(mesh.config_path("node81"))],
        capture_output=True, text=True, check=True,
    )
    assert KEY not in check.stdout
    peers = json.loads(check.stdout)["peers"]
    assert all(p["password"] == "(set, from inline)" for p in peers)


def test_md5_wrong_key_never_reaches_open_and_sighup_rekeys_one_session(
    lab: LabFactory,
) -> None:
    nodes = _seed(password=KEY)
    nodes[0] = dataclasses.replace(nodes[0], password="another-key")  # node80's BIRD
    mesh = lab(nodes)
    assert wait_until(
        lambda: mesh.mesh_status()["node81"]["Mesh_192_168_0_82"].startswith("up Established"),
        CONVERGE,
    )
    # .80 has another key (we dial it): its kernel drops our signed SYNs, no OPEN is ever
    # read, and our protocol's state says why (the last error, after a connect retry)
    assert wait_until(
        lambda: "no answer with TCP MD5 on" in mesh.birdc(
            "node81", "show protocols Mesh_192_168_0_80"),
        30.0,
    ), mesh.birdc("node81", "show protocols all Mesh_192_168_0_80")
    assert "Established" not in mesh.mesh_status()["node81"]["Mesh_192_168_0_80"]
    log = mesh.log_path("node81").read_text()
    opens_from_80 = [
        line for line in log.splitlines()
        if "192.168.0.80: received OPEN" in line
    ]
    assert opens_from_80 == []
    # rekey node81's session to .80 on SIGHUP; the .82 session is not touched
    offset_82 = bird_log_size(mesh, "node82")
    config = mesh.config_path("node81")
    text = config.read_text()
    head, _, tail = text.partition('address = "192.168.0.80"')
    config.write_text(head + 'address = "192.168.0.80"' + tail.replace(KEY, "another-key", 1))
    pid = mesh.daemon_pid("node81")
    assert pid is not None
    os.kill(pid, signal.SIGHUP)
    assert wait_until(
        lambda: mesh.mesh_status()["node81"]["Mesh_192_168_0_80"].startswith("up Established"),
        CONVERGE,
    )
    # BIRD's own log, not its whole-second "since" column (seen to move by a second alone)
    changes = bird_state_changes(mesh, "node82", "Mesh_192_168_0_81", offset_82)
    assert [c for c in changes if c.rsplit(" ", 1)[-1] in ("down", "start", "stop")] == []
    assert "another-key" not in mesh.log_path("node81").read_text()


def test_gtsm_on_every_node_comes_up(lab: LabFactory) -> None:
    mesh = lab(_seed(ttl_security=True))
    mesh.wait_established(CONVERGE)
    pods = [n.pod_address for n in mesh.nodes]
    assert mesh.ping("node81", pods[0], count=3).ok and mesh.ping("node81", pods[2], count=3).ok


def test_gtsm_refuses_a_peer_that_does_not_send_ttl_255(lab: LabFactory) -> None:
    nodes = _seed(ttl_security=True)
    nodes[0] = dataclasses.replace(nodes[0], ttl_security=False)  # node80's BIRD: TTL 64
    mesh = lab(nodes)
    assert wait_until(
        lambda: mesh.mesh_status()["node81"]["Mesh_192_168_0_82"].startswith("up Established"),
        CONVERGE,
    )
    assert not wait_until(
        lambda: "Established" in mesh.mesh_status()["node81"]["Mesh_192_168_0_80"], 15.0
    )
