"""Docker backend of the lab: BIRD nodes as real containers wired into the namespace topology.

A BIRD node is two containers of one image (BIRD 1.6.8), both with Docker networking off:

* ``<prefix><node>`` (the *node container*), ``--network none``; PID 1 is a small shell loop.  It
  stands for the Calico host: it owns the node's network namespace, which the lab names with
  ``ip netns attach <prefix><node> <pid>`` (a bind mount of the container's ``ns/net``, so it
  can never end up pointing at another namespace, unlike a ``/proc/PID`` symlink once the PID is
  reused).  All the lab code that says ``ip -n``/``ip netns exec`` then works unchanged: eth0 on
  the bridge, the pod's cali veth, ip_forward, routes.
* ``<prefix><node>-bird`` (the *BIRD container*), ``--network container:<node container>``;
  PID 1 is ``bird -f`` (``-R`` on a graceful restart), like calico-node sharing its host's
  network namespace.  ``docker kill -s KILL`` on it kills BIRD only: the namespace, its links
  and the kernel routes BIRD leaves behind (``persist``) stay, as on a real host, and the node
  is started again with a new BIRD container running ``bird -R``.  ``birdc`` reaches it through
  ``docker exec``.

Speaker nodes, the pods and the bridge stay plain namespaces, so any mix works.

A dual-stack lab gives each BIRD node a third container, ``<prefix><node>-bird6`` (PID 1
``bird6 -f``), in the same network namespace, as Calico runs bird6 beside bird: killed and
restarted on its own, reached with ``docker exec ... birdc6``.  The node's IPv6 addresses and
routes are set through the lab's namespace name like the IPv4 ones; the containers' Docker
networking stays off, so no Docker network needs IPv6.

The image is built per run and tagged ``speaker-lab-bird:<prefix>``: from integration/docker/
Dockerfile (Debian + ``bird``) where the base image can be had, otherwise offline by
``docker import`` of a root filesystem made of the host's bird/birdc binaries and the libraries
``ldd`` names (plus sh and sleep for the node container's loop).

The engine is the machine's running Docker daemon if there is one; otherwise the lab installs
Debian's ``docker.io`` if needed and starts its own ``dockerd`` with ``--iptables=false
--ip6tables=false --bridge=none --ip-forward=false --ip-masq=false`` on a socket of its own
(nothing in the root namespace's networking changes), records it in
``/run/speaker-lab-docker/engine.json`` and stops it by PID when no lab container is left.

Docker is driven through the Docker SDK for Python (``docker`` on PyPI), not the CLI.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import docker  # type: ignore[import-untyped]
from docker.errors import (  # type: ignore[import-untyped]
    BuildError,
    DockerException,
    ImageNotFound,
    NotFound,
)
from docker.models.containers import Container  # type: ignore[import-untyped]

from integration.lab.core import BIRD_PROGRAMS, Lab, NodeRef, wait_until
from integration.lab.netns import (
    LabError,
    add_netns,
    delete_netns,
    ip,
    list_netns,
    pid_alive,
    pid_start_time,
    run,
)
from integration.lab.runs import run_dir_for
from integration.lab.spec import Family, NodeSpec

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DOCKERFILE_DIR: Final = REPO_ROOT / "integration" / "docker"
BASE_IMAGE: Final = "debian:bookworm-slim"
"""The Dockerfile's default base (its ``ARG BASE``)."""
IMAGE_REPO: Final = "speaker-lab-bird"
LABEL: Final = "speaker-lab"
LABEL_PREFIX: Final = "speaker-lab.prefix"
LABEL_NODE: Final = "speaker-lab.node"
LABEL_ROLE: Final = "speaker-lab.role"
RUN_RECORD: Final = "docker.json"
"""Per-run record in the run directory: engine URL, image tag and how it was built."""

BIRD_SOCKET: Final = "/run/bird/bird.ctl"
"""BIRD's control socket inside the BIRD container (Debian's default, so bare birdc finds it)."""
BIRD_SOCKETS: Final[dict[Family, str]] = {4: BIRD_SOCKET, 6: "/run/bird/bird6.ctl"}
"""The control socket per family, inside its container (bare birdc6 finds bird6.ctl)."""
BIRD_ROLES: Final = ("bird", "bird6")
"""Container roles of the BIRD daemons (removed before the node containers)."""
NODE_INIT: Final = (
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
)
"""PID 1 of a node container: lives until told to stop, exits at once on SIGTERM."""
IMAGE_ENV: Final = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_SOURCES: Final = ("auto", "import", "dockerfile")
IMAGE_SOURCE_ENV: Final = "SPEAKER_LAB_DOCKER_IMAGE"
"""Environment variable forcing how the image is made: auto (default), import or dockerfile."""

MACHINE_SOCKET: Final = "unix:///var/run/docker.sock"
ROOTFS_PROGRAMS: Final = (
    ("/usr/sbin/bird", "/usr/sbin/bird"),
    ("/usr/sbin/birdc", "/usr/sbin/birdc"),
    ("/usr/sbin/bird6", "/usr/sbin/bird6"),
    ("/usr/sbin/birdc6", "/usr/sbin/birdc6"),
    ("/bin/sh", "/bin/sh"),
    ("/bin/sleep", "/bin/sleep"),
)
"""(host program, path in the image) for the offline image; libraries come from ldd."""


