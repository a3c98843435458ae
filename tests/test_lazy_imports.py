"""The daemon's start-up imports: what it does not need before the first route stays unloaded.

Each module below costs memory for the whole life of the daemon once imported (pyroute2 alone
about 22 MiB and 160 modules; importlib.metadata about 3 MiB with email, zipfile and csv), so
``speaker run`` imports them only when a feature asks: pyroute2 for a named ``netns`` in the
kernel table, importlib.metadata for ``--version``, prometheus_client for ``--metrics-listen``,
the decoder, annotator and pcap reader (dpkt) for ``speaker decode``, the datastore for etcd.
Checked in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAZY = (
    "pyroute2",
    "importlib.metadata",
    "prometheus_client",
    "dpkt",
    "speaker.metrics",
    "speaker.decode",
    "speaker.annotate",
    "speaker.pcap",
    "speaker.datastore",
    "speaker.configcheck",
    "email",
    "zipfile",
)


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter with this checkout first on the path; its stdout."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    return out.stdout


def _loaded_after(code: str) -> set[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    return set(json.loads(_python(script)))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in LAZY))


def test_import_speaker_daemon_leaves_the_lazy_modules_alone() -> None:
    assert _heavy(_loaded_after("import speaker.cli, speaker.daemon")) == []


def test_parsing_the_run_command_leaves_them_alone_too() -> None:
    code = (
        "from speaker.cli import _build_parser\n"
        "_build_parser().parse_args(['run', '--config', '/nonexistent.toml'])\n"
    )
    assert _heavy(_loaded_after(code)) == []


def test_the_lazy_modules_still_import_where_they_are_used() -> None:
    loaded = _loaded_after("import speaker.kernel.netlink as n\nn._netlink_socket")
    assert "pyroute2" not in loaded
    assert "pyroute2" in _loaded_after("import pyroute2.netns")
    assert "importlib.metadata" in _loaded_after("from speaker.cli import package_version\n"
                                                 "package_version()")  # fmt: skip


# ------------------------------------------------- asyncio without TLS (speaker/startup.py)

_STARTUP_PROBE = """
import asyncio.sslproto, sys
print(json.dumps({"asyncio_tls": asyncio.sslproto.ssl is not None,
                  "ssl_loaded": "ssl" in sys.modules}))
"""


def _run_cli_probe(tmp_path: Path, config_text: str) -> dict[str, bool]:
    """``speaker run`` up to the daemon (replaced by a stub) in a fresh interpreter."""
    config = tmp_path / "speaker.toml"
    config.write_text(config_text)
    code = (
        "import json, sys, types\n"
        "sys.modules['speaker.daemon'] = types.SimpleNamespace(run_daemon=lambda *a, **k: 0)\n"
        "from speaker.cli import main\n"
        f"assert main(['run', '--config', {str(config)!r}]) == 0\n" + _STARTUP_PROBE
    )
    result: dict[str, bool] = json.loads(_python(code).splitlines()[-1])
    return result


def test_run_without_a_datastore_loads_asyncio_without_tls(tmp_path: Path) -> None:
    text = (ROOT / "config" / "node81.toml").read_text()
    assert "[datastore]" not in text
    assert _run_cli_probe(tmp_path, text) == {"asyncio_tls": False, "ssl_loaded": False}


def test_run_with_a_datastore_keeps_tls(tmp_path: Path) -> None:
    text = (
        '[datastore]\ntype = "etcdv3"\nendpoints = ["https://10.0.0.1:2379"]\n'
        'node_name = "node81"\n'
    )
    assert _run_cli_probe(tmp_path, text) == {"asyncio_tls": True, "ssl_loaded": True}


def test_run_with_a_broken_config_keeps_tls_and_lets_the_daemon_report(tmp_path: Path) -> None:
    assert _run_cli_probe(tmp_path, "this is = = not toml") == {
        "asyncio_tls": True, "ssl_loaded": True}


def test_asyncio_without_tls_still_serves_tcp_and_ssl_stays_importable() -> None:
    code = (
        "import json\n"
        "from speaker.startup import import_asyncio\n"
        "assert import_asyncio(tls=False) is False\n"
        "import asyncio\n"
        "async def main():\n"
        "    async def echo(r, w):\n"
        "        w.write(await r.read(5)); await w.drain(); w.close()\n"
        "    server = await asyncio.start_server(echo, '127.0.0.1', 0)\n"
        "    port = server.sockets[0].getsockname()[1]\n"
        "    r, w = await asyncio.open_connection('127.0.0.1', port)\n"
        "    w.write(b'hello'); got = await r.read(5); w.close(); server.close()\n"
        "    return got\n"
        "assert asyncio.run(main()) == b'hello'\n"
        "import ssl\n"  # others may still use TLS themselves
        "assert ssl.create_default_context() is not None\n"
        "assert import_asyncio(tls=True) is False\n"  # asyncio stays as it was loaded
        "print(json.dumps({'ok': True}))\n"
    )
    assert json.loads(_python(code)) == {"ok": True}
