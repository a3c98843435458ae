"""The cached fast path for common UPDATEs prints exactly what the general path prints."""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path

import pytest

from speaker.annotate.steady import VOLATILE, SteadyUpdates
from speaker.decode import decode_main
from speaker.wire import Negotiated, Open, Update
from speaker.wire.attributes import (
    AsPathAttr,
    LocalPrefAttr,
    MedAttr,
    NextHopAttr,
    OriginAttr,
)
from speaker.wire.capabilities import FourOctetAsCapability
from speaker.wire.enums import Origin
from speaker.wire.nlri import Nlri, Prefix


def text(path: Path, width: int) -> str:
    out = io.StringIO()
    decode_main(str(path), as_json=False, force_hex=False, out=out, width=width)
    return out.getvalue()


@pytest.mark.parametrize("name", ["lifecycle.pcap", "mesh-restart.pcap", "bench-100k-packed.pcap"])
@pytest.mark.parametrize("width", [0, 120])
def test_fast_path_output_is_the_general_output(
    testdata: Path, monkeypatch: pytest.MonkeyPatch, name: str, width: int
) -> None:
    used: list[int] = []
    original = SteadyUpdates.lines

    def counting(self: SteadyUpdates, item: object) -> list[str] | None:
        lines = original(self, item)  # type: ignore[arg-type]
        used.append(lines is not None)
        return lines

    monkeypatch.setattr(SteadyUpdates, "lines", counting)
    fast = text(testdata / name, width)
    assert any(used)  # the fast path did serve some messages
    monkeypatch.setattr(SteadyUpdates, "lines", lambda self, item: None)
    assert fast == text(testdata / name, width)


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
