"""sd_notify against a real Unix datagram socket standing in for systemd, and the real daemon."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from speaker.systemd import Notifier, notify_address, watchdog_interval

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound AF_UNIX SOCK_DGRAM socket, as systemd's notify socket; yields (path, socket)."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def fields(datagram: bytes) -> dict[str, str]:
    """A notification datagram as its KEY=VALUE lines."""
    text = datagram.decode()
    assert text.endswith("\n"), text
    return dict(line.split("=", 1) for line in text.splitlines())


def receive(sock: socket.socket, deadline: float = 10.0) -> dict[str, str]:
    sock.settimeout(deadline)
    return fields(sock.recv(4096))


def receive_state(sock: socket.socket) -> dict[str, str]:
    """The next notification that is not a watchdog ping (those interleave freely)."""
    while (got := receive(sock)) == {"WATCHDOG": "1"}:
        pass
    return got


# --------------------------------------------------------------------------- environment


def test_notify_address_path_abstract_and_unset() -> None:
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@sd-notify-1") == b"\0sd-notify-1"
    assert notify_address(None) is None
    assert notify_address("") is None
    assert notify_address("relative/path") is None


def test_watchdog_interval_is_half_the_usec_and_respects_the_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_interval({}, 42) is None


def test_from_environ_reads_socket_and_watchdog() -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "2000000",
                               "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled and n.address == "/x" and n.watchdog == 1.0
    quiet = Notifier.from_environ({"WATCHDOG_USEC": "2000000"})
    assert not quiet.enabled and quiet.watchdog is None


def test_everything_is_a_no_op_without_notify_socket() -> None:
    n = Notifier.from_environ({})
    assert n.ready("up") is False
    assert n.status("x") is False
    assert n.stopping() is False
    assert n.reloading() is False


# --------------------------------------------------------------------------- datagrams


def test_ready_with_status_is_one_datagram(systemd: tuple[str, socket.socket]) -> None:
    path, sock = systemd
    n = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert n.ready("AS64512, 2 peers")
    assert receive(sock) == {"READY": "1", "STATUS": "AS64512, 2 peers"}
    assert n.stopping("stopping (SIGTERM)")
    assert receive(sock) == {"STOPPING": "1", "STATUS": "stopping (SIGTERM)"}


def test_abstract_socket_name(tmp_path: Path) -> None:
    name = f"speaker-test-{os.getpid()}-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        assert Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert receive(sock) == {"STATUS": "hello"}


def test_unknown_key_is_refused_and_a_dead_socket_does_not_raise(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "gone.sock"))
    with pytest.raises(ValueError):
        n.send(REDAY=1)
    assert n.send(READY=1) is False  # nobody listens: logged, not raised


async def test_reload_sends_reloading_with_monotonic_then_ready(
    systemd: tuple[str, socket.socket],
) -> None:
    path, sock = systemd
    n = Notifier(path)
    seen: list[dict[str, str]] = []

    async def reload() -> None:
        seen.append(receive(sock))  # RELOADING arrives before the reload runs

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    await n.around_reload(reload)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert seen[0]["RELOADING"] == "1"
    assert before <= int(seen[0]["MONOTONIC_USEC"]) <= after
    assert receive(sock) == {"READY": "1"}

    async def refused() -> None:
        raise RuntimeError("bad config")

    with pytest.raises(RuntimeError):
        await n.around_reload(refused, "still running")
    assert receive(sock)["RELOADING"] == "1"
    assert receive(sock) == {"READY": "1", "STATUS": "still running"}


async def test_watchdog_pings_from_the_event_loop(systemd: tuple[str, socket.socket]) -> None:
    path, sock = systemd
    n = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})  # 20 ms
    assert n.watchdog == 0.02
    n.started("up")
    await asyncio.sleep(0.15)
    await n.stop_watchdog()
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(fields(sock.recv(4096)))
        except BlockingIOError:
            break
    assert got[0] == {"READY": "1", "STATUS": "up"}
    pings = got[1:]
    assert 3 <= len(pings) <= 12 and all(p == {"WATCHDOG": "1"} for p in pings)
    await asyncio.sleep(0.05)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # stopped: no more pings


async def test_no_watchdog_for_another_pid(systemd: tuple[str, socket.socket]) -> None:
    path, sock = systemd
    n = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000",
                               "WATCHDOG_PID": str(os.getpid() + 1)})
    n.start_watchdog()
    await asyncio.sleep(0.06)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


# --------------------------------------------------------------------------- the real daemon


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="the daemon's kernel bridge reads the routing table over netlink; "
                           "run in a private network namespace (unshare -n) it needs root")
def test_real_daemon_notifies_ready_watchdog_reload_and_stopping(
    tmp_path: Path, systemd: tuple[str, socket.socket]
) -> None:
    path, sock = systemd
    config = tmp_path / "speaker.toml"
    control = tmp_path / "speaker.ctl"
    config.write_text(
        'router_id = "10.0.0.1"\nasn = 64512\nlisten = "127.0.0.1"\nport = 1179\n'
        f'control_socket = "{control}"\n[kernel]\nlearn = false\n'
    )
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        ["unshare", "-n", sys.executable, "-m", "speaker", "run", "--config", str(config)],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready = receive(sock)
        assert ready["READY"] == "1", ready
        assert "AS64512 on 127.0.0.1:1179, 0 peers" in ready["STATUS"]
        assert control.exists()  # READY only once the control socket listens
        assert receive(sock) == {"WATCHDOG": "1"}
        assert receive(sock) == {"WATCHDOG": "1"}
        proc.send_signal(signal.SIGHUP)
        reloading = receive_state(sock)
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        assert receive_state(sock) == {"READY": "1"}
        proc.send_signal(signal.SIGTERM)
        assert receive_state(sock) == {"STOPPING": "1", "STATUS": "stopping (SIGTERM)"}
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=20)
    assert "stopped" in err