@dataclass(frozen=True)
class EnginePaths:
    """Where a lab-started dockerd keeps its socket, state, data and log."""

    state_dir: Path = Path("/run/speaker-lab-docker")
    data_root: Path = Path("/var/lib/docker-speaker-lab")

    @property
    def socket(self) -> Path:
        """The engine's API socket."""
        return self.state_dir / "docker.sock"

    @property
    def base_url(self) -> str:
        """The engine's API URL."""
        return f"unix://{self.socket}"

    @property
    def record(self) -> Path:
        """``engine.json``: dockerd's PID and who started it."""
        return self.state_dir / "engine.json"

    @property
    def log(self) -> Path:
        """dockerd's log file."""
        return self.state_dir / "dockerd.log"

    @property
    def lock(self) -> Path:
        """Lock file serialising engine start/stop between processes."""
        return self.state_dir / "lock"

    def dockerd_argv(self) -> list[str]:
        """dockerd's command line: no bridge, no iptables, no sysctl changes, own paths."""
        return [
            "dockerd",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--ip-forward=false",
            "--ip-masq=false",
            "--host",
            self.base_url,
            "--exec-root",
            str(self.state_dir / "exec"),
            "--pidfile",
            str(self.state_dir / "dockerd.pid"),
            "--data-root",
            str(self.data_root),
        ]


LAB_ENGINE: Final = EnginePaths()


@dataclass
class EngineRecord:
    """Contents of ``engine.json``: the lab-started dockerd and the process that started it."""

    pid: int
    start_time: int | None
    base_url: str
    owner_pid: int
    owner_start_time: int | None
    started: float
    argv: list[str]

    def dockerd_alive(self) -> bool:
        """True while the recorded dockerd (same PID and start time) runs."""
        return pid_alive(self.pid) and pid_start_time(self.pid) == self.start_time

    def owner_alive(self) -> bool:
        """True while the process that started dockerd runs."""
        return pid_alive(self.owner_pid) and pid_start_time(self.owner_pid) == self.owner_start_time


@dataclass
class Engine:
    """A Docker engine the lab uses: the machine's daemon or a dockerd the lab started."""

    base_url: str
    client: Any
    started_here: bool
    """This process started dockerd (and stops it when done)."""
    dockerd_pid: int | None
    """PID of a lab-started dockerd (whoever started it), None for the machine's daemon."""
    version: str
    paths: EnginePaths = LAB_ENGINE

    def describe(self) -> str:
        """One line: which engine, and whether the lab started it."""
        if self.dockerd_pid is None:
            return f"the machine's Docker daemon at {self.base_url} (Docker {self.version})"
        who = "started by this process" if self.started_here else "started by another lab process"
        return (
            f"dockerd {self.version} pid {self.dockerd_pid} at {self.base_url}, {who} "
            f"(--iptables=false --bridge=none; log {self.paths.log})"
        )


# ---------------------------------------------------------------------- engine
def connect(base_url: str, *, timeout: float = 60.0) -> Any | None:
    """A DockerClient for ``base_url`` if an engine answers there, else None."""
    if base_url.startswith("unix://") and not Path(base_url[len("unix://") :]).exists():
        return None
    try:
        client = docker.DockerClient(base_url=base_url, version="auto", timeout=timeout)
        client.ping()
    except (DockerException, OSError):
        return None
    return client


def _version(client: Any) -> str:
    try:
        return str(client.version().get("Version", "?"))
    except (DockerException, OSError):
        return "?"


def read_engine_record(paths: EnginePaths = LAB_ENGINE) -> EngineRecord | None:
    """The lab-started engine's record, or None."""
    try:
        return EngineRecord(**json.loads(paths.record.read_text()))
    except (OSError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def _engine_lock(paths: EnginePaths) -> Iterator[None]:
    paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with paths.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_docker(log: Callable[[str], None] = print) -> None:
    """Install Debian's ``docker.io`` if ``dockerd`` is missing, without starting a service.

    A policy-rc.d that forbids service starts is put in place for the install if there is none,
    so the package cannot bring up a system daemon with its default bridge and iptables rules.
    """
    if shutil.which("dockerd"):
        return
    if os.geteuid() != 0:
        raise LabError("dockerd is missing and installing docker.io needs root")
    log("dockerd not found: installing Debian's docker.io (apt-get install -y docker.io)")
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\n# speaker lab: no service starts during install\nexit 101\n")
        policy.chmod(0o755)
        added_policy = True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "install", "-y", "-q", "docker.io"]
    try:
        if run(argv, check=False, timeout=900, env=env).returncode != 0:
            run(["apt-get", "update", "-q"], timeout=600, env=env)
            run(argv, timeout=900, env=env)
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)
    if not shutil.which("dockerd"):
        raise LabError("apt-get install docker.io finished but dockerd is still not on PATH")


_ENGINE: Engine | None = None
_ENGINE_LOCK = threading.Lock()


