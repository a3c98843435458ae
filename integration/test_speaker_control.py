"""Issue 3, operator commands against real BIRD 1.6.8: our ``disable``/``enable``, route refresh
both ways (with RFC 7313 BoRR/EoRR, which BIRD 1.6.8 negotiates), and a SIGHUP with an invalid
configuration, which must be refused while the running one is kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from integration.conftest import LabFactory
from integration.lab import wait_until
from integration.test_speaker_mesh import (
    CONVERGE,
    REPO_ROOT,
    ROUTES,
    bird_log_size,
    bird_state_changes,
    log_size,
    log_text,
    speaker_cli,
)

PEER80 = "Mesh_192_168_0_80"
US_ON_BIRD = "Mesh_192_168_0_81"


def test_disable_and_enable_a_peer_from_our_cli(lab: LabFactory) -> None:
    mesh = lab("seed")
    mesh.wait_established(timeout=CONVERGE)
    # BIRD's route counters: .80 sent its block, we sent ours (add-path: one path)
    assert wait_until(
        lambda: "1 imported, 1 exported, 1 preferred"
        in mesh.birdc("node81", f"show protocols all {PEER80}"),
        ROUTES,
    ), mesh.birdc("node81", f"show protocols all {PEER80}")
    offset = bird_log_size(mesh, "node82")
    done = speaker_cli(mesh, "node81", "disable", PEER80)
    assert done.returncode == 0, done.stderr
    # BIRD saw our Cease/Administrative Shutdown (RFC 4486) and shows BIRD's own words for it
    assert wait_until(
        lambda: "Received: Administrative shutdown"
        in mesh.birdc("node80", f"show protocols {US_ON_BIRD}"),
        ROUTES,
    ), mesh.birdc("node80", f"show protocols {US_ON_BIRD}")
    ours = mesh.birdc("node81", f"show protocols {PEER80}")
    assert " down " in ours, ours
    # its block leaves our kernel; the other peer's stays
    assert wait_until(
        lambda: all(r.get("dst") != "10.244.152.128/26" for r in mesh.routes("node81")),
        ROUTES,
    )
    assert any(r.get("dst") == "10.244.103.64/26" for r in mesh.routes("node81"))
    done = speaker_cli(mesh, "node81", "enable", PEER80)
    assert done.returncode == 0, done.stderr
    mesh.wait_established(timeout=CONVERGE)
    assert wait_until(
        lambda: any(r.get("dst") == "10.244.152.128/26" for r in mesh.routes("node81")),
        ROUTES,
    )
    # the .82 session never blinked
    assert bird_state_changes(mesh, "node82", US_ON_BIRD, offset) == []


def test_route_refresh_both_ways(lab: LabFactory) -> None:
    mesh = lab("seed")
    mesh.wait_established(timeout=CONVERGE)
    # BIRD asks us (`reload in`): we answer BoRR, our routes, EoRR (RFC 7313 4)
    offset = log_size(mesh, "node81")
    mesh.birdc("node80", f"reload in {US_ON_BIRD}")

    def answered() -> bool:
        text = log_text(mesh, "node81", offset)
        return "received ROUTE-REFRESH" in text and text.count("sending ROUTE-REFRESH") >= 2

    assert wait_until(answered, ROUTES), log_text(mesh, "node81", offset)
    text = log_text(mesh, "node81", offset)
    borr, eorr = text.find("ROUTE-REFRESH BORR"), text.rfind("ROUTE-REFRESH EORR")
    assert 0 <= borr < eorr, text
    assert "10.244.42.64/26" in mesh.birdc("node80", "show route for 10.244.42.64/26")
    # we ask BIRD (`speaker refresh`): it answers with BoRR ... EoRR and nothing is lost
    offset = log_size(mesh, "node81")
    done = speaker_cli(mesh, "node81", "refresh", PEER80)
    assert done.returncode == 0, done.stderr
    assert wait_until(
        lambda: log_text(mesh, "node81", offset).count("received ROUTE-REFRESH") >= 2, ROUTES
    ), log_text(mesh, "node81", offset)
    assert any(r.get("dst") == "10.244.152.128/26" for r in mesh.routes("node81"))
    assert "Traceback" not in log_text(mesh, "node81")


def test_invalid_config_on_sighup_is_refused_and_the_running_one_kept(lab: LabFactory) -> None:
    mesh = lab("seed")
    mesh.wait_established(timeout=CONVERGE)
    config = mesh.config_path("node81")
    good = config.read_text()
    before = mesh.birdc("node81", "show protocols")
    offset = log_size(mesh, "node81")
    config.write_text(good.replace('asn = 64512', 'asn = "not a number"', 1))
    pid = mesh.daemon_pid("node81")
    assert pid is not None
    os.kill(pid, signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in log_text(mesh, "node81", offset), ROUTES)
    refused = log_text(mesh, "node81", offset)
    assert "asn" in refused, refused  # the message names the key
    assert mesh.daemon_running("node81")
    assert mesh.birdc("node81", "show protocols") == before
    config.write_text(good)


def test_show_events_and_watch_tell_a_sessions_history(lab: LabFactory) -> None:
    """BIRD disables and re-enables its session with us: ``show events`` tells it afterwards,
    ``speaker watch`` tells it live, both in the speaker's own words with the causes."""
    mesh = lab("seed")
    mesh.wait_established(timeout=CONVERGE)
    sock = str(mesh.control_socket("node81"))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "speaker", "watch", PEER80, "--socket", sock],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )
    try:
        assert watcher.stdout is not None
        assert "Watching Mesh_192_168_0_80" in watcher.stdout.readline()
        mesh.birdc("node80", f"disable {US_ON_BIRD}")
        assert wait_until(
            lambda: "received NOTIFICATION" in speaker_cli(
                mesh, "node81", "show", "events", PEER80).stdout, ROUTES)
        mesh.birdc("node80", f"enable {US_ON_BIRD}")
        mesh.wait_established(timeout=CONVERGE)
        done = speaker_cli(mesh, "node81", "show", "events", PEER80, "--since", "10m")
        assert done.returncode == 0, done.stderr
        text = done.stdout
        # the whole story, in order: established, Cease from BIRD, down, back up
        story = ["session Established", "received NOTIFICATION CEASE/ADMINISTRATIVE_SHUTDOWN",
                 "Established -> Active", "session down"]
        positions = [text.find(s) for s in story]
        assert all(p >= 0 for p in positions) and positions == sorted(positions), text
        assert text.count("session Established") >= 2, text
        assert "192.168.0.82" not in text and "Mesh_192_168_0_82" not in text  # only .80's
        everything = speaker_cli(mesh, "node81", "show", "events").stdout
        assert "(speaker)" in everything and "Mesh_192_168_0_82" in everything
    finally:
        watcher.terminate()
        live, _ = watcher.communicate(timeout=10)
    assert "received NOTIFICATION CEASE/ADMINISTRATIVE_SHUTDOWN (6/2)" in live, live
    assert live.count("session Established") >= 1, live


