"""The lab's Docker backend (issue 6): BIRD nodes as real containers, wired into the namespaces.

Runs only with ``--lab-backend docker`` (or ``SPEAKER_LAB_BACKEND=docker``); skipped otherwise.

* The offline image: a root filesystem made of the host's bird/birdc binaries and the libraries
  ldd names, ``docker import``-ed; it runs BIRD 1.6.8 and birdc.  The automatic choice between
  the Dockerfile and the offline import says which it took and why.
* The engine: a lab-started dockerd (on its own socket and data root here) answers, has no
  bridge network, gives a ``--network none`` container nothing but ``lo``, leaves the root
  namespace's links, addresses, routes, ip_forward and firewall rules as they were, and is
  stopped by PID when released.
* The seed mix with BIRD on .80 and .82 in containers and the speaker on .81: the lab's names
  denote the containers' own namespaces, sessions are Established on all sides, every kernel
  holds the blocks (for the containers read from inside their namespace with nsenter), and the
  pods ping each other.
* Dual stack, BIRD everywhere: each node's bird6 runs in a container of its own
  (``<node>-bird6``) in the node container's namespace, beside ``<node>-bird``; all twelve
  sessions are Established, every IPv6 table read from inside the container namespaces holds
  the /122 blocks, and the pods ping6 each other.  ``docker kill -s KILL`` of one bird6
  container leaves bird and the namespace alone.
* ``docker kill -s KILL`` of .82's BIRD container, then a new BIRD container with ``bird -R``:
  a continuous 20/s ping between the pods of .81 (speaker) and .82, both ways, loses nothing;
  a control ping into .82's blackhole, in the same window, loses everything.
* Teardown removes containers, the run's image, namespaces and run directory when the code
  using the lab fails, and ``cleanup_stale`` does the same for a run whose process was killed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import LabFactory, lab_backend
from integration.lab import Lab, NodeSpec, cleanup_stale, wait_until
from integration.lab.core import ICMP_SCRIPT, REPO_ROOT
from integration.lab.netns import netns_exec_argv, pid_alive, run
from integration.lab.spec import Family
from integration.test_lab_bird import route_problems

CONVERGE = 60.0
KERNEL_SYNC = 20.0
GR_RESTART_TIME = 120
"""BIRD 1.6.8's default graceful-restart time: helpers keep the routes at most this long."""


@pytest.fixture(autouse=True)
def _docker_backend_only(request: pytest.FixtureRequest) -> None:
    if lab_backend(request.config) != "docker":
        pytest.skip("needs the Docker backend: run with --lab-backend docker")


def lab_docker() -> Any:
    """integration.lab.docker, imported only when these tests run (it needs the Docker SDK)."""
    from integration.lab import docker as module

    return module


# ---------------------------------------------------------------------- helpers
def kernel_problems(mesh: Any, node: NodeSpec, family: Family = 4) -> list[str]:
    """Differences between a node's kernel table and what the mesh should have put there
    (:func:`integration.test_lab_bird.route_problems`).  Container nodes are read from inside
    the container's own namespace (nsenter -t PID -n), speaker nodes through the lab's
    namespace name."""
    routes = (mesh.container_routes(node, family) if mesh.in_container(node)
              else mesh.routes(node, family=family))
    return route_problems(node, mesh.nodes, routes, family)


def all_kernel_problems(mesh: Any) -> list[str]:
    return [p for node in mesh.nodes for p in kernel_problems(mesh, node)]


def kernel6_problems(mesh: Any, node: NodeSpec) -> list[str]:
    """The IPv6 table of a node, read as :func:`kernel_problems` reads the IPv4 one."""
    return kernel_problems(mesh, node, 6)


def ns_inode(path: str) -> int:
    return os.stat(path).st_ino


