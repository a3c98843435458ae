"""The reference pages stay true: every event kind and every metric is documented, and
nothing documented has gone (docs/events.md, docs/metrics.md)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import speaker
from speaker.events import Event
from speaker.metrics import MetricsSink

DOCS = Path(__file__).resolve().parents[1] / "docs"


def event_kinds() -> set[str]:
    """The KIND of every Event subclass in the package (the abstract bases excluded; test
    modules' own subclasses, e.g. test_logs.py's, are not the package's)."""
    for info in pkgutil.walk_packages(speaker.__path__, "speaker."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    kinds: set[str] = set()
    todo = [Event]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.KIND != "event" and cls.__module__.startswith("speaker."):  # not tests' own
            kinds.add(cls.KIND)
    return kinds


def documented(page: str) -> set[str]:
    """The names in the first column of the page's tables (`` `name` ``)."""
    text = (DOCS / page).read_text()
    return set(re.findall(r"^\| `([a-z0-9_-]+)` \|", text, flags=re.MULTILINE))


def test_every_event_kind_is_documented_and_nothing_more() -> None:
    kinds = event_kinds()
    assert {"state", "session-up", "route", "kernel", "daemon"} <= kinds  # the scan works
    assert kinds == documented("events.md")


def test_every_metric_is_documented_and_nothing_more() -> None:
    sink = MetricsSink()
    sink.watch_datastore(lambda: True, lambda: 7)  # the gauges a datastore adds
    names = {m.name for m in sink.registry.collect()}
    assert "bgp_peer_up" in names
    assert names == documented("metrics.md")


def test_the_check_reads_table_rows_only(tmp_path: Path) -> None:
    page = tmp_path / "x.md"
    page.write_text("| `a-b` | x |\n`not-a-row`\n| kind | class |\n|---|---|\n| `c_d` | y |\n")
    assert set(re.findall(r"^\| `([a-z0-9_-]+)` \|", page.read_text(), re.MULTILINE)) == {
        "a-b",
        "c_d",
    }
