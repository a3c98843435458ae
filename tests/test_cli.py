
"""The `speaker` command line: delegation, check-config, and the socket clients."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import types
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address as A
from ipaddress import IPv4Network as N
from pathlib import Path
from typing import Any

import pytest

from speaker import __version__
from speaker.cli import main
from speaker.control.server import ControlServer
from speaker.control.static import StaticBackend
from speaker.control.views import (
    BgpAttrs,
    BgpDetails,
    NextHop,
    ProtocolStatus,
    ProtoState,
    RouteView,
    StatusView,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
NOW = datetime.now(UTC).replace(microsecond=0)
UP = NOW - timedelta(minutes=3)
SINCE = UP.astimezone().strftime("%H:%M:%S")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def run_cli_async(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- delegation


def test_run_hands_the_daemon_the_config_it_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line reads the file (to know whether asyncio needs TLS): the daemon gets
    that Config instead of reading the file a second time."""
    from speaker.config import load_config

    seen: dict[str, Any] = {}

    def run_daemon(path: str, **kw: Any) -> int:
        seen.update(kw, path=path)
        return 0

    monkeypatch.setitem(sys.modules, "speaker.daemon", types.SimpleNamespace(run_daemon=run_daemon))
    path = str(Path(__file__).resolve().parents[1] / "config" / "node81.toml")
    code, _, _ = run_cli(capsys, "run", "--config", path)
    assert code == 0 and seen["path"] == path
    assert seen["config"] == load_config(path)


def test_run_delegates_to_the_daemon(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def run_daemon(path: str, **kw: Any) -> int:
        seen["path"] = path
        seen.update(kw)
        return 7

    monkeypatch.setitem(sys.modules, "speaker.daemon", types.SimpleNamespace(run_daemon=run_daemon))
    code, _, _ = run_cli(
        capsys,
        "run",
        "--config",
        "node81.toml",
        "--json",
        "--log-level",
        "DEBUG",
        "--graceful-restart",
        "--metrics-listen",
        "127.0.0.1:9179",
        "--log-format",
        "json",
    )
    assert code == 7
    assert seen == {
        "path": "node81.toml",
        "config": None,  # no such file here: the daemon reports it
        "json_events": True,
        "log_level": "debug",
        "restarting": True,
        "metrics_listen": "127.0.0.1:9179",
        "log_format": "json",
    }
    code, _, _ = run_cli(capsys, "run", "--config", "x.toml")
    assert code == 7
    assert seen["json_events"] is False and seen["restarting"] is False
    assert seen["log_level"] == "info" and seen["log_format"] == "text"


def test_run_without_a_daemon_module_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "speaker.daemon", None)
    code, out, err = run_cli(capsys, "run", "--config", "x.toml")
    assert code == 2 and out == ""
    assert err.startswith("speaker: speaker.daemon.run_daemon is not available")


