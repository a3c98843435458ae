"""Control commands: parse a command line, run it against the backend, build the reply.

Grammar (BIRD 1.6.8's words, case-sensitive like BIRD; ``NAME`` is a protocol name,
``"PATTERN"`` a quoted pattern with ``*`` and ``?``, ``all`` every protocol)::

    show protocols [all] [NAME | "PATTERN"]
    show route [all] [primary] [count] [for ADDR|PREFIX] [PREFIX] [protocol NAME]
    show status
    enable | disable | restart  NAME | "PATTERN" | all
    reload in  NAME | "PATTERN" | all        (= refresh: ROUTE-REFRESH toward the peer)
  extensions:
    show kernel
    show datastore                           (Calico's datastore: what was read, what it became)
    refresh NAME | "PATTERN" | all
    graceful restart  (also: graceful-restart)
    json <any command above>                 (one JSON document, see jsonview.py)

Errors use BIRD's codes and texts: ``9001 syntax error``, ``9001 IP address expected``,
``9002 X is not a protocol``, ``8003 No protocols match``, ``8001 Network not in table``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from ipaddress import ip_address, ip_network
from typing import Any

from speaker.control.jsonview import json_document, to_jsonable
from speaker.control.protocol import ReplyCode, ReplyLine
from speaker.control.render import BirdRenderer, group_routes
from speaker.control.views import (
    ActionOutcome,
    ControlBackend,
    IpNetwork,
    ProtocolStatus,
    RouteView,
    longest_match,
)

__all__ = [
    "Action",
    "CommandError",
    "CommandExecutor",
    "CommandFailed",
    "Explain",
    "GracefulRestart",
    "Request",
    "ShowDatastore",
    "ShowEvents",
    "ShowKernel",
    "ShowProtocols",
    "ShowRoute",
    "ShowStatus",
    "Target",
    "Watch",
    "parse_command",
    "parse_since",
]


class CommandError(Exception):
    """A command refused before it ran: carries BIRD's reply code and text."""

    def __init__(self, code: ReplyCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class CommandFailed(Exception):
    """Raised by a backend action that cannot be done; the message goes to the operator."""


@dataclass(frozen=True)
class Target:
    """Which protocols an action or ``show protocols`` applies to."""

    name: str | None = None
    pattern: str | None = None
    every: bool = False

    def matches(self, name: str) -> bool:
        if self.every:
            return True
        if self.pattern is not None:
            return _pattern_regex(self.pattern).fullmatch(name) is not None
        return name == self.name


@dataclass(frozen=True)
class ShowProtocols:
    verbose: bool = False
    target: Target | None = None


@dataclass(frozen=True)
class ShowRoute:
    verbose: bool = False
    count: bool = False
    primary: bool = False
    for_addr: IpNetwork | None = None
    exact: IpNetwork | None = None
    protocol: str | None = None


@dataclass(frozen=True)
class ShowStatus:
    pass


@dataclass(frozen=True)
class ShowKernel:
    pass


@dataclass(frozen=True)
class ShowDatastore:
    pass


@dataclass(frozen=True)
class ShowEvents:
    """``show events [NAME] [since T]`` (our extension): the remembered events."""

    name: str | None
    since: str | None
    """As typed: ``30s``, ``5m``, ``2h``, ``1d`` ago, or a time ``HH:MM[:SS]`` (today) or
    ``YYYY-MM-DDTHH:MM[:SS]``; resolved against the server's clock when run."""


@dataclass(frozen=True)
class Explain:
    """``explain TARGET [peer NAME]`` (our extension): why the speaker does what it does
    with one prefix (or the longest match of an address)."""

    target: str
    peer: str | None


@dataclass(frozen=True)
class Watch:
    """``watch [NAME]`` (our extension, as ``gobgp monitor``): stream events as they happen."""

    name: str | None


@dataclass(frozen=True)
class Action:
    verb: str
    """``enable``, ``disable``, ``restart`` or ``refresh``."""
    target: Target


@dataclass(frozen=True)
class GracefulRestart:
    pass


Command = (ShowProtocols | ShowRoute | ShowStatus | ShowKernel | ShowDatastore | ShowEvents
           | Explain | Watch | Action | GracefulRestart)


@dataclass(frozen=True)
class Request:
    command: Command
    json: bool = False
    text: str = ""


# --------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r'\s*(?:"([^"]*)"|([^\s"]\S*))')
_IPV4_LIKE = re.compile(r"^(\d+\.\d+\.\d+\.\d+|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)$")
_PREFIX_LIKE = re.compile(r"^(\d+\.\d+\.\d+\.\d+|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)/(\d+)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SYNTAX = "syntax error"


@dataclass(frozen=True)
class _Tok:
    text: str
    quoted: bool


def _tokens(line: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    line = line.strip()
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:  # an unterminated quote
            raise CommandError(ReplyCode.PARSE_ERROR, "Unterminated string")
        if m.group(1) is not None:
            out.append(_Tok(m.group(1), True))
        else:
            out.append(_Tok(m.group(2), False))
        pos = m.end()
    return out


def _syntax() -> CommandError:
    return CommandError(ReplyCode.PARSE_ERROR, _SYNTAX)


def parse_command(line: str) -> Request:
    """Parse one command line; raises CommandError with BIRD's code and text."""
    toks = _tokens(line)
    as_json = False
    if toks and not toks[0].quoted and toks[0].text == "json":
        as_json = True
        toks = toks[1:]
    if not toks or toks[0].quoted:
        raise _syntax()
    head = toks[0].text
    rest = toks[1:]
    cmd: Command
    if head == "show":
        cmd = _parse_show(rest)
    elif head in ("enable", "disable", "restart", "refresh"):
        cmd = Action(head, _parse_target(rest))
    elif head == "reload":
        if rest and not rest[0].quoted and rest[0].text in ("in", "out"):
            if rest[0].text == "out":
                raise CommandError(ReplyCode.RELOAD_FAILED,
                                   "reload out is not supported; use restart NAME to resend "
                                   "our routes")
            rest = rest[1:]
        else:
            raise CommandError(ReplyCode.RELOAD_FAILED,
                               "only `reload in NAME` (route refresh) is supported")
        cmd = Action("refresh", _parse_target(rest))
    elif _is_graceful_restart(head, rest):
        cmd = GracefulRestart()
    elif head == "explain":
        if len(rest) not in (1, 3) or any(t.quoted for t in rest):
            raise _syntax()
        peer = None
        if len(rest) == 3:
            if rest[1].text != "peer" or not _NAME.match(rest[2].text):
                raise _syntax()
            peer = rest[2].text
        cmd = Explain(rest[0].text, peer)
    elif head == "watch":
        name, since = _name_and_since(rest)
        if since is not None:
            raise _syntax()
        cmd = Watch(name)
    else:
        raise _syntax()
    return Request(cmd, as_json, " ".join(f'"{t.text}"' if t.quoted else t.text for t in toks))


def _is_graceful_restart(head: str, rest: list[_Tok]) -> bool:
    """``graceful restart`` (BIRD 2's command) or our one-word ``graceful-restart``."""
    if head == "graceful-restart":
        return not rest
    return head == "graceful" and rest == [_Tok("restart", False)]


def _parse_show(rest: list[_Tok]) -> Command:
    if not rest or rest[0].quoted:
        raise _syntax()
    what, args = rest[0].text, rest[1:]
    if what == "status" and not args:
        return ShowStatus()
    if what == "kernel" and not args:
        return ShowKernel()
    if what == "datastore" and not args:
        return ShowDatastore()
    if what == "events":
        return ShowEvents(*_name_and_since(args))
    if what == "protocols":
        verbose = False
        if args and not args[0].quoted and args[0].text == "all":
            verbose = True
            args = args[1:]
        if not args:
            return ShowProtocols(verbose, None)
        if len(args) != 1:
            raise _syntax()
        tok = args[0]
        if tok.quoted:
            return ShowProtocols(verbose, Target(pattern=tok.text))
        if tok.text == "all" or not _NAME.match(tok.text):
            raise _syntax()
        return ShowProtocols(verbose, Target(name=tok.text))
    if what == "route":
        return _parse_show_route(args)
    raise _syntax()


def _name_and_since(args: list[_Tok]) -> tuple[str | None, str | None]:
    """``[NAME] [since T]`` of ``show events`` and ``watch``."""
    name = since = None
    if args and not args[0].quoted and args[0].text != "since":
        if not _NAME.match(args[0].text):
            raise _syntax()
        name, args = args[0].text, args[1:]
    if args:
        if len(args) != 2 or args[0].quoted or args[0].text != "since":
            raise _syntax()
        since = args[1].text
        if parse_since(since, datetime.now(UTC), UTC) is None:
            raise CommandError(ReplyCode.PARSE_ERROR,
                               f"since {since!r}: want 30s, 5m, 2h, 1d, HH:MM[:SS] or "
                               "YYYY-MM-DDTHH:MM[:SS]")
    return name, since


_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime, tz: tzinfo | None) -> datetime | None:
    """``30s``/``5m``/``2h``/``1d`` before ``now``, or a local time today, or a full
    date-time (in ``tz``); None if ``text`` is none of these."""
    m = _AGO.match(text)
    if m:
        return now - timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])
    local = now.astimezone(tz)
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            t = datetime.strptime(text, fmt).time()
        except ValueError:
            continue
        return local.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=local.tzinfo)
        except ValueError:
            continue
    return None


