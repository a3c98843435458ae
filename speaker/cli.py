"""The ``speaker`` command: run the daemon, decode captures, check a config, talk to the socket.

    speaker run --config FILE [--json] [--log-level LEVEL] [--log-format text|json]
                [--graceful-restart] [--metrics-listen ADDR:PORT]
    speaker --version
    speaker decode FILE|- [--json|--brief] [--hex] [--bytes] [--filter K=V]... [--port N]...
                [--width N] [--rib] [--html OUT]
    speaker decode --bytes-hex HEX [same options]
    speaker check-config --config FILE [--json] [--datastore]
    speaker status                           (calicoctl node status, exactly)
    speaker show protocols [all] [NAME]      speaker show route [all] [for ADDR] [count]
    speaker show status | kernel | datastore
    speaker show events [NAME] [--since T]    speaker watch [NAME]
    speaker explain PREFIX|ADDRESS [--peer NAME]
    speaker enable|disable|restart|refresh PEER
    speaker restart --graceful               (planned graceful restart)

Socket commands take ``--socket PATH``; without it the ``control_socket`` of ``--config``
is used, else /run/speaker/speaker.ctl.  ``--json`` prints JSON.  Exit codes: 0 done,
1 the daemon refused the command, 2 usage, configuration or connection error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from speaker import __version__
from speaker.config import DEFAULT_CONTROL_SOCKET, Config, ConfigError, load_config

if TYPE_CHECKING:
    from speaker.control.calicoctl import CalicoPeer

__all__ = ["main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_ERROR = 2

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def package_version() -> str:
    """The installed distribution's version (what pip installed), else the source tree's."""
    import importlib.metadata  # not at start: it pulls in email, zipfile, csv (about 3 MiB)

    try:
        return importlib.metadata.version("speaker")
    except importlib.metadata.PackageNotFoundError:
        return __version__


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (importlib.metadata is heavy)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"speaker {package_version()}\n")
        parser.exit()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speaker",
        description="A pure-Python BGP-4 speaker for a Calico-style mesh (BIRD-compatible).",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration")
    p.add_argument("--json", action="store_true",
                   help="also write the event stream as JSON lines on stdout")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="stderr log: text (default; without timestamps, with syslog "
                        "priorities, when stderr is the systemd journal) or json (one object "
                        "per line)")
    p.add_argument("--log-level", default="info", type=str.lower, choices=_LOG_LEVELS,
                   metavar="LEVEL", help="debug, info (default), warning, error, critical")
    p.add_argument("--graceful-restart", action="store_true",
                   help="start as a restarting speaker (RFC 4724 restart flag, keep kernel "
                        "routes until peers' End-of-RIB), like `bird -R`")
    p.add_argument("--metrics-listen", metavar="ADDR:PORT", default=None,
                   help="serve Prometheus metrics at http://ADDR:PORT/metrics")

    p = sub.add_parser(
        "decode", help="decode BGP messages from a pcap or hex file",
        description="Explain every BGP message of a capture (pcap/pcapng) or hex file. "
                    "Exit status: 0 clean, 1 malformed messages, 2 unreadable or damaged "
                    "input, 3 octets missing from the capture (gaps). See docs/decode.md.")
    p.add_argument("file", metavar="FILE", nargs="?",
                   help="capture or hex file; - reads standard input")
    p.add_argument("--bytes-hex", metavar="HEX", default=None,
                   help="decode these hex octets (one message or several back to back) "
                        "instead of a file")
    p.add_argument("--json", action="store_true", help="print JSON, one object per line")
    p.add_argument("--brief", action="store_true", help="one line per message")
    p.add_argument("--hex", action="store_true", help="read the file as hex text")
    p.add_argument("--bytes", action="store_true",
                   help="also dump each message's octets with the field boundaries marked")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="show only matching messages: type=update, prefix=10.244.0.0/16 "
                        "(announced or withdrawn prefixes it covers), peer=192.168.0.80; "
                        "repeatable, all must match")
    p.add_argument("--port", action="append", type=int, default=[], metavar="N",
                   help="TCP port carrying BGP in a capture (default 179); repeatable")
    p.add_argument("--width", type=int, default=120, metavar="N",
                   help="wrap explanations at N characters (default 120, 0: never)")
    p.add_argument("--rib", action="store_true",
                   help="replay the capture into our RIB and print each receiver's table, "
                        "with the best-path reason per prefix")
    p.add_argument("--html", metavar="OUT", default=None,
                   help="write a self-contained HTML page instead: a ladder diagram of the "
                        "sessions, each message expandable to its annotated fields and bytes")

    p = sub.add_parser("check-config", help="validate a configuration and explain the peers")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--json", action="store_true",
                   help="print the errors, or the effective config, as JSON")
    p.add_argument("--datastore", action="store_true",
                   help="with [datastore] in the file, read the datastore and print the "
                        "configuration derived from it (the default when [datastore] is set; "
                        "refused without it)")

    sock = argparse.ArgumentParser(add_help=False)
    sock.add_argument("--socket", metavar="PATH",
                      help=f"control socket (default: the config's control_socket, else "
                           f"{DEFAULT_CONTROL_SOCKET})")
    sock.add_argument("--config", metavar="FILE", help="read control_socket from this config")
    sock.add_argument("--json", action="store_true", help="print JSON")
    sock.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                      help="how long to wait for a reply (default 10)")

    sub.add_parser("status", parents=[sock],
                   help="BGP peer table, exactly like `calicoctl node status`")

    p = sub.add_parser("show", parents=[sock],
                       help="BIRD's show commands (and show kernel, show datastore)",
                       description="show protocols [all] [NAME] | show route [all] [for ADDR] "
                                   "[count] [protocol NAME] | show status | show kernel | "
                                   "show datastore")
    p.add_argument("what", choices=["protocols", "route", "status", "kernel", "datastore",
                                    "events"])
    p.add_argument("args", nargs="*", metavar="ARG",
                   help="BIRD's arguments: all, NAME, for ADDR, count, primary, protocol NAME; "
                        "for events: [NAME]")
    p.add_argument("--since", metavar="T",
                   help="show events: only since T (30s, 5m, 2h, 1d, HH:MM[:SS] or "
                        "YYYY-MM-DDTHH:MM[:SS])")

    p = sub.add_parser("explain", parents=[sock],
                       help="why the speaker holds, installs and exports a prefix as it does")
    p.add_argument("target", metavar="PREFIX|ADDRESS")
    p.add_argument("--peer", metavar="NAME", help="only this peer's export (its paths marked)")

    p = sub.add_parser("watch", parents=[sock],
                       help="stream the speaker's events as they happen (Ctrl-C to stop)")
    p.add_argument("peer", nargs="?", metavar="PEER", help="only this protocol's events")

    for verb, text in (
        ("enable", "enable a protocol (peer)"),
        ("disable", "disable a protocol (peer): close the session, keep it down"),
        ("refresh", "ask a peer to resend its routes (ROUTE-REFRESH)"),
    ):
        p = sub.add_parser(verb, parents=[sock], help=text)
        p.add_argument("peer", metavar="PEER", help='protocol name, "PATTERN" or all')
    p = sub.add_parser("restart", parents=[sock],
                       help="restart a protocol, or with --graceful the whole speaker")
    p.add_argument("peer", nargs="?", metavar="PEER")
    p.add_argument("--graceful", action="store_true",
                   help="planned graceful restart of the speaker (peers keep our routes)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``speaker`` console script; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "decode":
            return _decode(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "watch":
            return _watch(args)
        return _socket_command(parser, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `speaker ... | head`: the reader left; say nothing more (and nothing at exit)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


# --------------------------------------------------------------------------- delegates


def _lazy(module: str, name: str) -> Callable[..., Any] | None:
    """Import ``module.name`` only when the subcommand runs (fast CLI start, and a clear
    message instead of a traceback when that part is missing or broken)."""
    try:
        func: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        _err(f"{module}.{name} is not available: {exc}")
        return None
    return func


def _run(args: argparse.Namespace) -> int:
    from speaker.startup import import_asyncio

    # TLS only for the etcd datastore, which a reload cannot add (speaker/startup.py); the
    # daemon takes the config read here, and reports one that does not load, as ever
    config: Config | None
    try:
        config = load_config(args.config)
    except (ConfigError, OSError):
        config = None
    import_asyncio(tls=config is None or config.datastore is not None)
    run_daemon = _lazy("speaker.daemon", "run_daemon")
    if run_daemon is None:
        return EXIT_ERROR
    return int(run_daemon(args.config, config=config, json_events=args.json,
                          log_level=args.log_level,
                          restarting=args.graceful_restart, metrics_listen=args.metrics_listen,
                          log_format=args.log_format))


def _decode(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.bytes_hex is None):
        _err("decode: give a FILE (or - for standard input), or --bytes-hex HEX, not both")
        return EXIT_ERROR
    decode_main = _lazy("speaker.decode", "decode_main")
    if decode_main is None:
        return EXIT_ERROR
    options: dict[str, Any] = {}
    if args.brief:
        options["brief"] = True
    if args.filter:
        options["filters"] = args.filter
    if args.port:
        options["ports"] = args.port
    if args.bytes_hex is not None:
        options["hex_text"] = args.bytes_hex
    if args.width != 120:
        options["width"] = args.width
    if args.rib:
        options["rib"] = True
    if args.html is not None:
        options["html"] = args.html

    path = args.file if args.file is not None else "--bytes-hex"
    return int(decode_main(path, as_json=args.json, force_hex=args.hex,
                           show_bytes=args.bytes, **options))


# --------------------------------------------------------------------------- check-config


def _check_config(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Every error of the file (not just the first), each as FILE:LINE: KEY: PROBLEM."""
    from speaker.configcheck import check_config, location

    out = out or sys.stdout
    check = check_config(args.config)
    if check.ok and check.config is not None and check.config.datastore is not None:
        return _check_datastore(check.config, args.json, out)
    if args.json:
        print(json.dumps(check.to_dict(), indent=2), file=out)
        return EXIT_OK if check.ok else EXIT_ERROR
    if not check.ok or check.config is None:
        for error in check.errors:
            _err(location(error))
        if len(check.errors) > 1:
            _err(f"{args.config}: {len(check.errors)} errors")
        return EXIT_ERROR
    if args.datastore:
        _err(f"{args.config}: --datastore needs a [datastore] table in the file")
        return EXIT_ERROR
    print(explain_config(check.config), file=out, end="")
    return EXIT_OK


