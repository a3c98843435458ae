"""What the control socket shows of route limits and the import guard.

``show protocols all`` prints each limit as BIRD 1.6's ``proto_show_limit`` does (``  %-16s%d``
with `` [HIT]`` once reached, then the action); ``show route all`` marks a route the guard
kept out as ``Kernel: not installed (<rule>)``.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address, IPv4Network

from speaker.config import parse_config
from speaker.control.render import BirdRenderer
from speaker.core import status
from speaker.kernel.model import IPAddress, IPNetwork, KernelSnapshot, LearnedRoute
from tests.corenet import CoreNet, update

A = "192.168.0.80"
NOW = datetime(2026, 1, 1, 12, 0, 0)


class NoKernel:
    """A kernel reader with nothing installed (the fake kernel only records intents)."""

    last_scan: float | None = None

    def snapshot(self) -> KernelSnapshot:
        return KernelSnapshot(True, ())

    def learned(self) -> dict[IPNetwork, LearnedRoute]:
        return {}

    def interface_for(self, gateway: IPAddress) -> str | None:
        return "eth0"

    def interface_name(self, ifindex: int) -> str | None:
        return "eth0"


def make(*peer_lines: str) -> tuple[CoreNet, str]:
    text = (
        'router_id = "192.168.0.81"\nasn = 64512\n[pools]\ncidrs = ["10.244.0.0/16"]\n'
        f'[[peer]]\naddress = "{A}"\n' + "".join(f"{line}\n" for line in peer_lines)
    )
    net = CoreNet(parse_config(text, "n.toml"))
    a = net.config.peers[0].name
    net.start()
    net.run_until(lambda: net.established(a))
    return net, a


def details(net: CoreNet, name: str) -> list[str]:
    row = status.bgp_status(net.core, net.core.peer(name), net.now, lambda _: NOW)
    return BirdRenderer(NOW).details(row)


def test_limits_are_shown_as_bird_prints_them_and_hit_is_marked() -> None:
    net, a = make(
        "receive_limit = 1000", 'receive_limit_action = "restart"',
        "import_limit = 2", 'import_limit_action = "warn"',
    )
    lines = details(net, a)
    i = lines.index("  Output filter:  ACCEPT")
    assert lines[i + 1 : i + 5] == [
        "  Receive limit:  1000",
        "    Action:       restart",
        "  Import limit:   2",
        "    Action:       warn",
    ]
    net.remotes[a].send_update(update("10.244.1.0/26", "10.244.2.0/26", "10.244.3.0/26", via=A))
    net.pump()
    assert "  Import limit:   2 [HIT]" in details(net, a)
    assert "  Receive limit:  1000" in details(net, a)


def test_no_limit_no_lines() -> None:
    net, a = make()
    assert not any("limit" in line for line in details(net, a))


def test_show_route_all_gives_the_guard_s_reason() -> None:
    net, a = make()
    net.remotes[a].send_update(update("172.16.0.0/24", via=A))
    net.pump()
    views = status.routes(net.core, NoKernel())
    (view,) = [v for v in views if v.prefix == IPv4Network("172.16.0.0/24")]
    assert view.in_kernel is False and view.kernel_reason is not None
    lines = [r.text for r in BirdRenderer(NOW).route_lines([view], verbose=True)]
    assert "\tKernel: not installed (reject: import guard: outside every IP pool)" in lines
    assert view.nexthops[0].gateway == IPv4Address(A)
