"""The import guard: what a peer sends never puts a harmful route into our kernel.

One test per rule, through the core (:mod:`tests.corenet`): the scripted peer announces the
bad route next to a good one; the good one is programmed, the bad one is not, an
:class:`ImportRefused` names the rule, and the session stays up.
"""

from __future__ import annotations

from ipaddress import ip_address
from types import SimpleNamespace
from typing import cast

import pytest

from speaker.config import parse_config
from speaker.core import ImportRefused
from speaker.core.routes import KernelIntents
from speaker.rib import CalicoKernelPolicy, RouteChange
from speaker.rib.policy import KernelStep
from speaker.wire.nlri import Prefix
from tests.corenet import CoreNet, FakeKernel, update

A = "192.168.0.80"
GOOD = "10.244.80.0/26"
BLOCK = "10.244.81.0/26"


def make(extra_kernel: str = "") -> tuple[CoreNet, str]:
    text = (
        'router_id = "192.168.0.81"\nasn = 64512\n'
        f'[originate]\nblocks = ["{BLOCK}"]\n[pools]\ncidrs = ["10.244.0.0/16"]\n'
        f"[kernel]\n{extra_kernel}\n"
        f'[[peer]]\naddress = "{A}"\nsource_address = "192.168.0.181"\n'
    )
    net = CoreNet(parse_config(text, "node81.toml"))
    a = net.config.peers[0].name
    net.start()
    net.run_until(lambda: net.established(a))
    return net, a


@pytest.mark.parametrize(
    ("prefix", "via", "step"),
    [
        ("0.0.0.0/0", A, KernelStep.GUARD_DEFAULT),
        ("172.16.5.0/24", A, KernelStep.GUARD_OUTSIDE_POOLS),
        (BLOCK, A, KernelStep.GUARD_OWN_BLOCK),
        ("192.168.0.81/32", A, KernelStep.GUARD_PROTECTED),  # our router_id
        ("10.244.90.0/26", "192.168.0.81", KernelStep.GUARD_NEXT_HOP_SELF),  # via router_id
        ("10.244.91.0/26", "192.168.0.181", KernelStep.GUARD_NEXT_HOP_SELF),  # via a source
    ],
)
def test_each_rule_refuses_and_the_session_stays_up(
    prefix: str, via: str, step: KernelStep
) -> None:
    net, a = make()
    net.remotes[a].send_update(update(GOOD, via=A))
    net.remotes[a].send_update(update(prefix, via=via))
    net.pump()
    assert net.kernel.hops(GOOD) == (A,)
    if prefix == BLOCK:
        assert net.kernel.hops(BLOCK) == ("blackhole",)  # ours stays, the peer's never wins
    else:
        assert net.kernel.hops(prefix) is None
        refused = [e for e in net.of(ImportRefused) if e.prefix == prefix]
        assert refused and step.value in refused[-1].rule and refused[-1].peer == a
        assert f"{prefix} from {a} not installed in the kernel" in refused[-1].describe()
    assert net.established(a)


def test_the_peer_s_copy_of_our_block_is_refused_when_it_is_best() -> None:
    """Our block's best path is our blackhole (preference 200); were it the peer's, the guard
    still refuses it (policy level, where the best path is given)."""
    net, _ = make()
    policy = net.core.intents.policy
    decision = policy.guard(Prefix.parse(BLOCK), None)
    assert decision is not None and decision.step is KernelStep.GUARD_OWN_BLOCK


def test_protect_covers_the_node_subnet_and_its_more_specifics() -> None:
    net, a = make('protect = ["10.244.200.0/24"]')
    net.remotes[a].send_update(update("10.244.200.0/24", "10.244.200.7/32", GOOD, via=A))
    net.pump()
    assert net.kernel.hops("10.244.200.0/24") is None
    assert net.kernel.hops("10.244.200.7/32") is None
    assert net.kernel.hops(GOOD) == (A,)
    rules = {e.prefix: e.rule for e in net.of(ImportRefused)}
    assert "(10.244.200.0/24)" in rules["10.244.200.7/32"]


