"""Both families on one session, against GoBGP (Debian's ``gobgpd``), as issue 13 asks.

BIRD 1.6 carries one family per daemon (bird: IPv4, bird6: IPv6); GoBGP carries both on one
session.  Two namespaces made here (``gbt<pid><hex>a``/``b``, a veth between them, nothing
connected to the root namespace, both deleted afterwards): GoBGP on 192.168.0.80 with the
``ipv4-unicast`` and ``ipv6-unicast`` families, passive; the speaker on .81 with
``families = ["ipv4", "ipv6"]`` and ``address6``, dialling over IPv4.  Each side announces an
IPv4 /26 and an IPv6 /122; each must hold the other's, with the right next hops, and the
speaker's kernel must hold GoBGP's IPv6 block via GoBGP's IPv6 address.  Processes are ended by
their PIDs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.lab.core import REPO_ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("gobgpd") is None,
    reason="needs root and Debian's gobgpd",
)

GOBGP_CONFIG = """\
[global.config]
  as = 64512
  router-id = "192.168.0.80"
  port = 179
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.168.0.81"
    peer-as = 64512
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"""

SPEAKER_CONFIG = """\
router_id = "192.168.0.81"
asn = 64512
address6 = "fd00:192:168::81"
control_socket = "{run}/speaker.ctl"
[[peer]]
address = "192.168.0.80"
source_address = "192.168.0.81"
families = ["ipv4", "ipv6"]
[originate]
blocks = ["10.244.81.0/26", "fd00:10:244::8100/122"]
[pools]
cidrs = ["10.244.0.0/16", "fd00:10:244::/64"]
"""

API = ["-u", "127.0.0.1", "-p", "50051"]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth, IPv4 and IPv6 on it; deleted whatever happens."""
    prefix = f"gbt{os.getpid()}{secrets.token_hex(2)}"
    a, b = f"{prefix}a", f"{prefix}b"
    ip("netns", "add", a)
    try:
        ip("netns", "add", b)
        ip("-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
        for ns, last in ((a, "80"), (b, "81")):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "addr", "add", f"192.168.0.{last}/24", "dev", "eth0")
            ip("-n", ns, "addr", "add", f"fd00:192:168::{last}/64", "dev", "eth0", "nodad")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _gobgp(ns: str, *args: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", ns, "gobgp", *API, *args],
                         capture_output=True, text=True, check=True)
    return out.stdout


def _rib(ns: str, family: str) -> dict[str, list[str]]:
    """GoBGP's table of one family: prefix -> next hops."""
    doc = json.loads(_gobgp(ns, "global", "rib", "-a", family, "-j") or "{}")
    # each path's attributes: NEXT_HOP (type 3) or MP_REACH_NLRI (type 14) hold "nexthop"
    return {prefix: sorted(a["nexthop"] for p in paths for a in p.get("attrs", ())
                           if "nexthop" in a)
            for prefix, paths in doc.items()}


def _kernel(ns: str, family: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-n", ns, "-j", family, "route"], capture_output=True,
                         text=True, check=True)
    routes: list[dict[str, object]] = json.loads(out.stdout or "[]")
    return routes


def _until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return True
        except (subprocess.CalledProcessError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.25)
    return False


def test_one_session_carries_ipv4_and_ipv6_with_gobgp(pair: tuple[str, str],
                                                      tmp_path: Path) -> None:
    a, b = pair
    (tmp_path / "gobgp.toml").write_text(GOBGP_CONFIG)
    (tmp_path / "speaker.toml").write_text(SPEAKER_CONFIG.format(run=tmp_path))
    gobgpd = _start(["ip", "netns", "exec", a, "gobgpd", "-f", str(tmp_path / "gobgp.toml"),
                     "--api-hosts", "127.0.0.1:50051"], tmp_path / "gobgpd.log")
    speaker: subprocess.Popen[bytes] | None = None
    try:
        assert _until(lambda: _gobgp(a, "global") != "", 10), "gobgpd did not start"
        _gobgp(a, "global", "rib", "-a", "ipv6", "add", "fd00:10:244::8000/122",
               "nexthop", "fd00:192:168::80")
        _gobgp(a, "global", "rib", "-a", "ipv4", "add", "10.244.80.0/26",
               "nexthop", "192.168.0.80")
        speaker = _start(["ip", "netns", "exec", b, sys.executable, "-m", "speaker", "run",
                          "--config", str(tmp_path / "speaker.toml")], tmp_path / "speaker.log")

        def both_ways() -> bool:
            v6, v4 = _rib(a, "ipv6"), _rib(a, "ipv4")
            kernel6 = {str(r["dst"]): r for r in _kernel(b, "-6")}
            kernel4 = {str(r["dst"]): r for r in _kernel(b, "-4")}
            return (v6.get("fd00:10:244::8100/122") == ["fd00:192:168::81"]
                    and v4.get("10.244.81.0/26") == ["192.168.0.81"]
                    and kernel6.get("fd00:10:244::8000/122", {}).get("gateway")
                    == "fd00:192:168::80"
                    and kernel4.get("10.244.80.0/26", {}).get("gateway") == "192.168.0.80")

        assert _until(both_ways, 30), (
            f"GoBGP ipv4 {_rib(a, 'ipv4')}, ipv6 {_rib(a, 'ipv6')}; speaker kernel "
            f"{_kernel(b, '-4')} {_kernel(b, '-6')}; log tail "
            f"{(tmp_path / 'speaker.log').read_text()[-2000:]}")
        neighbor = _gobgp(a, "neighbor", "192.168.0.81")
        assert "ipv4-unicast" in neighbor and "ipv6-unicast" in neighbor
        status = subprocess.run([sys.executable, "-m", "speaker", "show", "protocols", "all",
                                 "--socket", str(tmp_path / "speaker.ctl")],
                                capture_output=True, text=True, check=True, cwd=REPO_ROOT)
        assert "Established" in status.stdout
        # one withdrawal per family: both leave our kernel
        _gobgp(a, "global", "rib", "-a", "ipv6", "del", "fd00:10:244::8000/122")
        _gobgp(a, "global", "rib", "-a", "ipv4", "del", "10.244.80.0/26")
        assert _until(lambda: not any(
            r["dst"] in ("fd00:10:244::8000/122", "10.244.80.0/26")
            for r in _kernel(b, "-6") + _kernel(b, "-4")), 10)
    finally:
        if speaker is not None:
            _stop(speaker)
        _stop(gobgpd)
