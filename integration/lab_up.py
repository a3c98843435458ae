"""Bring a namespace lab up for a human (``make lab``), show its state, tear it down later.

    python3 -m integration.lab_up up [--mix seed] [--timeout 60] [--backend netns|docker]
                                     [--datastore none|etcd]   # make lab [BACKEND=docker]
                                     [--dual-stack]            #   [DATASTORE=etcd] [STACK=dual]
    python3 -m integration.lab_up status                            # make lab-status
    python3 -m integration.lab_up down [--all]                      # make lab-down

``up`` installs missing system tools (apt: bird, iproute2), removes a previously recorded lab,
builds the mix (default ``seed``: speaker on .81, BIRD on .80 and .82) as a *persistent* run
that outlives this process, records it in ``lab-run/state.json`` and prints: session states
(after waiting up to ``--timeout`` s for Established), ``speaker status`` of each speaker node,
BIRD's ``show protocols`` and ``show route`` from .80, each node's kernel routes and pod
reachability.  ``--dual-stack`` adds IPv6 (bird6 beside bird, IPv6 addresses, blocks and pods;
docs/lab.md) and the report shows both families: calicoctl's IPv4 and IPv6 BGP status tables of
every node, IPv6 kernel routes and a ping6 between every two pods; the verdict covers both.
``--backend docker`` runs the BIRD nodes in Docker containers
(integration/lab/docker.py, docs/docker-lab.md; the engine is found or started, and stopped again
by ``down``).  ``--datastore etcd`` drives the mesh from Calico's etcd
(integration/lab/etcd_lab.py): etcd 3.4 with TLS in node80's namespace on 192.168.0.80:2379,
data in the run folder, seeded with the nodes, the pool and the blocks; BIRD nodes' bird.cfg
rendered from the keys and kept in step by a confd process per BIRD node; speakers with
``[datastore] type = "etcdv3"`` only.  The report then also lists etcd's keys, the confd
processes and ``speaker show datastore``.  ``down`` removes the recorded run, stopping etcd
and the confd processes by their PIDs first (``--all``: every lab run whose owner is gone,
persistent ones included).  ``$SPEAKER_LAB_STATE`` names another state file (the lab script's
own test uses one, so that it never replaces a lab someone left up).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from integration.lab import (
    Lab,
    LabError,
    NodeRef,
    NodeSpec,
    calico_node_status,
    cleanup_stale,
    default_backend,
    destroy_run,
    format_mesh_status,
    lab_class,
    nodes_for_mix,
    run_dir_for,
)
from integration.lab.etcd_lab import EtcdLab
from integration.lab.status import format_calico_keys

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = Path(os.environ.get("SPEAKER_LAB_STATE") or REPO_ROOT / "lab-run" / "state.json")
APT_PACKAGES = {
    "bird": "bird",
    "birdc": "bird",
    "bird6": "bird",
    "birdc6": "bird",
    "ip": "iproute2",
    "ss": "iproute2",
    "sysctl": "procps",
}
ETCD_PACKAGES = {"etcd": "etcd-server", "etcdctl": "etcd-client", "openssl": "openssl"}
"""What ``--datastore etcd`` needs on top (scripts/lab.sh installs them only then)."""
DATASTORES = ("none", "etcd")
ETCD_NODE = "node80"
"""The node whose namespace runs etcd (on its address), as in integration/test_datastore.py."""


def _say(text: str = "") -> None:
    print(text, flush=True)


def _section(title: str) -> None:
    _say()
    _say(f"==== {title}")


def ensure_tools(datastore: str = "none") -> None:
    """apt-get install the packages of any missing tool (bird, iproute2, procps; with
    ``datastore`` etcd also etcd-server, etcd-client, openssl)."""
    tools = {**APT_PACKAGES, **(ETCD_PACKAGES if datastore == "etcd" else {})}
    missing = sorted({pkg for tool, pkg in tools.items() if shutil.which(tool) is None})
    if not missing:
        return
    _say(f"installing missing packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    if "etcd-server" in missing and shutil.which("systemctl"):
        # Debian's package starts a system-wide etcd on 127.0.0.1:2379; the lab runs its own.
        subprocess.run(["systemctl", "disable", "--now", "etcd"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_state() -> dict[str, object] | None:
    """The recorded lab, or None."""
    try:
        data = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def attach_datastore(lab: Lab, state: dict[str, object]) -> EtcdLab | None:
    """The recorded lab's etcd and confd processes, if it is driven by etcd."""
    if state.get("datastore") != "etcd":
        return None
    try:
        return EtcdLab.attach(lab, str(state.get("etcd_node", ETCD_NODE)))
    except LabError as exc:
        _say(f"(the lab's etcd: {exc})")
        return None


