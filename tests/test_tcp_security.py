"""TCP MD5 (RFC 2385) and GTSM (RFC 5082) on real loopback sockets: the kernel does the work,
so the tests check what the kernel then lets through, not only that setsockopt was called."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from speaker.config import ConfigError, PeerConfig, parse_config
from speaker.secret import TCP_MD5SIG_MAXKEYLEN, Secret
from speaker.tcp_security import (
    IP_MINTTL,
    ListenerKeys,
    md5_drops,
    md5_failure_reason,
    md5sig_option,
    secure_socket,
    set_md5_key,
    set_ttl_security,
)

LOOPBACK = IPv4Address("127.0.0.1")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(2)
    yield sock
    sock.close()


def try_connect(listener: socket.socket, *, key: bytes = b"", gtsm: bool = False) -> bool:
    """Connect to ``listener``: True when the handshake completes within 1 s."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(1.0)
    try:
        if key:
            set_md5_key(client, LOOPBACK, key)
        if gtsm:
            set_ttl_security(client)
        client.connect(listener.getsockname())
        return True
    except (TimeoutError, OSError):
        return False
    finally:
        client.close()


def test_matching_keys_connect(listener: socket.socket) -> None:
    set_md5_key(listener, LOOPBACK, b"calico-secret")
    assert try_connect(listener, key=b"calico-secret")


def test_a_wrong_or_missing_key_never_completes_the_handshake(listener: socket.socket) -> None:
    set_md5_key(listener, LOOPBACK, b"calico-secret")
    assert not try_connect(listener, key=b"other-secret")
    assert not try_connect(listener)


def test_removing_the_key_lets_plain_connections_in_again(listener: socket.socket) -> None:
    set_md5_key(listener, LOOPBACK, b"calico-secret")
    assert not try_connect(listener)
    set_md5_key(listener, LOOPBACK, b"")
    assert try_connect(listener)
    set_md5_key(listener, LOOPBACK, b"")  # removing again is not an error


def test_gtsm_drops_a_sender_that_does_not_use_ttl_255(listener: socket.socket) -> None:
    set_ttl_security(listener)
    assert listener.getsockopt(socket.IPPROTO_IP, IP_MINTTL) == 255
    assert listener.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255
    assert not try_connect(listener)  # default TTL 64
    assert try_connect(listener, gtsm=True)


def test_option_layout_and_limits() -> None:
    option = md5sig_option(IPv4Address("192.168.0.80"), b"k")
    assert len(option) == 128 + 8 + TCP_MD5SIG_MAXKEYLEN
    assert option[4:8] == bytes([192, 168, 0, 80])
    assert option[130:132] == (1).to_bytes(2, "little")  # key length, host order
    with pytest.raises(ValueError, match="at most 80"):
        md5sig_option(LOOPBACK, b"x" * 81)
    with pytest.raises(ValueError):
        set_ttl_security(socket.socket(), hops=0)


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret(b"calico-secret", "/etc/speaker/peer80.key")
    for text in (repr(secret), str(secret), f"{secret}", repr({"password": secret})):
        assert "calico-secret" not in text
    assert "13 octets" in repr(secret)
    assert secret == Secret(b"calico-secret", "/etc/speaker/peer80.key")
    assert secret != Secret(b"changed", "/etc/speaker/peer80.key")


def _peers(text: str) -> tuple[PeerConfig, ...]:
    config = parse_config(
        'router_id = "192.0.2.1"\nasn = 64512\nlisten = "127.0.0.1"\n'
        'control_socket = "/nonexistent/s.ctl"\n' + text
    )
    return config.peers


def test_listener_keys_follow_the_configuration(listener: socket.socket) -> None:
    """What the daemon does at start and on SIGHUP: keys added, changed and removed."""
    keys = ListenerKeys([listener])
    keys.apply(_peers('[[peer]]\naddress = "127.0.0.1"\npassword = "one"\n'))
    assert not try_connect(listener) and try_connect(listener, key=b"one")
    keys.apply(_peers('[[peer]]\naddress = "127.0.0.1"\npassword = "two"\n'))
    assert not try_connect(listener, key=b"one") and try_connect(listener, key=b"two")
    keys.apply(_peers('[[peer]]\naddress = "127.0.0.1"\n'))
    assert try_connect(listener) and keys.keys == {}


