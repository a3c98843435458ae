"""``speaker decode --html``: the ladder page, its FSM states, and the page in a real browser."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from cdp import Browser, chromium_binary

from speaker.annotate.ladder import (
    CONNECT,
    ESTABLISHED,
    IDLE,
    OPEN_CONFIRM,
    OPEN_SENT,
    build_ladder,
)
from speaker.annotate.replay import merge_events
from speaker.decode import capture_messages, decode_all, decode_main
from speaker.pcap import tcp_events


def _page(tmp_path: Path, capture: Path) -> tuple[Path, dict[str, object], str]:
    out = tmp_path / "page.html"
    text = io.StringIO()
    status = decode_main(str(capture), as_json=False, force_hex=False, out=text, html=str(out))
    assert status == 0 and text.getvalue().startswith(f"wrote {out}: ")
    page = out.read_text(encoding="utf-8")
    raw = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert raw is not None
    return out, json.loads(raw.group(1).replace("<\\/", "</")), page


def _states(capture: Path) -> list[tuple[int | None, str, str]]:
    raw = capture.read_bytes()
    ladder = build_ladder(merge_events(decode_all(capture_messages(raw)), tcp_events(raw)))
    return [(s.frame, who, state) for s in ladder.steps for _, state, who in s.states]


def test_fsm_states_of_the_first_ipv4_session(testdata: Path) -> None:
    states = [s for s in _states(testdata / "lifecycle.pcap") if s[1] == "192.168.0.81:60897"]
    # .81 connects (SYN, frame 15), sends its OPEN (18), gets .80's (20), then .80's
    # KEEPALIVE (22); .80's Cease (44) ends it
    assert states == [
        (15, "192.168.0.81:60897", CONNECT),
        (18, "192.168.0.81:60897", OPEN_SENT),
        (20, "192.168.0.81:60897", OPEN_CONFIRM),
        (22, "192.168.0.81:60897", ESTABLISHED),
        (44, "192.168.0.81:60897", IDLE),
    ]
    passive = [s[2] for s in _states(testdata / "lifecycle.pcap") if s[1] == "192.168.0.80:179"]
    assert passive[:4] == [CONNECT, OPEN_CONFIRM, ESTABLISHED, IDLE]


def test_page_has_one_arrow_per_message_and_is_self_contained(
    testdata: Path, tmp_path: Path
) -> None:
    _, data, page = _page(tmp_path, testdata / "lifecycle.pcap")
    steps = data["steps"]
    assert isinstance(steps, list)
    messages = [s for s in steps if s["k"] == "message"]
    assert [s["i"] for s in messages] == list(range(1, 46))
    assert {s["k"] for s in steps} == {"message", "tcp"}
    assert data["lanes"] == ["192.168.0.80", "192.168.0.81", "fd00::80", "fd00::81"]
    # the same tree as the text output, and the octets with their fields
    update = messages[15]
    assert update["h"].startswith("#16  frame 27") and update["type"] == "UPDATE"
    assert any("MULTI_EXIT_DISC (4) flags 0x80" in line for line in update["tree"])
    assert any(f["b"] and f["b"][0].startswith("1000 0000 = 0x80") for f in update["fields"])
    assert sum(f["e"] - f["s"] for f in update["fields"]) == len(update["hex"]) // 2
    # nothing is fetched at view time
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@CSS@" not in page and "@JS@" not in page and "<style>" in page


def test_large_capture_is_cut_with_a_note(testdata: Path, tmp_path: Path) -> None:
    out, data, _ = _page(tmp_path, testdata / "bench-100k-packed.pcap")
    drawn = [s for s in data["steps"] if s["k"] == "message"]  # type: ignore[attr-defined]
    assert 0 < len(drawn) < 311
    assert f"first {len(drawn)} are drawn" in str(data["note"])
    assert "311 messages" in str(data["note"])
    assert out.stat().st_size < 2_000_000


CHROMIUM = chromium_binary()


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium; scripts/test.sh does it)",
)
def test_page_in_headless_chromium(testdata: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    out, _data, _ = _page(tmp_path, testdata / "lifecycle.pcap")
    with Browser(CHROMIUM) as browser:
        browser.open(out)
        assert browser.evaluate("document.querySelectorAll('#ladder .msg').length") == 45
        assert browser.evaluate("document.querySelectorAll('#ladder .msg .arrowline').length") == 45
        states = browser.evaluate("document.querySelectorAll('.fsm').length")
        assert states >= 20
        assert browser.evaluate("document.querySelectorAll('.detail').length") == 0
        # expand message #16 (10.244.77.7/32 with MED and communities)
        fields = browser.evaluate(
            "document.querySelector('.msg[data-index=\"16\"]').click(),"
            "Array.from(document.querySelectorAll('.detail .fld')).map(e => e.textContent)"
        )
        assert any("MULTI_EXIT_DISC: flags 0x80" in f for f in fields)
        tree = browser.evaluate("document.querySelector('.detail pre.tree').textContent")
        assert "64512:1:2" in tree and "LARGE_COMMUNITY" in tree
        # hovering a field lights up exactly its octets
        lit = browser.evaluate(
            "(() => { const f = Array.from(document.querySelectorAll('.detail .fld'))"
            ".find(e => e.textContent.includes('MULTI_EXIT_DISC'));"
            "f.dispatchEvent(new MouseEvent('mouseenter'));"
            "return Array.from(document.querySelectorAll('.hex span.hl')).map(e => e.textContent);"
            "})()"
        )
        assert lit == ["80", "04", "04"]
        # a second click folds it again
        assert browser.evaluate(
            "document.querySelector('.msg[data-index=\"16\"]').click(),"
            "document.querySelectorAll('.detail').length"
        ) == 0
        assert browser.errors() == []
        shot = tmp_path / "ladder.png"
        browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
