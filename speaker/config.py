"""Configuration: one TOML file read into frozen, validated dataclasses.

Every mistake is refused with a ConfigError naming the file, the key (``peer[1].address``)
and what is wrong, so an operator never has to guess.  Defaults are those of the seed's
Calico-generated bird.cfg (hold 240, connect delay 2, connect retry 5, error wait 5..30,
add paths on, graceful restart, multihop) and of BIRD 1.6 (restart time 120, GR wait 240,
merge limit 16).

The passive rule is Calico's: a node is passive toward a peer iff the peer's address,
compared AS TEXT, is greater than its own address (the peer's ``source_address`` if set,
else ``router_id``).  So 10.0.0.10 is passive toward 10.0.0.9 ("10.0.0.9" > "10.0.0.10"
as strings) and 10.0.0.9 dials, although 9 < 10 numerically.  See docs/config.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    NetmaskValueError,
    ip_address,
    ip_network,
)
from pathlib import Path
from typing import Any, TypeVar

from speaker.secret import TCP_MD5SIG_MAXKEYLEN, Secret

__all__ = [
    "DEFAULT_CONTROL_SOCKET",
    "FAMILIES",
    "AddPaths",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "DatastoreConfig",
    "IpAddress",
    "IpNetwork",
    "KernelConfig",
    "LimitAction",
    "OriginateConfig",
    "PeerConfig",
    "PoolsConfig",
    "RouteLimit",
    "calico_passive",
    "check_config_text",
    "default_peer_name",
    "load_config",
    "parse_config",
    "read_config_text",
]

_T = TypeVar("_T")

DEFAULT_CONTROL_SOCKET = "/run/speaker/speaker.ctl"
BGP_PORT = 179
ANY_ADDRESS = IPv4Address("0.0.0.0")
ANY_ADDRESS6 = IPv6Address("::")
IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network
FAMILIES = ("ipv4", "ipv6")
"""The address families a session can carry (``families`` of a peer): IPv4 and IPv6 unicast."""
AS_TRANS = 23456  # RFC 6793: stands in for a 4-octet AS in 2-octet fields, never a real AS
MAX_ASN = 2**32 - 1
UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
# Protocol names are shown on the BIRD-compatible control socket; BIRD symbols are
# letters, digits and underscores and must not be a keyword of the commands we parse.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_RESERVED_NAMES = frozenset({"all", "for", "count", "protocol", "primary", "in", "out"})
# rtm_protocol values the kernel itself uses (linux/rtnetlink.h): unspec, redirect,
# kernel, boot, static.  Routes tagged with them would be mistaken for the kernel's own.
_KERNEL_OWN_PROTOCOLS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static"}
RTPROT_BIRD = 12


class ConfigError(ValueError):
    """A configuration mistake; the message names the file, the key and the problem.

    ``line`` is the 1-based line in the file when known (TOML syntax errors; the key's line
    found by :mod:`speaker.configcheck`), else None."""

    def __init__(self, source: str, key: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.line = line
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class ConfigErrors(ConfigError):
    """Every mistake of one file (``errors``); as a ConfigError it is the first of them, and
    its message lists them all, one per line, so the daemon's refusal shows everything."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.source, first.key, first.problem, first.line)
        self.errors = tuple(errors)
        self.args = ("\n".join(str(e) for e in errors),)


class AddPaths(StrEnum):
    """ADD-PATH (RFC 7911) directions we offer, like BIRD's ``add paths on|rx|tx|off``."""

    BOTH = "both"
    RECEIVE = "receive"
    SEND = "send"
    OFF = "off"

    @property
    def receive(self) -> bool:
        return self in (AddPaths.BOTH, AddPaths.RECEIVE)

    @property
    def send(self) -> bool:
        return self in (AddPaths.BOTH, AddPaths.SEND)


class LimitAction(StrEnum):
    """What a route limit does when it is hit (BIRD 1.6 ``action``; ``disable`` is BIRD's
    default)."""

    WARN = "warn"
    """Log once; the routes are kept."""
    BLOCK = "block"
    """Ignore new routes beyond the limit until the session restarts; updates of routes
    already held still pass."""
    RESTART = "restart"
    """Cease 6/1 (RFC 4486), then start again after the error wait."""
    DISABLE = "disable"
    """Cease 6/1 and stay down until ``speaker enable``."""


@dataclass(frozen=True)
class RouteLimit:
    """A ``receive_limit`` or ``import_limit`` of one peer (BIRD 1.6 ``receive limit`` /
    ``import limit``)."""

    limit: int
    action: LimitAction = LimitAction.DISABLE


@dataclass(frozen=True)
class PeerConfig:
    """One BGP neighbor (one ``[[peer]]`` table)."""

    name: str
    address: IpAddress
    asn: int
    local_address: IpAddress
    """Our own address toward this peer: ``source_address`` if set, else ``router_id`` (an
    IPv4 peer) or ``address6`` (an IPv6 peer)."""
    passive: bool
    passive_reason: str
    """Why ``passive`` has its value, in words (``speaker check-config`` prints it)."""
    source_address: IpAddress | None = None
    families: tuple[str, ...] = ("ipv4",)
    """What the session carries: ``ipv4`` and/or ``ipv6`` unicast.  By default the family of
    the peer's address, as BIRD 1.6's two daemons do (bird: IPv4, bird6: IPv6)."""
    port: int = BGP_PORT
    description: str = "Connection to BGP peer"
    hold_time: int = 240
    keepalive_time: int | None = None
    """None: a third of the negotiated hold time (BIRD's default); else this many seconds."""
    graceful_restart: bool = True
    restart_time: int = 120
    add_paths: AddPaths = AddPaths.BOTH
    multihop: bool = True
    connect_delay: int = 2
    connect_retry: int = 5
    error_wait_min: int = 5
    error_wait_max: int = 30
    password: Secret | None = None
    """TCP MD5 key (RFC 2385, BIRD ``password``, Calico BGPPeer ``password``); never shown."""
    ttl_security: bool = False
    """GTSM (RFC 5082, BIRD ``ttl security``): send TTL 255, accept only TTL 255."""

    internal: bool = True
    """True when the peer is in our AS (iBGP)."""
    receive_limit: RouteLimit | None = None
    """At most this many routes received from the peer (BIRD ``receive limit``)."""
    import_limit: RouteLimit | None = None
    """At most this many routes accepted from the peer (BIRD ``import limit``)."""
    send_hold_time: float = 480.0
    """RFC 9687: close with NOTIFICATION 8/0 when nothing could be sent for this long (0 off)."""


