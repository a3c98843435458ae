"""Interned, frozen attribute sets: one object per distinct set of path attributes.

A feed of 100,000 routes usually carries a handful of distinct attribute sets (BIRD packs
about 330 prefixes with one set into each UPDATE), so every path points at a shared
:class:`AttributeSet` instead of holding its own copy.  Interning also makes "same attributes"
an identity test (``a is b``), which the Adj-RIB-Out uses to group prefixes into UPDATEs, as
BIRD's per-attribute-set buckets do (``proto/bgp/attrs.c``, ``bgp_get_bucket``).

The values route selection and display need (origin, AS path length, MED, LOCAL_PREF,
next hop, ...) are decoded once, when the set is interned.
"""

from __future__ import annotations

import ipaddress
import operator
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from speaker.wire.attributes import (
    AggregatorAttr,
    As4AggregatorAttr,
    As4PathAttr,
    AsPathAttr,
    AsPathSegment,
    AtomicAggregateAttr,
    ClusterListAttr,
    CommunitiesAttr,
    ExtendedCommunitiesAttr,
    LargeCommunitiesAttr,
    LocalPrefAttr,
    MedAttr,
    MpReachAttr,
    MpUnreachAttr,
    NextHopAttr,
    OriginatorIdAttr,
    OriginAttr,
    PathAttribute,
    path_length,
)
from speaker.wire.enums import AsPathSegmentType, Origin

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SWEEP_MIN = 4096


def _only_the_table() -> int:
    """What ``sys.getrefcount`` says, in :meth:`AttributeSet.sweep`'s loop over the table's
    items, of a value nothing but the table holds (the loop variable and the items iterator's
    reused pair add references; measured rather than assumed)."""
    probe = {0: object()}
    for _key, value in probe.items():
        return sys.getrefcount(value)
    raise AssertionError("unreachable")


_ONLY_THE_TABLE = _only_the_table()