def _check_datastore(template: Config, as_json: bool, out: TextIO) -> int:
    """Read the datastore once, derive this node's configuration and print it."""
    import asyncio

    from speaker.datastore.etcd import EtcdSource
    from speaker.datastore.gateway import EtcdError

    assert template.datastore is not None
    source = EtcdSource(template.datastore, template)
    try:
        derivation = asyncio.run(source.read_once())
    except EtcdError as exc:
        _err(f"{template.source}: datastore: {exc}")
        return EXIT_ERROR
    problems = [str(p) for p in derivation.problems]
    if as_json:
        doc = {"ok": derivation.config is not None, "revision": source.status.revision,
               "endpoint": source.status.endpoint, "problems": problems,
               "config": None if derivation.config is None else derivation.config.to_dict()}
        print(json.dumps(doc, indent=2), file=out)
    else:
        print(f"datastore {source.status.endpoint}: revision {source.status.revision}, "
              f"node {template.datastore.node_name}", file=out)
        for text in problems:
            print(f"  problem: {text}", file=out)
        if derivation.config is not None:
            print(explain_config(derivation.config), file=out, end="")
    if derivation.config is None:
        _err(f"{template.source}: no configuration can be derived for node "
             f"{template.datastore.node_name} (see the problems)")
        return EXIT_ERROR
    return EXIT_OK


