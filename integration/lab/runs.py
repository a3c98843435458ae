"""Run bookkeeping: per-run prefix, run directory, owner record, teardown from disk, stale sweep.

Each lab run gets a prefix ``spk<6 hex>-`` for its namespaces and a directory ``/tmp/spk<hex>/``
for configs, sockets, PID files and logs.  The directory holds ``owner.json`` (owner PID plus the
kernel start time of that PID, so a recycled PID is not mistaken for the owner), written before
any namespace exists: a namespace with the lab's prefix and no live owner is a leftover of a
crashed run and may be swept.  Runs marked ``persistent`` (``make lab``) outlive their owner on
purpose and are only removed by ``make lab-down`` or ``cleanup_stale(include_persistent=True)``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from integration.lab.netns import (
    LabError,
    delete_netns,
    kill_pids,
    list_netns,
    netns_pids,
    pid_alive,
    pid_start_time,
)

RUN_ROOT: Final = Path("/tmp")
PREFIX_RE: Final = re.compile(r"^spk[0-9a-f]{6}-")
"""Lab namespaces are named ``spk<6 hex>-<role>``; nothing else is ever touched by a sweep."""
_RUN_DIR_RE: Final = re.compile(r"^spk[0-9a-f]{6}$")
OWNER_FILE: Final = "owner.json"


def new_prefix() -> str:
    """A fresh, unused run prefix such as ``spk3fa9c1-``."""
    existing = list_netns()
    while True:
        prefix = f"spk{secrets.token_hex(3)}-"
        if not run_dir_for(prefix).exists() and not any(n.startswith(prefix) for n in existing):
            return prefix


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a lab prefix (``spk<6 hex>-``), else raise LabError."""
    if not PREFIX_RE.fullmatch(prefix):
        raise LabError(f"{prefix!r} is not a lab run prefix (want spk<6 hex digits>-)")
    return prefix


def run_dir_for(prefix: str) -> Path:
    """The run directory of a prefix: ``/tmp/spk<hex>``."""
    return RUN_ROOT / prefix.rstrip("-")


@dataclass
class OwnerRecord:
    """Contents of ``owner.json``: who owns the run and how to rebuild a Lab object for it."""

    prefix: str
    pid: int
    start_time: int | None
    persistent: bool
    created: float
    pool: str
    prefixlen: int
    nodes: list[dict[str, Any]] = field(default_factory=list)
    backend: str = "netns"
    """``netns``, or ``docker`` when BIRD nodes run in containers (integration/lab/docker.py)."""

    def owner_alive(self) -> bool:
        """True while the owning process (same PID, same start time) still runs."""
        return pid_alive(self.pid) and pid_start_time(self.pid) == self.start_time


def write_owner(run_dir: Path, record: OwnerRecord) -> None:
    """Write ``owner.json`` atomically (temp file + rename)."""
    tmp = run_dir / (OWNER_FILE + ".tmp")
    tmp.write_text(json.dumps(record.__dict__, indent=2) + "\n")
    tmp.replace(run_dir / OWNER_FILE)