def test_a_dialing_socket_gets_the_peers_key_and_gtsm(listener: socket.socket) -> None:
    set_md5_key(listener, LOOPBACK, b"k")
    set_ttl_security(listener)
    (peer,) = _peers('[[peer]]\naddress = "127.0.0.1"\npassword = "k"\nttl_security = true\n')
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(1.0)
    with client:
        secure_socket(client, peer)
        client.connect(listener.getsockname())  # would time out without the key or TTL 255
        assert client.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255


def test_password_keys_in_the_configuration(tmp_path: Path) -> None:
    keyfile = tmp_path / "peer.key"
    keyfile.write_bytes(b"from-a-file\n")
    (peer,) = _peers(f'[[peer]]\naddress = "10.0.0.1"\npassword_file = "{keyfile}"\n')
    assert peer.password == Secret(b"from-a-file", str(keyfile))
    assert "from-a-file" not in repr(peer)
    for bad, problem in [
        ('password = "a"\npassword_file = "/x"', "not both"),
        ('password = ""', "empty"),
        (f'password = "{"x" * 81}"', "at most 80"),
        ('password_file = "/nonexistent/key"', "cannot read"),
    ]:
        with pytest.raises(ConfigError, match=problem):
            _peers(f'[[peer]]\naddress = "10.0.0.1"\n{bad}\n')


NETSTAT = """TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TW
TcpExt: 0 {nf} {un} {fa} 7
IpExt: InNoRoutes
IpExt: 0
"""


def test_md5_drop_counters_name_the_failure() -> None:
    before = md5_drops(NETSTAT.format(nf=1, un=0, fa=2))
    assert before == {"TCPMD5NotFound": 1, "TCPMD5Unexpected": 0, "TCPMD5Failure": 2}
    after = md5_drops(NETSTAT.format(nf=1, un=0, fa=5))
    why = md5_failure_reason(before, after)
    assert why is not None and "Kernel MD5 auth failed" in why and "3 with a wrong" in why
    assert md5_failure_reason(after, after) is None


def test_a_wrong_key_raises_the_kernels_counter(listener: socket.socket) -> None:
    """The real kernel: a connection attempt with the wrong key is dropped and counted."""
    set_md5_key(listener, LOOPBACK, b"right")
    before = md5_drops()
    assert not try_connect(listener, key=b"wrong")
    why = md5_failure_reason(before, md5_drops())
    assert why is not None and "wrong signature" in why, why


def test_listener_keys_go_to_the_listener_of_the_peers_family() -> None:
    """An IPv4 listener cannot hold an IPv6 peer's key (EINVAL) nor the reverse: each key goes
    to the listening sockets of its family, and a listener opened later (the IPv6 one, when
    the first IPv6 peer is configured) gets the keys already set."""
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    with v4, v6:
        v4.bind(("127.0.0.1", 0))
        v6.bind(("::1", 0))
        v4.listen(4)
        v6.listen(4)
        keys = ListenerKeys([v4])
        peers = _peers('address6 = "fd00::99"\n'
                       '[[peer]]\naddress = "127.0.0.1"\npassword = "four"\n'
                       '[[peer]]\naddress = "::1"\npassword = "six"\n')
        keys.apply(peers)  # the IPv6 key is remembered, with no socket of its family yet
        assert set(map(str, keys.keys)) == {"127.0.0.1", "::1"}
        keys.add_sockets([v6])
        v6.settimeout(2)
        assert not try_connect6(v6) and try_connect6(v6, key=b"six")
        v4.settimeout(2)
        assert try_connect(v4, key=b"four") and not try_connect(v4, key=b"six")


def try_connect6(listener: socket.socket, *, key: bytes = b"") -> bool:
    """:func:`try_connect` over IPv6 loopback."""
    client = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    client.settimeout(1.0)
    with client:
        if key:
            set_md5_key(client, IPv6Address("::1"), key)
        try:
            client.connect(listener.getsockname()[:2])
        except (TimeoutError, OSError):
            return False
        conn, _ = listener.accept()
        conn.close()
        return True