_InternKey = (
    tuple[PathAttribute, ...]
    | tuple[tuple[PathAttribute, ...], tuple[int | None, ...] | None]
    | tuple[tuple[PathAttribute, ...], tuple[int | None, ...] | None, tuple[IpAddress, ...]]
)
"""A set's attributes themselves when they all carry their canonical flags (the usual case:
the key is the set's own ``attributes`` tuple, no key object per set), else with their flags
octets; with the next hops when these are not the NEXT_HOP's.  A bare attribute tuple never
equals a keyed one: its items are attributes, not tuples."""
_NLRI_CARRIERS = frozenset({MpReachAttr, MpUnreachAttr})


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class AttributeSet:
    """The path attributes of a route, interned: build it with :meth:`intern` or :meth:`build`.

    ``attributes`` are the wire attributes (MP_REACH/MP_UNREACH removed: they carry NLRI, not
    route properties); ``next_hops`` is the NEXT_HOP, or MP_REACH's next hop(s) for other
    families (global, then link-local, RFC 2545).  Equality is identity: two equal sets are
    the same object.
    """

    attributes: tuple[PathAttribute, ...]
    next_hops: tuple[IpAddress, ...]
    origin: Origin | None
    as_path: tuple[AsPathSegment, ...] | None
    as_path_length: int
    first_as: int | None
    med: int | None
    local_pref: int | None
    communities: tuple[int, ...]
    large_communities: tuple[tuple[int, int, int], ...]
    extended_communities: tuple[int, ...]
    originator_id: ipaddress.IPv4Address | None
    cluster_list: tuple[ipaddress.IPv4Address, ...]
    atomic_aggregate: bool
    aggregator: tuple[int, ipaddress.IPv4Address] | None

    _table: ClassVar[dict[_InternKey, AttributeSet]] = {}
    """The interned sets, held strongly (a plain dict: a ``WeakValueDictionary`` cost 12% of a
    feed of one set per route in its Python-level get/set and removal callbacks); the sets no
    route holds any more are dropped by :meth:`sweep`."""
    _sweep_at: ClassVar[int] = _SWEEP_MIN

    # ------------------------------------------------------------------ construction

    @classmethod
    def intern(
        cls,
        attributes: Iterable[PathAttribute],
        next_hops: Iterable[IpAddress] | None = None,
        *,
        plain: bool = False,
    ) -> AttributeSet:
        """The shared set for these attributes (MP_REACH/MP_UNREACH are left out).

        ``next_hops`` overrides the NEXT_HOP attribute (used for MP_REACH next hops).
        ``plain``: the caller has found no MP_REACH/MP_UNREACH among the attributes (the RIB
        tests every UPDATE for them), so they are not looked for again.
        """
        attrs = attributes if type(attributes) is tuple else tuple(attributes)
        if not plain and not _NLRI_CARRIERS.isdisjoint(map(type, attrs)):  # in C
            attrs = tuple(a for a in attrs if not isinstance(a, (MpReachAttr, MpUnreachAttr)))
        # PathAttribute equality ignores the flags octet; keep sets whose flags differ apart
        # (one shared flags tuple per pattern, for the keys that hold one)
        kept = tuple(map(_flags_of, attrs))
        flags = None if kept.count(None) == len(kept) else _flag_tuples.setdefault(kept, kept)
        # The NEXT_HOP's address is part of ``attrs``: a set whose next hops are that address
        # is keyed without them (one address hash fewer), with any others keyed with them
        key: _InternKey
        hops: tuple[IpAddress, ...] | None = None
        if next_hops is not None:
            hops = next_hops if type(next_hops) is tuple else tuple(next_hops)
            nh = _next_hop_of(attrs)
            if hops != (() if nh is None else (nh.address,)):
                key = (attrs, flags, hops)
            else:
                hops = None  # derived from the NEXT_HOP by _fill, as for the plain key
        if hops is None:
            key = attrs if flags is None else (attrs, flags)
        # setdefault with an empty set, filled in when it went in: the key (its attributes'
        # __hash__, Python code) is hashed once, found or not; get() then a store hashed a
        # new set's key twice, and a feed of one set per route makes a set per UPDATE
        table = cls._table
        made: AttributeSet = _new_object(cls)
        found = table.setdefault(key, made)
        if found is not made:
            return found
        try:
            cls._fill(made, attrs, hops)
        except BaseException:
            del table[key]  # never an empty set in the table
            raise
        if len(_flag_tuples) >= _FLAG_TUPLES_MAX:  # only sharing is lost
            _flag_tuples.clear()
        if len(table) >= cls._sweep_at:
            cls.sweep()
        return made

    @classmethod
    def sweep(cls) -> int:
        """Forget the sets nothing else refers to (no route, no cache); returns how many.

        Called when the table has doubled since the last sweep (amortised: a feed of one set
        per route sweeps log2(n) times) and by the RIB when its table is down to a quarter."""
        table = cls._table
        refs = sys.getrefcount
        only = _ONLY_THE_TABLE  # a set only the table holds
        # items(), not table[key]: a key's hash is not kept, and hashing it runs Python code
        # (the attributes' __hash__); so the fewer keys are touched again the better
        live = [key for key, made in table.items() if refs(made) > only]
        dead = len(table) - len(live)
        if 2 * len(live) < len(table):
            # mostly dead (a peer's routes all withdrawn): a table of the live ones (each
            # key hashed once, by the insertion; table[key] would hash it again)
            cls._table = {key: made for key, made in table.items() if refs(made) > only}
        elif dead:
            for key in [key for key, made in table.items() if refs(made) <= only]:
                del table[key]
        cls._sweep_at = max(_SWEEP_MIN, 2 * len(cls._table))
        return dead

    @classmethod
    def build(
        cls,
        *,
        origin: Origin | None = Origin.IGP,
        as_path: tuple[AsPathSegment, ...] | None = (),
        next_hop: IpAddress | None = None,
        med: int | None = None,
        local_pref: int | None = None,
        communities: Iterable[int] = (),
        large_communities: Iterable[tuple[int, int, int]] = (),
        extra: Iterable[PathAttribute] = (),
    ) -> AttributeSet:
        """A set from values, attributes in type-code order (as BIRD sends them).

        An IPv6 ``next_hop`` is kept in ``next_hops`` only (it travels in MP_REACH_NLRI).
        """
        attrs: list[PathAttribute] = []
        if origin is not None:
            attrs.append(OriginAttr(origin))
        if as_path is not None:
            attrs.append(AsPathAttr(as_path))
        if isinstance(next_hop, ipaddress.IPv4Address):
            attrs.append(NextHopAttr(next_hop))
        if med is not None:
            attrs.append(MedAttr(med))
        if local_pref is not None:
            attrs.append(LocalPrefAttr(local_pref))
        comms = tuple(communities)
        if comms:
            attrs.append(CommunitiesAttr(comms))
        large = tuple(large_communities)
        if large:
            attrs.append(LargeCommunitiesAttr(large))
        attrs.extend(extra)
        attrs.sort(key=lambda a: a.type_code)
        return cls.intern(attrs, () if next_hop is None else (next_hop,))

    def replace(
        self,
        *,
        put: Iterable[PathAttribute] = (),
        drop: Iterable[int] = (),
        next_hops: Iterable[IpAddress] | None = None,
    ) -> AttributeSet:
        """A set with some attributes added or replaced (``put``) and others removed (``drop``,
        by type code), in type-code order; ``next_hops`` replaces the next hop(s)."""
        added = {a.type_code: a for a in put}
        dropped = set(drop)
        attrs = [
            a for a in self.attributes if a.type_code not in added and a.type_code not in dropped
        ]
        attrs.extend(added.values())
        attrs.sort(key=lambda a: a.type_code)
        hops = self.next_hops if next_hops is None else tuple(next_hops)
        if next_hops is None and NextHopAttr.TYPE in added:
            nh = added[NextHopAttr.TYPE]
            assert isinstance(nh, NextHopAttr)
            hops = (nh.address,)
        return AttributeSet.intern(attrs, hops)

    @staticmethod
    def _fill(
        made: AttributeSet, attrs: tuple[PathAttribute, ...], hops: tuple[IpAddress, ...] | None
    ) -> None:
        """Set the fields of a new (empty) set; ``hops`` None: the NEXT_HOP's address, if any
        (found in the same loop)."""
        nh: PathAttribute | None = None
        origin: Origin | None = None
        as_path: tuple[AsPathSegment, ...] | None = None
        med = local_pref = None
        communities: tuple[int, ...] = ()
        large: tuple[tuple[int, int, int], ...] = ()
        extended: tuple[int, ...] = ()
        originator: ipaddress.IPv4Address | None = None
        clusters: tuple[ipaddress.IPv4Address, ...] = ()
        atomic = False
        aggregator: tuple[int, ipaddress.IPv4Address] | None = None
        for a in attrs:
            # exact types, most frequent first (no class in the codec subclasses these)
            kind = type(a)
            if kind is OriginAttr:
                origin = a.value  # type: ignore[attr-defined]
            elif kind is AsPathAttr:
                as_path = a.segments  # type: ignore[attr-defined]
            elif kind is NextHopAttr:
                nh = a
            elif kind is MedAttr:
                med = a.value  # type: ignore[attr-defined]
            elif kind is LocalPrefAttr:
                local_pref = a.value  # type: ignore[attr-defined]
            elif kind is CommunitiesAttr:
                communities = a.values  # type: ignore[attr-defined]
            elif kind is LargeCommunitiesAttr:
                large = a.values  # type: ignore[attr-defined]
            elif kind is ExtendedCommunitiesAttr:
                extended = a.values  # type: ignore[attr-defined]
            elif kind is OriginatorIdAttr:
                originator = a.address  # type: ignore[attr-defined]
            elif kind is ClusterListAttr:
                clusters = a.ids  # type: ignore[attr-defined]
            elif kind is AtomicAggregateAttr:
                atomic = True
            elif kind is AggregatorAttr:
                aggregator = (a.asn, a.address)  # type: ignore[attr-defined]
        if hops is None:
            hops = () if nh is None else _next_hop_tuple(nh)  # type: ignore[arg-type]
        first_as: int | None = None
        if as_path and as_path[0].type is _AS_SEQUENCE and as_path[0].asns:
            first_as = as_path[0].asns[0]
        # the frozen __init__ sets each of the 15 fields through object.__setattr__; a feed
        # of one set per route makes a set per UPDATE: set the slots directly instead
        _set_attributes(made, attrs)
        _set_next_hops(made, hops)
        _set_origin(made, origin)
        _set_as_path(made, as_path)
        _set_as_path_length(
            made, path_length(as_path) if as_path is not None else AS_PATH_MAXLEN
        )
        _set_first_as(made, first_as)
        _set_med(made, med)
        _set_local_pref(made, local_pref)
        _set_communities(made, communities)
        _set_large_communities(made, large)
        _set_extended_communities(made, extended)
        _set_originator_id(made, originator)
        _set_cluster_list(made, clusters)
        _set_atomic_aggregate(made, atomic)
        _set_aggregator(made, aggregator)

    # ------------------------------------------------------------------ reading

    @property
    def next_hop(self) -> IpAddress | None:
        """The (first, global) next hop, if any."""
        return self.next_hops[0] if self.next_hops else None

    def attribute(self, type_code: int) -> PathAttribute | None:
        """The wire attribute with this type code, if present."""
        for a in self.attributes:
            if a.type_code == type_code:
                return a
        return None

    def as_path_text(self) -> str:
        """The AS path as BIRD prints it: ``64512 65000 {65001 65002}``."""
        if not self.as_path:
            return ""
        parts: list[str] = []
        for seg in self.as_path:
            text = " ".join(str(a) for a in seg.asns)
            parts.append(text if seg.type is AsPathSegmentType.AS_SEQUENCE else f"{{{text}}}")
        return " ".join(parts)

    def bird_lines(self) -> list[str]:
        """The attributes as ``birdc show route all`` prints them (``BGP.origin: IGP``, ...)."""
        lines: list[str] = []
        if self.origin is not None:
            lines.append(f"BGP.origin: {_ORIGIN_NAMES[self.origin]}")
        if self.as_path is not None:
            lines.append(f"BGP.as_path: {self.as_path_text()}")
        if self.next_hops:
            lines.append("BGP.next_hop: " + " ".join(str(a) for a in self.next_hops))
        if self.med is not None:
            lines.append(f"BGP.med: {self.med}")
        if self.local_pref is not None:
            lines.append(f"BGP.local_pref: {self.local_pref}")
        if self.atomic_aggregate:
            lines.append("BGP.atomic_aggr: ")
        if self.aggregator is not None:
            lines.append(f"BGP.aggregator: {self.aggregator[1]} AS{self.aggregator[0]}")
        if self.communities:
            text = " ".join(f"({v >> 16},{v & 0xFFFF})" for v in self.communities)
            lines.append(f"BGP.community: {text}")
        if self.originator_id is not None:
            lines.append(f"BGP.originator_id: {self.originator_id}")
        if self.cluster_list:
            lines.append("BGP.cluster_list: " + " ".join(str(c) for c in self.cluster_list))
        if self.extended_communities:
            text = " ".join(f"0x{v:016x}" for v in self.extended_communities)
            lines.append(f"BGP.ext_community: {text}")
        if self.large_communities:
            text = " ".join(f"({g}, {a}, {b})" for g, a, b in self.large_communities)
            lines.append(f"BGP.large_community: {text}")
        return lines

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        out: dict[str, object] = {}
        if self.origin is not None:
            out["origin"] = self.origin.name
        if self.as_path is not None:
            out["as_path"] = self.as_path_text()
        if self.next_hops:
            out["next_hop"] = [str(a) for a in self.next_hops]
        if self.med is not None:
            out["med"] = self.med
        if self.local_pref is not None:
            out["local_pref"] = self.local_pref
        if self.communities:
            out["communities"] = [f"{v >> 16}:{v & 0xFFFF}" for v in self.communities]
        if self.large_communities:
            out["large_communities"] = [f"{g}:{a}:{b}" for g, a, b in self.large_communities]
        if self.originator_id is not None:
            out["originator_id"] = str(self.originator_id)
        if self.cluster_list:
            out["cluster_list"] = [str(c) for c in self.cluster_list]
        return out

    def __repr__(self) -> str:
        return f"AttributeSet({', '.join(self.bird_lines()) or 'empty'})"


