"""A real etcd (Debian's etcd-server 3.4) inside a lab namespace, with TLS, seeded as Calico.

etcd listens only on a lab node's address (client port, TLS with client certificates) and
on 127.0.0.1 inside that namespace (peer port); its data, certificates and log live in the
run directory, so the lab's teardown removes them.  Certificates are made with ``openssl``
(a CA, a server certificate for the node's IP, a client certificate).  Writes go through
``etcdctl`` inside the namespace; the test process itself never reaches into the lab.
Processes are ended by the PID we started.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from integration.lab.core import REPO_ROOT, Lab, wait_until
from integration.lab.netns import (
    LabError,
    netns_exec_argv,
    pid_alive,
    recorded_pid,
    run,
    terminate,
)

__all__ = ["EtcdServer", "TlsFiles", "TxnResult", "TxnWriter", "Watcher", "make_tls"]

CLIENT_PORT = 2379


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA, etcd's server pair, the client pair (ETCD_*_FILE in Calico)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    run(["openssl", *args], cwd=cwd)


def make_tls(directory: Path, address: str) -> TlsFiles:
    """A throwaway CA and the two certificates, valid for ``address`` (IP SAN)."""
    directory.mkdir(mode=0o700, exist_ok=True)
    d = directory
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=speaker-lab-ca", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for name, cn, ext in (
        ("server", "etcd", f"subjectAltName=IP:{address},IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth,clientAuth\n"),
        ("client", "calico-node", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.pem", cwd=d)
    return TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
                    d / "client.key")


class EtcdServer:
    """One etcd member in ``lab``'s namespace of ``node``, listening on the node's address.

    ``attach`` gives the object for an etcd a persistent lab started earlier (``lab_up``),
    from the run folder: its certificates and the PID it recorded."""

    def __init__(self, lab: Lab, node: str, *, tls: TlsFiles | None = None) -> None:
        self.lab = lab
        self.node_name = node
        self.netns = lab.netns(node)
        self.address = lab.node(node).address
        self.dir = lab.run_dir / "etcd"
        self.dir.mkdir(exist_ok=True)
        self.tls = tls if tls is not None else make_tls(self.dir / "tls", self.address)
        self.endpoint = f"https://{self.address}:{CLIENT_PORT}"
        self.log = self.dir / "etcd.log"
        self.pid_file = self.dir / "etcd.pid"
        self.popen: subprocess.Popen[bytes] | None = None

    @classmethod
    def attach(cls, lab: Lab, node: str) -> EtcdServer:
        """The etcd a lab run started in ``node``'s namespace (its files must exist)."""
        d = lab.run_dir / "etcd" / "tls"
        tls = TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
                       d / "client.key")
        if not tls.ca.exists():
            raise LabError(f"no etcd in lab {lab.prefix}: {tls.ca} is missing")
        return cls(lab, node, tls=tls)

    def pid(self) -> int | None:
        """etcd's PID while it runs inside its namespace (so it is the one we started)."""
        return recorded_pid(self.popen, self.pid_file, self.netns)

    def start(self) -> None:
        """Start etcd and wait until it answers."""
        if self.popen is not None and self.popen.poll() is None:
            raise LabError("etcd already runs")
        t = self.tls
        argv = [
            "etcd", "--name", "lab", "--data-dir", str(self.dir / "data"),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "lab=http://127.0.0.1:2380",
            "--cert-file", str(t.server_cert), "--key-file", str(t.server_key),
            "--trusted-ca-file", str(t.ca), "--client-cert-auth",
        ]
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(netns_exec_argv(self.netns, argv),
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{self.popen.pid}\n")
        if not wait_until(self._healthy, 20.0, interval=0.2):
            raise LabError(f"etcd in {self.netns} not healthy after 20 s:\n"
                           f"{self.log.read_text()[-2000:]}")

    def _healthy(self) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            raise LabError(f"etcd exited:\n{self.log.read_text()[-2000:]}")
        return self.etcdctl("endpoint", "health", check=False).returncode == 0

    def stop(self) -> None:
        """SIGTERM etcd by its PID (ours, or the one recorded in the run folder), wait for it,
        SIGKILL after 10 s."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, self.popen, 10.0)
        self.popen = None
        self.pid_file.unlink(missing_ok=True)

    def etcdctl(self, *args: str, check: bool = True, input_text: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        t = self.tls
        argv = ["etcdctl", f"--endpoints={self.endpoint}", f"--cacert={t.ca}",
                f"--cert={t.client_cert}", f"--key={t.client_key}", *args]
        return run(netns_exec_argv(self.netns, argv), check=check, input_text=input_text,
                   env={**os.environ, "ETCDCTL_API": "3"}, timeout=20.0)

    def put(self, key: str, value: bytes) -> None:
        self.etcdctl("put", key, input_text=value.decode())

    def put_all(self, entries: Mapping[str, bytes]) -> None:
        for key, value in entries.items():
            self.put(key, value)

    def delete(self, key: str) -> None:
        self.etcdctl("del", key)

    def revision(self) -> int:
        out = self.etcdctl("get", "/", "--prefix", "--keys-only", "--limit=1", "-w", "json")
        return int(json.loads(out.stdout)["header"]["revision"])

    def compact(self, revision: int) -> None:
        self.etcdctl("compaction", "--physical", str(revision))

    def items(self, prefix: str = "/calico/") -> tuple[int, dict[str, bytes]]:
        """(revision, every key under ``prefix`` with its value), in key order."""
        out = self.etcdctl("get", prefix, "--prefix", "-w", "json")
        reply = json.loads(out.stdout)
        kvs = sorted((base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")))
                     for kv in reply.get("kvs", []))
        return int(reply["header"]["revision"]), dict(kvs)


class Watcher:
    """integration/lab/etcd_watch.py run in a node's namespace: the speaker's EtcdSource,
    printing each derived Config and status change as a JSON line into the run folder."""

    def __init__(self, lab: Lab, node: str, etcd: EtcdServer, node_name: str) -> None:
        self.out = lab.run_dir / f"{node}.etcd-watch.jsonl"
        t = etcd.tls
        argv = [sys.executable, "-m", "integration.lab.etcd_watch", "--endpoint",
                etcd.endpoint, "--ca", str(t.ca), "--cert", str(t.client_cert),
                "--key", str(t.client_key), "--node-name", node_name]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with self.out.open("wb") as out:
            self.popen = subprocess.Popen(netns_exec_argv(lab.netns(node), argv),
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env,
                                          start_new_session=True)

    def lines(self) -> list[dict[str, object]]:
        out = []
        for line in self.out.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def configs(self) -> list[dict[str, object]]:
        return [x["config"] for x in self.lines() if "config" in x]  # type: ignore[misc]

    def status(self) -> dict[str, object]:
        found = [x["status"] for x in self.lines() if "status" in x]
        return found[-1] if found else {}  # type: ignore[return-value]

    def stop(self) -> None:
        if self.popen.poll() is None and pid_alive(self.popen.pid):
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


@dataclass(frozen=True)
class TxnResult:
    """One transaction done by a TxnWriter: when it was sent, when etcd answered (it was
    committed in between), both ``time.monotonic()`` (one clock in every namespace)."""

    sent: float
    done: float
    revision: int


class TxnWriter:
    """integration/lab/etcd_txn.py in a node's namespace: etcd transactions on request, timed
    where they are made, so a benchmark knows when keys were written to within the round
    trip (an ``etcdctl`` per write would add its start-up, tens of ms, to every figure)."""

    def __init__(self, lab: Lab, node: str, etcd: EtcdServer) -> None:
        t = etcd.tls
        argv = [sys.executable, "-m", "integration.lab.etcd_txn", "--endpoint", etcd.endpoint,
                "--ca", str(t.ca), "--cert", str(t.client_cert), "--key", str(t.client_key)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.popen = subprocess.Popen(netns_exec_argv(lab.netns(node), argv),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      cwd=REPO_ROOT, env=env, start_new_session=True, text=True)

    def txn(self, put: Mapping[str, bytes], delete: Sequence[str] = ()) -> TxnResult:
        """Write ``put`` and delete ``delete`` in one transaction; LabError if it failed."""
        assert self.popen.stdin is not None and self.popen.stdout is not None
        request = {"put": {k: base64.b64encode(v).decode() for k, v in put.items()},
                   "delete": list(delete)}
        self.popen.stdin.write(json.dumps(request) + "\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        if not line:
            raise LabError(f"etcd_txn exited (status {self.popen.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise LabError(f"etcd txn failed: {reply['error']}")
        return TxnResult(float(reply["sent"]), float(reply["done"]), int(reply["revision"]))

    def close(self) -> None:
        """End the helper: EOF on its stdin, SIGKILL by its PID if it does not go."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