def ensure_engine(*, log: Callable[[str], None] = print, paths: EnginePaths = LAB_ENGINE) -> Engine:
    """The engine to use, started if need be (memoised per process).

    Order: ``$DOCKER_HOST`` if set (it must answer), the machine's daemon at
    /var/run/docker.sock, a dockerd an earlier lab started; else install docker.io if needed and
    start dockerd.  A dockerd this process starts is stopped at exit unless lab containers
    remain (a persistent ``make lab`` run), see ``release_engine``.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is not None and paths == _ENGINE.paths and connect(_ENGINE.base_url):
            return _ENGINE
        engine = _find_or_start_engine(log, paths)
        if paths == LAB_ENGINE:
            _ENGINE = engine
        return engine


def _find_or_start_engine(log: Callable[[str], None], paths: EnginePaths) -> Engine:
    if paths == LAB_ENGINE:
        env_host = os.environ.get("DOCKER_HOST")
        if env_host:
            client = connect(env_host)
            if client is None:
                raise LabError(f"DOCKER_HOST={env_host}: no Docker engine answers there")
            return Engine(env_host, client, False, None, _version(client), paths)
        client = connect(MACHINE_SOCKET)
        if client is not None:
            return Engine(MACHINE_SOCKET, client, False, None, _version(client), paths)
    with _engine_lock(paths):
        record = read_engine_record(paths)
        if record is not None and record.dockerd_alive():
            client = connect(record.base_url)
            if client is not None:
                return Engine(record.base_url, client, False, record.pid, _version(client), paths)
        return _start_dockerd(log, paths)


def _start_dockerd(log: Callable[[str], None], paths: EnginePaths) -> Engine:
    """Start dockerd (lock held); wait for its socket; record it in engine.json."""
    install_docker(log)
    paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.data_root.mkdir(mode=0o711, parents=True, exist_ok=True)
    paths.socket.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        if paths.log.stat().st_size > 5_000_000:  # keep one previous log, not an ever-growing one
            paths.log.replace(paths.log.with_suffix(".log.1"))
    argv = paths.dockerd_argv()
    log(f"starting {' '.join(argv)} (log {paths.log})")
    with paths.log.open("ab") as out:
        out.write(f"--- {time.strftime('%F %T')} start: {' '.join(argv)}\n".encode())
        out.flush()
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    me = os.getpid()
    record = EngineRecord(
        pid=popen.pid,
        start_time=pid_start_time(popen.pid),
        base_url=paths.base_url,
        owner_pid=me,
        owner_start_time=pid_start_time(me),
        started=time.time(),
        argv=argv,
    )
    tmp = paths.record.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    tmp.replace(paths.record)
    client: Any | None = None

    def answering_or_dead() -> bool:
        nonlocal client
        if popen.poll() is not None:
            return True
        client = connect(paths.base_url, timeout=5.0)
        return client is not None

    wait_until(answering_or_dead, 60.0, interval=0.2)
    if client is None:
        _kill_dockerd(record, paths)
        paths.record.unlink(missing_ok=True)
        raise LabError(
            f"dockerd did not answer on {paths.socket} within 60 s "
            f"(exit {popen.poll()}); log {paths.log}:\n{_tail(paths.log)}"
        )
    engine = Engine(paths.base_url, client, True, popen.pid, _version(client), paths)
    log(f"Docker engine: {engine.describe()}")
    atexit.register(_release_at_exit, engine)
    return engine


def _release_at_exit(engine: Engine) -> None:
    with contextlib.suppress(Exception):
        release_engine(engine)


def lab_containers(client: Any, prefix: str | None = None) -> list[Container]:
    """Containers the lab made on an engine (of one run if ``prefix``), any state."""
    label = LABEL if prefix is None else f"{LABEL_PREFIX}={prefix}"
    result: list[Container] = client.containers.list(all=True, filters={"label": label})
    return result


def release_engine(engine: Engine) -> str:
    """Done with ``engine``: stop dockerd if this process started it and no lab container is
    left on it (a persistent run's containers keep it up until ``make lab-down``).

    Returns what happened, for the log.
    """
    if not engine.started_here:
        return f"left running: {engine.describe()}"
    return stop_lab_engine(caller_is_owner=True, paths=engine.paths) or "kept running"


def stop_lab_engine(*, caller_is_owner: bool, paths: EnginePaths = LAB_ENGINE) -> str | None:
    """Stop the lab-started dockerd when it is no longer needed; return what was done or None.

    It is stopped when no lab container remains on it and either the caller is the process
    that started it or that process is gone.  Never touches the machine's own daemon.
    """
    if not paths.record.exists():
        return None
    with _engine_lock(paths):
        record = read_engine_record(paths)
        if record is None:
            return None
        if not record.dockerd_alive():
            paths.record.unlink(missing_ok=True)
            return f"dockerd pid {record.pid} had already ended"
        if not caller_is_owner and record.owner_alive():
            return None
        client = connect(record.base_url, timeout=10.0)
        if client is not None:
            try:
                left = lab_containers(client)
            except (DockerException, OSError):
                left = []
            finally:
                client.close()
            if left:
                return None
        _kill_dockerd(record, paths)
        paths.record.unlink(missing_ok=True)
        global _ENGINE
        if _ENGINE is not None and _ENGINE.base_url == record.base_url:
            _ENGINE = None
        return f"stopped dockerd pid {record.pid}"


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (dockerd's managed containerd, shims)."""
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _kill_dockerd(record: EngineRecord, paths: EnginePaths) -> None:
    """SIGTERM dockerd by PID (it stops containerd itself), SIGKILL after 30 s; then any of its
    direct children still alive."""
    if not record.dockerd_alive():
        return
    children = {pid: pid_start_time(pid) for pid in _children(record.pid)}
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGTERM)
    if not wait_until(lambda: not record.dockerd_alive(), 30.0, interval=0.1):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        wait_until(lambda: not record.dockerd_alive(), 5.0, interval=0.1)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(record.pid, os.WNOHANG)
    for pid, start in children.items():
        if pid_alive(pid) and pid_start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    paths.socket.unlink(missing_ok=True)


