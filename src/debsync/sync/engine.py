"""Running connector instances: one sync run per instance, its pages applied in order, the
run and its cursor recorded, observers told. See :mod:`debsync.sync` for the guarantees."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync.clock import Clock, system_clock
from debsync.config import Config, ConnectorInstance
from debsync.connectors.base import (
    Connector,
    ConnectorContext,
    Page,
    Previous,
    Reject,
    SyncResult,
)
from debsync.errors import ConnectorError, FatalConnectorError, scrub
from debsync.invoice_rows import rows_of
from debsync.plugins import Plugins
from debsync.scheduler import collector_paused
from debsync.store import Store
from debsync.store.locks import sync_lock
from debsync.store.schema import (
    connector_state,
    debtors,
    invoices,
    sync_rejects,
    sync_runs,
)
from debsync.sync.rows import insert_rejects
from debsync.sync.writer import Known, PageWriter
from debsync.tokens import vault_for

log = logging.getLogger("debsync.sync")


ProgressCallback = Callable[[SyncResult], None]


def build_connector(
    instance: ConnectorInstance, config: Config, clock: Clock, store: Store
) -> Connector[Any]:
    context = ConnectorContext(
        instance=instance.name,
        config_dir=config.directory,
        clock=clock,
        tokens=vault_for(config, store, instance.name),
    )
    return instance.cls(instance.name, instance.settings, context)


@dataclass
class AlreadySyncing(SyncResult):
    """Another process was syncing the instance, so this run did nothing and recorded nothing
    (no run, ``run_id`` 0). Not a failure: the run under way brings the same changes in."""

    ok: bool = True


class SyncEngine:
    """Applies connector pages to the store. One engine per store; stateless between runs."""

    def __init__(
        self, store: Store, *, clock: Clock = system_clock, plugins: Plugins | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.plugins = plugins

    async def run(
        self,
        instance: ConnectorInstance,
        connector: Connector[Any],
        *,
        allow_mass_close: bool = False,
        progress: ProgressCallback | None = None,
    ) -> SyncResult:
        """Sync one connector instance; never raises for connector or record failures: the
        outcome, including the error, is in the returned result and in the store.

        One sync per instance at a time, whoever starts it: when another process holds the
        instance's lock this returns :class:`AlreadySyncing` at once, without waiting (the run
        under way fetches the same source) and without recording a run or calling hooks.

        The cyclic garbage collector is paused meanwhile: a page's records are small and
        acyclic, and collecting again and again over a large snapshot costs a sixth of a run."""
        with sync_lock(self.store.engine, instance.name) as held, collector_paused():
            if not held:
                log.info("sync %s: already syncing in another process", instance.name)
                return AlreadySyncing(instance=instance.name, run_id=0, snapshot=False)
            return await self._run_locked(
                instance, connector, allow_mass_close=allow_mass_close, progress=progress
            )

    async def apply(
        self, instance: ConnectorInstance, connector: Connector[Any], pages: AsyncIterator[Page]
    ) -> SyncResult:
        """Apply pages that arrived outside a fetch (a webhook's change, :mod:`debsync.webhooks`)
        as an incremental run of their own. The cursor, the last success and the last error
        stay as they were: freshness still means a sync that read the whole source. Returns
        :class:`AlreadySyncing` while a sync holds the instance."""
        with sync_lock(self.store.engine, instance.name) as held:
            if not held:
                return AlreadySyncing(instance=instance.name, run_id=0, snapshot=False)
            return await self._run_locked(
                instance, connector, allow_mass_close=False, progress=None, pages=pages
            )

    async def _run_locked(
        self,
        instance: ConnectorInstance,
        connector: Connector[Any],
        *,
        allow_mass_close: bool,
        progress: ProgressCallback | None,
        pages: AsyncIterator[Page] | None = None,
    ) -> SyncResult:
        started = self.clock()
        delivered = pages is not None
        with self.store.engine.begin() as conn:
            state = self._prepare_state(conn, instance, started)
            incremental = delivered or (
                "incremental" in connector.capabilities
                and state["cursor"] is not None
                and state["snapshot_started_at"] is None
            )
            run_id = self._start_run(conn, instance.name, started, snapshot=not incremental)
            unchanged_since = (
                _last_snapshot(conn, instance.name)
                if "digest" in connector.capabilities
                and not incremental
                and state["cursor"] is not None
                and state["snapshot_started_at"] is None
                else None
            )
            known_debtors, known_invoices, raw, purged = _load_known(conn, instance.name)
        connector.previous = Previous(
            invoices={
                ext: fp
                for (kind, ext), fp in raw.items()
                if kind == "invoice" and known_invoices[ext].state == "open"
            },
            debtors={ext: fp for (kind, ext), fp in raw.items() if kind == "debtor"},
        )
        result = SyncResult(instance=instance.name, run_id=run_id, snapshot=not incremental)
        if state["type"] != instance.type_name:
            result.error = (
                f"instance {instance.name!r} was synced as type {state['type']!r} and is now "
                f"configured as {instance.type_name!r}; records are keyed by instance, so give "
                "the new source a new instance name"
            )
            self._finish_run(result)
            if self.plugins is not None:
                self.plugins.sync_finished(instance.name, result)
            return result
        apply = PageWriter(
            instance=instance.name,
            run_id=run_id,
            clock=self.clock,
            derive_payments="payments" not in connector.capabilities,
            known_debtors=known_debtors,
            known_invoices=known_invoices,
            known_raw=raw,
            previous=connector.previous,
            counts=result.counts,
        )
        seen: set[str] = set()
        complete = carried = False
        cursor = state["cursor"]
        try:
            if pages is None:
                given = incremental or unchanged_since is not None
                pages = connector.fetch(cursor if given else None)
            async for page in pages:
                if not carried and unchanged_since is not None and _same_export(page, cursor):
                    self._carry_forward(instance.name, unchanged_since, result)
                    carried = True
                    if progress:
                        progress(result)
                    continue
                if page.snapshot_complete and incremental:
                    raise FatalConnectorError(
                        f"connector {connector.type_name!r} marked an incremental page as "
                        "snapshot_complete; only a full snapshot (cursor None) can be complete"
                    )
                if complete or carried:
                    raise FatalConnectorError(
                        f"connector {connector.type_name!r} yielded a page after the snapshot "
                        "was complete"
                    )
                with self.store.engine.begin() as conn:
                    _screen_purged(conn, instance.name, page, purged, known_debtors)
                    apply.page(conn, page)
                    if not delivered:
                        self._save_cursor(conn, instance.name, page, snapshot=not incremental)
                apply.committed()
                seen.update(row.external_id for row in rows_of(page.invoices))
                seen.update(page.unchanged_invoices)
                seen.update(r.invoice_id for r in page.rejects if r.invoice_id)
                result.pages += 1
                result.rejects.extend(page.rejects)
                complete = page.snapshot_complete
                if progress:
                    progress(result)
                await asyncio.sleep(0)  # a page boundary: a Ctrl-C (a cancelled task) lands here
            if not incremental and not complete and not carried:
                raise FatalConnectorError(
                    f"connector {connector.type_name!r} ended a full snapshot without a page "
                    "marked snapshot_complete; nothing was closed"
                )
            if complete:
                with self.store.engine.begin() as conn:
                    apply.close_absent(conn, seen, allow_mass_close=allow_mass_close)
                    conn.execute(
                        sa.update(connector_state)
                        .where(connector_state.c.instance == instance.name)
                        .values(snapshot_started_at=None)
                    )
                apply.committed()
        except ConnectorError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:  # Ctrl-C: the pages written stay, nothing is closed
            result.error = f"interrupted after {result.pages} page(s); nothing was closed"
            self._finish_run(result, keep_state=delivered, interrupted=True)
            raise
        except Exception as exc:  # a connector bug must not take the daemon down
            trace = scrub(traceback.format_exc())  # a record in a frame's text holds names
            log.error("sync %s: unexpected error\n%s", instance.name, trace)
            result.error = f"unexpected {type(exc).__name__}: {exc}"
        else:
            result.ok = True
        self._finish_run(result, keep_state=delivered)
        if progress:
            progress(result)
        if self.plugins is not None:
            self.plugins.sync_finished(instance.name, result)
        return result

    def _carry_forward(self, instance: str, since: int, result: SyncResult) -> None:
        """A digest connector read the same export as the last complete snapshot (run
        ``since``): nothing is parsed, written or closed; that run's rejects are stored and
        logged again for this run, so ``debsync status`` shows them as after a full re-read."""
        with self.store.engine.begin() as conn:
            rejects = [
                Reject(*row)
                for row in conn.execute(
                    sa.select(
                        sync_rejects.c.kind,
                        sync_rejects.c.ref,
                        sync_rejects.c.reason,
                        sync_rejects.c.invoice_id,
                        sync_rejects.c.dropped,
                    )
                    .where(sync_rejects.c.run_id == since)
                    .order_by(sync_rejects.c.id)
                )
            ]
            if rejects:
                insert_rejects(conn, instance, result.run_id, rejects)
            counts = conn.execute(
                sa.select(sync_runs.c.counts).where(sync_runs.c.id == since)
            ).scalar_one()
        result.counts.invoices_seen = int(counts.get("invoices_seen", 0))
        result.counts.rejects = len(rejects)
        result.rejects.extend(rejects)
        result.pages = 1

    def _prepare_state(
        self, conn: Connection, instance: ConnectorInstance, now: datetime
    ) -> dict[str, Any]:
        # Under the instance's sync lock, a run still marked running belongs to a process
        # that died.
        conn.execute(
            sa.update(sync_runs)
            .where(sync_runs.c.instance == instance.name, sync_runs.c.status == "running")
            .values(status="interrupted", finished_at=now)
        )
        row = (
            conn.execute(
                sa.select(connector_state).where(connector_state.c.instance == instance.name)
            )
            .mappings()
            .first()
        )
        if row is None:
            conn.execute(
                sa.insert(connector_state).values(
                    instance=instance.name, type=instance.type_name, last_attempt_at=now
                )
            )
            return {"type": instance.type_name, "cursor": None, "snapshot_started_at": None}
        conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance == instance.name)
            .values(last_attempt_at=now)
        )
        return dict(row)

    def _start_run(self, conn: Connection, instance: str, now: datetime, *, snapshot: bool) -> int:
        run_id = conn.execute(
            sa.insert(sync_runs)
            .values(
                instance=instance,
                started_at=now,
                status="running",
                snapshot=snapshot,
                pages=0,
                counts={},
            )
            .returning(sync_runs.c.id)
        ).scalar_one()
        return int(run_id)

    def _save_cursor(self, conn: Connection, instance: str, page: Page, *, snapshot: bool) -> None:
        values: dict[str, Any] = {"cursor": page.cursor}
        if snapshot:
            values["snapshot_started_at"] = sa.func.coalesce(
                connector_state.c.snapshot_started_at, self.clock()
            )
        conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance == instance)
            .values(**values)
        )

    def _finish_run(
        self, result: SyncResult, *, keep_state: bool = False, interrupted: bool = False
    ) -> None:
        now = self.clock()
        if result.error is not None:  # stored, logged and shown: no other debtor's data in it
            result.error = scrub(result.error)
        status = "interrupted" if interrupted else "ok" if result.ok else "failed"
        with self.store.engine.begin() as conn:
            conn.execute(
                sa.update(sync_runs)
                .where(sync_runs.c.id == result.run_id)
                .values(
                    finished_at=now,
                    status=status,
                    pages=result.pages,
                    counts=asdict(result.counts),
                    error=result.error,
                )
            )
            values: dict[str, Any] = {"last_error": result.error, "last_run_id": result.run_id}
            if result.ok:
                values["last_success_at"] = now
            if not keep_state:
                conn.execute(
                    sa.update(connector_state)
                    .where(connector_state.c.instance == result.instance)
                    .values(**values)
                )
        if result.ok:
            log.info(
                "sync %s: ok, %d page(s), %d write(s), %d reject(s)",
                result.instance,
                result.pages,
                result.counts.writes,
                result.counts.rejects,
                extra={"instance": result.instance, "run_id": result.run_id},
            )
        else:
            log.warning(
                "sync %s: %s: %s",
                result.instance,
                status,
                result.error,
                extra={"instance": result.instance, "run_id": result.run_id},
            )


def _fetch_raw(conn: Connection, query: sa.Select[Any]) -> list[Any]:
    """All rows of ``query`` as the driver's own tuples: a large instance's stored state
    (120,000 rows) costs a third as much without SQLAlchemy's per-row result processing.
    Only for columns whose driver values are the Python values (text, integers, bytes,
    NULL tests)."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _load_known(
    conn: Connection, instance: str
) -> tuple[dict[str, bytes], dict[str, Known], dict[tuple[str, str], bytes], set[str]]:
    """What the store holds of an instance's records: debtor fingerprints, what the engine
    remembers of each invoice, the raw fingerprints (:class:`Previous`), purged debtors."""
    known_debtors: dict[str, bytes] = {}
    raw: dict[tuple[str, str], bytes] = {}
    purged: set[str] = set()
    query = sa.select(
        debtors.c.external_id,
        debtors.c.fingerprint,
        debtors.c.raw_fingerprint,
        debtors.c.purged_at.is_not(None),
    ).where(debtors.c.instance == instance)
    for ext, fingerprint, raw_fingerprint, is_purged in _fetch_raw(conn, query):
        known_debtors[ext] = bytes(fingerprint)
        if is_purged:
            purged.add(ext)  # no raw fingerprint: the connector sends it again
        elif raw_fingerprint is not None:
            raw[("debtor", ext)] = bytes(raw_fingerprint)
    known_invoices: dict[str, Known] = {}
    query = sa.select(
        invoices.c.external_id,
        invoices.c.fingerprint,
        invoices.c.state,
        invoices.c.open_minor,
        invoices.c.currency,
        invoices.c.debtor_id,
        invoices.c.number,
        invoices.c.raw_fingerprint,
    ).where(invoices.c.instance == instance)
    for ext, fingerprint, state, open_minor, currency, debtor_id, number, raw_fp in _fetch_raw(
        conn, query
    ):
        known_invoices[ext] = Known(
            bytes(fingerprint), state, int(open_minor), currency, debtor_id, number
        )
        if raw_fp is not None:
            raw[("invoice", ext)] = bytes(raw_fp)
    return known_debtors, known_invoices, raw, purged


