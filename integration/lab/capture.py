"""tcpdump of BGP inside a lab node's namespace, read back with our own capture reader."""

from __future__ import annotations

import signal
import subprocess
import time

from integration.lab.core import Lab
from integration.lab.netns import netns_exec_argv
from speaker.pcap import read_capture


class Capture:
    """tcpdump of BGP on a node's eth0 (a process we started, ended by PID)."""

    def __init__(self, mesh: Lab, node: str) -> None:
        self.path = mesh.run_dir / f"{node}.bgp.pcap"
        argv = ["tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", str(self.path)]
        argv.append("tcp port 179")
        self.proc = subprocess.Popen(
            netns_exec_argv(mesh.netns(node), argv),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        assert "listening on" in line, f"tcpdump did not start: {line!r}"

    def stop(self) -> list[tuple[float, str, str, bytes]]:
        """End tcpdump; the BGP messages as (time, source address, destination address, bytes)."""
        time.sleep(0.5)  # let the last packets reach the file
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return [
            (m.timestamp, m.source.address, m.destination.address, m.data)
            for m in read_capture(self.path)
        ]
