"""``speaker decode`` options through the real CLI: --brief, --filter, --port, stdin, --bytes-hex,
and the 120-column text width."""

from __future__ import annotations

import io
import ipaddress
import json
import sys
from pathlib import Path

import dpkt
import pytest

from speaker.cli import main
from speaker.pcap import RawMessage, read_capture
from speaker.wire import Keepalive, Negotiated, Notification, Update, decode_message
from speaker.wire.messages import Message


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def messages(path: Path) -> list[tuple[RawMessage, Message]]:
    """Every message with what it is, read straight from the codec (context: the real
    session's, add-path on IPv4 and IPv6 unicast both ways)."""
    from speaker.wire import IPV4_UNICAST, IPV6_UNICAST

    ctx = Negotiated(addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST}))
    return [(m, decode_message(m.data, ctx)) for m in read_capture(path)]


def test_brief_is_one_line_per_message(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = testdata / "lifecycle.pcap"
    code, out, _ = cli(capsys, "decode", "--brief", str(path))
    assert code == 0
    lines = out.splitlines()
    expected = messages(path)
    assert len(lines) == len(expected)
    for line, (raw, message) in zip(lines, expected, strict=True):
        assert f"  frame {raw.frame}  " in line
        src, dst = (
            f"[{e.address}]:{e.port}" if ":" in e.address else str(e)
            for e in (raw.source, raw.destination)
        )
        assert f"  {src} -> {dst}  " in line
        if isinstance(message, Update) and message.nlri:
            first = message.nlri[0]
            assert f"announce {len(message.nlri)}: {first.prefix} (path-id {first.path_id})" in line
        if isinstance(message, Notification):
            assert f"{message.code}/{message.subcode} Cease / Administrative Shutdown" in line


def test_filters_all_must_match(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = testdata / "lifecycle.pcap"
    cover = ipaddress.ip_network("10.244.200.0/24")
    expected = [
        raw.frame
        for raw, m in messages(path)
        if isinstance(m, Update)
        and raw.source.address == "192.168.0.80"
        and any(n.prefix.network.subnet_of(cover) for n in (*m.nlri, *m.withdrawn))  # type: ignore[arg-type]
    ]
    assert expected  # announcements and a withdrawal of 10.244.200.0/26
    code, out, err = cli(
        capsys,
        "decode",
        "--brief",
        str(path),
        "--filter",
        "type=update",
        "--filter",
        "prefix=10.244.200.0/24",
        "--filter",
        "peer=192.168.0.80",
    )
    assert code == 0
    assert [int(line.split()[2]) for line in out.splitlines()] == expected
    assert f"{len(expected)} of " in err
    code, out, _ = cli(capsys, "decode", "--brief", str(path), "--filter", "type=notification")
    assert [line.split()[7] for line in out.splitlines()] == ["NOTIFICATION"]
    code, _, err = cli(capsys, "decode", str(path), "--filter", "colour=blue")
    assert code == 2 and "unknown filter 'colour'" in err


def test_port_selects_bgp_on_another_port(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the mesh-restart capture with every 179 rewritten to 1179
    src = testdata / "mesh-restart.pcap"
    moved = tmp_path / "port1179.pcap"
    with src.open("rb") as fh, moved.open("wb") as out:
        reader = dpkt.pcap.Reader(fh)
        writer = dpkt.pcap.Writer(out, linktype=reader.datalink())
        for ts, buf in reader:
            eth = dpkt.ethernet.Ethernet(buf)
            tcp = eth.data.data
            if isinstance(tcp, dpkt.tcp.TCP):
                tcp.sport = 1179 if tcp.sport == 179 else tcp.sport
                tcp.dport = 1179 if tcp.dport == 179 else tcp.dport
                tcp.sum = 0
            writer.writepkt(bytes(eth), ts)
    code, out, err = cli(capsys, "decode", "--brief", str(moved))
    assert out == "" and "no BGP messages found" in err
    code, out, _ = cli(capsys, "decode", "--brief", str(moved), "--port", "1179")
    assert code == 0
    assert len(out.splitlines()) == len(list(read_capture(src)))
    assert ":1179 -> " in out


def test_stdin_and_bytes_hex(
    testdata: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = (testdata / "mesh-restart.pcap").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(capture)))
    code, out, _ = cli(capsys, "decode", "--json", "-")
    assert code == 0
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [
        m.frame for m in read_capture(testdata / "mesh-restart.pcap")
    ]
    keepalive = Keepalive().encode(Negotiated()).hex()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(keepalive.encode())))
    code, out, _ = cli(capsys, "decode", "--brief", "-")
    assert code == 0 and "KEEPALIVE" in out
    spaced = " ".join(keepalive[i : i + 2] for i in range(0, len(keepalive), 2))
    code, out, _ = cli(capsys, "decode", "--json", "--bytes-hex", spaced)
    assert code == 0 and json.loads(out)["type"] == "KEEPALIVE"
    code, _, err = cli(capsys, "decode", "--bytes-hex", "ffzz")
    assert code == 2 and "'z' is not a hex digit" in err


def test_text_lines_fit_120_columns(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("lifecycle.pcap", "mesh-restart.pcap"):
        code, out, _ = cli(capsys, "decode", str(testdata / name))
        assert code == 0
        assert max(len(line) for line in out.splitlines()) <= 120
        code, wide, _ = cli(capsys, "decode", "--width", "0", str(testdata / name))
        assert max(len(line) for line in wide.splitlines()) > 120
        # the same words, only the line breaks differ
        assert out.split() == wide.split()