def test_decode_delegates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, bool, bool, bool, dict[str, Any]]] = []

    def decode_main(
        path: str, *, as_json: bool, force_hex: bool, show_bytes: bool, **options: Any
    ) -> int:
        seen.append((path, as_json, force_hex, show_bytes, options))
        return 0

    monkeypatch.setitem(
        sys.modules, "speaker.decode", types.SimpleNamespace(decode_main=decode_main)
    )
    assert run_cli(capsys, "decode", "cap.pcap")[0] == 0
    assert run_cli(capsys, "decode", "msg.hex", "--json", "--hex")[0] == 0
    assert run_cli(capsys, "decode", "cap.pcap", "--bytes")[0] == 0
    argv = ["decode", "-", "--brief", "--filter", "type=update", "--filter", "peer=10.0.0.1",
            "--port", "1179", "--port", "179", "--width", "0"]
    assert run_cli(capsys, *argv)[0] == 0
    assert run_cli(capsys, "decode", "--bytes-hex", "ffff 0013 04")[0] == 0
    assert seen == [
        ("cap.pcap", False, False, False, {}),
        ("msg.hex", True, True, False, {}),
        ("cap.pcap", False, False, True, {}),
        ("-", False, False, False, {"brief": True, "filters": ["type=update", "peer=10.0.0.1"],
                                    "ports": [1179, 179], "width": 0}),
        ("--bytes-hex", False, False, False, {"hex_text": "ffff 0013 04"}),
    ]
    code, _, err = run_cli(capsys, "decode")
    assert code == 2 and "give a FILE" in err
    code, _, err = run_cli(capsys, "decode", "x.pcap", "--bytes-hex", "ff")
    assert code == 2 and "not both" in err
    monkeypatch.setitem(sys.modules, "speaker.decode", types.SimpleNamespace())
    code, _, err = run_cli(capsys, "decode", "cap.pcap")
    assert code == 2 and "speaker.decode.decode_main is not available" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["run"], ["frobnicate"], ["run", "--config", "x", "--log-level", "loud"],
                 ["run", "--config", "x", "--log-format", "xml"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    capsys.readouterr()


def test_version_comes_from_the_installed_distribution(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    asked: list[str] = []

    def installed(name: str) -> str:
        asked.append(name)
        return "9.8.7"

    monkeypatch.setattr(importlib.metadata, "version", installed)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and asked == ["speaker"]
    assert capsys.readouterr().out == "speaker 9.8.7\n"

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"speaker {__version__}\n"


# --------------------------------------------------------------------------- check-config


def test_check_config_explains_passive_directions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "check-config", "--config", str(CONFIG_DIR / "node81.toml"))
    assert code == 0 and err == ""
    assert "configuration is valid" in out
    assert ("Mesh_192_168_0_80: 192.168.0.80 AS 64512 (iBGP, IPv4 unicast), from 192.168.0.81, "
            "active") in out
    assert (
        'why: active: peer "192.168.0.80" < own "192.168.0.81" (source_address) compared as text'
    ) in out
    assert ("Mesh_192_168_0_82: 192.168.0.82 AS 64512 (iBGP, IPv4 unicast), from 192.168.0.81, "
            "passive") in out
    assert "originates: 10.244.42.64/26" in out
    assert "kernel: protocol 186" in out


def test_check_config_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "check-config", "--config", str(CONFIG_DIR / "node80.toml"), "--json"
    )
    doc = json.loads(out)
    assert code == 0
    assert [(p["address"], p["passive"]) for p in doc["peers"]] == [
        ("192.168.0.81", True),
        ("192.168.0.82", True),
    ]