def _parse_show_route(args: list[_Tok]) -> ShowRoute:
    verbose = count = primary = False
    for_addr: IpNetwork | None = None
    exact: IpNetwork | None = None
    protocol: str | None = None
    i = 0
    while i < len(args):
        tok = args[i]
        word = tok.text
        if tok.quoted:
            raise _syntax()
        if word == "all":
            verbose = True
        elif word == "count":
            count = True
        elif word == "primary":
            primary = True
        elif word == "for":
            if i + 1 >= len(args) or args[i + 1].quoted:
                raise _syntax()
            if for_addr is not None or exact is not None:
                raise CommandError(ReplyCode.PARSE_ERROR, "Only one prefix expected")
            for_addr = _parse_addr(args[i + 1].text, allow_host=True)
            i += 1
        elif word == "protocol":
            if i + 1 >= len(args) or args[i + 1].quoted or not _NAME.match(args[i + 1].text):
                raise _syntax()
            protocol = args[i + 1].text
            i += 1
        elif _PREFIX_LIKE.match(word):
            if for_addr is not None or exact is not None:
                raise CommandError(ReplyCode.PARSE_ERROR, "Only one prefix expected")
            exact = _parse_addr(word, allow_host=False)
        elif _IPV4_LIKE.match(word):
            raise _syntax()  # BIRD wants a prefix here, an address only after `for`
        else:
            raise CommandError(ReplyCode.PARSE_ERROR, "IP address expected")
        i += 1
    return ShowRoute(verbose, count, primary, for_addr, exact, protocol)


