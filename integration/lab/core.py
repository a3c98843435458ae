"""The Lab: builds the seed topology in network namespaces and runs BIRD or the speaker per node.

Topology for a run with prefix ``P`` (e.g. ``spk3fa9c1-``)::

    P br        bridge namespace: bridge br0, one port v<i><name> per node
    P<name>     node namespace: eth0 <address>/<prefixlen> on the bridge, ip_forward=1,
                cali<hex> veth to the pod, route <pod>/32 dev cali<hex> scope link
    P<name>-pod pod namespace: eth0 <pod>/32, default via 169.254.1.1 dev eth0 onlink,
                permanent neighbour 169.254.1.1 -> MAC of the node's cali<hex>

A dual-stack lab (``dual_stack=True``) adds, in the same namespaces: eth0 <address6>/64 on the
node, IPv6 forwarding, route <pod6>/128 dev cali<hex>; eth0 <pod6>/128 in the pod, default via
fe80::ecee:eeff:feee:eeee dev eth0 (Calico's IPv6 gateway) with a permanent neighbour entry to
the cali's MAC, like 169.254.1.1.  Addresses are added ``nodad`` and DAD is off in node and pod
namespaces (link-locals too), so everything is usable at once.  BIRD nodes run bird6 beside bird
(its own config, control socket ``<name>-6.ctl``, PID and logs).

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
    DEFAULT_POOL6,
    DEFAULT_PREFIXLEN,
    Family,
    NodeSpec,
    nodes_for_mix,
    validate_lab,
    with_ipv6,
)
from integration.lab.status import ProtocolState, TcpConnection, parse_protocols, parse_ss

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
ICMP_SCRIPT: Final = Path(__file__).resolve().with_name("icmp.py")
GATEWAY: Final = "169.254.1.1"
"""Calico's fake next hop for pods; answered by a permanent neighbour entry, not proxy ARP."""
GATEWAY6: Final = "fe80::ecee:eeff:feee:eeee"
"""Calico's IPv6 next hop for pods (the link-local of MAC ee:ee:ee:ee:ee:ee).  As for IPv4, a
permanent neighbour entry maps it to the cali veth's MAC: no proxy NDP, no wait for neighbour
discovery or DAD before the first packet."""
NODE_PREFIXLEN6: Final = 64
IPV6_RECORD: Final = "ipv6.json"
"""A dual-stack run's IPv6 pool, beside owner.json (whose keys older lab code must still read;
the nodes' dicts there carry their IPv6 parts, so ``attach`` knows the run is dual-stack)."""
BIRD_PROGRAMS: Final[dict[Family, tuple[str, str]]] = {4: ("bird", "birdc"), 6: ("bird6", "birdc6")}
"""The daemon and client of each family (Debian's bird package ships both pairs)."""

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
    skipped by the atexit/signal teardown and by ``cleanup_stale()``.  ``dual_stack`` adds
    IPv6 (``pool6``; nodes without IPv6 parts get them from ``spec.with_ipv6``): bird6 beside
    bird, IPv6 addresses, routes and pods; methods that read one family take ``family=6``.
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
        dual_stack: bool = False,
        pool6: str = DEFAULT_POOL6,
    ) -> None:
        node_list = nodes_for_mix(nodes) if isinstance(nodes, str) else list(nodes)
        validate_lab(node_list, pool, prefixlen)
        self.dual_stack = dual_stack or any(n.dual_stack for n in node_list)
        if self.dual_stack:
            node_list = [n if n.dual_stack else with_ipv6(n, pool, pool6) for n in node_list]
            validate_lab(node_list, pool, prefixlen, pool6)
        self.families: tuple[Family, ...] = (4, 6) if self.dual_stack else (4,)
        self.nodes: list[NodeSpec] = node_list
        self.pool = pool
        self.pool6 = pool6
        self.prefixlen = prefixlen
        self.persistent = persistent
        self.start_daemons = start_daemons
        self.prefix = check_prefix(prefix) if prefix is not None else new_prefix()
        self.run_dir = run_dir_for(self.prefix)
        self._daemons: dict[tuple[str, Family], _Daemon] = {}
        """Running daemons by (node name, family); a speaker (both families) is under 4."""
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
            pool6=_read_pool6(run_dir_for(prefix)),
        )
        lab._state = "up"
        for node in lab.nodes:
            for program, family in lab.node_daemons(node):
                with contextlib.suppress(OSError, ValueError):
                    pid = int(lab._pid_file(node, family).read_text().strip())
                    log = lab.log_path(node, family)
                    lab._daemons[(node.name, family)] = _Daemon(program, pid, None, log)
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
        if self.dual_stack:  # before owner.json: a reader finds both or an ownerless directory
            (self.run_dir / IPV6_RECORD).write_text(json.dumps({"pool6": self.pool6}) + "\n")
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
            for name, family in list(self._daemons):
                with contextlib.suppress(LabError, OSError):
                    self._stop_daemon(self.node(name), family, signal.SIGTERM, timeout=5.0)
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
            if self.dual_stack:
                for ns in (node_ns, pod_ns):
                    _ipv6_without_dad(ns)
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
            if self.dual_stack:
                self._build_ipv6(node, mac)

    def _build_ipv6(self, node: NodeSpec, cali_mac: str) -> None:
        """The node's and pod's IPv6 side, once their links exist (see the module docstring)."""
        node_ns, pod_ns, cali = self.netns(node), self.pod_netns(node), self.cali_name(node)
        address6, pod6 = node.ipv6("address6"), node.ipv6("pod_address6")
        ip(node_ns, "-6", "addr", "add", f"{address6}/{NODE_PREFIXLEN6}", "dev", "eth0", "nodad")
        sysctl(node_ns, "net.ipv6.conf.all.forwarding", "1")
        ip(pod_ns, "-6", "addr", "add", f"{pod6}/128", "dev", "eth0", "nodad")
        ip(pod_ns, "-6", "route", "add", "default", "via", GATEWAY6, "dev", "eth0")
        ip(
            pod_ns,
            "-6",
            "neigh",
            "replace",
            GATEWAY6,
            "lladdr",
            cali_mac,
            "dev",
            "eth0",
            "nud",
            "permanent",
        )
        ip(node_ns, "-6", "route", "add", f"{pod6}/128", "dev", cali)

    def _add_node_netns(self, node: NodeSpec) -> None:
        """Create the node's namespace (a backend may instead name a container's, see docker.py)."""
        add_netns(self.netns(node))

    def _write_configs(self) -> None:
        for node in self.nodes:
            if node.kind == "bird":
                for family in self.families:
                    text = configs.render_bird_config(
                        node,
                        self.nodes,
                        self.pool if family == 4 else self.pool6,
                        log_file=str(self.bird_log_path(node, family)),
                        family=family,
                    )
                    self.config_path(node, family).write_text(text)
            else:
                text = configs.render_speaker_config(
                    node,
                    self.nodes,
                    self.pool,
                    control_socket=str(self.control_socket(node)),
                    pool6=self.pool6 if self.dual_stack else None,
                    control_socket6=str(self.control_socket(node, 6)) if self.dual_stack else None,
                )
                self.config_path(node).write_text(text)

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

    def config_path(self, ref: NodeRef, family: Family = 4) -> Path:
        """The node's daemon config: ``<name>.bird.cfg`` (``.bird6.cfg``) or ``<name>.toml``
        (one file for both families)."""
        node = self.node(ref)
        suffix = self._program(node, family) + ".cfg" if node.kind == "bird" else "toml"
        return self.run_dir / f"{node.name}.{suffix}"

    def control_socket(self, ref: NodeRef, family: Family = 4) -> Path:
        """The node's control socket (BIRD's, or the speaker's BIRD-compatible one); family 6:
        bird6's, or the speaker's ``control_socket6`` (``<name>-6.ctl``)."""
        name = self.node(ref).name
        return self.run_dir / (f"{name}.ctl" if family == 4 else f"{name}-6.ctl")

    def log_path(self, ref: NodeRef, family: Family = 4) -> Path:
        """Where the daemon's stdout/stderr go (``<name>.bird.out``, ``<name>.bird6.out``,
        ``<name>.speaker.out``)."""
        node = self.node(ref)
        return self.run_dir / f"{node.name}.{self._program(node, family)}.out"

    def bird_log_path(self, ref: NodeRef, family: Family = 4) -> Path:
        """BIRD's own log file (the config's ``log`` statement): ``<name>.bird[6].log``."""
        return self.run_dir / f"{self.node(ref).name}.{BIRD_PROGRAMS[family][0]}.log"

    def _pid_file(self, node: NodeSpec, family: Family) -> Path:
        """Where the lab records a daemon's PID (``attach`` reads it back)."""
        return self.run_dir / f"{node.name}.daemon{'' if family == 4 else '6'}.pid"

    def _program(self, node: NodeSpec, family: Family) -> str:
        """The daemon that serves ``family`` on the node: bird, bird6 or speaker (both)."""
        return BIRD_PROGRAMS[family][0] if node.kind == "bird" else node.kind

    def node_daemons(self, ref: NodeRef) -> list[tuple[str, Family]]:
        """The daemons a node runs, as (program, family): bird (and bird6), or the speaker."""
        node = self.node(ref)
        if node.kind != "bird":
            return [(node.kind, 4)]
        return [(BIRD_PROGRAMS[f][0], f) for f in self.families]

    def bird_nodes(self) -> list[NodeSpec]:
        """Nodes running BIRD."""
        return [n for n in self.nodes if n.kind == "bird"]

    def speaker_nodes(self) -> list[NodeSpec]:
        """Nodes running the speaker."""
        return [n for n in self.nodes if n.kind == "speaker"]

    # ------------------------------------------------------------------ daemons
    def start_node(self, ref: NodeRef) -> int:
        """Start the node's daemons according to its kind (bird6 too, dual stack); returns the
        PID of its first (bird, or the speaker)."""
        node = self.node(ref)
        if node.kind != "bird":
            return self.start_speaker(node)
        pids = [self.start_bird(node, family=family) for family in self.families]
        return pids[0]

    def start_bird(self, ref: NodeRef, *, graceful: bool = False, family: Family = 4) -> int:
        """Start BIRD (``family=6``: bird6) in the node's namespace (``-R`` if ``graceful``);
        wait for its control socket.

        Runs ``bird -f -c CFG -s SOCK -P PIDFILE`` (``-f``: stay in the foreground so the lab
        tracks the real PID).  Raises LabError if the config does not parse or BIRD exits.
        """
        node = self._require(ref, "bird", family)
        self._require_not_running(node, family)
        program, client = BIRD_PROGRAMS[family]
        cfg = self.config_path(node, family)
        parse = run([program, "-p", "-c", str(cfg)], check=False)
        if parse.returncode != 0:
            raise LabError(
                f"{program} rejects {cfg}: {parse.stderr.strip() or parse.stdout.strip()}"
            )
        sock = self.control_socket(node, family)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        argv = [
            program,
            "-f",
            "-c",
            str(cfg),
            "-s",
            str(sock),
            "-P",
            str(self.run_dir / f"{node.name}.{program}.pid"),
        ]
        if graceful:
            argv.append("-R")
        daemon = self._spawn(node, argv, family)

        def answering_or_dead() -> bool:
            if not pid_alive(daemon.pid):
                return True
            probe = [client, "-s", str(sock), "show", "status"]
            return sock.exists() and run(probe, check=False).returncode == 0

        ok = wait_until(answering_or_dead, 10.0, interval=0.1)
        if not pid_alive(daemon.pid):
            self._forget(node, family)
            raise LabError(f"{program} on {node.name} exited at start:\n{_tail(daemon.log)}")
        if not ok:
            raise LabError(
                f"{program} on {node.name}: control socket {sock} not answering after 10 s"
            )
        return daemon.pid

    def stop_bird(self, ref: NodeRef, *, timeout: float = 10.0, family: Family = 4) -> int | None:
        """Stop BIRD (bird6) cleanly (SIGTERM: it sends Cease to its peers); returns its exit
        status."""
        node = self._require(ref, "bird", family)
        return self._stop_daemon(node, family, signal.SIGTERM, timeout=timeout)

    def kill_bird(self, ref: NodeRef, sig: int = signal.SIGKILL, *, family: Family = 4) -> None:
        """Send ``sig`` to BIRD (bird6) (SIGKILL: die without NOTIFICATION, for graceful-restart
        tests); the other family's daemon is left alone.

        Waits for the process to end when ``sig`` is SIGKILL/SIGTERM/SIGINT.
        """
        node = self._require(ref, "bird", family)
        self._signal_daemon(node, family, sig)

    def start_speaker(self, ref: NodeRef) -> int:
        """Start ``python -m speaker run --config FILE`` in the node's namespace; returns its PID.

        Does not wait for readiness (a daemon that fails at once shows in ``daemon_running`` and
        its log).
        """
        node = self._require(ref, "speaker")
        self._require_not_running(node, 4)
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
        return self._spawn(node, argv, 4).pid

    def stop_speaker(
        self, ref: NodeRef, sig: int = signal.SIGTERM, *, timeout: float = 10.0
    ) -> int | None:
        """Send ``sig`` to the speaker and wait (SIGKILL after ``timeout``); returns exit status."""
        node = self._require(ref, "speaker")
        return self._stop_daemon(node, 4, sig, timeout=timeout)

    def kill_speaker(self, ref: NodeRef, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the speaker (waits when it is SIGKILL/SIGTERM/SIGINT)."""
        node = self._require(ref, "speaker")
        self._signal_daemon(node, 4, sig)

    def stop_node(self, ref: NodeRef, *, timeout: float = 10.0) -> int | None:
        """Stop the node's daemons, whatever its kind; returns the first one's exit status."""
        node = self.node(ref)
        codes = [
            self._stop_daemon(node, family, signal.SIGTERM, timeout=timeout)
            for _, family in self.node_daemons(node)
        ]
        return codes[0]

    def daemon_pid(self, ref: NodeRef, family: Family = 4) -> int | None:
        """PID of the node's daemon (``family=6``: bird6) if the lab started one and it runs."""
        node = self.node(ref)
        daemon = self._daemons.get((node.name, self._daemon_family(node, family)))
        if daemon is None or not self._alive(daemon):
            return None
        return daemon.pid

    def daemon_running(self, ref: NodeRef, family: Family = 4) -> bool:
        """True if the node's daemon (``family=6``: bird6) is running."""
        return self.daemon_pid(ref, family) is not None

    def daemon_exit_code(self, ref: NodeRef, family: Family = 4) -> int | None:
        """Exit status of the node's daemon if it was started by this process and has ended."""
        node = self.node(ref)
        daemon = self._daemons.get((node.name, self._daemon_family(node, family)))
        if daemon is None or daemon.popen is None:
            return None
        return daemon.popen.poll()

    @staticmethod
    def _daemon_family(node: NodeSpec, family: Family) -> Family:
        """The key a family's daemon is kept under: the speaker serves both families as one."""
        return family if node.kind == "bird" else 4

    def _require(self, ref: NodeRef, kind: str, family: Family = 4) -> NodeSpec:
        node = self.node(ref)
        if node.kind != kind:
            raise LabError(f"node {node.name} runs {node.kind}, not {kind}")
        if self._state != "up":
            raise LabError(f"lab {self.prefix} is {self._state}, not up")
        if family not in self.families:
            raise LabError(f"lab {self.prefix} is not dual-stack: no IPv6 daemon on {node.name}")
        return node

    def _require_not_running(self, node: NodeSpec, family: Family) -> None:
        if self.daemon_running(node, family):
            raise LabError(
                f"{node.name}: {self._program(node, family)} already runs "
                f"(pid {self.daemon_pid(node, family)})"
            )

    def _spawn(self, node: NodeSpec, argv: list[str], family: Family = 4) -> _Daemon:
        log = self.log_path(node, family)
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
        daemon = _Daemon(self._program(node, family), popen.pid, popen, log)
        self._daemons[(node.name, family)] = daemon
        self._pid_file(node, family).write_text(f"{popen.pid}\n")
        return daemon

    def _forget(self, node: NodeSpec, family: Family) -> None:
        self._daemons.pop((node.name, family), None)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file(node, family).unlink()

    def _alive(self, daemon: _Daemon) -> bool:
        if daemon.popen is not None:
            return daemon.popen.poll() is None
        return pid_alive(daemon.pid)

    def _owned_pid(self, node: NodeSpec, family: Family) -> int | None:
        """The daemon's PID, only if it still runs inside this lab's node namespace."""
        daemon = self._daemons.get((node.name, family))
        if daemon is None or not self._alive(daemon):
            return None
        if daemon.popen is None and daemon.pid not in netns_pids(self.netns(node)):
            return None  # attached run: the recorded PID is no longer our daemon
        return daemon.pid

    def _signal_daemon(self, node: NodeSpec, family: Family, sig: int) -> None:
        pid = self._owned_pid(node, family)
        if pid is None:
            raise LabError(f"{node.name}: no running {self._program(node, family)} to signal")
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self._wait_daemon(node, family, 10.0)

    def _wait_daemon(self, node: NodeSpec, family: Family, timeout: float) -> int | None:
        daemon = self._daemons[(node.name, family)]
        if daemon.popen is not None:
            try:
                return daemon.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        wait_until(lambda: not pid_alive(daemon.pid), timeout, interval=0.05)
        return None

    def _stop_daemon(
        self, node: NodeSpec, family: Family, sig: int, *, timeout: float
    ) -> int | None:
        daemon = self._daemons.get((node.name, family))
        if daemon is None:
            return None
        pid = self._owned_pid(node, family)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._alive(daemon) and self._wait_daemon(node, family, timeout) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_daemon(node, family, 5.0)
        code = daemon.popen.poll() if daemon.popen is not None else None
        self._forget(node, family)
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

    def birdc(
        self, ref: NodeRef, command: str, *, timeout: float = 10.0, family: Family = 4
    ) -> str:
        """Run ``birdc -s <node's control socket> <command>`` (``family=6``: ``birdc6`` on the
        IPv6 socket); returns its text output.

        Works for speaker nodes too once the daemon serves BIRD's control protocol.
        """
        sock = self.control_socket(ref, family)
        if not sock.exists():
            raise LabError(f"{self.node(ref).name}: no control socket at {sock}")
        client = BIRD_PROGRAMS[family][1]
        proc = run([client, "-s", str(sock), *command.split()], timeout=timeout, check=False)
        if proc.returncode != 0:
            raise LabError(
                f"{client} {command!r} on {self.node(ref).name} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc.stdout

    def protocols(self, ref: NodeRef, family: Family = 4) -> dict[str, ProtocolState]:
        """The node's ``show protocols`` rows (``family=6``: bird6's), keyed by protocol name."""
        return parse_protocols(self.birdc(ref, "show protocols", family=family))

    def expected_sessions(self, ref: NodeRef, family: Family = 4) -> list[str]:
        """Protocol names a node should have: ``Mesh_<peer>`` for every other node (``family=6``:
        ``Mesh_<peer's IPv6 address>``)."""
        node = self.node(ref)
        return [p.protocol_name_of(family) for p in self.nodes if p.name != node.name]

    def mesh_status(
        self, nodes: Sequence[NodeRef] | None = None, families: Sequence[Family] | None = None
    ) -> dict[str, dict[str, str]]:
        """For each node, expected session -> state text (``Established``, ``Passive``, ...),
        the sessions of every family of the lab (or of ``families``) together: their names
        differ (``Mesh_192_168_0_80``, ``Mesh_fd00_192_168__80``).

        A node whose control socket does not answer maps every session to the error text.
        """
        result: dict[str, dict[str, str]] = {}
        for ref in self.nodes if nodes is None else nodes:
            node = self.node(ref)
            result[node.name] = {}
            for family in self.families if families is None else families:
                expected = self.expected_sessions(node, family)
                try:
                    rows = self.protocols(node, family)
                except LabError as exc:
                    short = f"(no status: {str(exc).splitlines()[0]})"
                    result[node.name].update(dict.fromkeys(expected, short))
                    continue
                result[node.name].update(
                    (s, f"{rows[s].state} {rows[s].info}".strip() if s in rows else "(missing)")
                    for s in expected
                )
        return result

    def wait_established(
        self,
        timeout: float = 60.0,
        *,
        nodes: Sequence[NodeRef] | None = None,
        check: bool = True,
        families: Sequence[Family] | None = None,
    ) -> dict[str, dict[str, str]]:
        """Wait until every expected session of ``nodes`` (default all) is Established, in
        every family of the lab (or those of ``families``).

        Returns the last mesh_status.  On timeout raises LabTimeout listing each session's
        state, unless ``check`` is False.
        """
        last: dict[str, dict[str, str]] = {}

        def all_up() -> bool:
            nonlocal last
            last = self.mesh_status(nodes, families)
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

    def routes(
        self, ref: NodeRef, *, where: Where = "node", family: Family = 4
    ) -> list[dict[str, Any]]:
        """The namespace's main routing table, ``ip -j route show`` parsed (``family=6``:
        ``ip -6``).

        Every entry has a ``protocol`` key (iproute2 omits it for ``boot``; filled in here):
        ``bird`` (12) for BIRD's routes, ``bgp`` (186) for the speaker's.
        """
        ns = {"node": self.netns, "pod": self.pod_netns}.get(where)
        name = self.bridge_netns if ns is None else ns(ref)
        out = ip(name, f"-{family}", "-j", "route", "show").stdout
        entries: list[dict[str, Any]] = json.loads(out or "[]")
        for entry in entries:
            entry.setdefault("protocol", "boot")
            entry.setdefault("type", "unicast")
        return entries

    def route_text(self, ref: NodeRef, family: Family = 4) -> str:
        """The node's routing table as ``ip route show`` (``ip -6 route show``) prints it."""
        if family == 4:
            return ip(self.netns(ref), "route", "show").stdout
        return ip(self.netns(ref), "-6", "route", "show").stdout

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
        """ICMP echo from a node's pod (or the node itself) to ``to_addr``, inside the lab
        (an IPv6 ``to_addr``: ICMPv6 echo, a ping6)."""
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
            for program, family in self.node_daemons(node):
                running = self.daemon_running(node, family)
                exit_code = self.daemon_exit_code(node, family)
                parts.append(
                    f"--- {node.name} {node.address_of(family)} {program} "
                    f"({'running' if running else f'not running, exit {exit_code}'})"
                )
            for family in self.families:
                try:
                    parts.append(self.birdc(node, "show protocols", family=family).rstrip())
                except LabError as exc:
                    parts.append(f"(show protocols, IPv{family}: {exc})")
                with contextlib.suppress(LabError):
                    parts.append(self.route_text(node, family).rstrip())
            logs = {self.log_path(node, f): None for f in self.families}
            logs.update({self.bird_log_path(node, f): None for f in self.families})
            for log in logs:
                if log.exists():
                    parts.append(f"[{log.name}]\n{_tail(log)}")
        return "\n".join(parts)


def _read_pool6(run_dir: Path) -> str:
    """The IPv6 pool a dual-stack run recorded (the default for other runs)."""
    try:
        return str(json.loads((run_dir / IPV6_RECORD).read_text())["pool6"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_POOL6


def _ipv6_without_dad(netns: str) -> None:
    """IPv6 on, duplicate address detection off for links made from now on in ``netns``: the
    link-locals are then usable at once, as the ``nodad`` addresses are (a container engine
    may also have switched IPv6 off in a namespace it made)."""
    for key in ("all", "default"):
        sysctl(netns, f"net.ipv6.conf.{key}.disable_ipv6", "0")
        sysctl(netns, f"net.ipv6.conf.{key}.accept_dad", "0")


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