def known_clients() -> list[Any]:
    """Clients for every engine that may hold lab containers and answers now (none started)."""
    urls: list[str] = []
    env_host = os.environ.get("DOCKER_HOST")
    if env_host:
        urls.append(env_host)
    urls.append(MACHINE_SOCKET)
    record = read_engine_record()
    if record is not None and record.dockerd_alive():
        urls.append(record.base_url)
    clients = []
    for url in dict.fromkeys(urls):
        client = connect(url, timeout=10.0)
        if client is not None:
            clients.append(client)
    return clients


# ---------------------------------------------------------------------- image
def _ldd(path: str) -> list[str]:
    """Absolute paths of the shared objects ``path`` loads (ldd's ``=> /x`` and ``/x`` lines)."""
    out = run(["ldd", path]).stdout
    libs: list[str] = []
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
    return libs


def host_rootfs_tar() -> tuple[bytes, list[str]]:
    """A root filesystem (tar bytes) with the host's bird, birdc, sh, sleep and their libraries.

    Returns the tar and the list of file paths in it.  Raises LabError if the host lacks BIRD.
    """
    files: dict[str, str] = {}  # path in image -> host file
    for host, target in ROOTFS_PROGRAMS:
        real = shutil.which(host) if not os.path.isabs(host) else host
        if real is None or not os.path.exists(real):
            raise LabError(f"offline image: {host} not found on this host (apt-get install bird)")
        files[target] = os.path.realpath(real)
        for lib in _ldd(real):
            files.setdefault(lib, os.path.realpath(lib))
    dirs = {"/etc", "/etc/bird", "/run", "/run/bird", "/tmp", "/proc", "/sys", "/dev", "/root"}
    for target in files:
        parent = os.path.dirname(target)
        while parent not in ("", "/"):
            dirs.add(parent)
            parent = os.path.dirname(parent)
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(path: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            tar.addfile(info)

        def add_file(path: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))

        for path in sorted(dirs):
            add_dir(path, 0o1777 if path == "/tmp" else 0o755)
        link = tarfile.TarInfo("var/run")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "../run", now
        add_dir("/var")
        tar.addfile(link)
        for target, host in sorted(files.items()):
            add_file(target, Path(host).read_bytes(), os.stat(host).st_mode & 0o7777)
        add_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        add_file("/etc/group", b"root:x:0:\n")
    return buf.getvalue(), sorted(files)


def _image_labels(prefix: str | None) -> dict[str, str]:
    labels = {LABEL: "1"}
    if prefix is not None:
        labels[LABEL_PREFIX] = prefix
    return labels


def import_image(client: Any, tag: str, prefix: str | None) -> str:
    """``docker import`` the host-made root filesystem as ``tag``; returns the image ID."""
    data, _ = host_rootfs_tar()
    repo, _, version = tag.partition(":")
    changes = [f"ENV {IMAGE_ENV}", "CMD " + json.dumps(list(NODE_INIT))]
    changes += [f"LABEL {k}={json.dumps(v)}" for k, v in _image_labels(prefix).items()]
    try:
        client.api.import_image_from_data(data, repository=repo, tag=version, changes=changes)
        return str(client.images.get(tag).id)
    except (DockerException, OSError) as exc:
        raise LabError(f"docker import of the offline BIRD image as {tag} failed: {exc}") from exc


def build_from_dockerfile(client: Any, tag: str, prefix: str | None) -> str:
    """``docker build`` integration/docker/Dockerfile as ``tag``; returns the image ID.

    Build steps use the host network (the engine may have no bridge) only to reach Debian's
    package archive; nothing is configured there.
    """
    try:
        image, _ = client.images.build(
            path=str(DOCKERFILE_DIR),
            tag=tag,
            rm=True,
            forcerm=True,
            network_mode="host",
            labels=_image_labels(prefix),
        )
        return str(image.id)
    except (BuildError, DockerException, OSError) as exc:
        raise LabError(f"docker build of {DOCKERFILE_DIR} as {tag} failed: {exc}") from exc


_BASE_VERDICT: dict[str, tuple[bool, str]] = {}


def base_image_available(client: Any, base: str = BASE_IMAGE) -> tuple[bool, str]:
    """Whether the Dockerfile's base image is local or can be pulled (asked once per engine)."""
    key = f"{client.api.base_url} {base}"
    if key not in _BASE_VERDICT:
        try:
            client.images.get(base)
            _BASE_VERDICT[key] = (True, f"{base} is present locally")
        except ImageNotFound:
            try:
                client.images.pull(base)
                _BASE_VERDICT[key] = (True, f"pulled {base}")
            except (DockerException, OSError) as exc:
                text = str(exc).strip() or repr(exc)
                last = text.rsplit(": ", 1)[-1].rstrip('")')
                _BASE_VERDICT[key] = (False, f"no image registry: cannot pull {base} ({last})")
        except (DockerException, OSError) as exc:
            _BASE_VERDICT[key] = (False, f"cannot inspect {base}: {exc}")
    return _BASE_VERDICT[key]