def down(all_runs: bool = False) -> int:
    """Tear down the recorded run (and with ``all_runs`` every ownerless lab run): etcd and
    the confd processes first, by their PIDs, then the daemons, namespaces and run folder."""
    state = read_state()
    if state is not None:
        prefix = str(state["prefix"])
        _say(f"tearing down lab {prefix} ({run_dir_for(prefix)})")
        if state.get("datastore") == "etcd":
            try:
                driven = attach_datastore(Lab.attach(prefix), state)
            except LabError as exc:  # the run folder is gone: destroy_run sweeps the rest
                _say(f"(cannot attach to the lab: {exc})")
                driven = None
            if driven is not None:
                stopped = driven.stop() or ["nothing (etcd was not running)"]
                _say(f"stopped {', '.join(stopped)}")
        destroy_run(prefix)
        STATE_FILE.unlink(missing_ok=True)
    elif not all_runs:
        _say(f"no lab recorded in {STATE_FILE}")
    removed = cleanup_stale(include_persistent=all_runs)
    if removed:
        _say(f"also removed stale lab runs: {' '.join(removed)}")
    if Path("/run/speaker-lab-docker/engine.json").exists():
        _say("the lab's dockerd keeps running: lab containers of other runs remain on it")
    return 0


def report(lab: Lab, timeout: float, datastore: EtcdLab | None = None) -> list[str]:
    """Wait up to ``timeout`` s for the mesh, then print everything a human wants to see.

    Returns what is wrong (daemons not running, sessions not Established, pods not answering;
    with a ``datastore``: etcd or a confd not running, a speaker not connected to etcd),
    empty when the mesh is all up.
    """
    problems: list[str] = []
    dual = lab.dual_stack
    _section("nodes" + (" (dual stack: IPv4 and IPv6)" if dual else ""))
    for node in lab.nodes:
        states = []
        for program, family in lab.node_daemons(node):
            pid = lab.daemon_pid(node, family)
            code = lab.daemon_exit_code(node, family)
            exited = "" if code is None else f" (exit {code})"
            states.append(f"{program} pid {pid}" if pid else f"{program} NOT RUNNING{exited}")
            if not pid:
                problems.append(f"{program} on {node.name} not running")
        _say(
            f"  {node.name:8} {node.address:15} {node.kind:8} block {node.block:18} "
            f"pod {node.pod_address:15} netns {lab.netns(node)}  {', '.join(states)}"
        )
        if dual:
            _say(
                f"{'':11}{node.ipv6('address6'):24} block {node.ipv6('block6'):22} "
                f"pod {node.ipv6('pod_address6')}"
            )
        if lab.backend == "docker" and node.kind == "bird":
            daemons = ", ".join(f"{lab.netns(node)}-{program} ({program})"
                                for program, _ in lab.node_daemons(node))  # fmt: skip
            _say(f"{'':11}containers {lab.netns(node)} (node), {daemons}")
    if datastore is not None:
        problems += report_etcd(datastore)

    _section(
        f"BGP sessions (waiting up to {timeout:.0f} s for Established)"
        if timeout
        else "BGP sessions"
    )
    started = time.monotonic()
    status = lab.wait_established(timeout, check=False)
    took = time.monotonic() - started
    established = all(s.startswith("up Established") for v in status.values() for s in v.values())
    _say(format_mesh_status(status))
    if established:
        families = "IPv4 and IPv6 " if dual else ""
        _say(f"all {families}sessions Established after {took:.1f} s")
    else:
        _say(f"NOT all sessions Established after {took:.0f} s (shown above: what each node sees)")
        down = sorted(
            f"{node}->{peer}"
            for node, peers in status.items()
            for peer, state in peers.items()
            if not state.startswith("up Established")
        )
        problems.append(f"sessions not Established: {', '.join(down)}")

    if dual:
        for node in lab.nodes:
            where = "bird.ctl and bird6.ctl" if node.kind == "bird" else "its two control sockets"
            _section(f"calicoctl node status on {node.name} ({node.address}, from {where})")
            texts: list[str | None] = []
            for family in lab.families:
                try:
                    texts.append(lab.birdc(node, "show protocols", family=family))
                except LabError as exc:
                    _say(f"(IPv{family}: {str(exc).splitlines()[0]})")
                    texts.append(None)
            _say(calico_node_status(texts[0] or "", texts[1]).rstrip())

    for node in lab.speaker_nodes():
        _section(f"speaker status on {node.name} ({node.address})")
        if not lab.daemon_running(node):
            code = lab.daemon_exit_code(node)
            exited = "" if code is None else f" (exit {code})"
            _say(f"speaker daemon is not running{exited}; log tail:")
            _say(_tail(lab.log_path(node)))
        proc = _speaker_cli(lab, node, "status")
        _say(proc.stdout.rstrip())
        if proc.returncode != 0:
            _say(f"(speaker status failed, exit {proc.returncode})")
            _say(proc.stderr.rstrip())
        if datastore is not None:
            _section(f"speaker show datastore on {node.name} ({node.address})")
            proc = _speaker_cli(lab, node, "show", "datastore")
            _say((proc.stdout or proc.stderr).rstrip())
            first = proc.stdout.splitlines()[0] if proc.stdout.strip() else ""
            if proc.returncode != 0 or not first.endswith(", connected"):
                problems.append(f"speaker on {node.name} not connected to etcd")

    birds = lab.bird_nodes()
    if birds:
        ref = next((n for n in birds if n.address == "192.168.0.80"), birds[0])
        for family in lab.families:
            client = "birdc" if family == 4 else "birdc6"
            for command in ("show protocols", "show route"):
                _section(f"{client} {command} on {ref.name} ({ref.address_of(family)})")
                try:
                    _say(lab.birdc(ref, command, family=family).rstrip())
                except LabError as exc:
                    _say(f"({exc})")

    for family in lab.families:
        for node in lab.nodes:
            what = "kernel routes" if family == 4 else "IPv6 kernel routes"
            _section(f"{what} on {node.name} ({node.address_of(family)}, {node.kind})")
            _say(lab.route_text(node, family).rstrip())

    for family in lab.families:
        ping = "ping" if family == 4 else "ping6"
        _section(f"pod to pod {ping} (up to 3 echoes each)")
        lost = []
        for src in lab.nodes:
            cells = []
            source = src.pod_of(family)
            for dst in lab.nodes:
                if dst.name != src.name:
                    target = dst.pod_of(family)
                    got = lab.ping(src, target, count=3, timeout=1.0)
                    cells.append(f"{target} {'ok' if got.ok else 'LOST'}")
                    if not got.ok:
                        lost.append(f"{source}->{target}")
            _say(f"  from {source:{15 if family == 4 else 17}} -> " + ", ".join(cells))
        if lost:
            over = "" if family == 4 else " over IPv6"
            problems.append(f"pods not answering{over}: {', '.join(lost)}")
    return problems


