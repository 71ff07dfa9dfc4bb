"""The routes of the one HTTP server: health, readiness, metrics, providers' callbacks and
sources' webhooks, with the console's routes mounted after them.

Handlers run on the daemon's event loop, so whatever touches the store (or runs a connector
for a webhook) runs in a worker thread. Bodies are read in a bounded way: a callback says its
length up front (:func:`debsync.inbound.body_length`), a webhook is cut off at
``[http] max_body``. Nothing of a request but its method, its path without secret or query,
and the answer's status is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debsync import inbound, webhooks
from debsync.actions.base import Action, InboundRequest
from debsync.clock import Clock
from debsync.config import Config
from debsync.plugins import Plugins
from debsync.server import metrics
from debsync.server.state import ServerState
from debsync.store import Store
from debsync.store.schema import connector_state

log = logging.getLogger("debsync.server")

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
RETRY_AFTER_SECONDS = 30
"""What a source that could not be served now is told to wait before delivering again."""


class _TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and given up on past ``limit`` bytes.

    :raises _TooLarge: when the body is longer than ``limit``.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def text(status: int, body: str, **headers: str) -> PlainTextResponse:
    return PlainTextResponse(body + "\n", status_code=status, headers=headers or None)


class _Server:
    """The handlers, over one configuration, store and clock."""

    def __init__(
        self,
        config: Config,
        store: Store,
        plugins: Plugins,
        clock: Clock,
        state: ServerState,
        actions: Mapping[str, Action[Any]],
        public_url: str,
    ) -> None:
        self.config, self.store, self.plugins = config, store, plugins
        self.clock, self.state = clock, state
        self.actions = dict(actions)
        self.public_url = public_url.rstrip("/")
        self.registry: CollectorRegistry = metrics.registry(config, store, state, clock)

    async def healthz(self, request: Request) -> Response:
        return text(200, "ok")

    async def readyz(self, request: Request) -> Response:
        if not self.state.ready:
            return JSONResponse({"ready": False, "reason": "starting or stopping"}, 503)
        try:
            stale = await run_in_threadpool(self.stale, self.clock())
        except Exception as exc:  # the store's message may quote its URL
            log.warning("readyz: the store is unreachable: %s", type(exc).__name__)
            return JSONResponse({"ready": False, "reason": "store unreachable"}, 503)
        if stale:
            return JSONResponse({"ready": False, "reason": "sync too old", "stale": stale}, 503)
        return JSONResponse({"ready": True})

    def stale(self, now: datetime) -> list[str]:
        """Configured instances without a successful sync within ``max_sync_age``."""
        oldest = now - self.config.http.max_sync_age
        with self.store.engine.connect() as conn:
            fresh = set(
                conn.execute(
                    sa.select(connector_state.c.instance).where(
                        connector_state.c.last_success_at >= oldest
                    )
                ).scalars()
            )
        return sorted(set(self.config.connectors) - fresh)

    async def metrics(self, request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, self.registry)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def callback(self, request: Request) -> Response:
        """``POST /inbound/<action instance>[/<secret>]``, as :mod:`debsync.inbound` checks it."""
        raw_path = request.scope["raw_path"].decode("latin-1")
        try:
            name, action = inbound.callback_target(raw_path, self.actions)
            length = inbound.body_length(
                request.headers.get("content-length"),
                request.headers.get("transfer-encoding"),
                min(inbound.MAX_BODY_BYTES, self.config.http.max_body),
            )
            body = await read_body(request, length)
        except inbound.CallbackRefused as refused:
            return text(refused.status, refused.text)
        except _TooLarge:
            return text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        query = request.scope["query_string"].decode("latin-1")
        callback = InboundRequest(
            method="POST",
            url=self.public_url + raw_path + (f"?{query}" if query else ""),
            headers=dict(request.headers.items()),
            body=body,
        )
        status, answer = await run_in_threadpool(
            inbound.handle_callback, self.store, name, action, callback, self.clock()
        )
        return text(status, answer)

    async def webhook(self, request: Request) -> Response:
        """``POST /webhooks/<connector instance>``: a source's delivery, through
        :func:`debsync.webhooks.receive`."""
        instance = request.path_params["instance"]
        try:
            body = await read_body(request, self.config.http.max_body)
        except _TooLarge:
            return text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        headers = dict(request.headers.items())
        received = await run_in_threadpool(self._receive, instance, headers, body)
        if received.outcome == "refused":
            return text(received.status, "refused")
        if received.status != 200:
            retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return text(received.status, "try again later", **retry)
        return text(200, received.outcome)

    def _receive(self, instance: str, headers: dict[str, str], body: bytes) -> webhooks.Received:
        """In a worker thread, on a loop of its own: the connector's calls and the store's
        writes never hold up the daemon's loop."""
        return asyncio.run(
            webhooks.receive(
                self.config,
                self.store,
                instance,
                headers,
                body,
                clock=self.clock,
                plugins=self.plugins,
            )
        )


class _Guard:
    """Security headers on every answer, one log line per request (method, path without
    secret or query, status), and an unexpected error answered 500 without its traceback,
    whose frames could hold a request's data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def guarded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # a refused request's body may be unread: the connection cannot carry another
                closing = [(b"connection", b"close")] if status >= 400 else []
                headers = list(message.get("headers", ()))
                own = {name.lower() for name, _ in headers}  # the console sets its own
                defaults = [h for h in (*SECURITY_HEADERS, *closing) if h[0] not in own]
                message["headers"] = [*headers, *defaults]
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except ClientDisconnect:
            status = status or 499  # nobody left to answer
        except Exception as exc:
            log.error("%s %s: unexpected %s", scope["method"], _path(scope), type(exc).__name__)
            if not status:
                status = 500
                await text(500, "internal error")(scope, receive, guarded)
        log.info("%s %s %s", scope["method"], _path(scope), status)


def _path(scope: Scope) -> str:
    return inbound.loggable_path(scope["raw_path"].decode("latin-1"))


def build_app(
    config: Config,
    store: Store,
    plugins: Plugins,
    *,
    clock: Clock,
    state: ServerState,
    mounts: Sequence[BaseRoute] = (),
    actions: Mapping[str, Action[Any]] | None = None,
    public_url: str | None = None,
) -> Starlette:
    """The server's app. ``mounts`` come after debsync's own routes (the web console at
    ``/``). ``actions`` are the action instances whose callbacks it takes (default: every
    configured one, built here); ``public_url`` the base URL providers sign (default
    ``[http] public_url``, else ``http://host:port``). ``app.state.registry`` is the
    registry ``/metrics`` exposes, for a caller that adds collectors of its own."""
    if actions is None:
        from debsync.outbox.executor import Dispatcher

        actions = Dispatcher(config, store, plugins, clock=clock).actions()
    http = config.http
    base = public_url or http.public_url or f"http://{http.host}:{http.port}"
    handlers = _Server(config, store, plugins, clock, state, actions, base)
    routes: list[BaseRoute] = [
        Route("/healthz", handlers.healthz, methods=["GET"]),
        Route("/readyz", handlers.readyz, methods=["GET"]),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/inbound/{action}", handlers.callback, methods=["POST"]),
        Route("/inbound/{action}/{secret}", handlers.callback, methods=["POST"]),
        Route("/webhooks/{instance}", handlers.webhook, methods=["POST"]),
        *mounts,
    ]
    app = Starlette(routes=routes)
    app.state.registry = handlers.registry
    app.add_middleware(_Guard)
    return app
