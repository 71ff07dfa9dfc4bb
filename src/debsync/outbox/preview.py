"""Looking without sending: what ``debsync act`` would queue and send now, and one action's
message exactly as it was handed to its channel or as it would be today."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from debsync.config import Config
from debsync.decisions import PlannedAction
from debsync.outbox.composing import Ending
from debsync.outbox.context import load_facts
from debsync.outbox.executor import Dispatcher
from debsync.outbox.table import OutboxError, claimable, find
from debsync.planning import plan_from_store
from debsync.store import Store
from debsync.store.schema import OPEN_STATES, PURGED_PAYLOAD, outbox


@dataclass
class DryRun:
    """What ``act`` would do now: the actions it would newly queue, how many of today's are
    queued already, how many queued actions are due to send, and channels nothing carries."""

    would_queue: list[PlannedAction]
    already_queued: int
    due: int
    unrouted: list[str]
    warnings: list[str] = field(default_factory=list)


def dry_run(config: Config, store: Store, now: datetime) -> DryRun:
    """Plan as ``act`` would and compare with the outbox; writes nothing."""
    result = plan_from_store(config, store, now)
    return against_outbox(config, store, now, result.actions, result.warnings)


def against_outbox(
    config: Config,
    store: Store,
    now: datetime,
    actions: Sequence[PlannedAction],
    warnings: Sequence[str],
) -> DryRun:
    """Today's planned ``actions`` compared with the outbox: a plan kept in memory (the web
    console's) looks again at what was queued meanwhile."""
    keys = [a.key for a in actions]
    with store.engine.connect() as conn:
        existing = set(
            conn.execute(sa.select(outbox.c.key).where(outbox.c.key.in_(keys))).scalars()
        )
        due = conn.execute(
            sa.select(sa.func.count()).where(claimable(now, list(config.routes())))
        ).scalar_one()
    carried = {channel for _, channel in config.routes()}
    return DryRun(
        would_queue=[a for a in actions if a.key not in existing],
        already_queued=len(existing),
        due=int(due),
        unrouted=sorted({a.channel for a in actions} - carried),
        warnings=list(warnings),
    )


PURGED_TEXT = "(removed by debsync purge under the [privacy] retention; its hash is kept)"


@dataclass
class Preview:
    """One action's message. ``stored`` is true when ``text`` is exactly what was handed to
    the channel (its hash is ``row.payload_sha256``); otherwise it is composed with today's
    figures, or ``ending`` says why the action would not be sent. ``payload`` is what the
    channel was or would be handed (None when purged or not sent)."""

    row: Row[Any]
    stored: bool
    text: str | None
    ending: Ending | None = None
    dropped: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None


def preview(dispatcher: Dispatcher, key_prefix: str, today: date) -> Preview:
    """The message of the action whose id starts with ``key_prefix``."""
    row = find(dispatcher.store, key_prefix)
    configured = dispatcher.config.action_for(row.instance, row.channel)
    if configured is None:
        raise OutboxError(f"no [actions] instance carries channel {row.channel!r}")
    action = dispatcher.action(configured)
    if row.payload == PURGED_PAYLOAD:
        return Preview(row, stored=True, text=PURGED_TEXT)
    if row.payload is not None and row.state not in OPEN_STATES:
        return Preview(row, stored=True, text=action.preview(row.payload), payload=row.payload)
    with dispatcher.store.engine.connect() as conn:
        facts = load_facts(conn, [row], dispatcher.config)
    composed = dispatcher.composer.compose(action, row, facts, today)
    if isinstance(composed, Ending):
        return Preview(row, stored=False, text=None, ending=composed)
    return Preview(
        row,
        stored=False,
        text=action.preview(composed.payload),
        dropped=sorted(composed.dropped),
        payload=composed.payload,
    )
