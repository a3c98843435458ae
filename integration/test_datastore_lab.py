"""``scripts/lab.sh --datastore etcd`` (``lab_up up --datastore etcd``): the seed's mesh from
Calico's etcd, as a human brings it up.

The command is run as a human runs it (a separate process, a persistent lab that outlives it)
with its own state file (``$SPEAKER_LAB_STATE``), so a lab someone left up is not replaced.
Checked: the verdict, etcd's keys and the sessions in the report; the confd process re-renders
BIRD when a node registers; a stopped etcd makes ``status`` fail; ``down`` stops etcd and the
confd processes by PID and leaves no namespace, no process and no run folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

from integration.lab import Lab, destroy_run, wait_until
from integration.lab.core import REPO_ROOT
from integration.lab.etcd import EtcdServer
from integration.lab.netns import list_netns, pid_alive
from integration.lab.runs import run_dir_for
from speaker.datastore import resources as r

SEED_KEYS = {
    "/calico/resources/v3/projectcalico.org/nodes/node80": "Node, BGP address 192.168.0.80/24",
    "/calico/resources/v3/projectcalico.org/nodes/node81": "Node, BGP address 192.168.0.81/24",
    "/calico/resources/v3/projectcalico.org/nodes/node82": "Node, BGP address 192.168.0.82/24",
    "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool": "IPPool 10.244.0.0/16",
    "/calico/resources/v3/projectcalico.org/bgpconfigurations/default": "AS 64512",
    "/calico/ipam/v2/host/node80/ipv4/block/10.244.152.128-26": "confirmed",
    "/calico/ipam/v2/host/node81/ipv4/block/10.244.42.64-26": "confirmed",
    "/calico/ipam/v2/host/node82/ipv4/block/10.244.103.64-26": "confirmed",
}


def lab_up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "integration.lab_up", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def processes_naming(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (the run folder's path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and pid_alive(int(entry.name)):
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_lab_with_etcd_reports_keys_and_sessions_and_down_leaves_nothing(
        tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    env = {**os.environ, "SPEAKER_LAB_STATE": str(state_file), "PYTHONPATH": str(REPO_ROOT)}
    up = lab_up(env, "up", "--datastore", "etcd", "--timeout", "60")
    prefix = json.loads(state_file.read_text())["prefix"] if state_file.exists() else None
    run_dir = run_dir_for(prefix) if prefix else None
    pids: dict[str, int] = {}
    try:
        assert prefix is not None, up.stdout + up.stderr
        out = up.stdout
        assert up.returncode == 0, out + up.stderr
        last = out.rstrip().splitlines()[-1]
        assert last.startswith("VERDICT: all up: 3 nodes, every session Established"), last
        assert last.endswith("mesh from etcd https://192.168.0.80:2379"), last
        # etcd's keys, each with what it holds
        assert "11 keys under /calico/ at revision" in out
        lines = out.splitlines()
        for key, what in SEED_KEYS.items():
            assert any(line.split()[:1] == [key] and what in line for line in lines), key
        # the sessions, and the speaker reading its mesh from etcd
        assert "all sessions Established" in out
        assert "node81: Mesh_192_168_0_80 up Established" in out
        assert "Datastore: etcdv3 https://192.168.0.80:2379, node node81, connected" in out
        assert "LOST" not in out

        assert run_dir is not None
        pids["etcd"] = int((run_dir / "etcd" / "etcd.pid").read_text())
        for node in ("node80", "node82"):
            pids[f"confd {node}"] = int((run_dir / f"{node}.confd.pid").read_text())
        assert all(pid_alive(pid) for pid in pids.values()), pids
        assert b"etcd" in Path(f"/proc/{pids['etcd']}/cmdline").read_bytes()

        # The confd processes follow etcd: a node registers, BIRD is reconfigured.
        lab = Lab.attach(prefix, own=False)
        etcd = EtcdServer.attach(lab, "node80")
        etcd.put_all(dict([r.node("node83", "192.168.0.83")]))
        def reconfigured(node: str) -> bool:
            return "Mesh_192_168_0_83" in lab.protocols(node)

        for node in ("node80", "node82"):
            assert wait_until(partial(reconfigured, node), 10.0, interval=0.2), \
                lab.birdc(node, "show protocols")

        # etcd stopped: the report says so and fails.
        os.kill(pids["etcd"], signal.SIGTERM)
        assert wait_until(lambda: not pid_alive(pids["etcd"]), 10.0, interval=0.1)
        status = lab_up(env, "status")
        assert status.returncode == 1, status.stdout
        verdict = status.stdout.rstrip().splitlines()[-1]
        assert verdict.startswith("VERDICT: NOT all up: etcd not running"), verdict
    finally:
        down = lab_up(env, "down")
        leftovers = [ns for ns in list_netns() if prefix and ns.startswith(prefix)]
        if leftovers and prefix:  # do not leave them to the machine, then fail below
            destroy_run(prefix)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"confd on node80 pid {pids['confd node80']}" in down.stdout, down.stdout
    assert leftovers == []
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert run_dir is not None and not run_dir.exists()
    assert processes_naming(str(run_dir)) == []
    assert not state_file.exists()