def _speaker_cli(lab: Lab, node: NodeRef, *args: str) -> subprocess.CompletedProcess[str]:
    """``speaker ARGS --socket <node's control socket>`` in the node's namespace."""
    sock = str(lab.control_socket(node))
    return lab.exec(node, [sys.executable, "-m", "speaker", *args, "--socket", sock],
                    check=False)


def report_etcd(driven: EtcdLab) -> list[str]:
    """Print etcd (where, its PID, every key it holds) and the confd processes; what is
    wrong with them."""
    problems = []
    etcd = driven.etcd
    pid = etcd.pid()
    _section(f"etcd (the datastore) {etcd.endpoint}, netns {etcd.netns}, "
             + (f"pid {pid}" if pid else "NOT RUNNING"))
    _say(f"  data, TLS files, log: {etcd.dir}/")
    if pid is None:
        problems.append("etcd not running")
    else:
        try:
            revision, items = etcd.items("/calico/")
        except LabError as exc:
            _say(f"  (cannot read etcd: {str(exc).splitlines()[-1]})")
            problems.append("etcd not answering")
        else:
            _say(f"  {len(items)} keys under /calico/ at revision {revision} "
                 "(etcdctl get /calico/ --prefix):")
            _say("\n".join(format_calico_keys(items)))
    if driven.confds:
        _section("confd: BIRD nodes' bird.cfg rendered from etcd, birdc configure on change")
    for name, confd in driven.confds.items():
        confd_pid = confd.pid()
        renders = confd.renders()
        last = renders[-1] if renders else None
        _say(f"  {name:8} " + (f"pid {confd_pid}" if confd_pid else "NOT RUNNING")
             + (f", last render: revision {last.revision}, {last.what}" if last else "")
             + f"  ({confd.log.name})")
        if confd_pid is None:
            problems.append(f"confd on {name} not running")
    return problems