def test_a_borrowed_address_inside_our_block_still_passes() -> None:
    """Calico: another node may hold a /32 borrowed from our block; we must route it there."""
    net, a = make()
    net.remotes[a].send_update(update("10.244.81.5/32", via=A))
    net.pump()
    assert net.kernel.hops("10.244.81.5/32") == (A,)
    assert not net.of(ImportRefused)


def test_an_ecmp_member_via_ourselves_is_left_out() -> None:
    text = (
        'router_id = "192.168.0.81"\nasn = 64512\n[pools]\ncidrs = ["10.244.0.0/16"]\n'
        f'[[peer]]\naddress = "{A}"\n[[peer]]\naddress = "192.168.0.82"\n'
    )
    net = CoreNet(parse_config(text, "n.toml"))
    a, b = (p.name for p in net.config.peers)
    net.start()
    net.run_until(lambda: net.established(a, b))
    net.remotes[a].send_update(update(GOOD, via=A))
    net.remotes[b].send_update(update(GOOD, via="192.168.0.81"))
    net.pump()
    hops = net.kernel.hops(GOOD)
    assert hops is not None and "192.168.0.81" not in hops and A in hops


def test_an_update_is_one_kernel_batch_and_each_refusal_follows_its_change() -> None:
    """The core hands the kernel one batch per RIB delta; the events come out as they did
    with one call per change: each route change, then its refusal if it has one."""
    net, a = make()
    before = len(net.kernel.batches)
    refused_prefix = "172.16.5.0/24"
    net.remotes[a].send_update(update(GOOD, refused_prefix, "10.244.82.0/26", via=A))
    net.pump()
    assert net.kernel.batches[before:] == [3]
    assert net.kernel.hops(GOOD) == net.kernel.hops("10.244.82.0/26") == (A,)
    assert net.kernel.hops(refused_prefix) is None
    stream = [e for e in net.events if isinstance(e, (RouteChange, ImportRefused))]
    changes = [str(e.prefix) for e in stream if isinstance(e, RouteChange)][-3:]
    assert sorted(changes) == sorted([GOOD, refused_prefix, "10.244.82.0/26"])
    at = next(i for i, e in enumerate(stream) if isinstance(e, ImportRefused))
    before_refusal = stream[at - 1]
    assert isinstance(before_refusal, RouteChange) and str(before_refusal.prefix) == refused_prefix
    # a withdrawal of all of them is one batch too
    net.remotes[a].send_update(update(via=A, withdraw=(GOOD, refused_prefix, "10.244.82.0/26")))
    net.pump()
    assert net.kernel.batches[-1] == 3
    assert net.kernel.hops(GOOD) is None and net.kernel.hops("10.244.82.0/26") is None


def _ecmp_change(*hops: str) -> RouteChange:
    paths = [SimpleNamespace(next_hop=ip_address(h)) for h in hops]
    return cast(RouteChange, SimpleNamespace(new_best=paths[0], new_ecmp=tuple(paths)))


def test_next_hop_sets_are_shared_and_follow_a_new_policy() -> None:
    """One tuple per next-hop set reaches the kernel; a new policy (new own addresses on
    reconfiguration) is applied to the sets seen before it."""
    intents = KernelIntents(FakeKernel(), CalicoKernelPolicy(own=[ip_address("192.168.0.82")]))
    first = intents.next_hops(_ecmp_change(A, "192.168.0.82"))
    assert first == (ip_address(A),)
    assert intents.next_hops(_ecmp_change(A, "192.168.0.82")) is first
    single = intents.next_hops(_ecmp_change(A))
    assert single == (ip_address(A),) and intents.next_hops(_ecmp_change(A)) is single
    intents.policy = CalicoKernelPolicy(own=[ip_address(A)])
    assert intents.next_hops(_ecmp_change(A, "192.168.0.82")) == (ip_address("192.168.0.82"),)
    assert intents.next_hops(_ecmp_change(A)) == ()
