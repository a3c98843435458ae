"""The speaker core: every protocol decision of the running speaker, without I/O.

:class:`SpeakerCore` owns the peers' sessions, the RIB, our side of graceful restart,
End-of-RIB convergence, route refresh and the step from RIB changes to kernel intents.  The
daemon (:mod:`speaker.daemon`), the session transport (:mod:`speaker.transport`), the kernel
bridge and the control backend are adapters around it.
"""

from speaker.core.events import ConnectionRefused, DaemonEvent, ImportRefused, RecoveryEvent
from speaker.core.io import Action, Close, Dial, Forget, KernelPort
from speaker.core.peers import PeerRecord, session_config
from speaker.core.restart import Recovery
from speaker.core.routes import KernelIntents
from speaker.core.speaker import CoreError, SpeakerCore

__all__ = [
    "Action",
    "Close",
    "ConnectionRefused",
    "CoreError",
    "DaemonEvent",
    "Dial",
    "Forget",
    "ImportRefused",
    "KernelIntents",
    "KernelPort",
    "PeerRecord",
    "Recovery",
    "RecoveryEvent",
    "SpeakerCore",
    "session_config",
]