def read_owner(run_dir: Path) -> OwnerRecord | None:
    """Read ``owner.json``; None if absent or unreadable.

    Keys this version does not know are ignored: a run written by newer lab code must not
    look ownerless here (the stale sweep would destroy a live run).  For the same reason new
    facts about a run go into the nodes' dicts or files beside owner.json, not new top-level
    keys, which older readers refuse.
    """
    try:
        data = json.loads((run_dir / OWNER_FILE).read_text())
        known = {f.name for f in fields(OwnerRecord)}
        return OwnerRecord(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def run_namespaces(prefix: str) -> list[str]:
    """Existing namespaces that belong to the run ``prefix``."""
    check_prefix(prefix)
    return [n for n in list_netns() if n.startswith(prefix)]


def destroy_run(prefix: str) -> None:
    """Tear a run down from what is on disk and in the kernel, whoever started it.

    Ends every process inside the run's namespaces by PID (those are lab daemons: nothing else
    enters these namespaces), deletes the namespaces (veths and the bridge go with them) and
    removes the run directory.  Idempotent.
    """
    check_prefix(prefix)
    errors: list[str] = _docker_teardown(prefix)
    namespaces = run_namespaces(prefix)
    pids: set[int] = set()
    for ns in namespaces:
        pids.update(netns_pids(ns))
    kill_pids(pids)
    for ns in namespaces:
        try:
            delete_netns(ns)
        except LabError as exc:
            errors.append(str(exc))
    shutil.rmtree(run_dir_for(prefix), ignore_errors=True)
    if errors:
        raise LabError("teardown incomplete:\n" + "\n".join(errors))


def cleanup_stale(*, include_persistent: bool = False) -> list[str]:
    """Remove runs left behind by crashed labs; return the prefixes removed.

    A run is stale when its owner process is gone (or it has namespaces but no owner record).
    Persistent runs (``make lab``) are kept unless ``include_persistent``.  Live runs of other
    processes are never touched.
    """
    prefixes: set[str] = set()
    for ns in list_netns():
        m = PREFIX_RE.match(ns)
        if m:
            prefixes.add(m.group(0))
    if RUN_ROOT.is_dir():
        for entry in RUN_ROOT.iterdir():
            if _RUN_DIR_RE.match(entry.name) and entry.is_dir():
                prefixes.add(entry.name + "-")
    prefixes.update(_docker_prefixes())
    removed: list[str] = []
    for prefix in sorted(prefixes):
        run_dir = run_dir_for(prefix)
        owner = read_owner(run_dir)
        if owner is None:
            # A run directory is created (then owner.json) before any namespace: a young
            # directory without a record may be a run being born right now.
            try:
                young = time.time() - run_dir.stat().st_mtime < 60
            except OSError:
                young = False
            if young and not run_namespaces(prefix):
                continue
        elif owner.owner_alive() or (owner.persistent and not include_persistent):
            continue
        destroy_run(prefix)
        removed.append(prefix)
    _docker_engine_sweep()
    return removed


def _docker_module() -> Any | None:
    """integration.lab.docker if Docker may hold lab runs here (SDK installed), else None."""
    if not (
        Path("/run/speaker-lab-docker").exists()
        or Path("/var/run/docker.sock").exists()
        or os.environ.get("DOCKER_HOST")
    ):
        return None
    try:
        from integration.lab import docker as lab_docker
    except ImportError:  # no Docker SDK: no container can have been made
        return None
    return lab_docker


def _docker_teardown(prefix: str) -> list[str]:
    """Docker backend: remove the run's containers and image before its namespaces go."""
    owner = read_owner(run_dir_for(prefix))
    if owner is not None and owner.backend == "netns":
        return []
    lab_docker = _docker_module()
    return [] if lab_docker is None else list(lab_docker.destroy_docker_run(prefix))


def _docker_prefixes() -> set[str]:
    """Prefixes of runs that still have containers or images (their run may be gone)."""
    lab_docker = _docker_module()
    return set() if lab_docker is None else set(lab_docker.stale_docker_prefixes())


def _docker_engine_sweep() -> None:
    """Stop a lab-started dockerd whose starter is gone and that holds no lab container."""
    lab_docker = _docker_module()
    if lab_docker is not None:
        lab_docker.stop_lab_engine(caller_is_owner=False)


def make_owner(
    prefix: str,
    *,
    persistent: bool,
    pool: str,
    prefixlen: int,
    nodes: list[dict[str, Any]],
    backend: str = "netns",
) -> OwnerRecord:
    """An owner record for the current process."""
    pid = os.getpid()
    return OwnerRecord(
        prefix=prefix,
        pid=pid,
        start_time=pid_start_time(pid),
        persistent=persistent,
        created=time.time(),
        pool=pool,
        prefixlen=prefixlen,
        nodes=nodes,
        backend=backend,
    )
