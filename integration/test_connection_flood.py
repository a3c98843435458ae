"""A flood of connection attempts from an unconfigured source does not starve the sessions.

The seed mix (BIRD .80/.82, our speaker .81) with a short hold time (9 s, so KEEPALIVEs every
3 s and a stall shows), then .82's pod (10.244.103.65, not a peer) opens connections to
192.168.0.81:179 as fast as it can for 20 s (integration/lab/flood.py, bounded in count and
time; lab traffic only).  Checked, and printed for docs/security.md:

* every attempt is refused (RST) before anything is read: no session state, no OPEN parsed;
* KEEPALIVEs missed = 0: the longest gap between our KEEPALIVEs to .80 (tcpdump in .80's
  namespace) stays under two keepalive intervals; neither BIRD session flapped;
* memory does not grow with the attempts (RSS before and after);
* the log is not flooded: refusals come in bursts of 10 per 10 s plus summaries.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

from integration.conftest import LabFactory
from integration.lab.capture import Capture
from integration.test_speaker_mesh import bird_log_size, bird_state_changes

FLOOD = Path(__file__).resolve().parent / "lab" / "flood.py"
SECONDS = 20.0
HOLD = 9
KEEPALIVE = HOLD / 3


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_connection_flood_from_an_unconfigured_source(lab: LabFactory) -> None:
    mesh = lab("seed", start_daemons=False)
    config = mesh.config_path("node81")
    config.write_text(config.read_text().replace("[[peer]]\n", f"[[peer]]\nhold_time = {HOLD}\n"))
    for node in mesh.nodes:
        mesh.start_node(node)
    mesh.wait_established(60)
    pid = mesh.daemon_pid("node81")
    assert pid is not None
    bird_logs = {n: bird_log_size(mesh, n) for n in ("node80", "node82")}
    log_before = mesh.log_path("node81").read_text()
    rss_before = rss_kib(pid)
    capture = Capture(mesh, "node80")

    done = mesh.exec(
        "node82",
        [sys.executable, str(FLOOD), "--target", "192.168.0.81", "--seconds", str(SECONDS),
         "--max", "400000", "--parallel", "200"],
        where="pod",
        timeout=SECONDS + 30,
    )
    result = json.loads(done.stdout)
    rss_after = rss_kib(pid)
    messages = capture.stop()

    keepalives = [t for t, src, _dst, data in messages if src == "192.168.0.81" and data[18] == 4]
    gaps = [b - a for a, b in itertools.pairwise(keepalives)]
    max_gap = max(gaps)
    missed = sum(1 for g in gaps if g > 2 * KEEPALIVE)
    log = mesh.log_path("node81").read_text()[len(log_before):]
    refused_lines = sum(1 for line in log.splitlines() if "refused: not a configured peer" in line)
    summary = {
        **result,
        "keepalives_seen": len(keepalives),
        "max_keepalive_gap_s": round(max_gap, 2),
        "keepalives_missed": missed,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "refusal_log_lines": refused_lines,
    }
    print("connection flood:", json.dumps(summary))
    report = os.environ.get("SPEAKER_FLOOD_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary, indent=2))

    assert result["attempts"] > 1000, result  # a flood, not a trickle
    assert result["established"] + result["refused"] >= result["attempts"] * 0.9
    assert len(keepalives) >= SECONDS / KEEPALIVE - 1
    assert missed == 0, gaps
    for node, offset in bird_logs.items():  # BIRD saw no session to .81 go down meanwhile
        changes = bird_state_changes(mesh, node, "Mesh_192_168_0_81", offset)
        flaps = [c for c in changes if c.rsplit(" ", 1)[-1] in ("down", "start", "stop")]
        assert flaps == [], (node, changes)
    assert all("up Established" in s for s in mesh.mesh_status()["node81"].values())
    assert rss_after - rss_before < 20 * 1024, (rss_before, rss_after)  # no per-attempt state
    assert refused_lines <= 10 * (SECONDS / 10 + 2), refused_lines
    assert "more connections from" in log  # the rest were summarised
    assert "OPEN" not in "".join(line for line in log.splitlines() if "10.244.103.65" in line)
