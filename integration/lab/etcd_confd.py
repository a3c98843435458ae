"""The lab's confd as a process: one BIRD node's bird.cfg follows etcd, as calico-node's does.

calico-node runs confd beside BIRD on every host: it watches the datastore, renders bird.cfg
from the templates and makes BIRD reload.  The tests call ``EtcdBirdRenderer.sync()``
themselves after each change; a lab that lives on (``lab_up --datastore etcd``) and the
datastore benchmark need it to happen by itself.  So this process, one per BIRD node and
running in that node's namespace (where a lab teardown finds it):

1. reads every ``/calico/`` key (``etcdctl get`` in etcd's namespace) and renders the node's
   bird.cfg with ``EtcdBirdRenderer`` (``birdc configure`` if the text changed);
2. watches ``/calico/`` from the next revision (``etcdctl watch -w json``: one line per watch
   response, so one line per transaction) and does step 1 again for every batch of lines that
   arrived together; a watch that ends (etcd restarted) means step 1 and a new watch.

Each render is one log line in ``<node>.confd.log`` (``Confd.log``) starting with the time on
``time.monotonic()``'s clock (the same in every namespace), which the benchmark reads::

    1234.567 09:12:01.123 revision 17: configured (render 41 ms, birdc configure 9 ms)
    1234.990 09:12:01.546 revision 18: unchanged (render 38 ms)

``Confd`` starts and stops it (by its PID, recorded in ``<node>.confd.pid``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from integration.lab.core import REPO_ROOT, Lab, wait_until
from integration.lab.etcd import EtcdServer
from integration.lab.etcd_bird import EtcdBirdRenderer, read_keys
from integration.lab.netns import LabError, netns_exec_argv, recorded_pid, terminate

__all__ = ["Confd", "Render", "parse_log"]

_LINE = re.compile(r"^(?P<mono>\d+\.\d+) \S+ revision (?P<revision>\d+): (?P<what>\w+)")


@dataclass(frozen=True)
class Render:
    """One line of a confd log: when (monotonic), which revision, ``configured`` or
    ``unchanged`` (or ``failed``)."""

    mono: float
    revision: int
    what: str


def parse_log(text: str) -> list[Render]:
    """The renders a confd log records (other lines, such as errors, are skipped)."""
    found = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            found.append(Render(float(m["mono"]), int(m["revision"]), m["what"]))
    return found


class Confd:
    """Start, find and stop the confd process of one BIRD node of a lab."""

    def __init__(self, lab: Lab, node: str, etcd: EtcdServer) -> None:
        self.lab = lab
        self.node = lab.node(node).name
        self.etcd = etcd
        self.log = lab.run_dir / f"{self.node}.confd.log"
        self.pid_file = lab.run_dir / f"{self.node}.confd.pid"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Start it in the node's namespace; returns once its first render is logged."""
        if self.pid() is not None:
            raise LabError(f"{self.node}: confd already runs (pid {self.pid()})")
        argv = [sys.executable, "-m", "integration.lab.etcd_confd", "--prefix", self.lab.prefix,
                "--etcd-node", self.etcd.node_name, "--node", self.node]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(netns_exec_argv(self.lab.netns(self.node), argv),
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env,
                                          start_new_session=True)
        self.pid_file.write_text(f"{self.popen.pid}\n")
        if not wait_until(lambda: self.renders() or self.popen is None
                          or self.popen.poll() is not None, 30.0, interval=0.1):
            raise LabError(f"{self.node}: confd did not render within 30 s:\n{self.tail()}")
        if self.popen.poll() is not None:
            raise LabError(f"{self.node}: confd exited ({self.popen.returncode}):\n{self.tail()}")
        return self.popen.pid

    def pid(self) -> int | None:
        """Its PID while it runs inside the node's namespace (so it is the one started)."""
        return recorded_pid(self.popen, self.pid_file, self.lab.netns(self.node))

    def stop(self) -> None:
        """SIGTERM it by its PID (it stops its etcdctl watch), SIGKILL after 5 s."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, self.popen, 5.0)
        self.popen = None
        self.pid_file.unlink(missing_ok=True)

    def renders(self) -> list[Render]:
        """Every render it logged so far."""
        try:
            return parse_log(self.log.read_text(errors="replace"))
        except OSError:
            return []

    def tail(self, lines: int = 5) -> str:
        """The last lines of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(cannot read {self.log}: {exc})"


