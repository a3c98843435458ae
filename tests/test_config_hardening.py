"""Config keys of the hardening items: route limits, send hold time, the kernel's protect list.

Each mistake is refused with the key named, and every mistake of a file is reported at once
(the parser's pattern)."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from speaker.config import ConfigErrors, LimitAction, RouteLimit, parse_config

BASE = 'router_id = "192.168.0.81"\nasn = 64512\n'
PEER = '[[peer]]\naddress = "192.168.0.80"\n'


def test_limits_send_hold_and_protect_are_read() -> None:
    cfg = parse_config(
        BASE + '[kernel]\nprotect = ["192.168.0.0/24"]\n' + PEER
        + 'receive_limit = 1000\nreceive_limit_action = "restart"\nimport_limit = 500\n'
        + "send_hold_time = 90\n"
    )
    peer = cfg.peers[0]
    assert peer.receive_limit == RouteLimit(1000, LimitAction.RESTART)
    assert peer.import_limit == RouteLimit(500, LimitAction.DISABLE)  # BIRD's default action
    assert peer.send_hold_time == 90
    assert cfg.kernel.protect == (IPv4Network("192.168.0.0/24"),)
    d = cfg.to_dict()
    assert d["peers"][0]["receive_limit"] == {"limit": 1000, "action": "restart"}
    assert d["kernel"]["protect"] == ["192.168.0.0/24"]


def test_defaults() -> None:
    peer = parse_config(BASE + PEER).peers[0]
    assert peer.receive_limit is None and peer.import_limit is None
    assert peer.send_hold_time == 480  # RFC 9687: 8 minutes


def test_every_mistake_is_named_at_once() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_config(
            BASE + '[kernel]\nprotect = ["192.168.0.1/24"]\n' + PEER
            + 'receive_limit = 0\nimport_limit = 5\nimport_limit_action = "drop"\n'
            + "send_hold_time = -1\n"
            + '[[peer]]\naddress = "192.168.0.82"\nreceive_limit_action = "warn"\n',
            "n.toml",
        )
    text = str(info.value)
    assert "kernel.protect[0]" in text
    assert "peer[0].receive_limit: 0 is out of range" in text
    assert "peer[0].import_limit_action: 'drop' is not one of" in text
    assert "peer[0].send_hold_time" in text
    assert "peer[1].receive_limit_action: set receive_limit too" in text
