"""Thin wrappers over `ip` and process handling, the only place the lab touches the system.

Every command that acts on the network names a lab namespace explicitly (``ip -n NS ...`` or
``ip netns exec NS ...``); nothing here ever configures the root namespace.  Processes are ended
by PID only, and only PIDs that live inside a lab namespace (so started by the lab).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path


class LabError(RuntimeError):
    """A lab operation failed; the message carries the command and its output."""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    input_text: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture text output; on failure raise LabError with argv and stderr."""
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
            cwd=cwd,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]} (in {' '.join(argv)})") from exc
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def ip(netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip -n NETNS ARGS...``: an iproute2 command confined to one lab namespace."""
    return run(["ip", "-n", netns, *args], check=check)


def netns_exec_argv(netns: str, argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` inside ``netns`` (``ip netns exec`` execs in place: same PID)."""
    return ["ip", "netns", "exec", netns, *argv]


def add_netns(name: str) -> None:
    """Create a namespace and bring its loopback up."""
    run(["ip", "netns", "add", name])
    ip(name, "link", "set", "lo", "up")


def list_netns() -> list[str]:
    """Names of all named network namespaces (``ip netns list``), any owner."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(name: str) -> list[int]:
    """PIDs of processes inside namespace ``name`` (empty if it does not exist)."""
    proc = run(["ip", "netns", "pids", name], check=False)
    if proc.returncode != 0:
        return []
    return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]


def delete_netns(name: str) -> None:
    """Delete a namespace; its veth ends and bridge go with it.  Missing is not an error."""
    proc = run(["ip", "netns", "del", name], check=False)
    if proc.returncode != 0 and name in list_netns():
        raise LabError(f"cannot delete namespace {name}: {proc.stderr.strip()}")


def sysctl(netns: str, key: str, value: str) -> None:
    """Set a sysctl inside ``netns`` (net.* sysctls are per namespace)."""
    run(netns_exec_argv(netns, ["sysctl", "-qw", f"{key}={value}"]))


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def recorded_pid(popen: subprocess.Popen[bytes] | None, pid_file: Path, netns: str) -> int | None:
    """The PID of a helper process while it runs: ours (``popen``), or the one written to
    ``pid_file`` if it is alive inside ``netns`` (so it is the one the lab started)."""
    if popen is not None:
        return popen.pid if popen.poll() is None else None
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and pid in netns_pids(netns) else None


def terminate(pid: int, popen: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM ``pid`` (a process we started: ``popen``, or one recorded in a run folder),
    wait ``grace`` seconds for it, then SIGKILL; by PID only, never by name."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if popen is not None:
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            popen.wait(5)
        return
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def pid_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot): with the PID, a unique identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def kill_pids(pids: Iterable[int], *, grace: float = 3.0) -> None:
    """SIGTERM each PID, wait up to ``grace`` seconds, then SIGKILL the survivors.

    Callers pass only PIDs the lab started (found inside lab namespaces).
    """
    pending = {p for p in pids if p > 1 and p != os.getpid()}
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        _reap(pending)
        pending = {p for p in pending if pid_alive(p)}
        if pending:
            time.sleep(0.05)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while pending and time.monotonic() < deadline:
        _reap(pending)
        pending = {p for p in pending if pid_alive(p)}
        if pending:
            time.sleep(0.05)


def _reap(pids: Iterable[int]) -> None:
    """Reap those of ``pids`` that are our exited children (others are left alone)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
