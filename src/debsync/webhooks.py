"""Webhook deliveries from bookkeeping sources, applied as sync changes, each once.

A source that pushes changes (a Moneybird payment registered, an invoice marked paid) lets a
payment stop dunning within seconds instead of at the next sync. The connector checks the
delivery (:meth:`~debsync.connectors.base.Connector.verify_webhook`: signature, age, its id)
and turns it into a page (:meth:`~debsync.connectors.base.Connector.webhook_page`); this
module records each delivery once in ``received_events`` (source ``webhook:<instance>``,
event id the delivery's id, so a retry is a no-op) and applies the page through
:meth:`debsync.sync.SyncEngine.apply`, as an incremental run that leaves the cursor and the
freshness of the instance alone: the next sync still reads everything that changed.

:func:`receive` is a plain function, so any HTTP server can mount it (the daemon will); its
outcome says what to answer: ``refused`` 401, ``busy`` and ``failed`` 503 (the source retries),
anything else 200.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from debsync.clock import Clock, system_clock
from debsync.config import Config
from debsync.connectors.base import JSON, Page, SyncResult, WebhookRefused
from debsync.errors import ConnectorError, scrub
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.store.schema import connector_state, received_events
from debsync.sync import build_connector
from debsync.sync.engine import AlreadySyncing, SyncEngine

log = logging.getLogger("debsync.webhooks")

MAX_BODY_BYTES = 1024 * 1024
"""A delivery carries one entity with its lines; anything larger is refused unread."""


@dataclass
class Received:
    """What became of one delivery.

    :param outcome: ``applied`` (a change was written), ``ignored`` (authentic, nothing to
        apply: an entity debsync does not follow, a stale version, an instance not synced
        yet), ``duplicate`` (recorded before), ``busy`` (a sync holds the instance),
        ``failed`` (the change could not be applied), ``refused`` (not authentic or too old).
    """

    outcome: str
    event_id: str | None = None
    reason: str | None = None
    result: SyncResult | None = None

    @property
    def status(self) -> int:
        """The HTTP status to answer: the source retries anything but 2xx."""
        return {"refused": 401, "busy": 503, "failed": 503}.get(self.outcome, 200)


def source_of(instance: str) -> str:
    """The ``received_events.source`` of an instance's deliveries."""
    return f"webhook:{instance}"[:64]


def _insert(conn: Connection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(received_events)


def _seen(store: Store, source: str, event_id: str) -> bool:
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.select(received_events.c.id).where(
                received_events.c.source == source, received_events.c.event_id == event_id
            )
        ).first()
    return found is not None


def _record(store: Store, source: str, event_id: str, status: str, now: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            _insert(conn)
            .values(
                source=source,
                event_id=event_id[:255],
                outbox_key=None,
                status=status[:64],
                final=True,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
        )


def _state(store: Store, instance: str) -> tuple[JSON, bool]:
    """The instance's cursor, and whether a full sync has completed (no snapshot pending)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(connector_state.c.cursor, connector_state.c.snapshot_started_at).where(
                connector_state.c.instance == instance
            )
        ).first()
    if row is None or row.cursor is None:
        return None, False
    return row.cursor, row.snapshot_started_at is None


async def _one(page: Page) -> AsyncIterator[Page]:
    yield page


async def receive(
    config: Config,
    store: Store,
    instance: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    clock: Clock = system_clock,
    plugins: Plugins | None = None,
) -> Received:
    """Check, record and apply one delivery for the connector instance ``instance``.

    A delivery is recorded only once its change is in the store (or there was none), so a
    failure is retried by the source and a retry of a success is a ``duplicate``; applying the
    same change twice, should two copies race, writes nothing the second time."""
    configured = config.connectors.get(instance)
    if configured is None or "webhooks" not in configured.cls.capabilities:
        return Received("refused", reason="no connector instance with webhooks by that name")
    if len(body) > MAX_BODY_BYTES:
        return Received("refused", reason="body too large")
    connector = build_connector(configured, config, clock, store)
    try:
        event_id = connector.verify_webhook({k.lower(): v for k, v in headers.items()}, body)
    except WebhookRefused as exc:
        log.warning("webhook %s: refused: %s", instance, exc)
        return Received("refused", reason=str(exc))
    source = source_of(instance)
    if _seen(store, source, event_id):
        return Received("duplicate", event_id)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        _record(store, source, event_id, "unreadable", clock())
        log.warning("webhook %s: delivery %s is not a JSON object", instance, event_id)
        return Received("ignored", event_id, reason="not a JSON object")
    action = str(payload.get("action") or payload.get("entity_type") or "delivery")
    cursor, synced = _state(store, instance)
    try:
        page = await connector.webhook_page(payload, cursor) if synced else None
    except ConnectorError as exc:  # fetching what the delivery names failed: deliver again
        return Received("failed", event_id, reason=scrub(str(exc)))
    except Exception as exc:  # a connector bug fails this delivery, not the server
        log.error("webhook %s: delivery %s: unexpected %s", instance, event_id, type(exc).__name__)
        return Received("failed", event_id, reason=f"unexpected {type(exc).__name__}")
    if page is None:
        _record(store, source, event_id, f"ignored {action}", clock())
        return Received("ignored", event_id)
    page.cursor, page.snapshot_complete = None, False
    engine = SyncEngine(store, clock=clock, plugins=plugins)
    result = await engine.apply(configured, connector, _one(page))
    if isinstance(result, AlreadySyncing):
        return Received("busy", event_id, result=result)
    if not result.ok:
        return Received("failed", event_id, reason=result.error, result=result)
    _record(store, source, event_id, action, clock())
    log.info("webhook %s: delivery %s (%s) applied", instance, event_id, action[:64])
    return Received("applied", event_id, result=result)
