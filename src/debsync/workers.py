"""The registry of running daemon processes (table ``workers``), on one machine or many.

A worker registers when it starts, sends a heartbeat every third of its lease with what it
holds (the instances it is syncing, the outbox rows it has leased), marks itself stopping on
SIGTERM and removes its row on exit. A worker whose heartbeat is older than the lease is dead:
what it held is free again by then (its sync locks died with its connections, its outbox
leases and schedule holds expire), and the next worker to start clears its row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from debsync import __version__
from debsync.store import Store
from debsync.store.schema import outbox, workers


@dataclass(frozen=True)
class Worker:
    """One row of the registry."""

    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    holding: dict[str, Any] = field(default_factory=dict)
    stopping: bool = False

    @property
    def syncing(self) -> list[str]:
        return list(self.holding.get("syncing", []))

    @property
    def sending(self) -> int:
        return int(self.holding.get("sending", 0))


def register(store: Store, worker_id: str, now: datetime) -> None:
    """Enter this process (``host:pid:random``, see :func:`debsync.outbox.table.worker_id`)."""
    host, pid, _ = worker_id.rsplit(":", 2)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(workers).values(
                id=worker_id,
                host=host,
                pid=int(pid),
                version=__version__,
                started_at=now,
                heartbeat_at=now,
                holding={"syncing": [], "sending": 0},
                stopping=False,
            )
        )


def heartbeat(store: Store, worker_id: str, now: datetime, syncing: Collection[str]) -> None:
    """Say this worker is alive and what it holds: ``syncing`` as it knows it, the outbox rows
    as their leases say."""
    with store.engine.begin() as conn:
        sending = conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.lease_owner == worker_id, outbox.c.lease_until > now)
        ).scalar_one()
        conn.execute(
            sa.update(workers)
            .where(workers.c.id == worker_id)
            .values(heartbeat_at=now, holding={"syncing": sorted(syncing), "sending": sending})
        )


def mark_stopping(store: Store, worker_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(workers).where(workers.c.id == worker_id).values(stopping=True))


def remove(store: Store, worker_ids: Collection[str]) -> None:
    if not worker_ids:
        return
    with store.engine.begin() as conn:
        conn.execute(sa.delete(workers).where(workers.c.id.in_(list(worker_ids))))


def _workers(store: Store, condition: sa.ColumnElement[bool]) -> list[Worker]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(workers).where(condition).order_by(workers.c.host, workers.c.started_at)
        ).all()
    return [
        Worker(
            id=r.id,
            host=r.host,
            pid=r.pid,
            version=r.version,
            started_at=r.started_at,
            heartbeat_at=r.heartbeat_at,
            holding=dict(r.holding or {}),
            stopping=r.stopping,
        )
        for r in rows
    ]


def live(store: Store, now: datetime, lease: timedelta) -> list[Worker]:
    """Workers that sent a heartbeat within ``lease``."""
    return _workers(store, workers.c.heartbeat_at >= now - lease)


def dead(store: Store, now: datetime, lease: timedelta) -> list[Worker]:
    """Workers silent for longer than ``lease``: killed, or on a machine that went away."""
    return _workers(store, workers.c.heartbeat_at < now - lease)
