"""The fast paths for common UPDATEs print exactly what the general path prints: the cached
pieces (:meth:`SteadyUpdates.lines`) and the templates filled from a capture's octets
(:meth:`SteadyUpdates.render`, which skips the codec)."""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest

from speaker.annotate.steady import VOLATILE, SteadyUpdates
from speaker.decode import decode_main
from speaker.wire import IPV4_UNICAST, Keepalive, Negotiated, Open, Update
from speaker.wire.attributes import (
    AsPathAttr,
    AsPathSegment,
    CommunitiesAttr,
    LocalPrefAttr,
    MedAttr,
    NextHopAttr,
    OriginAttr,
    PathAttribute,
)
from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    FourOctetAsCapability,
    MultiprotocolCapability,
)
from speaker.wire.enums import AsPathSegmentType, Origin
from speaker.wire.nlri import Nlri, Prefix


def run(path: Path, width: int) -> tuple[int, str]:
    out = io.StringIO()
    status = decode_main(str(path), as_json=False, force_hex=False, out=out, width=width)
    return status, out.getvalue()


def text(path: Path, width: int) -> str:
    return run(path, width)[1]


class Paths:
    """Counts what each fast path served, and can switch them off (the general output)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.lines: list[bool] = []
        self.rendered: list[bool] = []
        lines, render = SteadyUpdates.lines, SteadyUpdates.render

        def counting_lines(steady: SteadyUpdates, item: object) -> list[str] | None:
            got = lines(steady, item)  # type: ignore[arg-type]
            self.lines.append(got is not None)
            return got

        def counting_render(steady: SteadyUpdates, *args: object) -> str | None:
            got = render(steady, *args)  # type: ignore[arg-type]
            self.rendered.append(got is not None)
            return got

        monkeypatch.setattr(SteadyUpdates, "lines", counting_lines)
        monkeypatch.setattr(SteadyUpdates, "render", counting_render)

    def without_templates(self) -> None:
        """Only the cached pieces: the output before templates existed."""
        self.monkeypatch.setattr(SteadyUpdates, "render", lambda steady, *args: None)

    def general(self) -> None:
        """Neither fast path (no lines, so no template is ever learnt)."""
        self.monkeypatch.setattr(SteadyUpdates, "lines", lambda steady, item: None)
        self.monkeypatch.setattr(SteadyUpdates, "render", lambda steady, *args: None)


def same_three_ways(
    path: Path, width: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Paths, str]:
    """Decode ``path`` with both fast paths, with pieces only, and the general way; assert
    the three outputs (and exit statuses) are identical."""
    paths = Paths(monkeypatch)
    fast = run(path, width)
    paths.without_templates()
    assert fast == run(path, width)
    paths.general()
    assert fast == run(path, width)
    return paths, fast[1]


@pytest.mark.parametrize("name", ["lifecycle.pcap", "mesh-restart.pcap", "bench-100k-packed.pcap"])
@pytest.mark.parametrize("width", [0, 30, 120])  # 30: NLRI lines fold
def test_fast_path_output_is_the_general_output(
    testdata: Path, monkeypatch: pytest.MonkeyPatch, name: str, width: int
) -> None:
    paths, _ = same_three_ways(testdata / name, width, monkeypatch)
    assert any(paths.lines)  # the fast path did serve some messages


def head_of(capture: Path, frames: int, target: Path) -> Path:
    """The first ``frames`` records of a pcap file (the last message may be cut: a gap)."""
    data = capture.read_bytes()
    offset = 24
    for _ in range(frames):
        offset += 16 + int.from_bytes(data[offset + 8 : offset + 12], "little")
    target.write_bytes(data[:offset])
    return target


@pytest.mark.parametrize("width", [0, 120])
def test_templates_serve_the_distinct_med_feed(
    testdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # 150 frames of the 100k feed with a MED per route: about 7,000 UPDATEs
    path = head_of(testdata / "bench-100k-distinct.pcap", 150, tmp_path / "head.pcap")
    paths, out = same_three_ways(path, width, monkeypatch)
    served = sum(paths.rendered)
    assert served > 5000
    assert served > 0.99 * out.count("UPDATE (2)")


A, B = ("10.0.0.1", 179), ("10.0.0.2", 40000)
ADDPATH = Negotiated(addpath_send=frozenset({IPV4_UNICAST}))
PLAIN = Negotiated()


def _open(n: int, addpath: bool) -> bytes:
    caps = [MultiprotocolCapability(1, 1), FourOctetAsCapability(65001)]
    if addpath:
        caps.append(AddPathCapability(((1, 1, AddPathMode.BOTH),)))
    return Open.build(65001, 90, ipaddress.IPv4Address(f"10.0.0.{n}"), caps).encode(PLAIN)


def _update(attrs: tuple[PathAttribute, ...], prefixes: list[str], ctx: Negotiated) -> bytes:
    nlri = tuple(Nlri(Prefix.parse(p), 7 + i) for i, p in enumerate(prefixes))
    if ctx is PLAIN:
        nlri = tuple(Nlri(n.prefix) for n in nlri)
    # encoded as if extended messages were on: one of the feed's UPDATEs is too long
    large = Negotiated(addpath_send=ctx.addpath_send, max_message_size=65535)
    return Update(attributes=attrs, nlri=nlri).encode(large)


def _feed(ctx: Negotiated) -> Iterator[bytes | None]:
    """UPDATEs a template must handle, and some it must hand to the general way; None ends
    a TCP segment (a message with a bad header takes the rest of its segment)."""
    keepalive = Keepalive().encode(PLAIN)
    hop = NextHopAttr(ipaddress.IPv4Address("10.0.0.1"))
    base = (OriginAttr(Origin.IGP), AsPathAttr(()), hop)
    other = (
        OriginAttr(Origin.INCOMPLETE),
        AsPathAttr((AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (65002, 65003)),)),
        hop,
    )
    for n in range(400):
        # a MED per route, now and then a LOCAL_PREF too, a second attribute set
        # interleaved, and a few NLRI counts and prefix lengths
        attrs: tuple[PathAttribute, ...] = (*base, MedAttr(n * 9973), LocalPrefAttr(100))
        if n % 7 == 0:
            attrs = (*base, MedAttr(n), LocalPrefAttr(n * 1000))
        if n % 5 == 0:
            attrs = (*other, MedAttr(4294967295 - n), CommunitiesAttr((65001 << 16 | n % 3,)))
        prefixes = [f"10.{n // 256}.{n % 256}.0/24"]
        if n % 11 == 0:
            prefixes += ["0.0.0.0/0", "192.0.2.7/32", "198.51.100.0/23", "10.0.0.0/8"]
        yield _update(attrs, prefixes, ctx)
        if n % 50 == 0:
            yield keepalive
    attrs = (*base, MedAttr(1), LocalPrefAttr(100))
    good = _update(attrs, ["10.9.9.0/26"], ctx)
    yield good
    # host bits past the prefix length (RFC 4271 4.3 lets them be anything)
    yield good[:-1] + bytes([good[-1] | 0x2B])
    # a prefix length of 33 (with 5 octets), an NLRI cut short: malformed, the general way
    # reports them
    size = len(good)
    longer = (size + 1).to_bytes(2, "big")
    yield good[:16] + longer + good[18 : size - 5] + b"\x21" + good[-4:] + b"\x01"
    yield good[:16] + (size - 1).to_bytes(2, "big") + good[18:-1]
    # octets after the last prefix: a path id, a prefix length, cut short
    extra = b"\x00\x00\x00\x07" if ctx is ADDPATH else b"\x1a"
    yield good[:16] + (size + len(extra)).to_bytes(2, "big") + good[18:] + extra
    yield good
    # a bad marker, a length field below 19: the reader hands the rest of the segment over
    yield from (None, b"\xfe" + good[1:], None, good[:16] + b"\x00\x00" + good[18:], None)
    # the same prefix count in 4096 octets, then in more (no extended message capability)
    count = 600 if ctx is ADDPATH else 1000
    yield _update(attrs, ["0.0.0.0/0"] * count, ctx)
    yield _update(attrs, ["192.0.2.1/32"] * count, ctx)
    yield good
    # withdrawn routes, then End-of-RIB
    withdrawn = Nlri(Prefix.parse("10.1.0.0/24"), 7 if ctx is ADDPATH else None)
    yield Update(withdrawn=(withdrawn,)).encode(ctx)
    yield good
    yield Update().encode(ctx)


def _frames(*sessions: bool) -> list[bytes]:
    """Per session (add-path or not), both OPENs then the feed, up to three messages per TCP
    segment, all on one connection (the later OPENs start a new session on it)."""
    messages: list[tuple[tuple[str, int], tuple[str, int], bytes] | None] = []
    for addpath in sessions:
        messages += [(A, B, _open(1, addpath)), None, (B, A, _open(2, addpath)), None]
        messages += [None if m is None else (A, B, m) for m in _feed(ADDPATH if addpath else PLAIN)]
    seq = {A: 1000, B: 5000}
    frames = []
    batch: list[bytes] = []
    for message in [*messages, None]:
        if message is not None:
            src, dst, data = message
            batch.append(data)
        if batch and (message is None or len(batch) == 3):
            payload = b"".join(batch)
            frames.append(_segment(src, dst, seq[src], payload))
            seq[src] += len(payload)
            batch = []
    return frames


def _segment(src: tuple[str, int], dst: tuple[str, int], seq: int, data: bytes) -> bytes:
    tcp = dpkt.tcp.TCP(
        sport=src[1], dport=dst[1], seq=seq, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data=data
    )
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=6, data=tcp)
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _write(path: Path, frames: list[bytes]) -> Path:
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh)
        for i, frame in enumerate(frames):
            writer.writepkt(frame, 1000.0 + i * 0.000137)
    return path


@pytest.mark.parametrize("sessions", [(True,), (False,), (True, False)])
@pytest.mark.parametrize("width", [0, 20, 40, 60, 84, 120])  # 84: MEDs of 5 digits wrap
def test_templates_fill_in_numbers_and_prefixes_as_the_general_way_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sessions: tuple[bool, ...], width: int
) -> None:
    # (True, False): after an add-path session, new OPENs without add-path on the same
    # connection; the UPDATEs look alike but their NLRI carry no path ids any more
    path = _write(tmp_path / "feed.pcap", _frames(*sessions))
    paths, out = same_three_ways(path, width, monkeypatch)
    assert sum(paths.rendered) > 300 * len(sessions)
    words = " ".join(out.split())  # narrow widths wrap the explanations
    assert "4294967295" in words and "prefix length 33" in words
    assert "marker not all ones" in words and "message length 0 outside" in words
    assert "outside 19..4096" in words


def test_a_value_that_changes_each_message_is_not_cached_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an iBGP feed with a new MED per UPDATE, after both OPENs: the piece cache stops
    # taking MED lines after VOLATILE of them
    ctx = Negotiated()
    opens = [
        Open.build(65001, 90, ipaddress.IPv4Address(f"10.0.0.{n}"), [FourOctetAsCapability(65001)])
        for n in (1, 2)
    ]
    base = (
        OriginAttr(Origin.IGP),
        AsPathAttr(()),
        NextHopAttr(ipaddress.IPv4Address("10.0.0.1")),
        LocalPrefAttr(100),
    )
    count = VOLATILE + 500
    updates = [
        Update(attributes=(*base, MedAttr(n)), nlri=(Nlri(Prefix.parse("10.1.0.0/16")),))
        for n in range(count)
    ]
    path = tmp_path / "feed.hex"
    path.write_text("\n".join(m.encode(ctx).hex() for m in (*opens, *updates)) + "\n")
    made: list[SteadyUpdates] = []
    original = SteadyUpdates.__init__

    def keep(self: SteadyUpdates, meanings: set[str], line_width: int) -> None:
        original(self, meanings, line_width)
        made.append(self)

    monkeypatch.setattr(SteadyUpdates, "__init__", keep)
    out = text(path, 120)
    assert out.count("MULTI_EXIT_DISC") == count
    assert f"  {count - 1}  [RFC 4271 5.1.4]" in out
    (steady,) = made
    assert VOLATILE <= len(steady.pieces) < VOLATILE + 50


def test_a_cut_feed_counts_the_messages_written_from_templates(
    testdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # the 100k feed cut in the middle of its record 150: what came before is written (most of
    # it from templates), counted, and reported as decoded before the damage
    whole = head_of(testdata / "bench-100k-distinct.pcap", 150, tmp_path / "head.pcap")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole.read_bytes()[:-100])
    paths, out = same_three_ways(cut, 120, monkeypatch)
    assert sum(paths.rendered) > 5000
    shown = out.count("\n\n#") + 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3  # one per decode, the same each time
    assert len(set(errors)) == 1
    assert "frame 150" in errors[0] and "the file is cut" in errors[0]
    assert f"decoding stops there ({shown} messages decoded before it)" in errors[0]
