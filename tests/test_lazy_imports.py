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


def _loaded_after(code: str) -> set[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    return set(json.loads(out.stdout))


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
