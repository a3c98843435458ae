"""The Lab: builds the seed topology in network namespaces and runs BIRD or the speaker per node.

Topology for a run with prefix ``P`` (e.g. ``spk3fa9c1-``)::

    P br        bridge namespace: bridge br0, one port v<i><name> per node
    P<name>     node namespace: eth0 <address>/<prefixlen> on the bridge, ip_forward=1,
                cali<hex> veth to the pod, route <pod>/32 dev cali<hex> scope link
    P<name>-pod pod namespace: eth0 <pod>/32, default via 169.254.1.1 dev eth0 onlink,
                permanent neighbour 169.254.1.1 -> MAC of the node's cali<hex>

No namespace is connected to the root namespace; configuration commands always name a lab
namespace.  Daemons run inside their node namespace via ``ip netns exec`` (which execs in place,
so the tracked PID is the daemon's PID).  Run files live in ``/tmp/spk<hex>/``.

Teardown (``down()``, the context manager exit, atexit, SIGTERM/SIGHUP) stops the daemons the
lab started by PID, deletes the run's namespaces and removes the run directory.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar, Final, Literal, TypeVar

from integration.lab import configs
from integration.lab.netns import (
    LabError,
    add_netns,
    ip,
    netns_exec_argv,
    netns_pids,
    pid_alive,
    run,
    sysctl,
)
from integration.lab.runs import (
    OwnerRecord,
    check_prefix,
    destroy_run,
    make_owner,
    new_prefix,
    read_owner,
    run_dir_for,
    write_owner,
)
from integration.lab.spec import (
    DEFAULT_POOL,
    DEFAULT_PREFIXLEN,
    NodeSpec,
    nodes_for_mix,
    validate_lab,
)
from integration.lab.status import ProtocolState, TcpConnection, parse_protocols, parse_ss

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
ICMP_SCRIPT: Final = Path(__file__).resolve().with_name("icmp.py")
GATEWAY: Final = "169.254.1.1"
"""Calico's fake next hop for pods; answered by a permanent neighbour entry, not proxy ARP."""

NodeRef = NodeSpec | str
"""A node given as its NodeSpec, its name (``node80``) or its address (``192.168.0.80``)."""
Where = Literal["node", "pod", "bridge"]
T = TypeVar("T")


class LabTimeout(TimeoutError):
    """A wait ran out of time; the message says what was awaited and what was seen last."""


@dataclass(frozen=True)
class PingResult:
    """Outcome of ``Lab.ping``: echo requests sent, replies received, round-trip times."""

    sent: int
    received: int
    rtt_ms: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        """Every request got its reply."""
        return self.sent > 0 and self.received == self.sent


@dataclass
class _Daemon:
    """A daemon the lab started: its PID (and Popen while we are its parent)."""

    kind: str
    pid: int
    popen: subprocess.Popen[bytes] | None
    log: Path


