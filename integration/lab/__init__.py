"""Network-namespace lab: the seed's Calico mesh with real BIRD 1.6.8 and/or our speaker.

Typical use::

    from integration.lab import Lab, seed_nodes

    with Lab(seed_nodes(("bird", "bird", "bird"))) as lab:
        lab.wait_established(60)
        print(lab.routes("node80"))
        assert lab.ping("node80", "10.244.42.65").ok

    with Lab("bird", dual_stack=True) as lab:      # bird6 beside bird, IPv6 pods
        lab.wait_established(60)                   # IPv4 and IPv6 sessions
        print(lab.routes("node80", family=6))
        assert lab.ping("node80", "fd00:10:244::2a41").ok

Everything runs inside namespaces named ``spk<6 hex>-*`` (never connected to the root
namespace); run files are in ``/tmp/spk<6 hex>/``.  See core.py for the topology.
"""

from integration.lab.configs import KERNEL_PROTOCOL, render_bird_config, render_speaker_config
from integration.lab.core import (
    GATEWAY,
    Lab,
    LabTimeout,
    NodeRef,
    PingResult,
    format_mesh_status,
    wait_until,
)
from integration.lab.netns import LabError
from integration.lab.runs import cleanup_stale, destroy_run, run_dir_for
from integration.lab.spec import (
    BIRD,
    DEFAULT_ASN,
    DEFAULT_POOL,
    DEFAULT_POOL6,
    DEFAULT_PREFIXLEN,
    MIXES,
    SPEAKER,
    Kind,
    NodeSpec,
    SpecError,
    make_node,
    nodes_for_mix,
    passive_toward,
    seed_nodes,
    with_ipv6,
)
from integration.lab.status import (
    ProtocolState,
    TcpConnection,
    calico_node_status,
    parse_protocols,
    parse_ss,
)

__all__ = [
    "BIRD",
    "DEFAULT_ASN",
    "DEFAULT_POOL",
    "DEFAULT_POOL6",
    "DEFAULT_PREFIXLEN",
    "GATEWAY",
    "KERNEL_PROTOCOL",
    "MIXES",
    "SPEAKER",
    "Kind",
    "Lab",
    "LabError",
    "LabTimeout",
    "NodeRef",
    "NodeSpec",
    "PingResult",
    "ProtocolState",
    "SpecError",
    "TcpConnection",
    "calico_node_status",
    "cleanup_stale",
    "destroy_run",
    "format_mesh_status",
    "make_node",
    "nodes_for_mix",
    "parse_protocols",
    "parse_ss",
    "passive_toward",
    "render_bird_config",
    "render_speaker_config",
    "run_dir_for",
    "seed_nodes",
    "wait_until",
    "with_ipv6",
]


def unavailable_reason() -> str | None:
    """Why the lab cannot run here (not root, missing tools), or None if it can."""
    import os
    import shutil

    if os.geteuid() != 0:
        return "the namespace lab needs root"
    missing = [tool for tool in ("ip", "bird", "birdc", "ss", "sysctl") if not shutil.which(tool)]
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install bird iproute2 procps)"
    return None


__all__ += ["unavailable_reason"]


BACKENDS = ("netns", "docker")
"""Where BIRD nodes run: plain namespaces, or Docker containers (integration/lab/docker.py)."""
BACKEND_ENV = "SPEAKER_LAB_BACKEND"


def default_backend() -> str:
    """The backend named by ``$SPEAKER_LAB_BACKEND``, else ``netns``."""
    import os

    return os.environ.get(BACKEND_ENV, "") or "netns"


def lab_class(backend: str) -> type[Lab]:
    """The Lab class of a backend: ``Lab`` (netns) or ``DockerLab`` (imports the Docker SDK)."""
    if backend == "netns":
        return Lab
    if backend == "docker":
        from integration.lab.docker import DockerLab

        return DockerLab
    raise LabError(f"lab backend {backend!r}: want one of {', '.join(BACKENDS)}")


__all__ += ["BACKENDS", "BACKEND_ENV", "default_backend", "lab_class"]