def explain_config(cfg: Config) -> str:
    """The effective configuration in words, with each peer's passive/active reasoning."""
    lines = [
        f"{cfg.source}: configuration is valid",
        f"  router id {cfg.router_id}, AS {cfg.asn}, listening on {cfg.listen}:{cfg.port}",
        f"  control socket {cfg.control_socket}",
        f"  graceful restart wait {cfg.graceful_restart_wait} s",
    ]
    if cfg.address6 is not None:
        lines.insert(2, f"  IPv6 address {cfg.address6} (our address toward IPv6 peers)")
    if cfg.address6 is not None or any(p.address.version == 6 for p in cfg.peers):
        lines.insert(2, f"  IPv6 BGP connections accepted on [{cfg.listen6}]:{cfg.port}")
    if cfg.control_socket6 is not None:
        lines[lines.index(f"  control socket {cfg.control_socket}")] = (
            f"  control socket {cfg.control_socket} (IPv4, as bird.ctl), "
            f"{cfg.control_socket6} (IPv6, as bird6.ctl)")
    if cfg.originate.blocks:
        hole = " (local blackhole route each)" if cfg.originate.blackhole else ""
        lines.append("  originates: " + ", ".join(str(b) for b in cfg.originate.blocks) + hole)
    else:
        lines.append("  originates: nothing")
    lines.append("  pools: " + (", ".join(str(c) for c in cfg.pools.cidrs) or "none"))
    k = cfg.kernel
    onoff = {True: "on", False: "off"}
    lines.append(f"  kernel: protocol {k.protocol}, table {k.table}, learn {onoff[k.learn]}, "
                 f"persist {onoff[k.persist]}, scan time {k.scan_time:g} s, merge paths "
                 f"{onoff[k.merge_paths]} (limit {k.merge_limit}), convergence wait "
                 f"{k.convergence_wait:g} s")
    if k.reject_cidrs:
        lines.append("  never programmed into the kernel: "
                     + ", ".join(str(c) for c in k.reject_cidrs))
    lines.append(f"  peers: {len(cfg.peers)}")
    for p in cfg.peers:
        kind = "iBGP" if p.internal else "eBGP"
        direction = "passive (waits for the peer)" if p.passive else "active (dials the peer)"
        families = " + ".join(f"IPv{f[-1]} unicast" for f in p.families)
        lines.append(f"    {p.name}: {p.address} AS {p.asn} ({kind}, {families}), from "
                     f"{p.local_address}, {direction}")
        lines.append(f"      why: {p.passive_reason}")
        keepalive = ("a third of the negotiated hold time" if p.keepalive_time is None
                     else f"{p.keepalive_time} s")
        keep = (f"hold {p.hold_time} s, keepalive {keepalive}, add-paths "
                f"{p.add_paths.value}, graceful restart "
                f"{f'on (restart time {p.restart_time} s)' if p.graceful_restart else 'off'}")
        lines.append(f"      {keep}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- socket clients


def _socket_path(args: argparse.Namespace) -> str | None:
    if args.socket:
        return str(args.socket)
    if args.config:
        try:
            return load_config(args.config).control_socket
        except ConfigError as exc:
            _err(str(exc))
            return None
    return DEFAULT_CONTROL_SOCKET


def _command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    if args.command == "show":
        words = list(args.args)
        if args.what == "protocols" and words:
            words[-1] = _quote_target(words[-1])
        if args.since is not None:
            if args.what != "events":
                parser.error("--since is for show events")
            words += ["since", args.since]
        return " ".join(["show", args.what, *words])
    if args.command == "restart":
        if args.graceful and args.peer:
            parser.error("restart: give a PEER or --graceful, not both")
        if args.graceful:
            return "graceful restart"
        if not args.peer:
            parser.error("restart: give a PEER (or --graceful for the whole speaker)")
        return f"restart {_quote_target(args.peer)}"
    if args.command == "explain":
        return f"explain {args.target}" + (f" peer {args.peer}" if args.peer else "")
    if args.command in ("enable", "disable", "refresh"):
        return f"{args.command} {_quote_target(args.peer)}"
    return None


def _watch(args: argparse.Namespace) -> int:
    """``speaker watch [PEER]``: print each event line the daemon streams, until Ctrl-C."""
    import socket

    path = _socket_path(args)
    if path is None:
        return EXIT_ERROR
    line = ("json watch" if args.json else "watch") + (f" {args.peer}" if args.peer else "")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        _err(f"cannot reach speaker at {path}: {exc.strerror or exc}")
        return EXIT_ERROR
    with sock, sock.makefile("rb") as stream:
        sock.sendall(line.encode() + b"\n")
        try:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace").rstrip("\n")
                code, sep, rest = text[:4], text[4:5], text[5:]
                if code == "0001":
                    continue  # the banner
                if code.isdigit() and sep in "- " and int(code) >= 8000:
                    _err(rest)
                    return EXIT_REFUSED
                print(rest if code.isdigit() else text[1:], flush=True)
        except KeyboardInterrupt:
            return EXIT_OK
    return EXIT_OK


def _quote_target(target: str) -> str:
    """Patterns need BIRD's quotes; let ``speaker disable 'Mesh_*'`` work without them."""
    if ("*" in target or "?" in target) and not target.startswith('"'):
        return f'"{target}"'
    return target


def _socket_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from speaker.control.calicoctl import (
        CalicoParseError,
        render_node_status,
        split_families,
    )
    from speaker.control.client import ControlClient, ControlUnreachable
    from speaker.control.protocol import Reply, ReplyCode

    path = _socket_path(args)
    if path is None:
        return EXIT_ERROR
    line = "show protocols" if args.command == "status" else _command_line(parser, args)
    assert line is not None
    datastore: dict[str, Any] | None = None
    socket6: str | None = None
    try:
        with ControlClient(path, timeout=args.timeout) as client:
            as_json = args.json and args.command != "status"  # status parses the text
            reply: Reply = client.command(f"json {line}" if as_json else line)
            if args.command == "status" and reply.ok:
                datastore = _datastore_status(client.command("json show datastore"))
                socket6 = _control_socket6(client.command("json show status"))
    except ControlUnreachable as exc:
        text = str(exc)
        _err(text if text.startswith("cannot reach") else f"cannot reach speaker at {path}: "
                                                          f"{text}")
        return EXIT_ERROR
    except OSError as exc:
        _err(f"cannot reach speaker at {path}: {exc}")
        return EXIT_ERROR

    if not reply.ok and not reply.data(ReplyCode.JSON):
        for text in reply.texts():
            _err(text)
        return EXIT_REFUSED

    if args.command == "status":
        try:
            peers, peers6 = split_families(reply.raw)
            if socket6 is not None:  # the bird6.ctl-style socket has the IPv6 table
                peers6 += _bird6_peers(socket6, args.timeout)
        except CalicoParseError as exc:
            _err(f"unexpected reply from {path}: {exc}")
            return EXIT_ERROR
        except (ControlUnreachable, OSError) as exc:
            _err(f"cannot reach the IPv6 control socket {socket6}: {exc}")
            return EXIT_ERROR
        if args.json:
            table: dict[str, Any] = {"ipv4": [_calico_json(p) for p in peers],
                                     "ipv6": [_calico_json(p) for p in peers6]}
            if datastore is not None:
                table["datastore"] = datastore
            print(json.dumps(table, indent=2))
        else:
            sys.stdout.write(render_node_status(peers, peers6))
            if datastore is not None:
                print(_datastore_line(datastore))
        return EXIT_OK

    if args.json:
        doc: dict[str, Any] = json.loads(reply.data(ReplyCode.JSON)[0])
        print(json.dumps(doc, indent=2))
        return EXIT_OK if _json_ok(doc) else EXIT_REFUSED

    for text in reply.texts():
        print(text)
    return EXIT_OK if reply.ok else EXIT_REFUSED


def _control_socket6(reply: Any) -> str | None:
    """The bird6.ctl-style socket named by ``json show status``, if the speaker has one."""
    from speaker.control.protocol import ReplyCode

    texts = reply.data(ReplyCode.JSON)
    if not reply.ok or not texts:
        return None
    found = json.loads(texts[0]).get("data", {}).get("status", {}).get("control_socket6")
    return found if isinstance(found, str) else None


def _bird6_peers(path: str, timeout: float) -> list[Any]:
    """The IPv6 table of ``speaker status``, read from the bird6.ctl-style socket as calicoctl
    reads bird6.ctl."""
    from speaker.control.calicoctl import parse_bird_protocols
    from speaker.control.client import ControlClient

    with ControlClient(path, timeout=timeout) as client:
        return list(parse_bird_protocols(client.command("show protocols").raw, 6))


def _datastore_status(reply: Any) -> dict[str, Any] | None:
    """The ``data.datastore`` of ``json show datastore``; None when the speaker runs from its
    file (or is too old to know the command)."""
    from speaker.control.protocol import ReplyCode

    texts = reply.data(ReplyCode.JSON)
    if not reply.ok or not texts:
        return None
    found = json.loads(texts[0]).get("data", {}).get("datastore")
    return found if isinstance(found, dict) else None


def _datastore_line(d: dict[str, Any]) -> str:
    """``Datastore: etcdv3 https://192.168.0.80:2379, connected, revision 57``."""
    state = "connected" if d.get("connected") else "disconnected"
    line = f"Datastore: {d.get('type')} {d.get('endpoint')}, {state}, revision {d.get('revision')}"
    if not d.get("connected") and d.get("last_error"):
        line += f" (last error: {d['last_error']})"
    return line


def _calico_json(p: CalicoPeer) -> dict[str, str]:
    return {"peer_address": p.peer_address, "peer_type": p.peer_type, "state": p.state,
            "since": p.since, "info": p.info_column}


def _json_ok(doc: dict[str, Any]) -> bool:
    results = doc.get("data", {}).get("results") if isinstance(doc.get("data"), dict) else None
    if isinstance(results, list):
        return all(r.get("ok", True) for r in results)
    return True


def _err(message: str) -> None:
    print(f"speaker: {message}", file=sys.stderr)