@dataclass(frozen=True)
class OriginateConfig:
    """What this node announces: its pod blocks (Calico's confirmed IPAM blocks)."""

    blocks: tuple[IpNetwork, ...] = ()
    blackhole: bool = True
    """Install a local ``blackhole`` route for each block, as Calico's bird_aggr.cfg does."""


@dataclass(frozen=True)
class PoolsConfig:
    """The cluster's IP pools; originated blocks must lie inside one of them."""

    cidrs: tuple[IpNetwork, ...] = ()


@dataclass(frozen=True)
class KernelConfig:
    """The kernel bridge, BIRD's ``protocol kernel`` options."""

    protocol: int = 186
    """rtm_protocol tag of the routes we install (186 is shown as "bgp" by iproute2)."""
    table: int = 254
    """Kernel routing table (254 = main)."""
    learn: bool = True
    persist: bool = True
    scan_time: float = 2.0
    merge_paths: bool = True
    merge_limit: int = 16
    reject_cidrs: tuple[IpNetwork, ...] = ()
    """Destinations never programmed into the kernel (Calico's /rejectcidrs)."""
    convergence_wait: float = 240.0
    """Seconds after start during which routes of ``protocol`` left from a previous run are
    kept while peers resend theirs (End-of-RIB); then leftovers are swept.  BIRD's
    ``graceful restart wait``."""
    protect: tuple[IpNetwork, ...] = ()
    """Networks no route from a peer may cover or lie in: the node's own subnet and the like
    (the import guard; the node's own addresses are always protected as /32s)."""


DATASTORE_TYPES = ("etcdv3",)
FROM_DATASTORE = frozenset({"router_id", "asn", "peer", "originate", "pools"})
"""Top-level keys a ``[datastore]`` provides; the file may not also set them (one source)."""


