"""The daemon's one HTTP server (Starlette on uvicorn): ``/healthz``, ``/readyz``,
``/metrics``, providers' callbacks (``/inbound/…``), sources' webhooks (``/webhooks/…``), and
whatever the caller mounts after them (the web console). ``debsync serve`` runs it alone;
``debsync run`` runs it on the daemon's loop. Routes and metrics: ``docs/http.md``."""

from debsync.server.app import build_app
from debsync.server.serving import serve
from debsync.server.state import ServerState

__all__ = ["ServerState", "build_app", "serve"]