def test_explain_a_learned_prefix_our_block_and_an_unknown_one(lab: LabFactory) -> None:
    mesh = lab("seed")
    mesh.wait_established(timeout=CONVERGE)
    assert wait_until(
        lambda: any(r.get("dst") == "10.244.152.128/26" for r in mesh.routes("node81")), ROUTES
    )
    learned = speaker_cli(mesh, "node81", "explain", "10.244.152.129")
    assert learned.returncode == 0, learned.stderr
    text = learned.stdout
    assert "10.244.152.128/26 (longest match of 10.244.152.129): 1 path" in text, text
    assert "Mesh_192_168_0_80 (192.168.0.80)" in text and "via 192.168.0.80" in text, text
    assert "Kernel: accept" in text and "now installed via 192.168.0.80 (as wanted)" in text, text
    # learned over iBGP: not sent to the other iBGP peer (BIRD's and Calico's split horizon)
    assert "Export to Mesh_192_168_0_82: reject" in text, text
    own = speaker_cli(mesh, "node81", "explain", "10.244.42.64/26", "--json")
    assert own.returncode == 0, own.stderr
    doc = json.loads(own.stdout)["data"]["explain"]
    assert doc["prefix"] == "10.244.42.64/26" and doc["paths"][0]["next_hop"] == "blackhole"
    assert all(v.startswith("accept") for _, v in doc["exports"]), doc["exports"]
    unknown = speaker_cli(mesh, "node81", "explain", "172.16.0.0/24")
    assert "not in our table" in unknown.stdout and "if a peer sent it: reject" in unknown.stdout
