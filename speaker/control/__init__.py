"""The BIRD-compatible control socket: views, line protocol, rendering, server, client.

The daemon implements ``ControlBackend`` (views.py) and runs ``ControlServer`` (server.py);
``birdc -s PATH``, ``calicoctl node status`` and ``speaker show ...`` read it like BIRD
1.6.8.  ``json <command>`` returns the same information as one JSON document.
"""

from speaker.control.calicoctl import CalicoPeer, parse_bird_protocols, render_node_status
from speaker.control.client import ControlClient, ControlReplyError, ControlUnreachable, query
from speaker.control.commands import CommandError, CommandExecutor, CommandFailed, parse_command
from speaker.control.protocol import Reply, ReplyCode, ReplyLine, ReplyParser, encode_reply
from speaker.control.server import ControlServer, ControlSocketError
from speaker.control.views import (
    ActionOutcome,
    BgpAttrs,
    BgpDetails,
    BgpState,
    ChangeStats,
    ControlBackend,
    DatastorePeerView,
    DatastoreView,
    GracefulRestartStatus,
    KernelRouteView,
    KernelView,
    NextHop,
    ProtocolStatus,
    ProtoState,
    RouteChangeStats,
    RouteCounts,
    RouteKind,
    RouteView,
    StatusView,
    TimerView,
    longest_match,
)

__all__ = [
    "ActionOutcome",
    "BgpAttrs",
    "BgpDetails",
    "BgpState",
    "CalicoPeer",
    "ChangeStats",
    "CommandError",
    "CommandExecutor",
    "CommandFailed",
    "ControlBackend",
    "ControlClient",
    "ControlReplyError",
    "ControlServer",
    "ControlSocketError",
    "ControlUnreachable",
    "DatastorePeerView",
    "DatastoreView",
    "GracefulRestartStatus",
    "KernelRouteView",
    "KernelView",
    "NextHop",
    "ProtoState",
    "ProtocolStatus",
    "Reply",
    "ReplyCode",
    "ReplyLine",
    "ReplyParser",
    "RouteChangeStats",
    "RouteCounts",
    "RouteKind",
    "RouteView",
    "StatusView",
    "TimerView",
    "encode_reply",
    "longest_match",
    "parse_bird_protocols",
    "parse_command",
    "query",
    "render_node_status",
]