def verdict(
    problems: list[str],
    nodes: int,
    datastore: EtcdLab | None = None,
    *,
    dual_stack: bool = False,
) -> str:
    """The report's last line: all up (in both families for a dual-stack lab), or what is not."""
    if problems:
        return "VERDICT: NOT all up: " + "; ".join(problems)
    etcd = "" if datastore is None else f"; mesh from etcd {datastore.etcd.endpoint}"
    if dual_stack:
        return (
            f"VERDICT: all up: {nodes} nodes, dual stack: every IPv4 and IPv6 session "
            f"Established, every pod answers ping and ping6{etcd}"
        )
    return (f"VERDICT: all up: {nodes} nodes, every session Established, every pod "
            f"answers{etcd}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def up(
    mix: str,
    timeout: float,
    backend: str = "netns",
    datastore: str = "none",
    dual_stack: bool = False,
) -> int:
    """Build the lab (``dual_stack``: IPv4 and IPv6), record it, print the report and how to
    tear it down."""
    ensure_tools(datastore)
    if read_state() is not None:
        _say("a lab is already recorded; replacing it")
        down()
    cleanup_stale()
    nodes: list[NodeSpec] = nodes_for_mix(mix)
    etcd = datastore == "etcd"
    lab = lab_class(backend)(
        nodes, persistent=True, start_daemons=not etcd, dual_stack=dual_stack
    )
    how = f", mesh from etcd in {ETCD_NODE}'s namespace" if etcd else ""
    how += ", dual stack" if dual_stack else ""
    _say(f"building lab {lab.prefix} (mix {mix!r}, backend {backend}{how}) in {lab.run_dir}")
    try:
        lab.up()  # on failure it has torn down what it built
    except LabError as exc:
        _say()
        _say(f"VERDICT: NOT all up: the lab could not be built: {exc}")
        return 1
    state: dict[str, object] = {"prefix": lab.prefix, "run_dir": str(lab.run_dir), "mix": mix,
                                "backend": backend, "datastore": datastore,
                                "dual_stack": dual_stack}
    if etcd:
        state["etcd_node"] = ETCD_NODE
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2))  # before etcd: `down` can stop it
    driven: EtcdLab | None = None
    if etcd:
        try:  # etcd, its keys, the daemons from them, a confd per BIRD node
            driven = EtcdLab.start(lab, etcd_node=ETCD_NODE)
        except LabError as exc:  # what it started it has stopped again
            lab.down()
            STATE_FILE.unlink(missing_ok=True)
            _say()
            _say(f"VERDICT: NOT all up: the etcd-driven lab could not be started: {exc}")
            return 1
    describe = getattr(lab, "describe_backend", None)
    if describe is not None:
        _say(describe())
    problems = report(lab, timeout, driven)
    _section("how to use and tear down")
    first = lab.nodes[0]
    _say(f"  run files, configs, logs: {lab.run_dir}/")
    _say(f"  a shell on a node:        ip netns exec {lab.netns(first)} bash")
    if backend == "docker" and lab.bird_nodes():
        bird = lab.bird_nodes()[0]
        host = f"DOCKER_HOST={lab.engine.base_url} " if hasattr(lab, "engine") else ""
        _say(f"  BIRD's CLI:               {host}docker exec {lab.prefix}{bird.name}-bird birdc")
        if dual_stack:
            cli6 = f"{host}docker exec {lab.prefix}{bird.name}-bird6 birdc6"
            _say(f"  bird6's CLI:              {cli6}")
        _say(f"  containers:               {host}docker ps --filter label=speaker-lab")
    else:
        _say(f"  BIRD's CLI:               birdc -s {lab.control_socket(first)}")
        if dual_stack:
            _say(f"  bird6's CLI:              birdc6 -s {lab.control_socket(first, 6)}")
    if driven is not None:
        t = driven.etcd.tls
        _say(f"  etcd's CLI:               ip netns exec {driven.etcd.netns} etcdctl "
             f"--endpoints={driven.etcd.endpoint} \\\n{'':28}--cacert={t.ca} "
             f"--cert={t.client_cert} --key={t.client_key} get /calico/ --prefix --keys-only")
    _say("  report again:             make lab-status")
    _say("  tear down:                bash scripts/lab.sh down   (or make lab-down)")
    _say()
    _say(verdict(problems, len(lab.nodes), driven, dual_stack=dual_stack))
    return 1 if problems else 0