class Pinger:
    """icmp.py in a pod namespace, in the background: ``count`` echo requests ``interval`` apart."""

    def __init__(self, mesh: Lab, src: str, dst_addr: str, count: int, interval: float) -> None:
        self.name = f"{src} pod -> {dst_addr}"
        argv = [
            sys.executable,
            str(ICMP_SCRIPT),
            "--count",
            str(count),
            "--interval",
            str(interval),
            "--timeout",
            "2",
            dst_addr,
        ]
        self.proc = subprocess.Popen(
            netns_exec_argv(mesh.pod_netns(src), argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def result(self, timeout: float) -> tuple[int, int]:
        """(sent, received) once it has finished."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"{self.name}: exit {self.proc.returncode}: {err}"
        data = json.loads(out)
        return int(data["sent"]), int(data["received"])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pingers() -> Iterator[list[Pinger]]:
    made: list[Pinger] = []
    yield made
    for pinger in made:
        pinger.kill()


def root_network_snapshot() -> dict[str, str]:
    """The root namespace's links, addresses, routes, forwarding and firewall rules."""
    links = json.loads(run(["ip", "-j", "link", "show"]).stdout)
    snap = {
        "links": json.dumps(sorted((link["ifname"], link.get("master", "")) for link in links)),
        "addresses": run(["ip", "-o", "addr", "show"]).stdout,
        "routes": run(["ip", "route", "show", "table", "all"]).stdout,
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }
    if shutil.which("nft"):
        snap["nft"] = run(["nft", "list", "ruleset"], check=False).stdout
    return snap


# ---------------------------------------------------------------------- image
def test_offline_image_from_host_binaries_runs_bird(docker_engine: Any) -> None:
    ld = lab_docker()
    data, files = ld.host_rootfs_tar()
    for wanted in ("/usr/sbin/bird", "/usr/sbin/birdc", "/bin/sh", "/bin/sleep"):
        assert wanted in files
    assert any(Path(f).name.startswith("ld-linux") for f in files), files
    assert any(Path(f).name.startswith("libc.so") for f in files), files
    assert len(data) < 20 * 1024 * 1024, f"offline rootfs is {len(data)} bytes"

    client = docker_engine.client
    tag = f"{ld.IMAGE_REPO}:test{secrets.token_hex(3)}"
    containers: list[Any] = []
    try:
        ld.import_image(client, tag, None)
        image = client.images.get(tag)
        assert image.attrs["Size"] < 20 * 1024 * 1024
        assert image.labels.get(ld.LABEL) == "1"

        def run_once(argv: list[str]) -> tuple[int, str]:
            container = client.containers.run(tag, argv, network_mode="none", detach=True)
            containers.append(container)
            code = int(container.wait(timeout=30)["StatusCode"])
            return code, container.logs().decode(errors="replace")

        code, out = run_once(["/usr/sbin/bird", "--version"])
        assert "BIRD version 1.6.8" in out, (code, out)
        code, out = run_once(["/usr/sbin/birdc", "-s", "/run/bird/none.ctl", "show", "status"])
        assert code != 0 and "Unable to connect to server control socket" in out, (code, out)
        code, out = run_once(["/bin/sh", "-c", "echo /sys/class/net/*"])
        assert (code, out.split()) == (0, ["/sys/class/net/lo"]), "--network none: only lo"
    finally:
        for container in containers:
            container.remove(force=True)
        ld.remove_image(client, tag)
    with pytest.raises(ld.ImageNotFound):
        client.images.get(tag)


def test_image_choice_says_which(docker_engine: Any) -> None:
    ld = lab_docker()
    client = docker_engine.client
    tag = f"{ld.IMAGE_REPO}:test{secrets.token_hex(3)}"
    try:
        how, why = ld.make_image(client, tag, None, source="auto")
        available, reason = ld.base_image_available(client)
        assert how in ("import", "dockerfile")
        if not available:
            assert how == "import"
            assert "cannot pull" in why and reason in why, why
        else:
            assert how == "dockerfile" or "Dockerfile build failed" in why, why
        out = client.containers.run(
            tag, ["/usr/sbin/bird", "--version"], remove=True, stderr=True, network_mode="none"
        )
        assert b"BIRD version 1.6" in out
    finally:
        ld.remove_image(client, tag)
    with pytest.raises(ld.LabError, match="want one of"):
        ld.make_image(client, tag, None, source="pull-from-space")


# ---------------------------------------------------------------------- engine
def test_engine_start_stop_leaves_host_networking_alone(docker_engine: Any) -> None:
    ld = lab_docker()
    token = secrets.token_hex(3)
    paths = ld.EnginePaths(
        state_dir=Path(f"/run/speaker-lab-docker-test{token}"),
        data_root=Path(f"/var/lib/docker-speaker-lab-test{token}"),
    )
    before = root_network_snapshot()
    engine = None
    try:
        engine = ld.ensure_engine(log=lambda _: None, paths=paths)
        assert engine.started_here and engine.dockerd_pid is not None
        argv = Path(f"/proc/{engine.dockerd_pid}/cmdline").read_bytes().split(b"\0")
        for flag in (b"--iptables=false", b"--ip6tables=false", b"--bridge=none"):
            assert flag in argv, argv
        record = ld.read_engine_record(paths)
        assert record is not None and record.pid == engine.dockerd_pid
        assert record.owner_pid == os.getpid()
        assert "bridge" not in {n.name for n in engine.client.networks.list()}
        assert root_network_snapshot() == before, "dockerd changed the root namespace"

        outcome = ld.release_engine(engine)
        assert outcome == f"stopped dockerd pid {engine.dockerd_pid}", outcome
        assert not pid_alive(engine.dockerd_pid)
        assert not paths.socket.exists()
        assert ld.read_engine_record(paths) is None
        assert root_network_snapshot() == before
    finally:
        if engine is not None:
            ld.release_engine(engine)
        shutil.rmtree(paths.state_dir, ignore_errors=True)
        shutil.rmtree(paths.data_root, ignore_errors=True)


# ---------------------------------------------------------------------- the seed mix
def test_seed_mix_bird_in_containers(lab: LabFactory) -> None:
    mesh: Any = lab("seed")
    bird80, speaker81, bird82 = mesh.nodes
    assert [n.kind for n in mesh.nodes] == ["bird", "speaker", "bird"]
    assert mesh.node_container(speaker81) is None and mesh.bird_container(speaker81) is None

    for node in (bird80, bird82):
        holder, bird = mesh.node_container(node), mesh.bird_container(node)
        assert holder.status == bird.status == "running"
        assert holder.attrs["HostConfig"]["NetworkMode"] == "none"
        assert bird.attrs["HostConfig"]["NetworkMode"] == f"container:{holder.id}"
        holder_pid, bird_pid = holder.attrs["State"]["Pid"], bird.attrs["State"]["Pid"]
        named = ns_inode(f"/run/netns/{mesh.netns(node)}")
        assert (
            named == ns_inode(f"/proc/{holder_pid}/ns/net") == ns_inode(f"/proc/{bird_pid}/ns/net")
        )
        assert named != ns_inode("/proc/self/ns/net")
        assert ns_inode(f"/proc/{bird_pid}/ns/pid") != ns_inode("/proc/self/ns/pid")
        assert mesh.daemon_pid(node) == bird_pid
        assert "BIRD 1.6.8" in mesh.birdc(node, "show status")  # docker exec birdc

    status = mesh.wait_established(CONVERGE)
    for node in mesh.nodes:
        assert all(s.startswith("up Established") for s in status[node.name].values()), status

    assert wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC), all_kernel_problems(mesh)
    for src in mesh.nodes:
        for dst in mesh.nodes:
            if dst.name != src.name:
                result = mesh.ping(src, dst.pod_address, count=3, interval=0.1)
                assert result.ok, f"pod {src.pod_address} -> pod {dst.pod_address}: {result}"


def test_dual_stack_bird6_in_containers(lab: LabFactory) -> None:
    mesh: Any = lab("bird", dual_stack=True)
    for node in mesh.nodes:
        holder = mesh.node_container(node)
        bird, bird6 = mesh.bird_container(node), mesh.bird_container(node, 6)
        assert bird6.name == f"{mesh.prefix}{node.name}-bird6"
        assert holder.status == bird.status == bird6.status == "running"
        assert bird6.attrs["HostConfig"]["NetworkMode"] == f"container:{holder.id}"
        assert bird6.attrs["Config"]["Cmd"][0] == "/usr/sbin/bird6"
        named = ns_inode(f"/run/netns/{mesh.netns(node)}")
        assert ns_inode(f"/proc/{bird6.attrs['State']['Pid']}/ns/net") == named
        assert mesh.daemon_pid(node, 6) == bird6.attrs["State"]["Pid"] != mesh.daemon_pid(node)
        assert "BIRD 1.6.8" in mesh.birdc(node, "show status", family=6)  # docker exec birdc6

    status = mesh.wait_established(CONVERGE)
    for node in mesh.nodes:
        assert len(status[node.name]) == 4, status
        assert all(s.startswith("up Established") for s in status[node.name].values()), status

    def problems() -> list[str]:
        return [p for node in mesh.nodes for p in kernel6_problems(mesh, node)]

    assert wait_until(lambda: not problems(), KERNEL_SYNC), problems()
    assert wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC), all_kernel_problems(mesh)
    for src in mesh.nodes:
        for dst in mesh.nodes:
            if dst.name != src.name:
                result = mesh.ping(src, dst.pod_address6, count=3, interval=0.1)
                assert result.ok, f"pod {src.pod_address6} -> pod {dst.pod_address6}: {result}"

    victim = mesh.nodes[2]
    bird_pid = mesh.daemon_pid(victim)
    mesh.kill_bird(victim, family=6)  # docker kill -s KILL <prefix>node82-bird6
    killed = mesh.bird_container(victim, 6)
    assert killed.status == "exited" and killed.attrs["State"]["ExitCode"] == 137
    assert mesh.daemon_pid(victim) == bird_pid  # bird's container lives on
    assert mesh.node_container(victim).status == "running"
    time.sleep(3)  # more than a kernel scan: bird6's routes stay (persist)
    assert kernel6_problems(mesh, victim) == []
    mesh.start_bird(victim, graceful=True, family=6)
    assert "-R" in mesh.bird_container(victim, 6).attrs["Config"]["Cmd"]
    mesh.wait_established(CONVERGE)
    assert wait_until(lambda: not problems(), KERNEL_SYNC), problems()


