"""Calico's export filters as BIRD evaluates them (speaker.rib.policy)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speaker.rib import (
    AcceptAllPolicy,
    AttributeSet,
    CalicoExportPolicy,
    CalicoKernelPolicy,
    ExportStep,
    KernelStep,
    Path,
    PeerInfo,
    SourceKind,
    Verdict,
)
from speaker.rib.policy import KernelDecision, NetIndex
from speaker.wire.enums import Afi
from speaker.wire.nlri import Prefix

ASN = 64512
BLOCKS = ["10.244.42.64/26", "10.244.42.128/26"]
POOLS = ["10.244.0.0/16"]
MESH = PeerInfo.mesh("192.168.0.80", ASN)
_E = ipaddress.IPv4Address("172.16.0.1")
EBGP = PeerInfo("Global_172_16_0_1", _E, _E, 65001, False)


def policy() -> CalicoExportPolicy:
    return CalicoExportPolicy(
        BLOCKS,
        POOLS,
        disabled_pools=["10.250.0.0/16"],
        static_cidrs=["10.96.0.0/12"],
    )


def bgp_path(prefix: str, src: PeerInfo) -> Path:
    attrs = AttributeSet.build(next_hop=ipaddress.IPv4Address("192.168.0.80"))
    return Path(Prefix.parse(prefix), None, attrs, src, SourceKind.BGP, 0.0)


L, K, B, D = SourceKind.LOCAL, SourceKind.KERNEL, SourceKind.BGP, SourceKind.DIRECT
ACC, REJ = Verdict.ACCEPT, Verdict.REJECT
S = ExportStep

EXPORT = [
    ("own block exactly", "10.244.42.64/26", L, ACC, S.OWN_BLOCK, "10.244.42.64/26"),
    ("second own block", "10.244.42.128/26", L, ACC, S.OWN_BLOCK, "10.244.42.128/26"),
    ("own workload /32", "10.244.42.65/32", K, REJ, S.INSIDE_OWN_BLOCK, "10.244.42.64/26"),
    ("/28 inside own block", "10.244.42.128/28", L, REJ, S.INSIDE_OWN_BLOCK, "10.244.42.128/26"),
    ("borrowed /32 in the pool", "10.244.103.70/32", K, ACC, S.IN_POOL, "10.244.0.0/16"),
    ("other block via kernel", "10.244.103.64/26", K, ACC, S.IN_POOL, "10.244.0.0/16"),
    ("outside every pool", "192.168.0.0/24", D, REJ, S.NO_MATCH, None),
    ("default route", "0.0.0.0/0", K, REJ, S.NO_MATCH, None),
    ("the pool prefix itself", "10.244.0.0/16", L, ACC, S.IN_POOL, "10.244.0.0/16"),
    ("service CIDR static", "10.96.0.10/32", L, ACC, S.STATIC_CIDR, "10.96.0.0/12"),
    ("pool with export disabled", "10.250.3.0/26", K, REJ, S.DISABLED_POOL, "10.250.0.0/16"),
    ("mesh-learned to mesh peer", "10.244.103.64/26", B, REJ, S.SPLIT_HORIZON, None),
]


@pytest.mark.parametrize(
    ("prefix", "source", "verdict", "step", "matched"),
    [case[1:] for case in EXPORT],
    ids=[case[0] for case in EXPORT],
)
def test_calico_export_to_mesh_peer(
    prefix: str, source: SourceKind, verdict: Verdict, step: ExportStep, matched: str | None
) -> None:
    decision = policy().explain(Prefix.parse(prefix), source)
    assert decision.verdict is verdict
    assert decision.step is step
    assert (None if decision.matched is None else str(decision.matched)) == matched
    assert decision.describe().startswith(verdict.value + ": ")


def test_split_horizon_uses_the_path_peer() -> None:
    pol = policy()
    from_mesh = bgp_path("10.244.103.64/26", MESH)
    from_ebgp = bgp_path("10.244.103.64/26", EBGP)
    assert pol.explain(from_mesh.prefix, from_mesh).step is ExportStep.SPLIT_HORIZON
    # eBGP-learned routes pass split horizon and meet the filter (inside the pool: accept)
    assert pol.explain(from_ebgp.prefix, from_ebgp).step is ExportStep.IN_POOL
    # towards an eBGP peer, iBGP-learned routes are not held back by split horizon
    assert pol.explain(from_mesh.prefix, from_mesh, internal_peer=False).step is ExportStep.IN_POOL
    assert not pol.accepts(from_mesh.prefix, from_mesh)


def test_accept_all_policy_keeps_split_horizon() -> None:
    pol = AcceptAllPolicy()
    p = Prefix.parse("8.8.8.0/24")
    assert pol.explain(p, SourceKind.LOCAL).verdict is Verdict.ACCEPT
    assert pol.explain(p, SourceKind.BGP).step is ExportStep.SPLIT_HORIZON


def test_bad_prefix_is_named() -> None:
    with pytest.raises(ValueError, match=r"10\.244\.42\.65/26"):
        CalicoExportPolicy(["10.244.42.65/26"], POOLS)


KS = KernelStep
KERNEL = [
    ("other node's block via BGP", "10.244.103.64/26", B, ACC, KS.ACCEPT, False),
    ("own block is a blackhole", "10.244.42.64/26", L, ACC, KS.OWN_BLOCK, True),
    ("service IP blackhole not programmed", "10.96.0.0/12", L, REJ, KS.REJECT_CIDR, False),
    ("kernel route not written back", "10.244.42.65/32", K, REJ, KS.FROM_KERNEL, False),
    ("connected network", "192.168.0.0/24", D, REJ, KS.DEVICE_ROUTE, False),
    ("outside the pools, from BGP", "172.30.0.0/16", B, ACC, KS.ACCEPT, False),
]


@pytest.mark.parametrize(
    ("prefix", "source", "verdict", "step", "blackhole"),
    [case[1:] for case in KERNEL],
    ids=[case[0] for case in KERNEL],
)
def test_calico_kernel_programming(
    prefix: str, source: SourceKind, verdict: Verdict, step: KernelStep, blackhole: bool
) -> None:
    pol = CalicoKernelPolicy(reject_cidrs=["10.96.0.0/12"], blocks=BLOCKS)
    decision = pol.explain(Prefix.parse(prefix), source)
    assert (decision.verdict, decision.step, decision.blackhole) == (verdict, step, blackhole)
    assert decision.accepted is (verdict is Verdict.ACCEPT)


# ---------------------------------------------------------------- NetIndex: the fast checks

def _prefix(afi: Afi, addr: int, length: int) -> Prefix:
    width = 32 if afi is Afi.IPV4 else 128
    mask = ((1 << length) - 1) << (width - length) if length else 0
    return Prefix(afi, addr & mask, length)


_afis = st.sampled_from([Afi.IPV4, Afi.IPV6])
_prefixes_st = _afis.flatmap(lambda afi: st.builds(
    _prefix, st.just(afi),
    st.integers(0, 2**32 - 1) if afi is Afi.IPV4 else st.integers(0, 2**128 - 1),
    st.integers(0, 32 if afi is Afi.IPV4 else 128)))


@given(nets=st.lists(_prefixes_st, max_size=6), prefix=_prefixes_st)
def test_net_index_agrees_with_prefix_contains(nets: list[Prefix], prefix: Prefix) -> None:
    index = NetIndex(nets)
    covering = next((n for n in nets if n.contains(prefix)), None)
    overlapping = next((n for n in nets if n.contains(prefix) or prefix.contains(n)), None)
    assert index.covering(prefix) == covering
    assert index.overlapping(prefix) == overlapping
    assert bool(index) == bool(nets)


# ------------------------------------- the kernel filter's quick accept agrees with its steps

_OWN = ipaddress.IPv4Address("192.168.0.81")
_PEER_HOP = ipaddress.IPv4Address("192.168.0.80")


def _near(afi: Afi, nets: list[Prefix]) -> st.SearchStrategy[Prefix]:
    """Prefixes at, inside or around the listed networks (where the steps differ)."""
    width = 32 if afi is Afi.IPV4 else 128
    same = [n for n in nets if n.afi is afi]
    if not same:
        return st.builds(_prefix, st.just(afi), st.integers(0, 2**width - 1),
                         st.integers(0, width))
    return st.sampled_from(same) | st.builds(
        lambda net, bits, length: _prefix(afi, net.addr | bits, length),
        st.sampled_from(same), st.integers(0, 0xFFF), st.integers(0, width),
    )


@given(
    data=st.data(),
    afi=_afis,
    lists=st.lists(st.lists(_prefixes_st, max_size=3), min_size=4, max_size=4),
    via_self=st.booleans(),
    everywhere=st.booleans(),
)
@settings(max_examples=200)
def test_kernel_quick_accept_agrees_with_the_steps(
    data: st.DataObject, afi: Afi, lists: list[list[Prefix]], via_self: bool, everywhere: bool
) -> None:
    blocks, pools, protect, reject = lists
    if everywhere:  # a pool covering every prefix of the family: the other steps decide
        pools = [*pools, Prefix(afi, 0, 0)]
    pol = CalicoKernelPolicy(reject, blocks, pools=pools, protect=protect, own=[_OWN])
    prefix = data.draw(_near(afi, blocks + pools + protect + reject))
    attrs = AttributeSet.build(next_hop=_OWN if via_self else _PEER_HOP)
    path = Path(prefix, None, attrs, MESH, SourceKind.BGP, 0.0)
    # the steps themselves: the source kind alone goes step by step, with no next hop
    steps = pol.explain(prefix, SourceKind.BGP)
    want = steps
    if via_self and not steps.step.guard:
        want = KernelDecision(Verdict.REJECT, KernelStep.GUARD_NEXT_HOP_SELF)
    for _ in range(2):  # the screen built, then reused
        assert pol.explain(prefix, path) == want
