"""The kernel bridge: the only code that speaks netlink.

It does what BIRD 1.6.8's ``protocol kernel`` does under Calico's configuration (``learn;
persist; scan time 2; graceful restart; merge paths on``): programs the RIB's routes into a
kernel table with our protocol number, learns alien routes, restores routes changed behind its
back, and deletes nothing of ours before the RIB has converged.
"""

from speaker.kernel.bridge import KernelBridge
from speaker.kernel.model import (
    RTPROT_BGP,
    InstalledRoute,
    IPAddress,
    IPNetwork,
    KernelConfig,
    KernelEvent,
    KernelEventKind,
    KernelRoute,
    KernelSnapshot,
    KernelSnapshotEntry,
    LearnedRoute,
    RouteState,
    RouteType,
)
from speaker.kernel.netlink import KernelError

__all__ = [
    "RTPROT_BGP",
    "IPAddress",
    "IPNetwork",
    "InstalledRoute",
    "KernelBridge",
    "KernelConfig",
    "KernelError",
    "KernelEvent",
    "KernelEventKind",
    "KernelRoute",
    "KernelSnapshot",
    "KernelSnapshotEntry",
    "LearnedRoute",
    "RouteState",
    "RouteType",
]