def make_image(
    client: Any, tag: str, prefix: str | None, *, source: str | None = None
) -> tuple[str, str]:
    """Build the BIRD image as ``tag`` the way that works here; return (how, why).

    ``source``: ``import`` (offline, from the host's binaries), ``dockerfile``, or ``auto``
    (default, or ``$SPEAKER_LAB_DOCKER_IMAGE``): the Dockerfile when its base image can be had,
    falling back to the offline import when the base or the build fails.
    """
    how = source or os.environ.get(IMAGE_SOURCE_ENV, "auto")
    if how not in IMAGE_SOURCES:
        raise LabError(f"image source {how!r} (${IMAGE_SOURCE_ENV}): want one of {IMAGE_SOURCES}")
    if how == "import":
        import_image(client, tag, prefix)
        return "import", "offline docker import of the host's bird binaries (forced)"
    if how == "dockerfile":
        build_from_dockerfile(client, tag, prefix)
        return "dockerfile", f"docker build {DOCKERFILE_DIR.relative_to(REPO_ROOT)} (forced)"
    ok, why = base_image_available(client)
    if ok:
        try:
            build_from_dockerfile(client, tag, prefix)
            return "dockerfile", f"docker build {DOCKERFILE_DIR.relative_to(REPO_ROOT)} ({why})"
        except LabError as exc:
            why = f"Dockerfile build failed: {str(exc).splitlines()[0]}"
    import_image(client, tag, prefix)
    return "import", f"offline docker import of the host's bird binaries ({why})"


def remove_image(client: Any, tag: str) -> bool:
    """Remove an image by tag or ID; True if it existed."""
    try:
        client.images.remove(tag, force=True)
    except ImageNotFound:
        return False
    return True


# ---------------------------------------------------------------------- run teardown
def destroy_docker_run(prefix: str) -> list[str]:
    """Remove a run's containers (BIRD ones first) and images from every engine that has them,
    then stop a lab-started dockerd nobody needs any more.  Returns error texts (empty: clean).

    Called by ``runs.destroy_run`` before the namespaces go.  Starts no engine.
    """
    errors: list[str] = []
    record = _read_run_record(prefix)
    clients: list[Any] = []
    if record is not None:
        client = connect(str(record.get("base_url", "")), timeout=30.0)
        if client is not None:
            clients.append(client)
    if not clients:
        clients = known_clients()
    for client in clients:
        try:
            containers = lab_containers(client, prefix)
            containers.sort(key=lambda c: c.labels.get(LABEL_ROLE) not in BIRD_ROLES)
            for container in containers:
                with contextlib.suppress(NotFound):
                    container.remove(force=True)
            images = client.images.list(filters={"label": f"{LABEL_PREFIX}={prefix}"})
            for image in images:
                with contextlib.suppress(ImageNotFound):
                    client.images.remove(image.id, force=True)
            remove_image(client, image_tag(prefix))
        except (DockerException, OSError) as exc:
            errors.append(f"docker cleanup of {prefix} on {client.api.base_url}: {exc}")
        finally:
            client.close()
    with contextlib.suppress(LabError, OSError, DockerException):
        stop_lab_engine(caller_is_owner=False)
    return errors


def stale_docker_prefixes() -> set[str]:
    """Run prefixes that have lab containers or images on a reachable engine."""
    prefixes: set[str] = set()
    for client in known_clients():
        try:
            for container in lab_containers(client):
                prefixes.add(container.labels.get(LABEL_PREFIX, ""))
            for image in client.images.list(filters={"label": LABEL_PREFIX}):
                prefixes.add(image.labels.get(LABEL_PREFIX, ""))
        except (DockerException, OSError):
            continue
        finally:
            client.close()
    return {p for p in prefixes if p}


def leftovers(client: Any, prefixes: Sequence[str]) -> list[str]:
    """What is left of the runs ``prefixes`` on ``client``'s engine and in the kernel:
    containers, images, namespaces, run directories (empty: all gone)."""
    found: list[str] = []
    wanted = set(prefixes)
    for container in lab_containers(client):
        if container.labels.get(LABEL_PREFIX) in wanted:
            found.append(f"container {container.name} ({container.status})")
    for image in client.images.list(filters={"label": LABEL}):
        tags = ", ".join(image.tags) or image.short_id
        if image.labels.get(LABEL_PREFIX) in wanted or any(
            tag == image_tag(p) for p in wanted for tag in image.tags
        ):
            found.append(f"image {tags}")
    for ns in list_netns():
        if any(ns.startswith(p) for p in wanted):
            found.append(f"namespace {ns}")
    for prefix in sorted(wanted):
        if run_dir_for(prefix).exists():
            found.append(f"run directory {run_dir_for(prefix)}")
    return found


def image_tag(prefix: str) -> str:
    """The run's image tag: ``speaker-lab-bird:spk<hex>``."""
    return f"{IMAGE_REPO}:{prefix.rstrip('-')}"


