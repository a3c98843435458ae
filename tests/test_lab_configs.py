"""The lab's config renderers for a dual-stack mesh (issue 13): bird6.cfg and the speaker's TOML.

No root needed: these only render text (and let ``bird6 -p`` parse it where BIRD is installed).
The IPv4 output is what the lab has always rendered; the IPv6 output follows Calico's bird6
templates of the same generation, from the same renderer.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from integration.lab.configs import MeshPeer, render_bird_config, render_speaker_config
from integration.lab.spec import (
    DEFAULT_POOL,
    DEFAULT_POOL6,
    NodeSpec,
    SpecError,
    make_node,
    node_address6,
    seed_nodes,
    validate_lab,
    with_ipv6,
)


def dual(kinds: tuple[str, str, str] = ("bird", "bird", "bird")) -> list[NodeSpec]:
    return [with_ipv6(n) for n in seed_nodes(kinds)]


def bird6(node: int, nodes: list[NodeSpec] | None = None) -> str:
    mesh = nodes or dual()
    return render_bird_config(mesh[node], mesh, DEFAULT_POOL6, family=6, log_file="/r/x.log")


def protocol_blocks(cfg: str) -> dict[str, list[str]]:
    """``protocol bgp NAME from bgp_template { ... }`` bodies by NAME (lines stripped)."""
    found: dict[str, list[str]] = {}
    name = None
    for line in cfg.splitlines():
        if line.startswith("protocol bgp "):
            name = line.split()[2]
            found[name] = []
        elif name is not None and line == "}":
            name = None
        elif name is not None:
            found[name].append(line.strip())
    return found


# ---------------------------------------------------------------------- addressing plan
def test_ipv6_parts_follow_the_addressing_plan() -> None:
    n80, n81, n82 = dual()
    assert (n80.address6, n81.address6, n82.address6) == (
        "fd00:192:168::80",
        "fd00:192:168::81",
        "fd00:192:168::82",
    )
    # same offset inside the pool as the IPv4 block: 10.244.152.128 is 0x9880 into 10.244/16
    assert (n80.block6, n80.pod_address6) == ("fd00:10:244::9880/122", "fd00:10:244::9881")
    assert (n81.block6, n81.pod_address6) == ("fd00:10:244::2a40/122", "fd00:10:244::2a41")
    assert (n82.block6, n82.pod_address6) == ("fd00:10:244::6740/122", "fd00:10:244::6741")
    assert n80.protocol_name6 == "Mesh_fd00_192_168__80"
    assert node_address6("10.0.1.5") == "fd00:192:168::1:5"
    validate_lab(dual(), DEFAULT_POOL, 24, DEFAULT_POOL6)


def test_ipv6_parts_are_all_or_nothing_and_checked() -> None:
    n80 = seed_nodes()[0]
    with pytest.raises(SpecError, match="address6 given without block6, pod_address6"):
        NodeSpec(**{**n80.__dict__, "address6": "fd00:192:168::80"})
    with pytest.raises(SpecError, match="outside block6"):
        NodeSpec(
            **{
                **n80.__dict__,
                "address6": "fd00:192:168::80",
                "block6": "fd00:10:244::9880/122",
                "pod_address6": "fd00:10:244::1",
            }
        )
    with pytest.raises(SpecError, match="not a dual-stack node"):
        _ = n80.protocol_name6
    twins = dual()
    clash = NodeSpec(**{**twins[2].__dict__, "address6": twins[0].address6})
    with pytest.raises(SpecError, match="duplicate node address6"):
        validate_lab([twins[0], twins[1], clash], DEFAULT_POOL, 24, DEFAULT_POOL6)
    with pytest.raises(SpecError, match="no IPv6 parts"):
        validate_lab([twins[0], seed_nodes()[1]], DEFAULT_POOL, 24, DEFAULT_POOL6)


# ---------------------------------------------------------------------- bird6.cfg
def test_bird6_mesh_names_addresses_and_source() -> None:
    cfg = bird6(0)
    sessions = protocol_blocks(cfg)
    assert sorted(sessions) == ["Mesh_fd00_192_168__81", "Mesh_fd00_192_168__82"]
    assert "neighbor fd00:192:168::81 as 64512;" in sessions["Mesh_fd00_192_168__81"]
    for body in sessions.values():
        assert any(line.startswith("source address fd00:192:168::80;") for line in body)
    assert "router id 192.168.0.80;" in cfg  # a router id stays an IPv4 address
    assert "   route fd00:10:244::9880/122 blackhole;" in cfg
    assert "if ( net ~ fd00:10:244::/64 ) then {" in cfg
    assert "192.168.0.81" not in cfg and "10.244." not in cfg
    assert "# Skipping ourselves (fd00:192:168::80)" in cfg
    assert cfg.startswith("# bird6.cfg for node80 (fd00:192:168::80)")


def test_bird6_passive_rule_compares_ipv6_addresses_as_text() -> None:
    passive = {
        name: "passive on; # Mesh is unidirectional, peer will connect to us." in body
        for name, body in protocol_blocks(bird6(0)).items()
    }
    assert passive == {"Mesh_fd00_192_168__81": True, "Mesh_fd00_192_168__82": True}
    at82 = protocol_blocks(bird6(2))
    assert not any("passive on" in line for body in at82.values() for line in body)
    # fd00:192:168::9 > fd00:192:168::10 as text (not as numbers): ::10 waits, ::9 dials
    nine = with_ipv6(make_node("10.0.0.9", "bird", "10.244.1.0/26"))
    ten = with_ipv6(make_node("10.0.0.10", "bird", "10.244.2.0/26"))
    at_ten = render_bird_config(ten, [nine, ten], DEFAULT_POOL6, family=6)
    at_nine = render_bird_config(nine, [nine, ten], DEFAULT_POOL6, family=6)
    assert "passive on" in at_ten and "passive on" not in at_nine


def test_bird_and_bird6_differ_only_in_addresses_and_names() -> None:
    """One renderer: bird6.cfg is bird.cfg with each IPv4 thing swapped for its IPv6 twin."""
    mesh = dual()
    cfg4 = render_bird_config(mesh[1], mesh, DEFAULT_POOL, log_file="/r/node81.bird.log")
    cfg6 = render_bird_config(
        mesh[1], mesh, DEFAULT_POOL6, family=6, log_file="/r/node81.bird6.log"
    )
    swaps = [("/r/node81.bird.log", "/r/node81.bird6.log"), (DEFAULT_POOL, DEFAULT_POOL6)]
    for node in mesh:
        swaps += [
            (node.protocol_name, node.protocol_name6),
            (node.block, str(node.block6)),
            (node.address, str(node.address6)),
        ]
    swapped = cfg4
    for old, new in swaps:
        swapped = swapped.replace(old, new)
    lines4, lines6 = swapped.splitlines(), cfg6.splitlines()
    assert len(lines4) == len(lines6)
    differ = [(a, b) for a, b in zip(lines4, lines6, strict=True) if a != b]
    # left: the file names in five comments (header, templates, three section marks) and the
    # router id, an IPv4 address in both files
    assert all(a.startswith(("# ", "router id")) for a, _ in differ), differ
    assert len(differ) == 6, differ
    router_ids = [b.split(";")[0] for a, b in differ if a.startswith("router")]
    assert router_ids == ["router id 192.168.0.81"]


def test_bird6_needs_the_peers_ipv6_address() -> None:
    n80, n81, _ = dual()
    peer = MeshPeer("node81", n81.address, n81.asn)
    with pytest.raises(ValueError, match="no IPv6 address"):
        render_bird_config(n80, [n80, peer], DEFAULT_POOL6, family=6)
    with_v6 = MeshPeer("node81", n81.address, n81.asn, address6=n81.address6)
    assert "neighbor fd00:192:168::81 as 64512;" in render_bird_config(
        n80, [n80, with_v6], DEFAULT_POOL6, family=6
    )


@pytest.mark.skipif(shutil.which("bird6") is None, reason="bird6 is not installed")
def test_bird6_parses_the_rendered_config(tmp_path: Path) -> None:
    for index in range(3):
        mesh = dual()
        cfg = tmp_path / f"n{index}.bird6.cfg"
        cfg.write_text(
            render_bird_config(
                mesh[index], mesh, DEFAULT_POOL6, family=6, log_file=str(tmp_path / "x.log")
            )
        )
        parsed = subprocess.run(["bird6", "-p", "-c", str(cfg)], capture_output=True, text=True)
        assert parsed.returncode == 0, parsed.stderr
    # and a broken one is refused, so the check can fail
    cfg.write_text(cfg.read_text().replace("neighbor fd00:192:168::", "neighbor 192.168.0."))
    parsed = subprocess.run(["bird6", "-p", "-c", str(cfg)], capture_output=True, text=True)
    assert parsed.returncode != 0


# ---------------------------------------------------------------------- the speaker's TOML
def test_speaker_toml_ipv6_parts() -> None:
    mesh = dual(("bird", "speaker", "bird"))
    text = render_speaker_config(
        mesh[1],
        mesh,
        DEFAULT_POOL,
        control_socket="/r/node81.ctl",
        pool6=DEFAULT_POOL6,
        control_socket6="/r/node81-6.ctl",
    )
    doc = tomllib.loads(text)
    assert doc["router_id"] == "192.168.0.81"
    assert doc["control_socket"] == "/r/node81.ctl"
    assert doc["control_socket6"] == "/r/node81-6.ctl"
    peers = [(p["address"], p["asn"], p["source_address"]) for p in doc["peer"]]
    assert peers == [
        ("192.168.0.80", 64512, "192.168.0.81"),
        ("192.168.0.82", 64512, "192.168.0.81"),
        ("fd00:192:168::80", 64512, "fd00:192:168::81"),
        ("fd00:192:168::82", 64512, "fd00:192:168::81"),
    ]
    assert all("passive" not in p for p in doc["peer"])
    assert doc["originate"]["blocks"] == ["10.244.42.64/26", "fd00:10:244::2a40/122"]
    assert doc["pools"]["cidrs"] == ["10.244.0.0/16", "fd00:10:244::/64"]


def test_speaker_toml_ipv4_only_has_no_ipv6_parts() -> None:
    mesh = seed_nodes(("bird", "speaker", "bird"))
    doc = tomllib.loads(render_speaker_config(mesh[1], mesh, DEFAULT_POOL, control_socket="/s"))
    assert "control_socket6" not in doc
    assert [p["address"] for p in doc["peer"]] == ["192.168.0.80", "192.168.0.82"]
    assert doc["originate"]["blocks"] == ["10.244.42.64/26"]
    assert doc["pools"]["cidrs"] == ["10.244.0.0/16"]
    with pytest.raises(ValueError, match="pool6 and control_socket6 are needed"):
        render_speaker_config(dual()[1], dual(), DEFAULT_POOL, control_socket="/s")