def _parse_addr(text: str, *, allow_host: bool) -> IpNetwork:
    """An IPv4 or IPv6 address or prefix (BIRD 1.6's bird takes IPv4, bird6 IPv6; one
    speaker answers for both)."""
    m = _PREFIX_LIKE.match(text)
    addr_text = m.group(1) if m else text
    if not _IPV4_LIKE.match(addr_text):
        raise CommandError(ReplyCode.PARSE_ERROR, "IP address expected")
    try:
        addr = ip_address(addr_text)
    except ValueError:
        version = "IPv6" if ":" in addr_text else "IPv4"
        raise CommandError(ReplyCode.PARSE_ERROR,
                           f"Invalid {version} address {addr_text}") from None
    if m is None:
        if not allow_host:
            raise _syntax()
        return ip_network(addr)
    length = int(m.group(2))
    if length > addr.max_prefixlen:
        raise CommandError(ReplyCode.PARSE_ERROR, f"Invalid prefix length {length}")
    try:
        return ip_network(f"{addr}/{length}", strict=True)
    except ValueError:
        raise CommandError(ReplyCode.PARSE_ERROR, "Invalid prefix") from None


def _parse_target(rest: list[_Tok]) -> Target:
    if len(rest) != 1:
        raise _syntax()
    tok = rest[0]
    if tok.quoted:
        return Target(pattern=tok.text)
    if tok.text == "all":
        return Target(every=True)
    if not _NAME.match(tok.text):
        raise _syntax()
    return Target(name=tok.text)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """BIRD's patmatch: ``*`` any string, ``?`` any one character, nothing else special."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


# --------------------------------------------------------------------------- running

_ACTION_REPLIES: dict[tuple[str, ActionOutcome], tuple[ReplyCode, str]] = {
    ("enable", ActionOutcome.DONE): (ReplyCode.ENABLED, "enabled"),
    ("enable", ActionOutcome.ALREADY): (ReplyCode.ALREADY_ENABLED, "already enabled"),
    ("disable", ActionOutcome.DONE): (ReplyCode.DISABLED, "disabled"),
    ("disable", ActionOutcome.ALREADY): (ReplyCode.ALREADY_DISABLED, "already disabled"),
    ("restart", ActionOutcome.DONE): (ReplyCode.RESTARTED, "restarted"),
    ("restart", ActionOutcome.ALREADY): (ReplyCode.ALREADY_DISABLED, "already disabled"),
    ("refresh", ActionOutcome.DONE): (ReplyCode.RELOADING, "reloading"),
    ("refresh", ActionOutcome.ALREADY): (ReplyCode.ALREADY_DISABLED, "already disabled"),
}


def _final(code: int = ReplyCode.OK, text: str = "") -> ReplyLine:
    return ReplyLine(code, text)


class CommandExecutor:
    """Runs parsed commands against a backend and returns the reply lines (last = final)."""

    def __init__(
        self,
        backend: ControlBackend,
        *,
        version: str = "1.6.8",
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self.backend = backend
        self.version = version
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tz = tz

    async def run_line(self, line: str) -> list[ReplyLine]:
        """Parse and run one command line; never raises for bad input."""
        try:
            request = parse_command(line)
        except CommandError as exc:
            return [_final(exc.code, exc.text)]
        return await self.run(request)

    async def run(self, request: Request) -> list[ReplyLine]:
        renderer = BirdRenderer(self.clock(), self.tz)
        try:
            lines, data = await self._dispatch(request, renderer)
        except CommandError as exc:
            return [_final(exc.code, exc.text)]
        except CommandFailed as exc:
            return [_final(ReplyCode.COMMAND_FAILED, str(exc) or "command failed")]
        if request.json:
            # Outcomes (also per-protocol failures of actions) are inside the document.
            doc = json_document(request.text, data, renderer.now)
            return [ReplyLine(ReplyCode.JSON, doc), _final()]
        return lines

    async def _dispatch(
        self, request: Request, r: BirdRenderer
    ) -> tuple[list[ReplyLine], Any]:
        cmd = request.command
        if isinstance(cmd, ShowProtocols):
            protos = self._select(cmd.target)
            lines = [*r.protocols(protos, cmd.verbose), _final()]
            return lines, {"protocols": [
                {**_proto_json(p), "info_column": r.protocol_info(p)} for p in protos
            ]}
        if isinstance(cmd, ShowRoute):
            return self._show_route(cmd, r)
        if isinstance(cmd, ShowStatus):
            status = self.backend.status()
            return [*r.status(status, self.version)], {"status": status,
                                                       "version": self.version}
        if isinstance(cmd, ShowKernel):
            kernel = self.backend.kernel()
            return [*r.kernel(kernel), _final()], {"kernel": kernel}
        if isinstance(cmd, ShowDatastore):
            datastore = self.backend.datastore()
            if datastore is None:
                raise CommandFailed("no datastore: this speaker's peers and blocks come from "
                                    "its configuration file")
            return [*r.datastore(datastore), _final()], {"datastore": datastore}
        if isinstance(cmd, ShowEvents):
            since = None
            if cmd.since is not None:
                since = parse_since(cmd.since, r.now, self.tz)
            if cmd.name is not None and cmd.name not in {p.name for p in self.backend.protocols()}:
                raise CommandError(ReplyCode.NO_PROTOCOLS_MATCH, "No protocols match")
            events = list(self.backend.events(cmd.name, since))
            return [*r.events(events), _final()], {"events": events}
        if isinstance(cmd, Explain):
            if cmd.peer is not None and cmd.peer not in {p.name for p in self.backend.protocols()}:
                raise CommandError(ReplyCode.NO_PROTOCOLS_MATCH, "No protocols match")
            view = self.backend.explain(cmd.target, cmd.peer)
            return [*r.explain(view, cmd.peer), _final()], {"explain": view}
        if isinstance(cmd, Watch):
            raise CommandFailed("watch streams: the server handles it")  # see ControlServer
        if isinstance(cmd, Action):
            return await self._action(cmd)
        if isinstance(cmd, GracefulRestart):
            message = await self.backend.graceful_restart()
            return [_final(ReplyCode.GR_INITIATED, message)], {"message": message}
        raise _syntax()  # pragma: no cover - every Command type is handled above

    def _select(self, target: Target | None) -> list[ProtocolStatus]:
        protos = list(self.backend.protocols())
        if target is None:
            chosen = protos
        elif target.name is not None:
            chosen = [p for p in protos if p.name == target.name]
            if not chosen:
                raise CommandError(ReplyCode.INVALID_SYMBOL, f"{target.name} is not a protocol")
        else:
            chosen = [p for p in protos if target.matches(p.name)]
        if not chosen:
            raise CommandError(ReplyCode.NO_PROTOCOLS_MATCH, "No protocols match")
        return chosen

    def _show_route(self, cmd: ShowRoute, r: BirdRenderer) -> tuple[list[ReplyLine], Any]:
        if cmd.protocol is not None and cmd.protocol not in {
            p.name for p in self.backend.protocols()
        }:
            raise CommandError(ReplyCode.PARSE_ERROR, f"{cmd.protocol} is not a protocol")
        if cmd.count and cmd.for_addr is None and cmd.exact is None:
            # from the backend's counters: no view of every route (3 s at 100,000 routes)
            shown_n, examined_n, networks_n = self.backend.route_count(cmd.protocol, cmd.primary)
            counts = {"shown": shown_n, "routes": examined_n, "networks": networks_n}
            return [_final(ReplyCode.ROUTE_COUNT,
                           f"{shown_n} of {examined_n} routes for {networks_n} networks")
                    ], {"count": counts}
        if cmd.for_addr is not None:
            routes: list[RouteView] = longest_match(self.backend.routes(cmd.for_addr),
                                                    cmd.for_addr)
        elif cmd.exact is not None:
            routes = [x for x in self.backend.routes() if x.prefix == cmd.exact]
        else:
            routes = list(self.backend.routes())
        routes = group_routes(routes)
        examined: list[RouteView] = []
        networks = 0
        previous = None
        for route in routes:
            if route.prefix != previous:
                networks += 1
                previous = route.prefix
            elif cmd.primary:
                continue
            examined.append(route)
        shown = [x for x in examined if cmd.protocol is None or x.protocol == cmd.protocol]
        counts = {"shown": len(shown), "routes": len(examined), "networks": networks}
        data: dict[str, Any] = {"count": counts}
        if not cmd.count:
            data["routes"] = shown
        single = cmd.for_addr is not None or cmd.exact is not None
        if single:
            # BIRD: one network looked up; `count` is ignored and the reply just ends.
            if not examined:
                raise CommandError(ReplyCode.ROUTE_NOT_FOUND, "Network not in table")
            lines = [] if cmd.count else r.route_lines(shown, cmd.verbose)
            return [*lines, _final()], data
        if cmd.count:
            return [_final(ReplyCode.ROUTE_COUNT,
                           f"{len(shown)} of {len(examined)} routes for {networks} networks")
                    ], data
        return [*r.route_lines(shown, cmd.verbose), _final()], data

    async def _action(self, cmd: Action) -> tuple[list[ReplyLine], Any]:
        protos = self._select(cmd.target)
        lines: list[ReplyLine] = []
        results: list[dict[str, Any]] = []
        call: Callable[[str], Any] = {
            "enable": self.backend.enable,
            "disable": self.backend.disable,
            "restart": self.backend.restart,
            "refresh": self.backend.refresh,
        }[cmd.verb]
        for p in protos:
            try:
                outcome = ActionOutcome(await call(p.name))
            except CommandFailed as exc:
                code = (ReplyCode.RELOAD_FAILED if cmd.verb == "refresh"
                        else ReplyCode.COMMAND_FAILED)
                word = "reload failed" if cmd.verb == "refresh" else f"{cmd.verb} failed"
                text = f"{p.name}: {word}: {exc}" if str(exc) else f"{p.name}: {word}"
                lines.append(ReplyLine(code, text))
                results.append({"protocol": p.name, "ok": False, "code": int(code),
                                "message": text})
                continue
            code, word = _ACTION_REPLIES[(cmd.verb, outcome)]
            text = f"{p.name}: {word}"
            lines.append(ReplyLine(code, text))
            results.append({"protocol": p.name, "ok": True, "code": int(code),
                            "outcome": outcome.value, "message": text})
        return [*lines, _final()], {"action": cmd.verb, "results": results}


def _proto_json(p: ProtocolStatus) -> dict[str, Any]:
    out = to_jsonable(p)
    assert isinstance(out, dict)
    return out