def status() -> int:
    """Re-print the report for the recorded lab (no waiting)."""
    state = read_state()
    if state is None:
        _say(f"no lab recorded in {STATE_FILE}")
        return 1
    lab = Lab.attach(str(state["prefix"]))
    driven = attach_datastore(lab, state)
    problems = report(lab, 0.0, driven)
    _say()
    _say(verdict(problems, len(lab.nodes), driven, dual_stack=lab.dual_stack))
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="build the lab and report")
    p_up.add_argument("--mix", default="seed", help="seed | bird | speaker | k80,k81,k82")
    p_up.add_argument(
        "--backend",
        default=default_backend(),
        choices=("netns", "docker"),
        help="where BIRD nodes run (default $SPEAKER_LAB_BACKEND or netns)",
    )
    p_up.add_argument(
        "--datastore",
        default="none",
        choices=DATASTORES,
        help="etcd: the mesh from Calico's etcd (etcd 3.4 with TLS in node80's namespace; "
        "BIRD's config rendered from its keys; speakers with [datastore])",
    )
    p_up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for sessions")
    p_up.add_argument(
        "--dual-stack",
        action="store_true",
        help="IPv4 and IPv6: bird6 beside bird, IPv6 addresses, blocks and pods (docs/lab.md)",
    )
    p_down = sub.add_parser("down", help="tear down the recorded lab")
    p_down.add_argument("--all", action="store_true", help="also every ownerless lab run")
    sub.add_parser("status", help="report on the recorded lab")
    args = parser.parse_args(argv)
    if args.command == "up" and args.datastore == "etcd" and args.backend != "netns":
        parser.error("--datastore etcd runs with the netns backend only")
    if args.command == "up" and args.datastore == "etcd" and args.dual_stack:
        parser.error("--dual-stack and --datastore etcd do not go together yet: the lab's confd "
                     "renders bird.cfg only, not bird6.cfg")
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces)")
    if args.command == "up":
        return up(args.mix, args.timeout, args.backend, args.datastore, args.dual_stack)
    if args.command == "down":
        return down(args.all)
    return status()


if __name__ == "__main__":
    sys.exit(main())