def wait_until(predicate: Callable[[], T], timeout: float, *, interval: float = 0.5) -> T | None:
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` ends (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


class Lab:
    """A network-namespace lab of Calico nodes running BIRD and/or the speaker.

    Use as a context manager (``with Lab(nodes) as lab:``) or call ``up()``/``down()``.
    ``nodes`` is a list of NodeSpec or a mix name (``"seed"``, ``"bird"``, ``"speaker"`` or
    ``"bird,speaker,bird"``).  ``persistent`` runs (``make lab``) survive their creator and are
    skipped by the atexit/signal teardown and by ``cleanup_stale()``.
    """

    backend: ClassVar[str] = "netns"
    """Where nodes run; ``integration.lab.docker.DockerLab`` puts BIRD nodes in containers."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec] | str = "bird",
        *,
        pool: str = DEFAULT_POOL,
        prefixlen: int = DEFAULT_PREFIXLEN,
        persistent: bool = False,
        start_daemons: bool = True,
        prefix: str | None = None,
    ) -> None:
        node_list = nodes_for_mix(nodes) if isinstance(nodes, str) else list(nodes)
        validate_lab(node_list, pool, prefixlen)
        self.nodes: list[NodeSpec] = node_list
        self.pool = pool
        self.prefixlen = prefixlen
        self.persistent = persistent
        self.start_daemons = start_daemons
        self.prefix = check_prefix(prefix) if prefix is not None else new_prefix()
        self.run_dir = run_dir_for(self.prefix)
        self._daemons: dict[str, _Daemon] = {}
        self.speaker_log_level = "debug"
        """Tests read per-route kernel and message lines from the log; benchmarks say info."""
        self._state: Literal["new", "up", "down"] = "new"

    # ------------------------------------------------------------------ construction
    @classmethod
    def attach(cls, prefix: str, *, own: bool = True) -> Lab:
        """A Lab object for an existing run (e.g. one ``make lab`` left up), from its owner.json.

        Daemon PIDs are read from the run directory; ``down()`` works as for a lab we built.
        ``own=False``: a helper process looking at someone else's lab (the lab's confd,
        integration/lab/etcd_confd.py); its exit must not tear the lab down, so the object is
        not registered for the atexit/signal teardown of a non-persistent run.
        """
        owner = read_owner(run_dir_for(check_prefix(prefix)))
        if owner is None:
            raise LabError(f"no run {prefix}: {run_dir_for(prefix)}/owner.json is missing")
        if owner.backend != cls.backend:
            from integration.lab import lab_class

            return lab_class(owner.backend).attach(prefix, own=own)
        lab = cls(
            [NodeSpec(**n) for n in owner.nodes],
            pool=owner.pool,
            prefixlen=owner.prefixlen,
            persistent=owner.persistent,
            prefix=prefix,
        )
        lab._state = "up"
        for node in lab.nodes:
            pid_file = lab.run_dir / f"{node.name}.daemon.pid"
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text().strip())
                log = lab.run_dir / f"{node.name}.{node.kind}.out"
                lab._daemons[node.name] = _Daemon(node.kind, pid, None, log)
        if own:
            _register(lab)
        return lab

    def __enter__(self) -> Lab:
        if self._state == "new":
            self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Lab:
        """Create namespaces, links, addresses, routes, configs; start daemons if asked.

        On any failure (including KeyboardInterrupt) everything built so far is torn down.
        """
        if self._state != "new":
            raise LabError(f"lab {self.prefix} is already {self._state}")
        self.run_dir.mkdir(mode=0o755, parents=False, exist_ok=False)
        write_owner(self.run_dir, self._owner_record())
        self._state = "up"
        _register(self)
        try:
            self._build()
            self._write_configs()
            if self.start_daemons:
                for node in self.nodes:
                    self.start_node(node)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop the lab's daemons (by PID), delete its namespaces, remove its run directory.

        Idempotent; runs the whole teardown even if a step fails, then reports the failure.
        """
        if self._state == "down":
            return
        self._state = "down"
        try:
            for name in list(self._daemons):
                with contextlib.suppress(LabError, OSError):
                    self._stop_daemon(name, signal.SIGTERM, timeout=5.0)
            destroy_run(self.prefix)
        finally:
            _unregister(self)

    @property
    def is_up(self) -> bool:
        """True between ``up()`` and ``down()``."""
        return self._state == "up"

    def _owner_record(self) -> OwnerRecord:
        return make_owner(
            self.prefix,
            persistent=self.persistent,
            pool=self.pool,
            prefixlen=self.prefixlen,
            nodes=[asdict(n) for n in self.nodes],
            backend=self.backend,
        )

    def _build(self) -> None:
        bridge = self.bridge_netns
        add_netns(bridge)
        ip(bridge, "link", "add", "br0", "type", "bridge")
        ip(bridge, "link", "set", "br0", "up")
        for index, node in enumerate(self.nodes):
            node_ns, pod_ns, cali = self.netns(node), self.pod_netns(node), self.cali_name(node)
            self._add_node_netns(node)
            add_netns(pod_ns)
            port = f"v{index}{node.name}"[:15]
            ip(
                bridge,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node_ns,
            )
            ip(bridge, "link", "set", port, "master", "br0")
            ip(bridge, "link", "set", port, "up")
            ip(node_ns, "addr", "add", f"{node.address}/{self.prefixlen}", "dev", "eth0")
            ip(node_ns, "link", "set", "eth0", "up")
            sysctl(node_ns, "net.ipv4.ip_forward", "1")
            # The pod: a Calico workload veth, cali<hex> on the node, eth0 in the pod.
            ip(
                node_ns,
                "link",
                "add",
                cali,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                pod_ns,
            )
            ip(node_ns, "link", "set", cali, "up")
            ip(pod_ns, "addr", "add", f"{node.pod_address}/32", "dev", "eth0")
            ip(pod_ns, "link", "set", "eth0", "up")
            mac = json.loads(ip(node_ns, "-j", "link", "show", cali).stdout)[0]["address"]
            ip(pod_ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0", "onlink")
            ip(
                pod_ns,
                "neigh",
                "replace",
                GATEWAY,
                "lladdr",
                mac,
                "dev",
                "eth0",
                "nud",
                "permanent",
            )
            ip(node_ns, "route", "add", f"{node.pod_address}/32", "dev", cali, "scope", "link")

    def _add_node_netns(self, node: NodeSpec) -> None:
        """Create the node's namespace (a backend may instead name a container's, see docker.py)."""
        add_netns(self.netns(node))

    def _write_configs(self) -> None:
        for node in self.nodes:
            path = self.config_path(node)
            if node.kind == "bird":
                text = configs.render_bird_config(
                    node, self.nodes, self.pool, log_file=str(self.bird_log_path(node))
                )
            else:
                text = configs.render_speaker_config(
                    node, self.nodes, self.pool, control_socket=str(self.control_socket(node))
                )
            path.write_text(text)

    # ------------------------------------------------------------------ naming
    def node(self, ref: NodeRef) -> NodeSpec:
        """Resolve a node given as NodeSpec, name or address; LabError if unknown."""
        if isinstance(ref, NodeSpec):
            key = ref.name
            for n in self.nodes:
                if n.name == key:
                    return n
        else:
            for n in self.nodes:
                if ref in (n.name, n.address):
                    return n
        known = ", ".join(f"{n.name}/{n.address}" for n in self.nodes)
        raise LabError(f"no node {ref!r} in lab {self.prefix} (nodes: {known})")

    @property
    def bridge_netns(self) -> str:
        """Name of the namespace holding the bridge."""
        return f"{self.prefix}br"

    def netns(self, ref: NodeRef) -> str:
        """Name of a node's namespace."""
        return f"{self.prefix}{self.node(ref).name}"

    def pod_netns(self, ref: NodeRef) -> str:
        """Name of the namespace of a node's pod."""
        return f"{self.prefix}{self.node(ref).name}-pod"

    def cali_name(self, ref: NodeRef) -> str:
        """Node-side name of the pod's veth: ``cali`` + 11 hex digits, like Calico's."""
        node = self.node(ref)
        digest = hashlib.sha1(f"{self.prefix}{node.name}".encode()).hexdigest()
        return "cali" + digest[:11]

    def config_path(self, ref: NodeRef) -> Path:
        """The node's daemon config: ``<name>.bird.cfg`` or ``<name>.toml``."""
        node = self.node(ref)
        suffix = "bird.cfg" if node.kind == "bird" else "toml"
        return self.run_dir / f"{node.name}.{suffix}"

    def control_socket(self, ref: NodeRef) -> Path:
        """The node's control socket (BIRD's, or the speaker's BIRD-compatible one)."""
        return self.run_dir / f"{self.node(ref).name}.ctl"

    def log_path(self, ref: NodeRef) -> Path:
        """Where the daemon's stdout/stderr go (``<name>.bird.out`` / ``<name>.speaker.out``)."""
        node = self.node(ref)
        return self.run_dir / f"{node.name}.{node.kind}.out"

    def bird_log_path(self, ref: NodeRef) -> Path:
        """BIRD's own log file (the config's ``log`` statement)."""
        return self.run_dir / f"{self.node(ref).name}.bird.log"

    def bird_nodes(self) -> list[NodeSpec]:
        """Nodes running BIRD."""
        return [n for n in self.nodes if n.kind == "bird"]

    def speaker_nodes(self) -> list[NodeSpec]:
        """Nodes running the speaker."""
        return [n for n in self.nodes if n.kind == "speaker"]

    # ------------------------------------------------------------------ daemons
    def start_node(self, ref: NodeRef) -> int:
        """Start the node's daemon according to its kind; returns its PID."""
        node = self.node(ref)
        return self.start_bird(node) if node.kind == "bird" else self.start_speaker(node)

    def start_bird(self, ref: NodeRef, *, graceful: bool = False) -> int:
        """Start BIRD in the node's namespace (``-R`` if ``graceful``); wait for its socket.

        Runs ``bird -f -c CFG -s SOCK -P PIDFILE`` (``-f``: stay in the foreground so the lab
        tracks the real PID).  Raises LabError if the config does not parse or BIRD exits.
        """
        node = self._require(ref, "bird")
        self._require_not_running(node)
        cfg = self.config_path(node)
        parse = run(["bird", "-p", "-c", str(cfg)], check=False)
        if parse.returncode != 0:
            raise LabError(f"BIRD rejects {cfg}: {parse.stderr.strip() or parse.stdout.strip()}")
        sock = self.control_socket(node)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        argv = [
            "bird",
            "-f",
            "-c",
            str(cfg),
            "-s",
            str(sock),
            "-P",
            str(self.run_dir / f"{node.name}.bird.pid"),
        ]
        if graceful:
            argv.append("-R")
        daemon = self._spawn(node, argv)

        def answering_or_dead() -> bool:
            if not pid_alive(daemon.pid):
                return True
            probe = ["birdc", "-s", str(sock), "show", "status"]
            return sock.exists() and run(probe, check=False).returncode == 0

        ok = wait_until(answering_or_dead, 10.0, interval=0.1)
        if not pid_alive(daemon.pid):
            self._forget(node)
            raise LabError(f"BIRD on {node.name} exited at start:\n{_tail(daemon.log)}")
        if not ok:
            raise LabError(f"BIRD on {node.name}: control socket {sock} not answering after 10 s")
        return daemon.pid

    def stop_bird(self, ref: NodeRef, *, timeout: float = 10.0) -> int | None:
        """Stop BIRD cleanly (SIGTERM: it sends Cease to its peers); returns its exit status."""
        node = self._require(ref, "bird")
        return self._stop_daemon(node.name, signal.SIGTERM, timeout=timeout)

    def kill_bird(self, ref: NodeRef, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to BIRD (SIGKILL: die without NOTIFICATION, for graceful-restart tests).

        Waits for the process to end when ``sig`` is SIGKILL/SIGTERM/SIGINT.
        """
        node = self._require(ref, "bird")
        self._signal_daemon(node.name, sig)

    def start_speaker(self, ref: NodeRef) -> int:
        """Start ``python -m speaker run --config FILE`` in the node's namespace; returns its PID.

        Does not wait for readiness (a daemon that fails at once shows in ``daemon_running`` and
        its log).
        """
        node = self._require(ref, "speaker")
        self._require_not_running(node)
        argv = [
            sys.executable,
            "-m",
            "speaker",
            "run",
            "--config",
            str(self.config_path(node)),
            "--log-level",
            self.speaker_log_level,
        ]
        return self._spawn(node, argv).pid

    def stop_speaker(
        self, ref: NodeRef, sig: int = signal.SIGTERM, *, timeout: float = 10.0
    ) -> int | None:
        """Send ``sig`` to the speaker and wait (SIGKILL after ``timeout``); returns exit status."""
        node = self._require(ref, "speaker")
        return self._stop_daemon(node.name, sig, timeout=timeout)

    def kill_speaker(self, ref: NodeRef, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the speaker (waits when it is SIGKILL/SIGTERM/SIGINT)."""
        node = self._require(ref, "speaker")
        self._signal_daemon(node.name, sig)

    def stop_node(self, ref: NodeRef, *, timeout: float = 10.0) -> int | None:
        """Stop the node's daemon, whatever its kind."""
        return self._stop_daemon(self.node(ref).name, signal.SIGTERM, timeout=timeout)

    def daemon_pid(self, ref: NodeRef) -> int | None:
        """PID of the node's daemon if the lab started one and it still runs."""
        daemon = self._daemons.get(self.node(ref).name)
        if daemon is None or not self._alive(daemon):
            return None
        return daemon.pid

    def daemon_running(self, ref: NodeRef) -> bool:
        """True if the node's daemon is running."""
        return self.daemon_pid(ref) is not None

    def daemon_exit_code(self, ref: NodeRef) -> int | None:
        """Exit status of the node's daemon if it was started by this process and has ended."""
        daemon = self._daemons.get(self.node(ref).name)
        if daemon is None or daemon.popen is None:
            return None
        return daemon.popen.poll()

    def _require(self, ref: NodeRef, kind: str) -> NodeSpec:
        node = self.node(ref)
        if node.kind != kind:
            raise LabError(f"node {node.name} runs {node.kind}, not {kind}")
        if self._state != "up":
            raise LabError(f"lab {self.prefix} is {self._state}, not up")
        return node

    def _require_not_running(self, node: NodeSpec) -> None:
        if self.daemon_running(node):
            raise LabError(f"{node.name}: {node.kind} already runs (pid {self.daemon_pid(node)})")

    def _spawn(self, node: NodeSpec, argv: list[str]) -> _Daemon:
        log = self.log_path(node)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with log.open("ab") as out:
            out.write(f"--- {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                netns_exec_argv(self.netns(node), argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                start_new_session=True,
            )
        daemon = _Daemon(node.kind, popen.pid, popen, log)
        self._daemons[node.name] = daemon
        (self.run_dir / f"{node.name}.daemon.pid").write_text(f"{popen.pid}\n")
        return daemon

    def _forget(self, node: NodeSpec) -> None:
        self._daemons.pop(node.name, None)
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / f"{node.name}.daemon.pid").unlink()

    def _alive(self, daemon: _Daemon) -> bool:
        if daemon.popen is not None:
            return daemon.popen.poll() is None
        return pid_alive(daemon.pid)

    def _owned_pid(self, name: str) -> int | None:
        """The daemon's PID, only if it still runs inside this lab's node namespace."""
        daemon = self._daemons.get(name)
        if daemon is None or not self._alive(daemon):
            return None
        if daemon.popen is None and daemon.pid not in netns_pids(self.netns(name)):
            return None  # attached run: the recorded PID is no longer our daemon
        return daemon.pid

    def _signal_daemon(self, name: str, sig: int) -> None:
        pid = self._owned_pid(name)
        if pid is None:
            raise LabError(f"{name}: no running daemon to signal")
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self._wait_daemon(name, 10.0)

    def _wait_daemon(self, name: str, timeout: float) -> int | None:
        daemon = self._daemons[name]
        if daemon.popen is not None:
            try:
                return daemon.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        wait_until(lambda: not pid_alive(daemon.pid), timeout, interval=0.05)
        return None

    def _stop_daemon(self, name: str, sig: int, *, timeout: float) -> int | None:
        node = self.node(name)
        daemon = self._daemons.get(node.name)
        if daemon is None:
            return None
        pid = self._owned_pid(node.name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._alive(daemon) and self._wait_daemon(node.name, timeout) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_daemon(node.name, 5.0)
        code = daemon.popen.poll() if daemon.popen is not None else None
        self._forget(node)
        return code

    # ------------------------------------------------------------------ observation
    def exec(
        self,
        ref: NodeRef,
        argv: Sequence[str],
        *,
        where: Where = "node",
        check: bool = True,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the node's namespace (or its pod's, or the bridge's)."""
        if where == "node":
            ns = self.netns(ref)
        elif where == "pod":
            ns = self.pod_netns(ref)
        elif where == "bridge":
            ns = self.bridge_netns
        else:
            raise LabError(f"where={where!r}: want node, pod or bridge")
        return run(netns_exec_argv(ns, argv), check=check, timeout=timeout, cwd=REPO_ROOT)

    def birdc(self, ref: NodeRef, command: str, *, timeout: float = 10.0) -> str:
        """Run ``birdc -s <node's control socket> <command>``; returns its text output.

        Works for speaker nodes too once the daemon serves BIRD's control protocol.
        """
        sock = self.control_socket(ref)
        if not sock.exists():
            raise LabError(f"{self.node(ref).name}: no control socket at {sock}")
        proc = run(["birdc", "-s", str(sock), *command.split()], timeout=timeout, check=False)
        if proc.returncode != 0:
            raise LabError(
                f"birdc {command!r} on {self.node(ref).name} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc.stdout

    def protocols(self, ref: NodeRef) -> dict[str, ProtocolState]:
        """The node's ``show protocols`` rows, keyed by protocol name."""
        return parse_protocols(self.birdc(ref, "show protocols"))

    def expected_sessions(self, ref: NodeRef) -> list[str]:
        """Protocol names a node should have: ``Mesh_<peer>`` for every other node."""
        node = self.node(ref)
        return [p.protocol_name for p in self.nodes if p.name != node.name]

    def mesh_status(self, nodes: Sequence[NodeRef] | None = None) -> dict[str, dict[str, str]]:
        """For each node, expected session -> state text (``Established``, ``Passive``, ...).

        A node whose control socket does not answer maps every session to the error text.
        """
        result: dict[str, dict[str, str]] = {}
        for ref in self.nodes if nodes is None else nodes:
            node = self.node(ref)
            try:
                rows = self.protocols(node)
            except LabError as exc:
                short = f"(no status: {str(exc).splitlines()[0]})"
                result[node.name] = dict.fromkeys(self.expected_sessions(node), short)
                continue
            result[node.name] = {
                s: (f"{rows[s].state} {rows[s].info}".strip() if s in rows else "(missing)")
                for s in self.expected_sessions(node)
            }
        return result

    def wait_established(
        self,
        timeout: float = 60.0,
        *,
        nodes: Sequence[NodeRef] | None = None,
        check: bool = True,
    ) -> dict[str, dict[str, str]]:
        """Wait until every expected session of ``nodes`` (default all) is Established.

        Returns the last mesh_status.  On timeout raises LabTimeout listing each session's
        state, unless ``check`` is False.
        """
        last: dict[str, dict[str, str]] = {}

        def all_up() -> bool:
            nonlocal last
            last = self.mesh_status(nodes)
            return all(
                state.startswith("up Established")
                for sessions in last.values()
                for state in sessions.values()
            )

        if wait_until(all_up, timeout, interval=0.5) or not check:
            return last
        raise LabTimeout(
            f"sessions not all Established after {timeout:.0f}s:\n" + format_mesh_status(last)
        )

    def routes(self, ref: NodeRef, *, where: Where = "node") -> list[dict[str, Any]]:
        """The namespace's main routing table, ``ip -j route show`` parsed.

        Every entry has a ``protocol`` key (iproute2 omits it for ``boot``; filled in here):
        ``bird`` (12) for BIRD's routes, ``bgp`` (186) for the speaker's.
        """
        ns = {"node": self.netns, "pod": self.pod_netns}.get(where)
        name = self.bridge_netns if ns is None else ns(ref)
        entries: list[dict[str, Any]] = json.loads(ip(name, "-j", "route", "show").stdout or "[]")
        for entry in entries:
            entry.setdefault("protocol", "boot")
            entry.setdefault("type", "unicast")
        return entries

    def route_text(self, ref: NodeRef) -> str:
        """The node's routing table as ``ip route show`` prints it."""
        return ip(self.netns(ref), "route", "show").stdout

    def ping(
        self,
        from_pod: NodeRef,
        to_addr: str,
        count: int = 3,
        interval: float = 0.2,
        *,
        timeout: float = 2.0,
        where: Where = "pod",
    ) -> PingResult:
        """ICMP echo from a node's pod (or the node itself) to ``to_addr``, inside the lab."""
        argv = [
            sys.executable,
            str(ICMP_SCRIPT),
            "--count",
            str(count),
            "--interval",
            str(interval),
            "--timeout",
            str(timeout),
            to_addr,
        ]
        out = self.exec(from_pod, argv, where=where, timeout=count * interval + timeout + 10)
        data = json.loads(out.stdout)
        return PingResult(int(data["sent"]), int(data["received"]), tuple(data["rtt_ms"]))

    def tcp_connections(self, ref: NodeRef) -> list[TcpConnection]:
        """TCP sockets in the node's namespace (``ss -tanH``), listeners included."""
        return parse_ss(self.exec(ref, ["ss", "-tanH"]).stdout)

    def diagnostics(self) -> str:
        """A human-readable dump of the lab (sessions, routes, log tails) for failure reports."""
        parts = [f"=== lab {self.prefix} ({self.run_dir})"]
        for node in self.nodes:
            running = self.daemon_running(node)
            exit_code = self.daemon_exit_code(node)
            parts.append(
                f"--- {node.name} {node.address} {node.kind} "
                f"({'running' if running else f'not running, exit {exit_code}'})"
            )
            try:
                parts.append(self.birdc(node, "show protocols").rstrip())
            except LabError as exc:
                parts.append(f"(show protocols: {exc})")
            with contextlib.suppress(LabError):
                parts.append(self.route_text(node).rstrip())
            for log in (self.log_path(node), self.bird_log_path(node)):
                if log.exists():
                    parts.append(f"[{log.name}]\n{_tail(log)}")
        return "\n".join(parts)


def format_mesh_status(status: dict[str, dict[str, str]]) -> str:
    """Render mesh_status as ``node: session state`` lines."""
    return "\n".join(
        f"  {node}: {session} {state}"
        for node, sessions in status.items()
        for session, state in sessions.items()
    )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


# ---------------------------------------------------------------------- safety net
_LIVE: list[Lab] = []
_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _register(lab: Lab) -> None:
    global _HANDLERS_INSTALLED
    with _LOCK:
        if lab not in _LIVE:
            _LIVE.append(lab)
        if not _HANDLERS_INSTALLED:
            _HANDLERS_INSTALLED = True
            atexit.register(_teardown_all)
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    if signal.getsignal(sig) == signal.SIG_DFL:
                        signal.signal(sig, _on_signal)


def _unregister(lab: Lab) -> None:
    with _LOCK:
        if lab in _LIVE:
            _LIVE.remove(lab)


def _teardown_all() -> None:
    """Tear down every non-persistent lab still up (atexit and fatal signals)."""
    with _LOCK:
        labs = [lab for lab in _LIVE if not lab.persistent]
    for lab in reversed(labs):
        with contextlib.suppress(Exception):
            lab.down()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _teardown_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
