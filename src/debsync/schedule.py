"""The per-instance sync schedule every daemon worker shares, kept in ``connector_state``:
``next_sync_at`` (when the instance is next due) and ``failures`` (failed syncs in a row).

A worker :func:`claim`\\ s due instances with one conditional ``UPDATE`` that pushes their
``next_sync_at`` forward by a hold: a second worker's claim no longer sees them as due, so two
workers do not pick the same instance (on PostgreSQL the candidate rows are also locked with
``FOR UPDATE SKIP LOCKED``, so concurrent claims pass each other instead of queueing). If the
worker dies, the instance is due again once the hold has passed. The sync lock
(:func:`debsync.store.locks.sync_lock`) still guarantees one sync per instance whoever starts
it; the schedule only spreads the work. When the sync ends, :func:`finished` sets the next due
time: the interval with jitter after a success, an exponential backoff after failures (each
instance alone: the others keep their rhythm). The failure's reason stays in
``connector_state.last_error``, where the sync engine puts it.

Planning is shared the same way: a worker plans the instances it synced, and
:func:`unplanned` finds the ones no worker planned since their last sync (the worker that
synced them died first) or since the day began; :func:`planned` records each plan once its
actions are queued.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from debsync.clock import AMSTERDAM, local_date
from debsync.store import Store
from debsync.store.schema import connector_state


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(connector_state.c.next_sync_at.is_(None), connector_state.c.next_sync_at <= now)


def _ensure_rows(conn: sa.Connection, instances: Mapping[str, str]) -> None:
    """A row for every configured instance (name → type) that has none yet: never synced, so
    due. Concurrent workers insert the same rows; the first one wins, the others skip."""
    if not instances:
        return
    known = set(
        conn.execute(
            sa.select(connector_state.c.instance).where(
                connector_state.c.instance.in_(list(instances))
            )
        ).scalars()
    )
    missing = [{"instance": n, "type": t} for n, t in instances.items() if n not in known]
    if not missing:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(connector_state).on_conflict_do_nothing(index_elements=["instance"]),
        missing,
    )


def due(store: Store, instances: Collection[str], now: datetime) -> list[str]:
    """The instances among ``instances`` due at ``now`` (never scheduled, or their time has
    come), the longest waiting first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(connector_state.c.instance, connector_state.c.next_sync_at).where(
                connector_state.c.instance.in_(list(instances))
            )
        ).all()
    scheduled = {row.instance: row.next_sync_at for row in rows}
    floor = datetime.min.replace(tzinfo=now.tzinfo)
    waiting = []
    for name in instances:
        at = scheduled.get(name)
        if at is None or at <= now:
            waiting.append((at or floor, name))
    return [name for _, name in sorted(waiting)]


def claim(
    store: Store, instances: Mapping[str, str], now: datetime, *, hold: timedelta, limit: int
) -> list[str]:
    """Take up to ``limit`` due instances among ``instances`` (name → type) for this worker:
    their ``next_sync_at`` moves to ``now + hold``, so no other worker takes them meanwhile."""
    if limit <= 0 or not instances:
        return []
    with store.engine.begin() as conn:
        _ensure_rows(conn, instances)
        pick = (
            sa.select(connector_state.c.instance)
            .where(connector_state.c.instance.in_(list(instances)), _due(now))
            .order_by(connector_state.c.next_sync_at.is_not(None), connector_state.c.next_sync_at)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        claimed = conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance.in_(pick.scalar_subquery()), _due(now))
            .values(next_sync_at=now + hold)
            .returning(connector_state.c.instance)
        ).scalars()
        return sorted(claimed)


def release(store: Store, instances: Collection[str], now: datetime) -> None:
    """Give claimed instances back unsynced (a stopping worker): due again at once."""
    if not instances:
        return
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance.in_(list(instances)))
            .values(next_sync_at=now)
        )


def backoff(failures: int, every: timedelta, max_backoff: timedelta) -> timedelta:
    """The wait after ``failures`` failed syncs in a row: the instance's own interval, doubled
    for each further failure, at most ``max_backoff`` (but never less than the interval): a
    failing instance is never asked more often than a healthy one."""
    doubled: timedelta = every * 2 ** min(max(failures - 1, 0), 30)
    return max(every, min(doubled, max_backoff))


def jittered(wait: timedelta, jitter: float, rng: random.Random) -> timedelta:
    """``wait`` lengthened or shortened by up to the fraction ``jitter``."""
    return wait * (1 + rng.uniform(-jitter, jitter))


def finished(
    store: Store,
    instance: str,
    ok: bool,
    now: datetime,
    *,
    every: timedelta,
    jitter: float,
    max_backoff: timedelta,
    rng: random.Random,
    error: str | None = None,
) -> datetime:
    """Schedule ``instance``'s next sync after one that ended at ``now``; returns when.

    A success resets the failure count and waits ``every`` ± ``jitter``; a failure counts one
    more in a row and waits :func:`backoff` ± ``jitter``. ``error`` is a failure that came
    before any sync run could record one (the connector could not be built): it becomes the
    instance's ``last_error``, as a run's error does."""
    with store.engine.begin() as conn:
        failures = conn.execute(
            sa.select(connector_state.c.failures).where(connector_state.c.instance == instance)
        ).scalar_one_or_none()
        failures = 0 if ok else (failures or 0) + 1
        wait = every if ok else backoff(failures, every, max_backoff)
        at = now + jittered(wait, jitter, rng)
        conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance == instance)
            .values(
                next_sync_at=at,
                failures=failures,
                **({"last_error": error} if error is not None else {}),
            )
        )
    return at


def unplanned(
    store: Store, instances: Collection[str], now: datetime, *, grace: timedelta
) -> set[str]:
    """The instances among ``instances`` whose plan is missing: synced more than ``grace``
    ago and not planned since (the worker that synced them would have planned them by then),
    or planned on an earlier day (today's plan is a new one)."""
    day = datetime.combine(local_date(now), time(), tzinfo=AMSTERDAM)
    state = connector_state.c
    with store.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(state.instance).where(
                    state.instance.in_(list(instances)),
                    state.last_success_at.is_not(None),
                    sa.or_(
                        sa.and_(
                            state.last_success_at <= now - grace,
                            sa.or_(
                                state.planned_at.is_(None), state.planned_at < state.last_success_at
                            ),
                        ),
                        state.planned_at < day,
                    ),
                )
            ).scalars()
        )


def planned(store: Store, instances: Collection[str], at: datetime) -> None:
    """Record that ``instances`` were planned from the store as it was at ``at`` (a sync
    that ended later leaves them unplanned)."""
    if not instances:
        return
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance.in_(list(instances)))
            .values(planned_at=at)
        )
