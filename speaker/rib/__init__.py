"""The routing information bases: pure logic, no I/O.

Modules: ``attrs`` (interned attribute sets), ``path`` (paths, peers, source kinds and BIRD's
preferences), ``decision`` (best path with reasons, ECMP merging), ``adj_in`` (per-peer
Adj-RIB-In, a view of the Loc-RIB, with graceful restart and route refresh state),
``loc_rib`` (per-prefix entries, recomputed per touched prefix), ``policy`` (Calico's export
and kernel filters, explained), ``adj_out`` (per-peer Adj-RIB-Out producing UPDATE bytes),
``query`` (views for ``show route``), ``events`` (RouteChange), ``rib`` (the :class:`Rib` that
ties them together).
"""

from speaker.rib.adj_in import AdjRibIn
from speaker.rib.adj_out import AdjRibOut, Advertised
from speaker.rib.attrs import AttributeSet
from speaker.rib.decision import (
    BestPathReason,
    Decision,
    SelectionPolicy,
    compare,
    decide,
    ecmp_set,
    explain_ecmp,
    merge_obstacle,
)
from speaker.rib.events import RouteChange
from speaker.rib.loc_rib import LocEntry, LocRib
from speaker.rib.path import PREFERENCE, Path, PeerInfo, SourceKind
from speaker.rib.policy import (
    AcceptAllPolicy,
    CalicoExportPolicy,
    CalicoKernelPolicy,
    ExportDecision,
    ExportPolicy,
    ExportStep,
    KernelDecision,
    KernelStep,
    Verdict,
)
from speaker.rib.query import PathView, RouteCount, RouteView
from speaker.rib.rib import Rib, UnknownPeerError

__all__ = [
    "PREFERENCE",
    "AcceptAllPolicy",
    "AdjRibIn",
    "AdjRibOut",
    "Advertised",
    "AttributeSet",
    "BestPathReason",
    "CalicoExportPolicy",
    "CalicoKernelPolicy",
    "Decision",
    "ExportDecision",
    "ExportPolicy",
    "ExportStep",
    "KernelDecision",
    "KernelStep",
    "LocEntry",
    "LocRib",
    "Path",
    "PathView",
    "PeerInfo",
    "Rib",
    "RouteChange",
    "RouteCount",
    "RouteView",
    "SelectionPolicy",
    "SourceKind",
    "UnknownPeerError",
    "Verdict",
    "compare",
    "decide",
    "ecmp_set",
    "explain_ecmp",
    "merge_obstacle",
]
