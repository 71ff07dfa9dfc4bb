"""``/metrics``: the store's figures read at scrape time, and this process's counters.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (tests build many apps;
the global registry would refuse the second). What the store knows (amounts, the outbox's
backlog, sync runs) is read when Prometheus scrapes, so every worker of a fleet on one
PostgreSQL shows the same fleet-wide figures: scrape one, or take ``max`` over them. What only
a process knows (API calls, rate-limit waits, actions handed to channels) comes from
:mod:`debsync.metrics`; sum those over the workers.

Per administration, the label is ``connector_instance``: Prometheus gives ``instance`` to the
scraped target.

Sync runs are counted from ``sync_runs`` incrementally: each scrape reads only the runs that
finished since the last one, starting with the runs after the server started (counters
start at zero, as Prometheus expects of a restarted process).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Connection

from debsync import metrics
from debsync.clock import Clock, local_date
from debsync.config import Config
from debsync.model import from_minor
from debsync.server.state import ServerState
from debsync.store import Store
from debsync.store.schema import (
    OPEN_STATES,
    ActionState,
    connector_state,
    invoices,
    outbox,
    sync_runs,
)

DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Seconds: a CSV file syncs in under a second, a first Exact sync of many divisions in
tens of minutes."""

ABANDONED = timedelta(days=1)
"""A run still ``running`` after this long belonged to a process that died; it is not
waited for (the instance's next sync marks it interrupted)."""

BACKLOG = (*OPEN_STATES, ActionState.DEAD)
"""What ``debsync_outbox_backlog`` counts: what is under way, and what waits for review."""

SEEN, WRITTEN, REJECTED = "seen", "written", "rejected"
_NOT_WRITES = ("invoices_seen", "rejects")


def registry(config: Config, store: Store, state: ServerState, clock: Clock) -> CollectorRegistry:
    """A registry with the store's figures and this process's counters."""
    found = CollectorRegistry(auto_describe=False)
    found.register(StoreCollector(config, store, state, clock))
    metrics.register(found)
    return found


class _Runs:
    """Totals of the finished sync runs from id ``below`` on, advanced on every scrape."""

    def __init__(self, below: int) -> None:
        self.below = below
        self.runs: Counter[tuple[str, str]] = Counter()
        self.records: Counter[tuple[str, str]] = Counter()
        self.buckets: dict[str, list[int]] = {}
        self.seconds: Counter[str] = Counter()
        self.lock = threading.Lock()

    def update(self, conn: Connection, now: datetime) -> None:
        rows = conn.execute(
            sa.select(
                sync_runs.c.id,
                sync_runs.c.instance,
                sync_runs.c.status,
                sync_runs.c.started_at,
                sync_runs.c.finished_at,
                sync_runs.c.counts,
            )
            .where(sync_runs.c.id >= self.below)
            .order_by(sync_runs.c.id)
        )
        for row in rows:
            if row.status == "running":
                if row.started_at > now - ABANDONED:
                    break  # counted once it finishes: later runs are read again till then
                self.below = row.id + 1
                continue
            self.below = row.id + 1
            self.runs[row.instance, row.status] += 1
            counts: dict[str, Any] = row.counts or {}
            self.records[row.instance, SEEN] += int(counts.get("invoices_seen", 0))
            self.records[row.instance, REJECTED] += int(counts.get("rejects", 0))
            self.records[row.instance, WRITTEN] += sum(
                int(v) for k, v in counts.items() if k not in _NOT_WRITES
            )
            if row.finished_at is None:  # marked interrupted by an old version: no duration
                continue
            seconds = max((row.finished_at - row.started_at).total_seconds(), 0.0)
            buckets = self.buckets.setdefault(row.status, [0] * (len(DURATION_BUCKETS) + 1))
            for index, bound in enumerate((*DURATION_BUCKETS, float("inf"))):
                if seconds <= bound:
                    buckets[index] += 1
            self.seconds[row.status] += seconds

    def families(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "debsync_sync_runs",
            "Sync runs finished since this server started, by instance and status "
            "(ok, failed, interrupted).",
            labels=["connector_instance", "status"],
        )
        for (instance, status), n in sorted(self.runs.items()):
            runs.add_metric([instance, status], n)
        records = CounterMetricFamily(
            "debsync_sync_records",
            "Records of those runs: invoices seen, rows written, records rejected.",
            labels=["connector_instance", "outcome"],
        )
        for (instance, outcome), n in sorted(self.records.items()):
            records.add_metric([instance, outcome], n)
        duration = HistogramMetricFamily(
            "debsync_sync_duration_seconds",
            "How long those runs took, by status.",
            labels=["status"],
        )
        for status, buckets in sorted(self.buckets.items()):
            bounds = [*(str(b) for b in DURATION_BUCKETS), "+Inf"]
            duration.add_metric(
                [status], list(zip(bounds, buckets, strict=True)), self.seconds[status]
            )
        yield from (runs, records, duration)


