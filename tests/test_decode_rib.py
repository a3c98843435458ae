"""``speaker decode --rib``: the capture replayed into our RIB, one table per receiver."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from speaker.annotate.gaps import Lost
from speaker.annotate.replay import RibReplay, merge_events
from speaker.decode import Wire, capture_messages, decode_all, decode_main
from speaker.pcap import Gap, TcpEvent, tcp_events
from speaker.rib import BestPathReason, Rib
from speaker.wire.nlri import Prefix

V4 = "192.168.0.81"


def _items(path: Path) -> Iterator[object]:
    raw = path.read_bytes()
    wires: Iterator[Wire | Gap] = capture_messages(raw)
    return merge_events(decode_all(wires), tcp_events(raw))


def _replay_until(path: Path, last_index: int | None = None) -> RibReplay:
    """Replay up to and including message ``last_index`` (None: the whole capture)."""
    replay = RibReplay()
    for item in _items(path):
        index = getattr(item, "index", None)
        if last_index is not None and index is not None and index > last_index:
            break
        replay.feed(item)  # type: ignore[arg-type]
    return replay


def _rib(replay: RibReplay, address: str) -> Rib:
    return next(r.rib for r in replay.receivers() if r.address == address)


def _paths(rib: Rib, prefix: str) -> list[tuple[int | None, str, bool]]:
    return sorted((p.path_id, str(p.next_hop), p.stale) for p in rib.paths(prefix))


def test_tcp_events_of_lifecycle(testdata: Path) -> None:
    events = list(tcp_events(testdata / "lifecycle.pcap"))
    kinds = [(e.frame, e.kind) for e in events]
    # the three IPv4 sessions open with SYN/SYN-ACK; the NOTIFICATION and the SIGKILL close
    # theirs with FINs; .81's connects to the dead .80 are refused with RSTs
    assert (15, "SYN") in kinds and (16, "SYN-ACK") in kinds
    assert (46, "FIN") in kinds and (67, "FIN") in kinds
    assert (50, "RST") in kinds and (71, "RST") in kinds
    assert all(isinstance(e, TcpEvent) for e in events)
    assert all(179 in (e.source.port, e.destination.port) for e in events)


def test_merge_puts_events_between_messages_in_frame_order(testdata: Path) -> None:
    frames = [
        (item.frame if not isinstance(item, Lost) else item.gap.frame)
        for item in _items(testdata / "lifecycle.pcap")
    ]
    assert frames == sorted(frames)


def test_receiver_81_learns_two_paths_of_200_0_then_one(testdata: Path) -> None:
    path = testdata / "lifecycle.pcap"
    # after the first End-of-RIB from .80 (message #17): both add-path paths, distinct ids
    rib = _rib(_replay_until(path, 17), V4)
    two = _paths(rib, "10.244.200.0/26")
    assert [pid for pid, _, _ in two] == [5, 6]
    assert {hop for _, hop, _ in two} == {"192.168.0.80", "192.168.0.82"}
    decision = rib.decision("10.244.200.0/26")
    assert decision.reason is BestPathReason.PATH_ID and decision.best is not None
    assert decision.best.path_id == 5
    # message #19 withdraws path id 6 only
    rib = _rib(_replay_until(path, 19), V4)
    assert _paths(rib, "10.244.200.0/26") == [(5, "192.168.0.80", False)]
    assert rib.decision("10.244.200.0/26").reason is BestPathReason.ONLY_PATH


def test_receiver_81_host_route_keeps_communities_and_med(testdata: Path) -> None:
    rib = _rib(_replay_until(testdata / "lifecycle.pcap"), V4)
    (route,) = rib.paths("10.244.77.7/32")
    attrs = route.attrs
    assert attrs.med == 50
    assert attrs.communities == ((64512 << 16) | 100,)
    assert attrs.large_communities == ((64512, 1, 2),)
    assert route.path_id == 4 and str(route.next_hop) == "192.168.0.80"


def test_notification_drops_and_graceful_restart_keeps_stale(testdata: Path) -> None:
    path = testdata / "lifecycle.pcap"
    # #26 is .80's Cease: .81 drops everything it learned from .80
    assert len(_rib(_replay_until(path, 26), V4)) == 0
    # the SIGKILL (FIN at frame 67, no NOTIFICATION): .81 keeps .80's routes, stale
    rib = _rib(_replay_until(path, 35), V4)
    replay = RibReplay()
    for item in _items(path):
        replay.feed(item)  # type: ignore[arg-type]
        if getattr(item, "frame", None) == 68:
            break
    stale = _rib(replay, V4)
    assert len(stale) == len(rib) > 0
    for prefix in ("10.244.77.7/32", "10.244.152.128/26"):
        assert stale.paths(prefix) and all(p.stale for p in stale.paths(prefix))
    # after the restarted .80's End-of-RIB (#45) nothing stale is left, both paths are back
    final = _rib(_replay_until(path), V4)
    assert not any(p.stale for v in final.show_route() for p in (pv.path for pv in v.paths))
    assert [pid for pid, _, _ in _paths(final, "10.244.200.0/26")] == [5, 6]


def test_receiver_80_and_the_ipv6_session(testdata: Path) -> None:
    replay = _replay_until(testdata / "lifecycle.pcap")
    assert [r.address for r in replay.receivers()] == [
        "192.168.0.80", "192.168.0.81", "fd00::80", "fd00::81",
    ]
    assert [str(v.prefix) for v in _rib(replay, "192.168.0.80").show_route()] == ["10.244.42.64/26"]
    six = _rib(replay, "fd00::81")
    assert six.best(Prefix.parse("fd00:10:244:98::/122")) is not None
    notes = " ".join(next(r for r in replay.receivers() if r.address == "192.168.0.80").notes)
    assert "restarted (R bit" in notes


def _rib_text(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    status = decode_main(str(path), as_json=False, force_hex=False, out=out, rib=True)
    return status, out.getvalue()


def test_rib_output_of_lifecycle(testdata: Path) -> None:
    status, text = _rib_text(testdata / "lifecycle.pcap")
    assert status == 0
    table = text.split("table of 192.168.0.81 ")[1].split("\n\n")[0]
    assert "5 of 5 routes for 4 networks" in table
    route = table.split("  10.244.200.0/26\n")[1]
    assert "via 192.168.0.80 [Mesh_192_168_0_80 from 192.168.0.80 path-id 5] *" in route
    assert "best: path from 192.168.0.80 wins on lower path id 5 < 6" in route
    assert "not best: lost at the path id step" in route
    host = table.split("  10.244.77.7/32\n")[1]
    assert "(100/50)" in host.splitlines()[0] and "BGP.community: (64512,100)" in host


def test_rib_of_mesh_restart(testdata: Path) -> None:
    status, text = _rib_text(testdata / "mesh-restart.pcap")
    assert status == 0
    assert "table of 192.168.0.81 " in text and "table of 192.168.0.82 " in text


def test_rib_of_synthetic_capture_and_hex(testdata: Path, tmp_path: Path) -> None:
    # cases BIRD never sends: the replay files what it can
    status, text = _rib_text(testdata.parent / "synthetic.pcap")
    assert status == 0 and text.startswith(("table of ", "no routing table"))
    # hex input has no addresses: no receiver to file routes under
    hex_file = tmp_path / "k.hex"
    hex_file.write_text("ff" * 16 + "0013" + "04\n")
    status, text = _rib_text(hex_file)
    assert status == 0 and text.startswith("no routing table")