def test_bird_container_killed_restarted_with_R_no_ping_lost(
    lab: LabFactory, pingers: list[Pinger]
) -> None:
    mesh: Any = lab("seed")
    _, speaker81, bird82 = mesh.nodes
    bird80 = mesh.nodes[0]
    mesh.wait_established(CONVERGE)
    assert wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC), all_kernel_problems(mesh)

    interval, seconds = 0.05, 45.0  # 20 echo requests a second per direction
    count = int(seconds / interval)
    pingers.append(Pinger(mesh, speaker81.name, bird82.pod_address, count, interval))
    pingers.append(Pinger(mesh, bird82.name, speaker81.pod_address, count, interval))
    unused = str(ipaddress.IPv4Address(bird82.pod_address) + 1)  # in .82's block, no pod
    control = Pinger(mesh, bird80.name, unused, 40, 0.1)  # into .82's blackhole: must all be lost
    pingers.append(control)
    time.sleep(1.0)

    old = mesh.bird_container(bird82)
    mesh.kill_bird(bird82)  # docker kill -s KILL <prefix>node82-bird
    old.reload()
    assert old.status == "exited" and old.attrs["State"]["ExitCode"] == 137, old.attrs["State"]
    assert mesh.node_container(bird82).status == "running"  # the node's namespace lives on
    assert not mesh.daemon_running(bird82)

    show82 = f"show protocols all {bird82.protocol_name}"
    assert wait_until(
        lambda: "Neighbor graceful restart active" in mesh.birdc(bird80, show82), 15.0
    ), mesh.birdc(bird80, show82)
    time.sleep(3)  # longer than a kernel scan: nothing may be flushed meanwhile
    assert kernel_problems(mesh, bird82) == []  # persist: BIRD's routes stay in the namespace
    assert kernel_problems(mesh, speaker81) == []  # the speaker helps: .82's block kept

    mesh.start_bird(bird82, graceful=True)
    new = mesh.bird_container(bird82)
    assert new.id != old.id and "-R" in new.attrs["Config"]["Cmd"]
    assert "Graceful restart recovery in progress" in mesh.birdc(bird82, "show status")
    mesh.wait_established(CONVERGE)
    recovered = wait_until(
        lambda: "Graceful restart recovery" not in mesh.birdc(bird82, "show status"), 30.0
    )
    assert recovered, mesh.birdc(bird82, "show status")
    assert wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC), all_kernel_problems(mesh)
    # The window must cover the kill and the whole recovery.
    assert pingers[0].running() and pingers[1].running(), "ping ended before recovery did"

    for pinger in pingers[:2]:
        sent, received = pinger.result(seconds + 30)
        assert sent == count
        assert received == sent, f"{pinger.name}: {sent - received} of {sent} lost"
    sent, received = control.result(30)
    assert (sent, received) == (40, 0), "the control ping into a blackhole got answers"