class StoreCollector(Collector):
    """Reads the store when Prometheus scrapes: a few grouped queries, whatever its size."""

    def __init__(self, config: Config, store: Store, state: ServerState, clock: Clock) -> None:
        self.config, self.store, self.state, self.clock = config, store, state, clock
        with store.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(sync_runs.c.id))).scalar()
        self._runs = _Runs(int(last or 0) + 1)

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.store.engine.connect() as conn:
            families = [*self._amounts(conn, now), self._backlog(conn), self._ages(conn, now)]
            with self._runs.lock:  # two scrapes at once must not count a run twice
                self._runs.update(conn, now)
                families += self._runs.families()
        backoff = GaugeMetricFamily(
            "debsync_instance_backoff",
            "1 while the daemon backs off an instance, with the reason.",
            labels=["connector_instance", "reason"],
        )
        for instance, reason in sorted(self.state.backoff.items()):
            backoff.add_metric([instance, reason], 1)
        yield from (*families, backoff)

    def _amounts(self, conn: Connection, now: datetime) -> Iterator[Metric]:
        overdue = sa.case((invoices.c.due_date < local_date(now), invoices.c.open_minor), else_=0)
        rows = conn.execute(
            sa.select(
                invoices.c.instance,
                invoices.c.currency,
                sa.func.count(),
                sa.func.sum(invoices.c.open_minor),
                sa.func.sum(overdue),
            )
            .where(invoices.c.state == "open")
            .group_by(invoices.c.instance, invoices.c.currency)
        ).all()
        labels = ["connector_instance", "currency"]
        count = GaugeMetricFamily("debsync_open_invoices", "Open invoices.", labels=labels)
        amount = GaugeMetricFamily(
            "debsync_open_amount", "Open amount (a float: for graphs, not books).", labels=labels
        )
        late = GaugeMetricFamily(
            "debsync_overdue_amount", "Open amount past its due date.", labels=labels
        )
        seen = set()
        for instance, currency, n, open_minor, overdue_minor in rows:
            seen.add(instance)
            count.add_metric([instance, currency], n)
            amount.add_metric([instance, currency], float(from_minor(open_minor, currency)))
            late.add_metric([instance, currency], float(from_minor(overdue_minor, currency)))
        for instance in sorted(set(self.config.connectors) - seen):  # all paid: 0, not absent
            for family in (count, amount, late):
                family.add_metric([instance, "EUR"], 0)
        yield from (count, amount, late)

    def _backlog(self, conn: Connection) -> Metric:
        rows: dict[str, int] = dict(
            conn.execute(
                sa.select(outbox.c.state, sa.func.count())
                .where(outbox.c.state.in_(BACKLOG))
                .group_by(outbox.c.state)
            ).all()
        )
        backlog = GaugeMetricFamily(
            "debsync_outbox_backlog",
            "Outbox actions not finished, or dead and waiting for a person, by state.",
            labels=["state"],
        )
        for state in BACKLOG:
            backlog.add_metric([state.value], rows.get(state.value, 0))
        return backlog

    def _ages(self, conn: Connection, now: datetime) -> Metric:
        rows = conn.execute(
            sa.select(connector_state.c.instance, connector_state.c.last_success_at).where(
                connector_state.c.instance.in_(list(self.config.connectors)),
                connector_state.c.last_success_at.is_not(None),
            )
        ).all()
        ages = GaugeMetricFamily(
            "debsync_last_sync_age_seconds",
            "Seconds since the instance's last successful sync (absent: never synced).",
            labels=["connector_instance"],
        )
        for instance, at in sorted(rows):
            ages.add_metric([instance], max((now - at).total_seconds(), 0.0))
        return ages
