"""Log styles: the journal decision from a real fstat, the journal and JSON formats."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from speaker.events import Event, EventBus
from speaker.logs import (
    JournalFormatter,
    JsonFormatter,
    LogFormat,
    LogStyle,
    SyslogPriority,
    choose_style,
    configure_logging,
    event_log,
    stderr_is_journal,
)
from speaker.sinks import LogSink


@dataclass(frozen=True, slots=True)
class PeerNoise(Event):
    KIND: ClassVar[str] = "noise"
    LEVEL: ClassVar[int] = logging.WARNING
    peer: str
    count: int

    def describe(self) -> str:
        return f"{self.peer} made {self.count} noises"


@dataclass(frozen=True, slots=True)
class Chatter(Event):
    KIND: ClassVar[str] = "chatter"
    LEVEL: ClassVar[int] = logging.DEBUG
    n: int


def test_journal_stream_matching_stderr_is_the_journal(tmp_path: Path) -> None:
    with open(tmp_path / "stderr", "w") as f, open(tmp_path / "other", "w") as g:
        st, other = os.fstat(f.fileno()), os.fstat(g.fileno())
        mine = f"{st.st_dev}:{st.st_ino}"
        assert stderr_is_journal(mine, st)
        assert not stderr_is_journal(f"{other.st_dev}:{other.st_ino}", st)  # stderr redirected
        assert not stderr_is_journal(None, st)
        assert not stderr_is_journal("", st)
        assert not stderr_is_journal("garbage", st)
        assert not stderr_is_journal(mine, None)
        assert choose_style(LogFormat.TEXT, mine, st) is LogStyle.JOURNAL
        assert choose_style(LogFormat.TEXT, f"{other.st_dev}:{other.st_ino}", st) is LogStyle.TEXT
        assert choose_style(LogFormat.TEXT, None, st) is LogStyle.TEXT
        assert choose_style(LogFormat.JSON, mine, st) is LogStyle.JSON  # JSON wins


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("speaker.session", level, __file__, 1, msg, None, None)


def test_journal_lines_carry_the_priority_and_no_timestamp() -> None:
    fmt = JournalFormatter()
    assert fmt.format(record(logging.WARNING, "hold timer expired")) == (
        "<4>speaker.session: hold timer expired"
    )
    assert fmt.format(record(logging.INFO, "x")).startswith("<6>")
    assert fmt.format(record(logging.DEBUG, "x")).startswith("<7>")
    assert fmt.format(record(logging.ERROR, "a\nb")) == "<3>speaker.session: a\n<3>b"
    assert SyslogPriority.of(logging.CRITICAL) is SyslogPriority.CRIT


def test_json_formatter_for_plain_records() -> None:
    doc = json.loads(JsonFormatter().format(record(logging.ERROR, "netlink: EPERM")))
    assert doc["level"] == "error" and doc["logger"] == "speaker.session"
    assert doc["message"] == "netlink: EPERM" and isinstance(doc["time"], float)


def test_json_style_logs_events_through_their_own_to_dict() -> None:
    out = io.StringIO()
    bus = EventBus()
    sink = event_log(LogStyle.JSON, "info", out)
    bus.subscribe(sink)
    bus.publish(PeerNoise("Mesh_10_0_0_2", 3))
    bus.publish(Chatter(1))  # below --log-level info: skipped
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["event"] == "noise" and doc["peer"] == "Mesh_10_0_0_2" and doc["count"] == 3
    assert doc["level"] == "warning"
    assert {"time", "counter"} <= doc.keys()
    assert isinstance(event_log(LogStyle.TEXT, "info"), LogSink)
    assert isinstance(event_log(LogStyle.JOURNAL, "info"), LogSink)


def test_configure_logging_under_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    with open(tmp_path / "journal", "w") as journal:
        st = os.fstat(journal.fileno())
        monkeypatch.setattr(sys, "stderr", journal)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        try:
            assert configure_logging("info") is LogStyle.JOURNAL
            LogSink()(PeerNoise("p", 1))
            monkeypatch.delenv("JOURNAL_STREAM")
            assert configure_logging("info") is LogStyle.TEXT
            LogSink()(PeerNoise("q", 2))
            assert configure_logging("info", LogFormat.JSON) is LogStyle.JSON
            logging.getLogger("speaker.kernel").error("boom")
        finally:
            root.handlers[:], level = saved
            root.setLevel(level)
    first, second, third = (tmp_path / "journal").read_text().splitlines()
    assert first == "<4>speaker.noise: p made 1 noises"
    assert second.endswith("WARNING speaker.noise: q made 2 noises") and second[:4].isdigit()
    assert json.loads(third)["message"] == "boom"
