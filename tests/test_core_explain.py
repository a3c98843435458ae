"""``speaker explain``: the story of one prefix told by the functions that decide it."""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address

from speaker.core.explain import ExplainError, explain
from speaker.rib import AttributeSet
from speaker.rib.decision import BestPathReason
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri, Prefix
from tests.test_core_scenarios import BLOCK, A, B, feed, make_net, name_of

POD = "10.244.7.0/26"


def wall(t: float) -> datetime:
    return datetime.fromtimestamp(1_800_000_000 + t)


def no_kernel(prefix: object) -> None:
    return None


def med_update(prefix: str, via: str, med: int) -> Update:
    attrs = AttributeSet.build(next_hop=IPv4Address(via), local_pref=100, med=med)
    return Update(withdrawn=(), attributes=attrs.attributes, nlri=(Nlri(Prefix.parse(prefix)),))


def test_two_paths_lower_med_wins_and_every_step_is_shown() -> None:
    net = make_net(A, B)
    a, b = name_of(net, A), name_of(net, B)
    net.start()
    net.run_until(lambda: net.established(a, b))
    net.remotes[a].send_update(med_update(POD, A, 50))
    net.remotes[b].send_update(med_update(POD, B, 10))
    net.pump()
    x = explain(net.core, POD, None, no_kernel, wall)
    assert x.prefix == POD and len(x.paths) == 2
    (best,) = [p for p in x.paths if p.best]
    assert best.peer == b and best.next_hop == B
    steps = [s.step for s in x.steps]
    assert steps[-1] == BestPathReason.MED.value  # the deciding step is the last one shown
    assert BestPathReason.LOCAL_PREF.value in steps  # earlier steps shown with no difference
    med = x.steps[-1]
    assert sorted(v for v in med.values if v) == ["10 (AS 64512)", "50 (AS 64512)"]
    loser = next(i for i, p in enumerate(x.paths) if not p.best)
    assert med.eliminated == (loser,)
    assert "MED" in x.decision or "med" in x.decision.lower()
    assert x.ecmp and x.ecmp[0][1] is not None  # a different MED keeps it out of the set
    assert x.kernel_verdict.startswith("accept")
    assert x.kernel_now == "no route of ours in the kernel"
    # iBGP-learned: not re-advertised to iBGP peers (split horizon), with the rule's name
    assert {name for name, _ in x.exports} == {a, b}
    assert all(v.startswith("reject") for _, v in x.exports)


def test_an_address_finds_its_longest_match_and_our_block_is_exported() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    feed(net, a, via=A, eor=True)
    x = explain(net.core, "10.244.81.9", None, no_kernel, wall)
    assert x.prefix == BLOCK  # the address's longest match: our own block
    assert (x.kernel_verdict.startswith("accept") and "blackhole" in x.kernel_verdict.lower()) or \
        "own" in x.kernel_verdict
    ((peer, verdict),) = x.exports
    assert peer == a and verdict.startswith("accept")


def test_a_prefix_we_do_not_hold_says_what_would_happen() -> None:
    net = make_net(A)
    net.start()
    outside = explain(net.core, "172.16.0.0/24", None, no_kernel, wall)
    assert outside.prefix is None and "not in our table" in outside.decision
    assert "reject" in outside.kernel_verdict  # the import guard: outside the pools
    inside = explain(net.core, "10.96.1.0/24", None, no_kernel, wall)
    assert "reject" in inside.kernel_verdict  # a reject CIDR (10.96.0.0/12)
    try:
        explain(net.core, "not-a-prefix", None, no_kernel, wall)
    except ExplainError as exc:
        assert "neither a prefix nor an address" in str(exc)
    else:
        raise AssertionError("a bad target must be refused")