# ---------------------------------------------------------------------- the process


def _say(text: str) -> None:
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    sys.stdout.write(f"{time.monotonic():.3f} {stamp} {text}\n")
    sys.stdout.flush()


def _render(prefix: str, etcd_node: str, node: str) -> int:
    """Step 1: read etcd, render, reload if changed; the revision read."""
    lab = Lab.attach(prefix, own=False)  # again each time: BIRD may have been restarted
    etcd = EtcdServer.attach(lab, etcd_node)
    started = time.monotonic()
    keys = read_keys(etcd)
    renderer = EtcdBirdRenderer(lab, etcd)
    try:
        changed = renderer.write(lab.node(node), keys) if node in keys.nodes else False
    except LabError as exc:
        _say(f"revision {keys.revision}: failed: {exc}")
        return keys.revision
    rendered = time.monotonic()
    if not changed:
        _say(f"revision {keys.revision}: unchanged (render {1000 * (rendered - started):.0f} ms)")
        return keys.revision
    if not lab.daemon_running(node):
        _say(f"revision {keys.revision}: written (BIRD not running; render "
             f"{1000 * (rendered - started):.0f} ms)")
        return keys.revision
    reply = lab.birdc(node, "configure", timeout=30.0).strip().splitlines()
    done = time.monotonic()
    ok = any("Reconfigur" in line for line in reply)
    _say(f"revision {keys.revision}: {'configured' if ok else 'failed'} (render "
         f"{1000 * (rendered - started):.0f} ms, birdc configure {1000 * (done - rendered):.0f} ms)"
         + ("" if ok else ": " + " | ".join(reply)))
    return keys.revision


def _lines(fd: int, buffer: bytearray) -> int:
    """Wait for watch output; read every complete line there is now; how many (0: EOF)."""
    count = 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return count
        buffer += chunk
        count += buffer.count(b"\n")
        del buffer[: buffer.rfind(b"\n") + 1]
        if count and not select.select([fd], [], [], 0)[0]:
            return count


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Render, then watch and render again, until SIGTERM."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prefix", required=True, help="the lab run (spk<hex>-)")
    parser.add_argument("--etcd-node", required=True, help="the node whose namespace runs etcd")
    parser.add_argument("--node", required=True, help="the BIRD node to render")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    watch: subprocess.Popen[bytes] | None = None
    try:
        while True:
            try:
                revision = _render(args.prefix, args.etcd_node, args.node)
            except LabError as exc:
                _say(f"cannot read etcd: {str(exc).splitlines()[-1]}; again in 1 s")
                time.sleep(1.0)
                continue
            lab = Lab.attach(args.prefix, own=False)
            etcd = EtcdServer.attach(lab, args.etcd_node)
            t = etcd.tls
            command = ["etcdctl", f"--endpoints={etcd.endpoint}", f"--cacert={t.ca}",
                       f"--cert={t.client_cert}", f"--key={t.client_key}", "watch", "--prefix",
                       "/calico/", f"--rev={revision + 1}", "-w", "json"]
            watch = subprocess.Popen(netns_exec_argv(etcd.netns, command),
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "ETCDCTL_API": "3"})
            assert watch.stdout is not None
            buffer = bytearray()
            while _lines(watch.stdout.fileno(), buffer):
                try:
                    _render(args.prefix, args.etcd_node, args.node)
                except LabError as exc:
                    _say(f"cannot read etcd: {str(exc).splitlines()[-1]}")
            _say(f"the watch ended (exit {watch.wait()}); reading etcd again")
            watch = None
            time.sleep(0.5)
    finally:
        if watch is not None and watch.poll() is None:
            watch.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                watch.wait(5)


if __name__ == "__main__":
    sys.exit(main())