@dataclass(frozen=True)
class DatastoreConfig:
    """Where the mesh comes from when it is not written in the file: Calico's etcd.

    Mirrors calico-node's ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE and
    NODENAME; the derivation is speaker.datastore.derive (docs/datastore.md)."""

    type: str
    endpoints: tuple[str, ...]
    node_name: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole validated configuration of one speaker.

    With ``datastore`` set, a file's Config is a template: ``router_id`` (0.0.0.0), ``asn``
    (0), ``peers``, ``originate`` and ``pools`` are filled in by speaker.datastore.derive
    from the datastore, the rest (control socket, kernel, ...) is the file's."""

    source: str
    router_id: IPv4Address
    asn: int
    listen: IPv4Address = ANY_ADDRESS
    port: int = BGP_PORT
    control_socket: str = DEFAULT_CONTROL_SOCKET
    address6: IPv6Address | None = None
    """The node's own IPv6 address (Calico's Node ``spec.bgp.ipv6Address``): the source address
    and passive-rule address of IPv6 peers without ``source_address``, and our IPv6 next hop on
    a session that carries IPv6 over IPv4."""
    listen6: IPv6Address = ANY_ADDRESS6
    """Address we accept IPv6 BGP connections on (only listened on when a peer is IPv6)."""
    control_socket6: str | None = None
    """A second control socket answering as BIRD 1.6's ``bird6.ctl`` (the IPv6 protocols only);
    when it is set, ``control_socket`` answers as ``bird.ctl`` (the IPv4 ones only)."""
    graceful_restart_wait: int = 240
    peers: tuple[PeerConfig, ...] = ()
    originate: OriginateConfig = OriginateConfig()
    pools: PoolsConfig = PoolsConfig()
    kernel: KernelConfig = KernelConfig()
    datastore: DatastoreConfig | None = None

    def peer(self, name: str) -> PeerConfig:
        """The peer called ``name``; KeyError if there is none."""
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (addresses as text), for ``check-config --json``."""
        return {
            "source": self.source,
            "router_id": str(self.router_id),
            "asn": self.asn,
            "listen": str(self.listen),
            "port": self.port,
            "control_socket": self.control_socket,
            "address6": None if self.address6 is None else str(self.address6),
            "listen6": str(self.listen6),
            "control_socket6": self.control_socket6,
            "graceful_restart_wait": self.graceful_restart_wait,
            "peers": [_peer_dict(p) for p in self.peers],
            "originate": {
                "blocks": [str(b) for b in self.originate.blocks],
                "blackhole": self.originate.blackhole,
            },
            "pools": {"cidrs": [str(c) for c in self.pools.cidrs]},
            "kernel": {
                "protocol": self.kernel.protocol,
                "table": self.kernel.table,
                "learn": self.kernel.learn,
                "persist": self.kernel.persist,
                "scan_time": self.kernel.scan_time,
                "merge_paths": self.kernel.merge_paths,
                "merge_limit": self.kernel.merge_limit,
                "reject_cidrs": [str(c) for c in self.kernel.reject_cidrs],
                "convergence_wait": self.kernel.convergence_wait,
                "protect": [str(c) for c in self.kernel.protect],
            },
            "datastore": None if self.datastore is None else {
                "type": self.datastore.type,
                "endpoints": list(self.datastore.endpoints),
                "node_name": self.datastore.node_name,
                "ca_file": self.datastore.ca_file,
                "cert_file": self.datastore.cert_file,
                "key_file": self.datastore.key_file,
            },
        }


def _peer_dict(p: PeerConfig) -> dict[str, Any]:
    return {
        "name": p.name,
        "address": str(p.address),
        "asn": p.asn,
        "internal": p.internal,
        "local_address": str(p.local_address),
        "source_address": None if p.source_address is None else str(p.source_address),
        "families": list(p.families),
        "port": p.port,
        "passive": p.passive,
        "passive_reason": p.passive_reason,
        "description": p.description,
        "hold_time": p.hold_time,
        "keepalive_time": p.keepalive_time,
        "graceful_restart": p.graceful_restart,
        "restart_time": p.restart_time,
        "add_paths": p.add_paths.value,
        "multihop": p.multihop,
        "connect_delay": p.connect_delay,
        "connect_retry": p.connect_retry,
        "error_wait_min": p.error_wait_min,
        "error_wait_max": p.error_wait_max,
        "password": None if p.password is None else f"(set, from {p.password.origin})",
        "ttl_security": p.ttl_security,
        "receive_limit": _limit_dict(p.receive_limit),
        "import_limit": _limit_dict(p.import_limit),
        "send_hold_time": p.send_hold_time,
    }


def _limit_dict(limit: RouteLimit | None) -> dict[str, Any] | None:
    return None if limit is None else {"limit": limit.limit, "action": limit.action.value}


def calico_passive(own_address: IpAddress | str, peer_address: IpAddress | str) -> bool:
    """Calico's rule: passive iff the peer's address is greater AS TEXT than our own.

    Text order, not numeric: "10.0.0.9" > "10.0.0.10", so 10.0.0.10 waits for 10.0.0.9.
    Exactly one side of every pair dials, which keeps graceful restart from being
    mistaken for a collision (projectcalico/node#79).
    """
    return str(peer_address) > str(own_address)


def default_peer_name(address: IpAddress) -> str:
    """Calico's protocol name for a mesh peer: ``Mesh_`` + the address with ``.`` or ``:``
    written ``_`` (``Mesh_192_168_0_80``, ``Mesh_fd00_192_168__80``)."""
    return "Mesh_" + str(address).replace(".", "_").replace(":", "_")


def read_config_text(path: str | Path) -> str:
    """The file's text; ConfigError if it cannot be read."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "", f"cannot read: {exc}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate the TOML file at ``path``; a ConfigErrors lists every mistake."""
    return parse_config(read_config_text(path), str(Path(path)))


def parse_config(text: str, source_name: str = "<config>") -> Config:
    """Validate TOML ``text``; ``source_name`` is the file name used in error messages."""
    config, errors = check_config_text(text, source_name)
    if errors:
        raise ConfigErrors(list(errors))
    assert config is not None
    return config


_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def check_config_text(text: str, source_name: str = "<config>"
                      ) -> tuple[Config | None, tuple[ConfigError, ...]]:
    """Validate TOML ``text`` collecting every mistake: (config, ()) or (None, errors).

    A TOML syntax error stops the reading (there is no table to check) and carries its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        return None, (ConfigError(source_name, "", f"TOML syntax error: {exc}", line),)
    parser = _Parser(source_name)
    config = parser.config(data)
    return config, tuple(parser.errors)


# --------------------------------------------------------------------------- parsing


class _Table:
    """One TOML table being read: typed getters that know their key path."""

    def __init__(self, parser: _Parser, data: Mapping[str, Any], path: str) -> None:
        self.p = parser
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.p.source, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data[name]

    def finish(self, known: frozenset[str]) -> None:
        """Refuse unknown keys (most often typos), naming the keys that exist; each one is
        recorded, none stops the reading."""
        for name in self.data:
            if name not in known:
                choices = ", ".join(sorted(known))
                self.p.errors.append(self.fail(name, f"unknown key (known keys here: {choices})"))

    def get_int(self, name: str, default: int, lo: int, hi: int, what: str = "") -> int:
        if not self.has(name):
            return default
        return self.get_int_required(name, lo, hi, what)

    def get_int_required(self, name: str, lo: int, hi: int, what: str = "") -> int:
        if not self.has(name):
            raise self.fail(name, "missing (required)")
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, not {_describe(value)}")
        if not lo <= value <= hi:
            raise self.fail(name, f"{value} is out of range {lo}..{hi}{what}")
        return value

    def get_seconds(self, name: str, default: float, lo: float, hi: float) -> float:
        """A duration in seconds: an integer or a decimal number."""
        if not self.has(name):
            return default
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"must be a number of seconds, not {_describe(value)}")
        if not lo <= value <= hi:
            raise self.fail(name, f"{value} is out of range {lo:g}..{hi:g} seconds")
        return float(value)

    def get_bool(self, name: str, default: bool) -> bool:
        if not self.has(name):
            return default
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {_describe(value)}")
        return value

    def get_str(self, name: str, default: str) -> str:
        if not self.has(name):
            return default
        value = self.raw(name)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {_describe(value)}")
        return value

    def _address_text(self, name: str, required: bool, what: str) -> str | None:
        if not self.has(name):
            if required:
                raise self.fail(name, "missing (required)")
            return None
        value = self.raw(name)
        if not isinstance(value, str):
            raise self.fail(name, f"must be {what} in quotes, not {_describe(value)}")
        return value

    def ipv4(self, name: str, *, required: bool) -> IPv4Address | None:
        value = self._address_text(name, required, "an IPv4 address")
        if value is None:
            return None
        try:
            return IPv4Address(value)
        except AddressValueError:
            hint = " (an IPv6 address is not allowed here)" if ":" in value else ""
            raise self.fail(name, f"{value!r} is not a valid IPv4 address{hint}") from None

    def ipv6(self, name: str, *, required: bool) -> IPv6Address | None:
        value = self._address_text(name, required, "an IPv6 address")
        if value is None:
            return None
        try:
            return IPv6Address(value)
        except AddressValueError:
            raise self.fail(name, f"{value!r} is not a valid IPv6 address") from None

    def address(self, name: str, *, required: bool) -> IpAddress | None:
        """An IPv4 or an IPv6 address."""
        value = self._address_text(name, required, "an IPv4 or IPv6 address")
        if value is None:
            return None
        try:
            return ip_address(value)
        except ValueError:
            raise self.fail(name, f"{value!r} is not a valid IPv4 or IPv6 address") from None

    def cidr_list(self, name: str) -> tuple[IpNetwork, ...]:
        """A list of IPv4 and/or IPv6 CIDRs, no duplicates."""
        if not self.has(name):
            return ()
        value = self.raw(name)
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list of CIDR strings, not {_describe(value)}")
        out: list[IpNetwork] = []
        for i, item in enumerate(value):
            key = f"{name}[{i}]"
            if not isinstance(item, str):
                raise self.fail(key, f"must be a CIDR string like \"10.244.0.0/16\" or "
                                     f"\"fd00:10:244::/64\", not {_describe(item)}")
            out.append(self._cidr(key, item))
        for i, a in enumerate(out):
            for j in range(i):
                if a == out[j]:
                    raise self.fail(f"{name}[{i}]", f"{a} is listed twice ({name}[{j}])")
        return tuple(out)

    def _cidr(self, key: str, text: str) -> IpNetwork:
        if "/" not in text:
            raise self.fail(key, f"{text!r} has no prefix length (write e.g. {text}/26)")
        family = "IPv6" if ":" in text else "IPv4"
        try:
            return ip_network(text, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                try:
                    fixed: IpNetwork | None = ip_network(text, strict=False)
                except (AddressValueError, NetmaskValueError, ValueError):  # pragma: no cover
                    fixed = None
                hint = f"; did you mean {fixed}?" if fixed is not None else ""
                raise self.fail(key, f"{text!r} has host bits set{hint}") from None
            detail = str(exc).replace(f"{text!r} does not appear to be an IPv4 or IPv6 network",
                                      "not an address/length")
            raise self.fail(key, f"{text!r} is not a valid {family} CIDR ({detail})") from None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


_TOP_KEYS = frozenset({
    "router_id", "asn", "listen", "port", "control_socket", "graceful_restart_wait",
    "address6", "listen6", "control_socket6",
    "peer", "originate", "pools", "kernel", "datastore",
})
_PEER_KEYS = frozenset({
    "address", "asn", "source_address", "port", "passive", "name", "description",
    "hold_time", "keepalive_time", "graceful_restart", "restart_time", "add_paths",
    "multihop", "connect_delay", "connect_retry", "error_wait_min", "error_wait_max",
    "password", "password_file", "ttl_security", "receive_limit", "receive_limit_action",
    "import_limit", "import_limit_action", "send_hold_time", "families",
})
_ORIGINATE_KEYS = frozenset({"blocks", "blackhole"})
_POOLS_KEYS = frozenset({"cidrs"})
_DATASTORE_KEYS = frozenset({
    "type", "endpoints", "node_name", "ca_file", "cert_file", "key_file",
})
_ENDPOINT_RE = re.compile(r"^(https?)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})/?$")
_KERNEL_KEYS = frozenset({
    "protocol", "table", "learn", "persist", "scan_time", "merge_paths", "merge_limit",
    "reject_cidrs", "convergence_wait", "protect",
})


class _Parser:
    """Reads the whole file, collecting every mistake (``errors``) instead of stopping at the
    first: each independent key is read in :meth:`attempt`, with a stand-in value on error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[ConfigError] = []

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def attempt(self, get: Callable[[], _T], fallback: _T) -> _T:
        """``get()``, or ``fallback`` with its ConfigError recorded."""
        try:
            return get()
        except ConfigError as exc:
            self.errors.append(exc)
            return fallback

    def sub_table(self, top: _Table, name: str) -> _Table:
        if not top.has(name):
            return _Table(self, {}, name)
        value = top.raw(name)
        if not isinstance(value, dict):
            hint = f" (write [{name}] on its own line)"
            raise top.fail(name, f"must be a table, not {_describe(value)}{hint}")
        return _Table(self, value, name)

    def config(self, data: Mapping[str, Any]) -> Config | None:
        """The validated Config, or None when ``errors`` holds at least one mistake."""
        top = _Table(self, data, "")
        top.finish(_TOP_KEYS)
        a = self.attempt

        datastore = None
        if top.has("datastore"):
            datastore = a(lambda: self.datastore(self.sub_table(top, "datastore")), None)
            for name in sorted(FROM_DATASTORE):
                if top.has(name):
                    self.errors.append(top.fail(name, "comes from the datastore when [datastore] "
                                                      "is set; remove it from the file"))
            listen = a(lambda: top.ipv4("listen", required=False), None) or ANY_ADDRESS
            port = a(lambda: top.get_int("port", BGP_PORT, 1, 65535), BGP_PORT)
            control_socket = a(lambda: self.control_socket(top), DEFAULT_CONTROL_SOCKET)
            listen6 = a(lambda: top.ipv6("listen6", required=False), None) or ANY_ADDRESS6
            control_socket6 = a(lambda: self.control_socket6(top, control_socket), None)
            gr_wait = a(lambda: top.get_int("graceful_restart_wait", 240, 1, 65535, " seconds"),
                        240)
            kernel = a(lambda: self.kernel(self.sub_table(top, "kernel")), KernelConfig())
            if top.has("address6"):
                self.errors.append(top.fail("address6", "comes from the datastore (the Node's "
                                                        "ipv6Address) when [datastore] is set"))
            if self.errors or datastore is None:
                return None
            return Config(
                source=self.source, router_id=ANY_ADDRESS, asn=0, listen=listen, port=port,
                control_socket=control_socket, graceful_restart_wait=gr_wait, kernel=kernel,
                datastore=datastore, listen6=listen6, control_socket6=control_socket6,
            )

        router_id = a(lambda: self.router_id(top), None)
        asn = a(lambda: self.asn(top, "asn", required=True), None)
        listen = a(lambda: top.ipv4("listen", required=False), None) or ANY_ADDRESS
        port = a(lambda: top.get_int("port", BGP_PORT, 1, 65535), BGP_PORT)
        control_socket = a(lambda: self.control_socket(top), DEFAULT_CONTROL_SOCKET)
        listen6 = a(lambda: top.ipv6("listen6", required=False), None) or ANY_ADDRESS6
        control_socket6 = a(lambda: self.control_socket6(top, control_socket), None)
        address6 = a(lambda: self.address6(top), None)
        gr_wait = a(lambda: top.get_int("graceful_restart_wait", 240, 1, 65535, " seconds"), 240)

        pools = a(lambda: self.pools(self.sub_table(top, "pools")), PoolsConfig())
        originate = a(lambda: self.originate(self.sub_table(top, "originate"), pools),
                      OriginateConfig())
        kernel = a(lambda: self.kernel(self.sub_table(top, "kernel")), KernelConfig())
        peers = self.peers(top, router_id or ANY_ADDRESS, asn or 0, address6)

        if self.errors or router_id is None or asn is None:
            return None
        return Config(
            source=self.source, router_id=router_id, asn=asn, listen=listen, port=port,
            control_socket=control_socket, graceful_restart_wait=gr_wait, peers=peers,
            originate=originate, pools=pools, kernel=kernel, address6=address6,
            listen6=listen6, control_socket6=control_socket6,
        )

    def datastore(self, t: _Table) -> DatastoreConfig:
        """``[datastore]``: where the mesh comes from (docs/datastore.md)."""
        t.finish(_DATASTORE_KEYS)
        a = self.attempt
        kind = a(lambda: self.datastore_type(t), "etcdv3")
        no_endpoints: tuple[str, ...] = ()
        endpoints = a(lambda: self.endpoints(t), no_endpoints)
        node_name = a(lambda: self.node_name(t), "")
        ca_file = a(lambda: self.tls_file(t, "ca_file"), None)
        cert_file = a(lambda: self.tls_file(t, "cert_file"), None)
        key_file = a(lambda: self.tls_file(t, "key_file"), None)
        if (cert_file is None) != (key_file is None):
            missing = "key_file" if key_file is None else "cert_file"
            self.errors.append(t.fail(missing, "cert_file and key_file go together (a client "
                                               "certificate and its key); set both or neither"))
        if any(e.startswith("http://") for e in endpoints) and (ca_file or cert_file):
            self.errors.append(t.fail("endpoints", "TLS files are set but an endpoint is "
                                                   "http://; use https:// endpoints"))
        return DatastoreConfig(type=kind, endpoints=endpoints, node_name=node_name,
                               ca_file=ca_file, cert_file=cert_file, key_file=key_file)

    def datastore_type(self, t: _Table) -> str:
        if not t.has("type"):
            raise t.fail("type", f"missing (required; one of {', '.join(DATASTORE_TYPES)})")
        kind = t.get_str("type", "")
        if kind not in DATASTORE_TYPES:
            raise t.fail("type", f"{kind!r} is not supported; known: "
                                 f"{', '.join(DATASTORE_TYPES)} (Calico's etcd v3 datastore)")
        return kind

    def endpoints(self, t: _Table) -> tuple[str, ...]:
        if not t.has("endpoints"):
            raise t.fail("endpoints", 'missing (required), e.g. ["https://10.0.0.1:2379"]')
        value = t.raw("endpoints")
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")]  # ETCD_ENDPOINTS's comma form
        if not isinstance(value, list) or not value:
            raise t.fail("endpoints", f"must be a non-empty list of URLs, not "
                                      f"{_describe(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not _ENDPOINT_RE.match(item):
                raise t.fail(f"endpoints[{i}]", f"{item!r} is not an etcd URL like "
                                                f"\"https://10.0.0.1:2379\" (scheme, host, port)")
        return tuple(str(v).rstrip("/") for v in value)

    def node_name(self, t: _Table) -> str:
        if not t.has("node_name"):
            raise t.fail("node_name", "missing (required): this node's Calico name (NODENAME), "
                                      "the <name> of /calico/resources/v3/projectcalico.org/"
                                      "nodes/<name>")
        name = t.get_str("node_name", "")
        if not name or "/" in name:
            raise t.fail("node_name", f"{name!r} is not a node name (non-empty, no '/')")
        return name

    def tls_file(self, t: _Table, name: str) -> str | None:
        if not t.has(name):
            return None
        text = t.get_str(name, "")
        path = Path(text)
        if not path.is_absolute():
            path = Path(self.source).resolve().parent / path
        if not path.is_file():
            raise t.fail(name, f"{path} is not a readable file")
        return str(path)

    def router_id(self, top: _Table) -> IPv4Address:
        router_id = top.ipv4("router_id", required=True)
        assert router_id is not None
        if router_id.is_unspecified:
            raise top.fail("router_id", "0.0.0.0 is not a valid BGP identifier (RFC 6286: "
                                        "it must be non-zero)")
        return router_id

    def control_socket(self, top: _Table) -> str:
        control_socket = top.get_str("control_socket", DEFAULT_CONTROL_SOCKET)
        if not control_socket:
            raise top.fail("control_socket", "must not be empty")
        if len(control_socket.encode()) > UNIX_PATH_MAX:
            raise top.fail("control_socket", f"path is {len(control_socket.encode())} bytes; "
                                             f"a Unix socket path holds at most {UNIX_PATH_MAX}")
        return control_socket

    def control_socket6(self, top: _Table, control_socket: str) -> str | None:
        if not top.has("control_socket6"):
            return None
        path = top.get_str("control_socket6", "")
        if not path:
            raise top.fail("control_socket6", "must not be empty (leave it out for none)")
        if len(path.encode()) > UNIX_PATH_MAX:
            raise top.fail("control_socket6", f"path is {len(path.encode())} bytes; a Unix "
                                              f"socket path holds at most {UNIX_PATH_MAX}")
        if path == control_socket:
            raise top.fail("control_socket6", "is the same path as control_socket; the "
                                              "bird6.ctl view needs a socket of its own")
        return path

    def address6(self, top: _Table) -> IPv6Address | None:
        address = top.ipv6("address6", required=False)
        if address is not None and (address.is_unspecified or address.is_multicast
                                    or address.is_link_local):
            raise top.fail("address6", f"{address} cannot be the node's IPv6 address (a "
                                       f"global or unique-local address is needed)")
        return address

    def asn(self, t: _Table, name: str, *, required: bool, default: int = 0) -> int:
        if not t.has(name) and not required:
            return default
        value = t.get_int_required(name, 1, MAX_ASN)
        if value == AS_TRANS:
            raise t.fail(name, "23456 is AS_TRANS (RFC 6793), reserved; it cannot be a real AS")
        return value

    def pools(self, t: _Table) -> PoolsConfig:
        t.finish(_POOLS_KEYS)
        cidrs = t.cidr_list("cidrs")
        for i, a in enumerate(cidrs):
            for j in range(i):
                if a.overlaps(cidrs[j]):
                    raise t.fail(f"cidrs[{i}]", f"{a} overlaps cidrs[{j}] = {cidrs[j]}; "
                                                f"IP pools must not overlap")
        return PoolsConfig(cidrs=cidrs)

    def originate(self, t: _Table, pools: PoolsConfig) -> OriginateConfig:
        t.finish(_ORIGINATE_KEYS)
        blackhole = self.attempt(lambda: t.get_bool("blackhole", True), True)
        blocks = t.cidr_list("blocks")
        for i, b in enumerate(blocks):
            for j in range(i):
                if b.overlaps(blocks[j]):
                    raise t.fail(f"blocks[{i}]", f"{b} overlaps blocks[{j}] = {blocks[j]}")
            if not any(b.version == pool.version and b.subnet_of(pool)  # type: ignore[arg-type]
                       for pool in pools.cidrs):
                known = ", ".join(str(c) for c in pools.cidrs) or "none configured"
                raise t.fail(f"blocks[{i}]", f"{b} is outside every pool in [pools] cidrs "
                                             f"({known}); Calico only announces blocks of "
                                             f"its IP pools")
        return OriginateConfig(blocks=blocks, blackhole=blackhole)

    def kernel(self, t: _Table) -> KernelConfig:
        t.finish(_KERNEL_KEYS)
        a = self.attempt
        return KernelConfig(
            protocol=a(lambda: self.kernel_protocol(t), 186),
            table=a(lambda: self.kernel_table(t), 254),
            learn=a(lambda: t.get_bool("learn", True), True),
            persist=a(lambda: t.get_bool("persist", True), True),
            scan_time=a(lambda: t.get_seconds("scan_time", 2.0, 0.1, 3600), 2.0),
            merge_paths=a(lambda: t.get_bool("merge_paths", True), True),
            merge_limit=a(lambda: t.get_int("merge_limit", 16, 1, 255), 16),
            reject_cidrs=a(lambda: t.cidr_list("reject_cidrs"), ()),
            convergence_wait=a(lambda: t.get_seconds("convergence_wait", 240.0, 0, 86400),
                               240.0),
            protect=a(lambda: t.cidr_list("protect"), ()),
        )

    def kernel_protocol(self, t: _Table) -> int:
        protocol = t.get_int("protocol", 186, 0, 255)
        if protocol in _KERNEL_OWN_PROTOCOLS:
            raise t.fail("protocol", f"{protocol} ({_KERNEL_OWN_PROTOCOLS[protocol]}) is used by "
                                     f"the kernel itself; use 5..255, e.g. 186 (bgp)")
        if protocol == RTPROT_BIRD:
            raise t.fail("protocol", "12 is BIRD's (proto bird): a BIRD on this host would take "
                                     "our routes for its own and delete them; use e.g. 186")
        return protocol

    def kernel_table(self, t: _Table) -> int:
        table = t.get_int("table", 254, 1, 2**32 - 1)
        if table == 255:
            raise t.fail("table", "255 is the kernel's local table")
        return table

    def peers(self, top: _Table, router_id: IPv4Address, asn: int,
              address6: IPv6Address | None = None) -> tuple[PeerConfig, ...]:
        if not top.has("peer"):
            return ()
        raw = top.raw("peer")
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            self.errors.append(
                top.fail("peer", "must be written as [[peer]] tables (an array of tables)")
            )
            return ()
        peers: list[tuple[int, PeerConfig]] = []
        # The kept peers by address and by name (both unique among them): a lookup instead of
        # a scan of all earlier peers, which made a 250-peer config cost 31,000 comparisons.
        by_address: dict[IpAddress, tuple[int, PeerConfig]] = {}
        by_name: dict[str, tuple[int, PeerConfig]] = {}
        for i, item in enumerate(raw):
            peer = self.peer(_Table(self, item, f"peer[{i}]"), router_id, asn, address6)
            if peer is None:
                continue
            clashes: list[tuple[int, int, ConfigError]] = []  # (earlier peer, key order, error)
            if (hit := by_address.get(peer.address)) is not None:
                j, other = hit
                clashes.append((j, 0, self.fail(
                    f"peer[{i}].address", f"{peer.address} is already peer[{j}] ({other.name})"
                )))
            if (hit := by_name.get(peer.name)) is not None:
                j = hit[0]
                clashes.append((j, 1, self.fail(
                    f"peer[{i}].name", f"{peer.name!r} is already the name of peer[{j}]"
                )))
            if clashes:
                self.errors += [error for _, _, error in sorted(clashes, key=lambda c: c[:2])]
                continue
            peers.append((i, peer))
            by_address[peer.address] = by_name[peer.name] = (i, peer)
        return tuple(p for _, p in peers)

    def peer(self, t: _Table, router_id: IPv4Address, our_asn: int,
             address6: IPv6Address | None = None) -> PeerConfig | None:
        """One ``[[peer]]``, every key checked; None if any is wrong (``errors`` say which)."""
        before = len(self.errors)
        t.finish(_PEER_KEYS)
        a = self.attempt
        address = a(lambda: self.peer_address(t, router_id, address6), None)
        asn = a(lambda: self.asn(t, "asn", required=False, default=our_asn), our_asn)
        source = a(lambda: self.source_address(t, address), None)
        default_own: IpAddress | None = router_id
        if address is not None and address.version == 6:
            default_own = address6
        local = source if source is not None else default_own
        no_families: tuple[str, ...] = ("ipv4",)
        families = a(lambda: self.families(t, address, address6), no_families)
        if address is not None and local is None:
            self.errors.append(t.fail(
                "source_address", f"missing: {address} is an IPv6 peer and we have no IPv6 "
                                  f"address of our own to connect from and to compare with "
                                  f"(Calico's passive rule); set source_address here or "
                                  f"address6 at the top level"))
        port = a(lambda: t.get_int("port", BGP_PORT, 1, 65535), BGP_PORT)
        passive, reason = a(lambda: self.passive(t, local, address, source), (False, ""))
        name = a(lambda: self.peer_name(t, address), "")
        hold = a(lambda: self.hold_time(t), 240)
        keepalive = a(lambda: self.keepalive_time(t, hold), None)
        add_paths = a(lambda: self.add_paths(t), AddPaths.BOTH)
        ew_min = a(lambda: t.get_int("error_wait_min", 5, 1, 86400, " seconds"), 5)
        ew_max = a(lambda: self.error_wait_max(t, ew_min), 30)
        description = a(lambda: t.get_str("description", "Connection to BGP peer"), "")
        graceful_restart = a(lambda: t.get_bool("graceful_restart", True), True)
        restart_time = a(lambda: t.get_int("restart_time", 120, 0, 4095,
                                           " seconds (a 12-bit field, RFC 4724)"), 120)
        multihop = a(lambda: t.get_bool("multihop", True), True)
        connect_delay = a(lambda: t.get_int("connect_delay", 2, 0, 86400, " seconds"), 2)
        connect_retry = a(lambda: t.get_int("connect_retry", 5, 1, 86400, " seconds"), 5)
        password = a(lambda: self.password(t), None)
        ttl_security = a(lambda: t.get_bool("ttl_security", False), False)
        receive_limit = a(lambda: self.route_limit(t, "receive_limit"), None)
        import_limit = a(lambda: self.route_limit(t, "import_limit"), None)
        send_hold = a(lambda: t.get_seconds("send_hold_time", 480.0, 0, 86400), 480.0)
        if len(self.errors) > before or address is None or local is None:
            return None
        return PeerConfig(
            name=name, address=address, asn=asn, local_address=local, passive=passive,
            families=families,
            passive_reason=reason, source_address=source, port=port, description=description,
            hold_time=hold, keepalive_time=keepalive, graceful_restart=graceful_restart,
            restart_time=restart_time, add_paths=add_paths, multihop=multihop,
            connect_delay=connect_delay, connect_retry=connect_retry,
            error_wait_min=ew_min, error_wait_max=ew_max, password=password,
            ttl_security=ttl_security, internal=(asn == our_asn),
            receive_limit=receive_limit, import_limit=import_limit, send_hold_time=send_hold,
        )

    def route_limit(self, t: _Table, name: str) -> RouteLimit | None:
        """``<name> = N`` and ``<name>_action = "warn"|"block"|"restart"|"disable"``."""
        action_key = f"{name}_action"
        if not t.has(name):
            if t.has(action_key):
                t.raw(action_key)
                raise t.fail(action_key, f"set {name} too: an action without a limit does nothing")
            return None
        limit = t.get_int_required(name, 1, 2**32 - 1, " routes (RFC 4486 carries 4 octets)")
        text = t.get_str(action_key, LimitAction.DISABLE.value)
        try:
            action = LimitAction(text)
        except ValueError:
            choices = ", ".join(f'"{a.value}"' for a in LimitAction)
            raise t.fail(action_key, f"{text!r} is not one of {choices}") from None
        return RouteLimit(limit, action)


    def password(self, t: _Table) -> Secret | None:
        """The MD5 key, inline (``password``) or from a file (``password_file``), not both.

        A file keeps the key out of the configuration (as a Kubernetes secret is mounted);
        relative paths are relative to the configuration file; one trailing newline is not
        part of the key."""
        if t.has("password") and t.has("password_file"):
            raise t.fail("password_file", "set password or password_file, not both")
        if t.has("password"):
            key, origin = t.get_str("password", "").encode(), "inline"
            where = "password"
        elif t.has("password_file"):
            where = "password_file"
            name = t.get_str("password_file", "")
            path = Path(name)
            if not path.is_absolute():
                path = Path(self.source).resolve().parent / path
            try:
                key = path.read_bytes()
            except OSError as exc:
                raise t.fail(where, f"cannot read {path}: {exc.strerror}") from None
            key = key[:-1] if key.endswith(b"\n") else key
            origin = str(path)
        else:
            return None
        if not key:
            raise t.fail(where, "the MD5 key is empty")
        if len(key) > TCP_MD5SIG_MAXKEYLEN:
            raise t.fail(where, f"the MD5 key has {len(key)} octets; the kernel takes at most "
                                f"{TCP_MD5SIG_MAXKEYLEN} (TCP_MD5SIG)")
        return Secret(key, origin)

    def peer_address(self, t: _Table, router_id: IPv4Address,
                     address6: IPv6Address | None = None) -> IpAddress:
        address = t.address("address", required=True)
        assert address is not None
        if (address.is_unspecified or address.is_multicast
                or address == IPv4Address("255.255.255.255")):
            raise t.fail("address", f"{address} cannot be a BGP neighbor")
        if address.version == 6 and address.is_link_local:
            raise t.fail("address", f"{address} is link-local: a link-local neighbor needs an "
                                    f"interface, which is not supported; use the peer's global "
                                    f"or unique-local address (as Calico's bird6.cfg does)")
        if address == router_id:
            raise t.fail("address", f"{address} is our own router_id; a node does not peer "
                                    f"with itself")
        if address6 is not None and address == address6:
            raise t.fail("address", f"{address} is our own address6; a node does not peer "
                                    f"with itself")
        return address

    def source_address(self, t: _Table, address: IpAddress | None) -> IpAddress | None:
        source = t.address("source_address", required=False)
        if source is not None:
            if source.is_unspecified or source.is_multicast:
                raise t.fail("source_address", f"{source} cannot be a source address")
            if source == address:
                raise t.fail("source_address", f"{source} is the peer's own address")
            if address is not None and source.version != address.version:
                raise t.fail("source_address", f"{source} is an IPv{source.version} address "
                                               f"but the peer's address {address} is "
                                               f"IPv{address.version}; a TCP connection has "
                                               f"one family")
        return source

    def families(self, t: _Table, address: IpAddress | None,
                 address6: IPv6Address | None) -> tuple[str, ...]:
        """``families = ["ipv4", "ipv6"]``: what the session carries (default: the family of
        the peer's address, one family per session as BIRD 1.6's bird and bird6)."""
        default = ("ipv6",) if address is not None and address.version == 6 else ("ipv4",)
        if not t.has("families"):
            return default
        value = t.raw("families")
        if not isinstance(value, list) or not value:
            raise t.fail("families", f'must be a non-empty list like ["ipv4", "ipv6"], not '
                                     f"{_describe(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            if item not in FAMILIES:
                raise t.fail(f"families[{i}]", f"{item!r} is not one of \"ipv4\", \"ipv6\" "
                                               f"(IPv4 and IPv6 unicast)")
            if item in out:
                raise t.fail(f"families[{i}]", f"{item!r} is listed twice")
            out.append(item)
        if "ipv6" in out and address is not None and address.version == 4 and address6 is None:
            raise t.fail("families", "IPv6 over an IPv4 session needs our IPv6 next hop: set "
                                     "address6 (the node's IPv6 address) at the top level")
        return tuple(sorted(out, key=FAMILIES.index))

    def passive(self, t: _Table, local: IpAddress | None, address: IpAddress | None,
                source: IpAddress | None) -> tuple[bool, str]:
        """Calico's rule unless ``passive`` is set; with the reason in words."""
        if t.has("passive"):
            passive = t.get_bool("passive", False)
            return passive, (f"passive = {str(passive).lower()} is set in the configuration "
                             f"(overrides Calico's text rule)")
        if address is None or local is None:
            return False, ""
        passive = calico_passive(local, address)
        if source is not None:
            own_kind = "source_address"
        else:
            own_kind = "address6" if local.version == 6 else "router_id"
        if passive:
            return True, (f"passive: peer \"{address}\" > own \"{local}\" ({own_kind}) compared "
                          f"as text, so we wait and the peer dials (Calico rule)")
        return False, (f"active: peer \"{address}\" < own \"{local}\" ({own_kind}) compared "
                       f"as text, so we dial (Calico rule)")

    def peer_name(self, t: _Table, address: IpAddress | None) -> str:
        name = t.get_str("name", default_peer_name(address) if address is not None else "")
        if not t.has("name"):
            return name
        if not _NAME_RE.match(name):
            raise t.fail("name", f"{name!r} is not a valid protocol name (a letter or _, then "
                                 f"letters, digits or _, at most 64 characters)")
        if name in _RESERVED_NAMES:
            raise t.fail("name", f"{name!r} is a keyword of the control commands")
        return name

    def hold_time(self, t: _Table) -> int:
        hold = t.get_int("hold_time", 240, 0, 65535, " seconds")
        if 0 < hold < 3:
            raise t.fail("hold_time", f"{hold} is not allowed: the hold time must be 0 (no "
                                      f"keepalives) or at least 3 seconds (RFC 4271 4.2)")
        return hold

    def keepalive_time(self, t: _Table, hold: int) -> int | None:
        if not t.has("keepalive_time"):
            return None
        keepalive = t.get_int_required("keepalive_time", 0, 65535)
        if hold == 0 and keepalive != 0:
            raise t.fail("keepalive_time", "must be 0 when hold_time is 0 (no keepalives)")
        if hold > 0 and not 1 <= keepalive < hold:
            raise t.fail("keepalive_time", f"{keepalive} must be at least 1 and below "
                                           f"hold_time ({hold}); usually hold_time / 3")
        return keepalive

    def add_paths(self, t: _Table) -> AddPaths:
        add_paths_text = t.get_str("add_paths", AddPaths.BOTH.value)
        try:
            return AddPaths(add_paths_text)
        except ValueError:
            choices = ", ".join(f'"{a.value}"' for a in AddPaths)
            raise t.fail("add_paths", f"{add_paths_text!r} is not one of {choices}") from None

    def error_wait_max(self, t: _Table, ew_min: int) -> int:
        ew_max = t.get_int("error_wait_max", 30, 1, 86400, " seconds")
        if ew_max < ew_min:
            raise t.fail("error_wait_max", f"{ew_max} is below error_wait_min ({ew_min})")
        return ew_max