# ---------------------------------------------------------------------- cleanup
def test_teardown_removes_everything_when_the_test_fails(docker_engine: Any) -> None:
    ld = lab_docker()
    mesh = ld.DockerLab("seed", engine=docker_engine)
    client = docker_engine.client
    with pytest.raises(RuntimeError, match="simulated"), mesh:
        made = ld.leftovers(client, [mesh.prefix])
        assert len([m for m in made if m.startswith("container ")]) == 4, made
        assert f"image {mesh.image_tag}" in made, made
        assert len([m for m in made if m.startswith("namespace ")]) == 7, made
        raise RuntimeError("simulated test failure")
    assert ld.leftovers(client, [mesh.prefix]) == []


def test_stale_run_of_a_killed_process_is_swept(docker_engine: Any) -> None:
    ld = lab_docker()
    script = (
        "import sys, time\n"
        "from integration.lab.docker import DockerLab\n"
        "lab = DockerLab('bird,speaker,bird').up()\n"
        "print(lab.prefix, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), DOCKER_HOST=docker_engine.base_url)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    prefix = ""
    try:
        assert proc.stdout is not None
        prefix = proc.stdout.readline().strip()
        assert prefix.startswith("spk"), proc.stderr.read() if proc.stderr else ""
        client = docker_engine.client
        assert len(ld.lab_containers(client, prefix)) == 4
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a crash: no teardown runs in that process
        proc.wait()
    assert ld.leftovers(docker_engine.client, [prefix]) != []
    removed = cleanup_stale()
    assert prefix in removed
    assert ld.leftovers(docker_engine.client, [prefix]) == []
    assert docker_engine.client.ping()  # the session's engine is still in service