_flags_of = operator.attrgetter("flags")
_flag_tuples: dict[tuple[int | None, ...], tuple[int | None, ...]] = {}
_FLAG_TUPLES_MAX = 4096
_hop_tuples: dict[int, tuple[NextHopAttr, tuple[IpAddress, ...]]] = {}


def _next_hop_of(attrs: tuple[PathAttribute, ...]) -> NextHopAttr | None:
    """The NEXT_HOP attribute among ``attrs``, if any."""
    for a in attrs:
        if type(a) is NextHopAttr:
            return a
    return None


def _next_hop_tuple(nh: NextHopAttr) -> tuple[IpAddress, ...]:
    """``(nh.address,)``, one tuple per NEXT_HOP attribute object (the codec shares those):
    a feed of one set per route has a handful of next hops, and a tuple per set was 48
    octets per route."""
    hit = _hop_tuples.get(id(nh))
    if hit is not None and hit[0] is nh:
        return hit[1]
    if len(_hop_tuples) >= _FLAG_TUPLES_MAX:
        _hop_tuples.clear()
    hops = (nh.address,)
    _hop_tuples[id(nh)] = (nh, hops)  # holds nh: its id is not reused meanwhile
    return hops


_AS_SEQUENCE = AsPathSegmentType.AS_SEQUENCE  # a global: enum class lookups are slow on 3.11
_new_object = object.__new__
_slots = AttributeSet.__dict__
_set_attributes = _slots["attributes"].__set__
_set_next_hops = _slots["next_hops"].__set__
_set_origin = _slots["origin"].__set__
_set_as_path = _slots["as_path"].__set__
_set_as_path_length = _slots["as_path_length"].__set__
_set_first_as = _slots["first_as"].__set__
_set_med = _slots["med"].__set__
_set_local_pref = _slots["local_pref"].__set__
_set_communities = _slots["communities"].__set__
_set_large_communities = _slots["large_communities"].__set__
_set_extended_communities = _slots["extended_communities"].__set__
_set_originator_id = _slots["originator_id"].__set__
_set_cluster_list = _slots["cluster_list"].__set__
_set_atomic_aggregate = _slots["atomic_aggregate"].__set__
_set_aggregator = _slots["aggregator"].__set__
del _slots

AS_PATH_MAXLEN = 10000
"""Path length BIRD gives a route without AS_PATH (``AS_PATH_MAXLEN``), so it loses."""

_ORIGIN_NAMES = {Origin.IGP: "IGP", Origin.EGP: "EGP", Origin.INCOMPLETE: "Incomplete"}

AS4_ATTRIBUTES = (As4PathAttr.TYPE, As4AggregatorAttr.TYPE)
"""Attributes that only exist on the wire of 2-octet-AS sessions (RFC 6793)."""


def intern_count() -> int:
    """How many distinct attribute sets are alive (for status and tests)."""
    return len(AttributeSet._table)
