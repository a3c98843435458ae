"""check-config reports every error of a file, each with its key and line; --json too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speaker.cli import main
from speaker.config import ConfigError, ConfigErrors, load_config, parse_config
from speaker.configcheck import check_config, key_line

REPO = Path(__file__).resolve().parents[1]

THREE_MISTAKES = """\
router_id = "10.0.0.1"
asn = 64512
port = 0

[kernel]
scan_time = 2
protocol = 12

[[peer]]
address = "10.0.0.2"

[[peer]]
address = "10.0.0.3"
hold_time = 1
"""

LAYOUT = """\
# comment
router_id = "10.0.0.1"
[originate]
blocks = ["10.244.0.0/26"]
[[peer]]
address = "10.0.0.2"
[[peer]]   # the second
name = "x"
address = "10.0.0.3"
[kernel]
table = 255
"""


def test_key_line_finds_tables_array_members_and_keys() -> None:
    assert key_line(LAYOUT, "router_id") == 2
    assert key_line(LAYOUT, "originate.blocks[0]") == 4
    assert key_line(LAYOUT, "peer[0].address") == 6
    assert key_line(LAYOUT, "peer[1].address") == 9
    assert key_line(LAYOUT, "peer[1]") == 7
    assert key_line(LAYOUT, "kernel.table") == 11
    assert key_line(LAYOUT, "kernel.learn") == 10  # not written: its table's header
    assert key_line(LAYOUT, "asn") is None  # missing at the top level: no line
    assert key_line(LAYOUT, "peer[2].address") is None
    assert key_line("kernel = 1\n", "kernel") == 1


def test_three_errors_are_reported_each_with_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "three.toml"
    path.write_text(THREE_MISTAKES)
    check = check_config(str(path))
    assert not check.ok and check.config is None
    assert [(e.key, e.line) for e in check.errors] == [
        ("port", 3),
        ("kernel.protocol", 7),
        ("peer[1].hold_time", 14),
    ]
    assert all(e.source == str(path) for e in check.errors)
    assert "BIRD" in check.errors[1].problem


def test_load_config_still_raises_naming_every_error(tmp_path: Path) -> None:
    path = tmp_path / "three.toml"
    path.write_text(THREE_MISTAKES)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert isinstance(err, ConfigErrors) and len(err.errors) == 3
    assert err.key == err.errors[0].key  # as a ConfigError it is the first one
    lines = str(err).splitlines()
    assert len(lines) == 3
    assert {line.split(": ")[1] for line in lines} == {
        "port", "kernel.protocol", "peer[1].hold_time"
    }


def test_several_mistakes_in_one_peer_and_unknown_keys_are_all_reported() -> None:
    text = ('router_id = "10.0.0.1"\nasn = 64512\nfoo = 1\n[[peer]]\naddress = "10.0.0.300"\n'
            'hold_time = 2\nadd_paths = "sideways"\nbar = 2\n')
    with pytest.raises(ConfigErrors) as info:
        parse_config(text, "x.toml")
    keys = sorted(e.key for e in info.value.errors)
    assert keys == ["foo", "peer[0].add_paths", "peer[0].address", "peer[0].bar",
                    "peer[0].hold_time"]


def test_syntax_error_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('router_id = "10.0.0.1"\nasn = 64512\n\nport = = 3\n')
    check = check_config(str(path))
    (error,) = check.errors
    assert error.line == 4 and error.key == ""
    assert "TOML syntax error" in error.problem


def test_cli_text_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "three.toml"
    path.write_text(THREE_MISTAKES)
    assert main(["check-config", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"speaker: {path}:3: port: 0 is out of range")
    assert lines[1].startswith(f"speaker: {path}:7: kernel.protocol: 12 is BIRD's")
    assert lines[2].startswith(f"speaker: {path}:14: peer[1].hold_time: 1 is not allowed")
    assert lines[3] == f"speaker: {path}: 3 errors"


def test_cli_json_errors_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "three.toml"
    path.write_text(THREE_MISTAKES)
    assert main(["check-config", "--config", str(path), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert [(e["key"], e["line"], e["file"]) for e in doc["errors"]] == [
        ("port", 3, str(path)), ("kernel.protocol", 7, str(path)),
        ("peer[1].hold_time", 14, str(path)),
    ]
    assert all(e["problem"] and e["message"].startswith(f"{path}:") for e in doc["errors"])

    good = REPO / "config" / "example.toml"
    assert main(["check-config", "--config", str(good), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["errors"] == []
    assert doc["router_id"] == "192.168.0.81" and len(doc["peers"]) == 2

    assert main(["check-config", "--config", str(tmp_path / "none.toml"), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and "no such file" in doc["errors"][0]["problem"]