def _last_snapshot(conn: Connection, instance: str) -> int | None:
    """The last successful full snapshot's run: the one a digest connector's unchanged
    export repeats."""
    run_id = conn.execute(
        sa.select(sa.func.max(sync_runs.c.id)).where(
            sync_runs.c.instance == instance,
            sync_runs.c.status == "ok",
            sync_runs.c.snapshot.is_(True),
        )
    ).scalar_one_or_none()
    return None if run_id is None else int(run_id)


def _same_export(page: Page, cursor: Any) -> bool:
    """Whether a digest connector says its export is the one the cursor names: a complete
    snapshot of one empty page at that same cursor."""
    return (
        page.snapshot_complete
        and page.cursor == cursor
        and not page.closed
        and not page.record_count
        and not page.unchanged_debtors
    )


def _screen_purged(
    conn: Connection, instance: str, page: Page, purged: set[str], known: dict[str, bytes]
) -> None:
    """A purged debtor (:mod:`debsync.privacy`) stays purged while it has no open invoice:
    its records, and the rejects of them, are dropped unread. An open invoice makes it live
    again: ``purged_at`` is cleared and its fingerprints forgotten, so its next record is
    written in full."""
    if not purged:
        return
    live = purged & {row.debtor_id for row in rows_of(page.invoices)}
    if live:
        conn.execute(
            sa.update(debtors)
            .where(debtors.c.instance == instance, debtors.c.external_id.in_(live))
            .values(purged_at=None, fingerprint=bytes(16), raw_fingerprint=None)
        )
        known.update(dict.fromkeys(live, bytes(16)))
        purged -= live
    page.debtors = [d for d in page.debtors if d.external_id not in purged]
    page.rejects = [r for r in page.rejects if r.kind != "debtor" or r.ref not in purged]


class SyncProgress(Protocol):
    """What a caller sees of a multi-instance sync while it runs (the CLI's progress line)."""

    def started(self, instance: str) -> None: ...

    def page(self, result: SyncResult) -> None: ...

    def finished(self, result: SyncResult) -> None: ...


async def sync_instances(
    config: Config,
    store: Store,
    names: Sequence[str],
    plugins: Plugins | None = None,
    *,
    clock: Clock = system_clock,
    allow_mass_close: bool = False,
    progress: SyncProgress | None = None,
) -> list[SyncResult]:
    """Sync the named instances one after another; one failing instance never stops the
    others (its error is in its result and in the store)."""
    engine = SyncEngine(store, clock=clock, plugins=plugins)
    results: list[SyncResult] = []
    for name in names:
        configured = config.connectors[name]
        if progress is not None:
            progress.started(name)
        connector = build_connector(configured, config, clock, store)
        result = await engine.run(
            configured,
            connector,
            allow_mass_close=allow_mass_close,
            progress=progress.page if progress is not None else None,
        )
        if progress is not None:
            progress.finished(result)
        results.append(result)
    return results
