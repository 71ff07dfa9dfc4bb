"""What the daemon tells its HTTP server, and the server reads on every probe and scrape."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServerState:
    """Shared by the daemon's loop (which writes it) and the server's handlers (which read
    it), all on one event loop or by plain attribute reads, so no lock is needed.

    :ivar ready: ``False`` while the daemon starts or stops: ``/readyz`` answers 503.
        ``debsync serve`` (no loop) leaves it ``True``.
    :ivar backoff: connector instance → why it backs off (a short reason, no personal data:
        ``auth``, ``unavailable``, ``failed``); shown as ``debsync_instance_backoff``.
    """

    ready: bool = True
    backoff: dict[str, str] = field(default_factory=dict)