def _read_run_record(prefix: str) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir_for(prefix) / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------- the lab
class DockerLab(Lab):
    """A Lab whose BIRD nodes run in Docker containers (see the module docstring).

    Extra keyword arguments: ``engine`` (default: ``ensure_engine()``) and ``image_source``
    (``auto``/``import``/``dockerfile``, default ``$SPEAKER_LAB_DOCKER_IMAGE`` or auto).
    After ``up()``, ``image_source`` and ``image_note`` say how the image was made.
    """

    backend: ClassVar[str] = "docker"

    def __init__(
        self,
        nodes: Sequence[NodeSpec] | str = "bird",
        *,
        engine: Engine | None = None,
        image_source: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(nodes, **kwargs)
        self._engine = engine
        self._wanted_source = image_source
        self.image_tag = image_tag(self.prefix)
        record = _read_run_record(self.prefix) or {}
        self.image_source: str | None = record.get("image_source")
        self.image_note: str = str(record.get("image_note", ""))

    # ---------------------------------------------------------------- engine and names
    @property
    def engine(self) -> Engine:
        """The engine this lab's containers live on (an attached run: the one recorded)."""
        if self._engine is None:
            record = _read_run_record(self.prefix)
            if record is not None and record.get("base_url"):
                url = str(record["base_url"])
                client = connect(url)
                if client is None:
                    raise LabError(f"lab {self.prefix}: Docker engine {url} does not answer")
                self._engine = Engine(url, client, False, None, _version(client))
            else:
                self._engine = ensure_engine()
        return self._engine

    @property
    def client(self) -> Any:
        """The Docker SDK client."""
        return self.engine.client

    def node_container_name(self, ref: NodeRef) -> str:
        """Name of the container that owns a BIRD node's network namespace."""
        return f"{self.prefix}{self.node(ref).name}"

    def bird_container_name(self, ref: NodeRef, family: Family = 4) -> str:
        """Name of the container running a BIRD node's BIRD (``-bird``; bird6: ``-bird6``)."""
        return f"{self.prefix}{self.node(ref).name}-{BIRD_PROGRAMS[family][0]}"

    def in_container(self, ref: NodeRef) -> bool:
        """True for nodes that run in containers (BIRD nodes)."""
        return self.node(ref).kind == "bird"

    def _container(self, name: str) -> Container | None:
        try:
            return self.client.containers.get(name)
        except NotFound:
            return None
        except (DockerException, OSError) as exc:
            raise LabError(f"docker: cannot inspect container {name}: {exc}") from exc

    def node_container(self, ref: NodeRef) -> Container | None:
        """The node container (docker SDK object, fresh state), or None."""
        return self._container(self.node_container_name(ref))

    def bird_container(self, ref: NodeRef, family: Family = 4) -> Container | None:
        """The BIRD (bird6) container (docker SDK object, fresh state), or None."""
        return self._container(self.bird_container_name(ref, family))

    def node_container_pid(self, ref: NodeRef) -> int:
        """Host PID of the node container's init; LabError if it does not run."""
        container = self.node_container(ref)
        pid = _running_pid(container)
        if pid is None:
            raise LabError(f"{self.node(ref).name}: node container is not running")
        return pid

    def container_routes(self, ref: NodeRef, family: Family = 4) -> list[dict[str, Any]]:
        """The main routing table as seen from inside the node container's own network
        namespace (``nsenter -t <container pid> -n ip -j route``), not through the lab's name;
        ``family=6``: the IPv6 table."""
        pid = self.node_container_pid(ref)
        argv = ["nsenter", "-t", str(pid), "-n", "ip", f"-{family}", "-j", "route", "show"]
        out = run(argv).stdout
        entries: list[dict[str, Any]] = json.loads(out or "[]")
        for entry in entries:
            entry.setdefault("protocol", "boot")
            entry.setdefault("type", "unicast")
        return entries

    def _labels(self, node: NodeSpec, role: str) -> dict[str, str]:
        return {LABEL: "1", LABEL_PREFIX: self.prefix, LABEL_NODE: node.name, LABEL_ROLE: role}

    def _write_run_record(self) -> None:
        record = {
            "base_url": self.engine.base_url,
            "engine": self.engine.describe(),
            "image": self.image_tag,
            "image_source": self.image_source,
            "image_note": self.image_note,
        }
        (self.run_dir / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n")

    def describe_backend(self) -> str:
        """Which engine and image this lab uses, for people and test reports."""
        return (
            f"Docker backend: {self.engine.describe()}; image {self.image_tag} "
            f"built by {self.image_source}: {self.image_note}"
        )

    # ---------------------------------------------------------------- construction hooks
    def _build(self) -> None:
        self._write_run_record()  # before anything exists, so a crash leaves a trail
        if self.bird_nodes():
            try:
                self.image_source, self.image_note = make_image(
                    self.client, self.image_tag, self.prefix, source=self._wanted_source
                )
            finally:
                self._write_run_record()
        super()._build()

    def _add_node_netns(self, node: NodeSpec) -> None:
        """BIRD nodes: start the node container and name its namespace; others: plain netns."""
        if node.kind != "bird":
            add_netns(self.netns(node))
            return
        name = self.netns(node)
        try:
            container = self.client.containers.run(
                self.image_tag,
                list(NODE_INIT),
                name=self.node_container_name(node),
                hostname=node.name,
                network_mode="none",
                detach=True,
                labels=self._labels(node, "node"),
                volumes={str(self.run_dir): {"bind": str(self.run_dir), "mode": "rw"}},
            )
        except (DockerException, OSError) as exc:
            raise LabError(f"{node.name}: cannot start node container: {exc}") from exc
        container.reload()
        pid = _running_pid(container)
        if pid is None:
            raise LabError(f"{node.name}: node container exited at start: {_logs(container)}")
        _check_host_pid(pid, self.engine)  # also: the PID runs the node container's init
        run(["ip", "netns", "attach", name, str(pid)])
        # Safety: the name must denote the container's namespace, never the root one.
        try:
            named = os.stat(f"/run/netns/{name}").st_ino
            container.reload()
            same = _running_pid(container) == pid and os.stat(f"/proc/{pid}/ns/net").st_ino == named
            root = os.stat("/proc/self/ns/net").st_ino  # the lab runs in the root namespace
        except OSError as exc:
            delete_netns(name)
            raise LabError(f"{node.name}: cannot verify namespace {name}: {exc}") from exc
        if not same or named == root:
            delete_netns(name)
            raise LabError(f"{node.name}: namespace {name} is not the node container's; removed")
        ip(name, "link", "set", "lo", "up")

    # ---------------------------------------------------------------- BIRD in a container
    def start_bird(self, ref: NodeRef, *, graceful: bool = False, family: Family = 4) -> int:
        """Start a BIRD container on the node (``bird -f``, plus ``-R`` if ``graceful``;
        ``family=6``: a bird6 container, ``bird6 -f``).

        It shares the node container's network namespace.  A previous, ended container of the
        node's daemon is removed first (its output appended to the node's ``.bird.out`` or
        ``.bird6.out``).  Waits until birdc (birdc6) answers through ``docker exec``; returns
        the daemon's host PID.  LabError if the config does not parse or BIRD exits.
        """
        node = self._require(ref, "bird", family)
        self._require_not_running(node, family)
        program, client = (f"/usr/sbin/{name}" for name in BIRD_PROGRAMS[family])
        sock = BIRD_SOCKETS[family]
        cfg = str(self.config_path(node, family))
        holder = self.node_container(node)
        if _running_pid(holder) is None or holder is None:
            raise LabError(f"{node.name}: node container is not running")
        parse = holder.exec_run([program, "-p", "-c", cfg], demux=True)
        if parse.exit_code != 0:
            raise LabError(f"{program} rejects {cfg}: {_exec_text(parse.output)}")
        old = self.bird_container(node, family)
        if old is not None:
            self._archive_and_remove(node, old, family)
        pid_file = sock.replace(".ctl", ".pid")
        argv = [program, "-f", "-c", cfg, "-s", sock, "-P", pid_file]
        if graceful:
            argv.append("-R")
        with self.log_path(node, family).open("a") as out:
            out.write(f"--- {time.strftime('%H:%M:%S')} docker run: {' '.join(argv)}\n")
        try:
            container = self.client.containers.run(
                self.image_tag,
                argv,
                name=self.bird_container_name(node, family),
                network_mode=f"container:{holder.id}",
                cap_add=["NET_ADMIN"],
                detach=True,
                labels=self._labels(node, BIRD_PROGRAMS[family][0]),
                volumes={str(self.run_dir): {"bind": str(self.run_dir), "mode": "rw"}},
            )
        except (DockerException, OSError) as exc:
            raise LabError(f"{node.name}: cannot start {program} container: {exc}") from exc

        def answering_or_dead() -> bool:
            container.reload()
            if container.status != "running":
                return True
            probe = container.exec_run([client, "-s", sock, "show", "status"])
            return bool(probe.exit_code == 0)

        ok = wait_until(answering_or_dead, 10.0, interval=0.1)
        pid = _running_pid(container)
        if pid is None:
            raise LabError(
                f"{program} container of {node.name} exited at start:\n{_logs(container)}"
            )
        if not ok:
            raise LabError(f"{program} on {node.name}: {client} (docker exec) silent after 10 s")
        return pid

    def _archive_and_remove(self, node: NodeSpec, container: Container, family: Family) -> None:
        log = self.log_path(node, family)
        with contextlib.suppress(DockerException, OSError), log.open("a") as out:
            out.write(_logs(container, lines=200) + "\n")
        try:
            container.remove(force=True)
        except NotFound:
            pass
        except (DockerException, OSError) as exc:
            raise LabError(f"{node.name}: cannot remove old BIRD container: {exc}") from exc

    def stop_bird(self, ref: NodeRef, *, timeout: float = 10.0, family: Family = 4) -> int | None:
        """``docker stop`` the BIRD (bird6) container (SIGTERM: Cease to peers); returns its
        exit code."""
        node = self._require(ref, "bird", family)
        container = self.bird_container(node, family)
        if container is None or _running_pid(container) is None:
            return None
        try:
            container.stop(timeout=max(1, int(timeout)))
            container.reload()
        except (DockerException, OSError) as exc:
            raise LabError(f"{node.name}: docker stop failed: {exc}") from exc
        return int(container.attrs["State"]["ExitCode"])

    def kill_bird(self, ref: NodeRef, sig: int = signal.SIGKILL, *, family: Family = 4) -> None:
        """``docker kill -s <sig>`` the BIRD (bird6) container (default SIGKILL: it dies without
        a NOTIFICATION; the node's namespace, kernel routes and other daemon stay).  Waits for
        the container to end when ``sig`` is SIGKILL/SIGTERM/SIGINT."""
        node = self._require(ref, "bird", family)
        container = self.bird_container(node, family)
        if container is None or _running_pid(container) is None:
            raise LabError(f"{node.name}: no running {BIRD_PROGRAMS[family][0]} container")
        try:
            container.kill(signal=signal.Signals(sig).name)
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                container.wait(timeout=10)
        except (DockerException, OSError) as exc:
            raise LabError(f"{node.name}: docker kill -s {sig} failed: {exc}") from exc

    def stop_node(self, ref: NodeRef, *, timeout: float = 10.0) -> int | None:
        """Stop the node's daemons, whatever its kind; returns the first one's exit status."""
        if not self.in_container(ref):
            return super().stop_node(ref, timeout=timeout)
        codes = [self.stop_bird(ref, timeout=timeout, family=f) for f in self.families]
        return codes[0]

    def daemon_pid(self, ref: NodeRef, family: Family = 4) -> int | None:
        """Host PID of the node's daemon (BIRD, bird6: its container's PID 1) while it runs."""
        if not self.in_container(ref):
            return super().daemon_pid(ref, family)
        with contextlib.suppress(LabError):
            return _running_pid(self.bird_container(ref, family))
        return None

    def daemon_exit_code(self, ref: NodeRef, family: Family = 4) -> int | None:
        """Exit status of the node's daemon once it ended (BIRD, bird6: its container's)."""
        if not self.in_container(ref):
            return super().daemon_exit_code(ref, family)
        with contextlib.suppress(LabError):
            container = self.bird_container(ref, family)
            if container is not None and container.status in ("exited", "dead"):
                return int(container.attrs["State"]["ExitCode"])
        return None

    def birdc(
        self, ref: NodeRef, command: str, *, timeout: float = 10.0, family: Family = 4
    ) -> str:
        """``birdc <command>`` (``family=6``: ``birdc6`` in the bird6 container) through
        ``docker exec`` (speaker nodes: their control socket, as in the namespace lab)."""
        if not self.in_container(ref):
            return super().birdc(ref, command, timeout=timeout, family=family)
        node = self.node(ref)
        container = self.bird_container(node, family)
        name = self.bird_container_name(node, family)
        if container is None or container.status != "running":
            state = "missing" if container is None else container.status
            raise LabError(f"{node.name}: BIRD container {name} {state}")
        client = f"/usr/sbin/{BIRD_PROGRAMS[family][1]}"
        argv = [client, "-s", BIRD_SOCKETS[family], *command.split()]
        try:
            result = container.exec_run(argv, demux=True)
        except (DockerException, OSError) as exc:
            raise LabError(f"{client} {command!r} on {node.name} (docker exec): {exc}") from exc
        stdout, stderr = result.output if result.output else (None, None)
        if result.exit_code != 0:
            raise LabError(
                f"{client} {command!r} on {node.name} failed (exit {result.exit_code}): "
                f"{(stderr or stdout or b'').decode(errors='replace').strip()}"
            )
        return (stdout or b"").decode(errors="replace")

    def diagnostics(self) -> str:
        """The namespace lab's dump plus each container's state and output tail."""
        parts = [super().diagnostics()]
        try:
            parts.append(f"=== {self.describe_backend()}")
            for node in self.bird_nodes():
                daemons = [self.bird_container(node, f) for f in self.families]
                for container in (self.node_container(node), *daemons):
                    if container is None:
                        continue
                    state = container.attrs["State"]
                    parts.append(
                        f"--- container {container.name}: {state.get('Status')} "
                        f"pid {state.get('Pid')} exit {state.get('ExitCode')}"
                    )
                    parts.append(_logs(container))
        except (LabError, DockerException, OSError) as exc:
            parts.append(f"(docker diagnostics failed: {exc})")
        return "\n".join(parts)


def _running_pid(container: Container | None) -> int | None:
    if container is None:
        return None
    state = container.attrs.get("State", {})
    pid = int(state.get("Pid") or 0)
    return pid if state.get("Running") and pid > 0 else None


def _check_host_pid(pid: int, engine: Engine) -> None:
    """The container's PID must be, in this machine's /proc, the node container's init."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        argv = []
    if [a.decode(errors="replace") for a in argv] != list(NODE_INIT):
        raise LabError(
            f"the Docker engine {engine.base_url} does not run containers in this machine's "
            f"PID namespace (PID {pid} here is not the node container's init): the lab needs "
            "a local engine"
        )


def _logs(container: Container, lines: int = 30) -> str:
    try:
        raw: bytes = container.logs(tail=lines)
    except (DockerException, OSError) as exc:
        return f"(no logs: {exc})"
    return raw.decode(errors="replace").rstrip()


def _exec_text(output: Any) -> str:
    if isinstance(output, tuple):
        return b"".join(part or b"" for part in output).decode(errors="replace").strip()
    return bytes(output or b"").decode(errors="replace").strip()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