def test_check_config_refuses_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('router_id = "10.0.0.1"\nasn = 64512\n[[peer]]\naddress = "10.0.0.300"\n')
    code, out, err = run_cli(capsys, "check-config", "--config", str(bad))
    assert code == 2 and out == ""
    assert err == (f"speaker: {bad}:4: peer[0].address: '10.0.0.300' is not a valid IPv4 or IPv6 "
                   f"address\n")
    code, _, err = run_cli(capsys, "check-config", "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "no such file" in err


# --------------------------------------------------------------------------- socket clients


def backend() -> StaticBackend:
    protocols = [
        ProtocolStatus("kernel1", "Kernel", ProtoState.UP, UP),
        ProtocolStatus(
            "Mesh_192_168_0_80",
            "BGP",
            ProtoState.UP,
            UP,
            info="Established",
            bgp=BgpDetails(A("192.168.0.80"), 64512, A("192.168.0.80")),
        ),
        ProtocolStatus(
            "Mesh_192_168_0_82",
            "BGP",
            ProtoState.START,
            UP,
            info="Active",
            last_error="Socket: Connection refused",
            bgp=BgpDetails(A("192.168.0.82"), 64512),
        ),
    ]
    routes = [
        RouteView(
            N("10.244.152.128/26"),
            "Mesh_192_168_0_80",
            UP,
            nexthops=(NextHop(A("192.168.0.80"), "eth0"),),
            primary=True,
            bgp=BgpAttrs("IGP", (), A("192.168.0.80"), None, 100),
        )
    ]
    return StaticBackend(
        protocols, routes, StatusView(A("192.168.0.81"), NOW, UP, UP), clock=lambda: NOW
    )


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="spkcli", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def sock(sock_dir: Path) -> AsyncIterator[tuple[str, StaticBackend]]:
    b = backend()
    path = sock_dir / "ctl"
    async with ControlServer(b, path, clock=lambda: NOW):
        yield str(path), b


async def test_status_prints_calicoctl_table(
    sock: tuple[str, StaticBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sock
    code, out, err = await run_cli_async(capsys, "status", "--socket", path)
    assert code == 0 and err == ""
    assert out == (
        "Calico process is running.\n"
        "\n"
        "IPv4 BGP status\n"
        "+--------------+-------------------+-------+----------+--------------------------------+\n"
        "| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |              INFO              |\n"
        "+--------------+-------------------+-------+----------+--------------------------------+\n"
        f"| 192.168.0.80 | node-to-node mesh | up    | {SINCE} | Established                    |\n"
        f"| 192.168.0.82 | node-to-node mesh | start | {SINCE} | Active Socket: Connection      |\n"
        "|              |                   |       |          | refused                        |\n"
        "+--------------+-------------------+-------+----------+--------------------------------+\n"
        "\n"
        "IPv6 BGP status\n"
        "No IPv6 peers found.\n"
        "\n"
    )
    code, out, _ = await run_cli_async(capsys, "status", "--socket", path, "--json")
    assert code == 0
    assert json.loads(out)["ipv4"][1] == {
        "peer_address": "192.168.0.82",
        "peer_type": "node-to-node mesh",
        "state": "start",
        "since": SINCE,
        "info": "Active Socket: Connection refused",
    }


async def test_show_commands(
    sock: tuple[str, StaticBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sock
    code, out, _ = await run_cli_async(capsys, "show", "protocols", "--socket", path)
    assert code == 0
    assert (
        out.splitlines()[2]
        == f"Mesh_192_168_0_80 BGP      master   up     {SINCE}    Established   "
    )
    code, out, _ = await run_cli_async(
        capsys, "show", "protocols", "all", "Mesh_192_168_0_80", "--socket", path
    )
    assert code == 0 and "    Neighbor address: 192.168.0.80" in out.splitlines()
    code, out, _ = await run_cli_async(capsys, "show", "protocols", "Mesh_*_82", "--socket", path)
    assert code == 0 and out.splitlines()[1].startswith("Mesh_192_168_0_82 BGP")
    assert len(out.splitlines()) == 2
    code, out, _ = await run_cli_async(
        capsys, "show", "route", "for", "10.244.152.130", "--socket", path
    )
    assert code == 0 and out.startswith("10.244.152.128/26  via 192.168.0.80 on eth0")
    code, out, _ = await run_cli_async(capsys, "show", "route", "count", "--socket", path)
    assert out == "1 of 1 routes for 1 networks\n"
    code, out, _ = await run_cli_async(capsys, "show", "status", "--socket", path)
    assert out.splitlines()[:2] == ["BIRD 1.6.8", "Router ID is 192.168.0.81"]
    code, out, _ = await run_cli_async(capsys, "show", "kernel", "--socket", path)
    assert code == 0 and out.startswith("Kernel bridge: protocol 186")
    code, out, _ = await run_cli_async(capsys, "show", "route", "all", "--socket", path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["command"] == "show route all"
    assert doc["data"]["routes"][0]["bgp"]["next_hop"] == "192.168.0.80"


async def test_actions_and_their_exit_codes(
    sock: tuple[str, StaticBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    path, b = sock
    code, out, _ = await run_cli_async(capsys, "disable", "Mesh_*", "--socket", path)
    assert code == 0
    assert out == "Mesh_192_168_0_80: disabled\nMesh_192_168_0_82: disabled\n"
    code, out, _ = await run_cli_async(
        capsys, "enable", "Mesh_192_168_0_80", "--socket", path, "--json"
    )
    assert code == 0 and json.loads(out)["data"]["results"][0]["outcome"] == "done"
    code, out, _ = await run_cli_async(capsys, "restart", "Mesh_192_168_0_80", "--socket", path)
    assert code == 0 and out == "Mesh_192_168_0_80: restarted\n"
    code, out, err = await run_cli_async(capsys, "refresh", "Mesh_192_168_0_80", "--socket", path)
    assert code == 1 and "reload failed: session is not established" in err
    code, out, _ = await run_cli_async(capsys, "restart", "--graceful", "--socket", path)
    assert code == 0 and out == "Graceful restart initiated\n"
    code, out, err = await run_cli_async(capsys, "show", "protocols", "nosuch", "--socket", path)
    assert code == 1 and out == "" and err == "speaker: nosuch is not a protocol\n"
    assert b.calls[:2] == [("disable", "Mesh_192_168_0_80"), ("disable", "Mesh_192_168_0_82")]
    assert ("graceful_restart", "") in b.calls


def test_restart_needs_a_peer_or_graceful(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["restart"], ["restart", "Mesh_1", "--graceful"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "--socket", "/nonexistent"])
        assert info.value.code == 2
    assert "give a PEER" in capsys.readouterr().err


def test_unreachable_socket_exits_2(sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = sock_dir / "missing.ctl"
    code, out, err = run_cli(capsys, "show", "protocols", "--socket", str(missing))
    assert code == 2 and out == ""
    assert err.startswith(f"speaker: cannot reach speaker at {missing}: ")
    assert "No such file or directory" in err


async def test_socket_path_comes_from_the_config(
    sock: tuple[str, StaticBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = sock
    cfg = tmp_path / "n.toml"
    cfg.write_text(f'router_id = "192.168.0.81"\nasn = 64512\ncontrol_socket = "{path}"\n')
    code, out, _ = await run_cli_async(capsys, "show", "status", "--config", str(cfg))
    assert code == 0 and "Router ID is 192.168.0.81" in out
    cfg.write_text('router_id = "0.0.0.0"\nasn = 64512\n')
    code, _, err = await run_cli_async(capsys, "status", "--config", str(cfg))
    assert code == 2 and "router_id" in err


def test_default_socket_path(capsys: pytest.CaptureFixture[str]) -> None:
    default = Path("/run/speaker/speaker.ctl")
    if default.exists():
        pytest.skip("a speaker is running at the default path")
    code, _, err = run_cli(capsys, "status")
    assert code == 2 and f"cannot reach speaker at {default}" in err


# --------------------------------------------------------------------------- datastore

_DATASTORE_TOML = ('[datastore]\ntype = "etcdv3"\nendpoints = ["http://10.255.0.1:2379"]\n'
                   'node_name = "node81"\n')


def test_check_config_with_datastore_prints_the_derived_mesh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from speaker.datastore import resources
    from speaker.datastore.etcd import EtcdSource

    async def fake_read(self: EtcdSource) -> Any:
        self.snapshot = resources.seed_snapshot()
        return self.derive()

    monkeypatch.setattr(EtcdSource, "read_once", fake_read)
    path = tmp_path / "ds.toml"
    path.write_text(_DATASTORE_TOML)
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "router id 192.168.0.81, AS 64512" in out
    assert "Mesh_192_168_0_80: 192.168.0.80" in out and "10.244.42.64/26" in out
    assert main(["check-config", "--config", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and len(doc["config"]["peers"]) == 2


def test_check_config_datastore_flag_needs_the_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('router_id = "10.0.0.1"\nasn = 64512\n')
    assert main(["check-config", "--config", str(plain), "--datastore"]) == 2
    assert "needs a [datastore] table" in capsys.readouterr().err


async def test_status_says_where_the_datastore_is(
    sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from speaker.control.views import DatastoreView

    b = backend()
    b._datastore = DatastoreView(type="etcdv3", endpoint="https://192.168.0.80:2379",
                                 node_name="node81", connected=True, revision=57)
    path = sock_dir / "ctl"
    async with ControlServer(b, path, clock=lambda: NOW):
        code, out, err = await run_cli_async(capsys, "status", "--socket", str(path))
        assert code == 0 and err == ""
        assert out.endswith("No IPv6 peers found.\n\n"
                            "Datastore: etcdv3 https://192.168.0.80:2379, connected, "
                            "revision 57\n")
        code, out, _ = await run_cli_async(capsys, "status", "--socket", str(path), "--json")
        assert json.loads(out)["datastore"]["revision"] == 57
        code, out, _ = await run_cli_async(capsys, "show", "datastore", "--socket", str(path))
        assert code == 0 and "node node81, connected" in out
