"""Scale-out on PostgreSQL: three `debsync run` workers share 200 connector instances and their
due reminders to a real SMTP server (aiosmtpd on loopback); one worker is SIGKILLed halfway.

The issue's 5,000 reminders (25 per instance): about a minute on two quiet cores.

At the end every instance was synced, every action was delivered exactly once or waits in
review (in doubt: the killed worker had handed it over), and no instance was ever synced by
two workers at once: the runs of each instance in ``sync_runs`` never overlap.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from debsync import outbox
from debsync.store import open_store
from debsync.store.schema import ActionState, connector_state, sync_runs

from smtp_server import SMTPTestServer

INSTANCES = 200
DEBTORS = 25  # per instance: 5,000 reminders
WORKERS = 3
NOW = "2026-12-14T10:00:00+01:00"  # a Monday inside the send window
WAIT = 300.0  # the most the whole run may take on a slow machine; no figure is asserted
PG_ENV = "DEBSYNC_TEST_DATABASE_URL"


@pytest.fixture
def store_url() -> Iterator[str]:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def write_world(
    directory: Path,
    url: str,
    smtp: tuple[str, int],
    *,
    instances: int = INSTANCES,
    debtors: int = DEBTORS,
    sync_every: str = "1h",
) -> Path:
    """``instances`` CSV exports of ``debtors`` overdue invoices each, and a config that mails
    them through the SMTP server at ``smtp`` (bench/daemon.py builds its world here too)."""
    header = "Relatiecode;Naam;Soort;E-mail;Factuurnummer;Factuurdatum;Vervaldatum;Openstaand"
    tables = []
    for i in range(instances):
        rows = [header]
        for n in range(debtors):
            rows.append(
                f"D{n:03d};Klant {i}-{n} B.V.;Zakelijk;debiteur{i}x{n}@example.nl;F{i:03d}-{n:03d};"
                f"01-11-2026;{1 + n % 9:02d}-12-2026;{100 + n},00"
            )
        (directory / f"books{i:03d}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        tables.append(f'[connectors.books{i:03d}]\ntype = "csv"\npath = "books{i:03d}.csv"\n')
    config = directory / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "{url}"

[http]
port = 0  # any free port: tests run side by side

[daemon]
sync_every = "{sync_every}"
lease = "6s"
shutdown_grace = "10s"

[outbox]
lease_seconds = 5
batch_size = 100

[creditor]
name = "Voorbeeld Installatietechniek B.V."
iban = "NL91ABNA0417164300"

[actions.mail]
type = "email"
host = "{smtp[0]}"
port = {smtp[1]}
security = "none"
allow_insecure = true
from_address = "debiteuren@voorbeeld-installatie.example.nl"

"""
        + "\n".join(tables),
        encoding="utf-8",
    )
    return config


def worker(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "debsync", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DEBSYNC_NOW": NOW, "DEBSYNC_DISABLE_PLUGINS": ""},
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_share_the_work_and_survive_one_killed(
    store_url: str, tmp_path: Path
) -> None:
    total = INSTANCES * DEBTORS
    with SMTPTestServer() as server:
        config = write_world(tmp_path, store_url, (server.host, server.port))
        assert subprocess.run(  # the schema, migrated once before the workers start
            [sys.executable, "-m", "debsync", "--config", str(config), "status"],
            capture_output=True,
            timeout=120,
        ).returncode in (0, 1)
        started = time.monotonic()
        workers = [worker(config) for _ in range(WORKERS)]
        try:
            deadline = started + WAIT
            while len(server.messages) < total // 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=30)
            killed_at = len(server.messages)
            store = open_store(store_url)
            try:
                while time.monotonic() < deadline:
                    states = collections.Counter(r.state for r in outbox.rows(store))
                    done = states[ActionState.SENT] + states[ActionState.IN_DOUBT]
                    if sum(states.values()) == total and done == total:
                        break
                    time.sleep(0.5)
                elapsed = time.monotonic() - started
                for w in workers[1:]:
                    w.send_signal(signal.SIGTERM)
                codes = [w.wait(timeout=60) for w in workers[1:]]
                with store.engine.connect() as conn:
                    synced = conn.execute(
                        sa.select(sa.func.count()).where(
                            connector_state.c.last_success_at.is_not(None)
                        )
                    ).scalar_one()
                    runs = conn.execute(
                        sa.select(
                            sync_runs.c.instance, sync_runs.c.started_at, sync_runs.c.finished_at
                        ).order_by(sync_runs.c.instance, sync_runs.c.started_at)
                    ).all()
            finally:
                store.dispose()
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()
        delivered = collections.Counter(m.message_id for m in server.messages)

    print(
        f"\n{total} actions, {INSTANCES} instances, {WORKERS} workers: {elapsed:.1f} s "
        f"({total / elapsed:.0f} actions/s); one killed after {killed_at} deliveries; "
        f"states {dict(states)}"
    )
    assert codes == [0] * (WORKERS - 1)
    assert synced == INSTANCES
    assert sum(states.values()) == total and done == total, states
    twice = {mid: n for mid, n in delivered.items() if n > 1}
    assert twice == {}
    assert len(delivered) >= states[ActionState.SENT]  # every sent one arrived
    overlapping = [
        (a.instance, a.started_at, b.started_at)
        for a, b in itertools.pairwise(runs)
        if a.instance == b.instance and (a.finished_at is None or a.finished_at > b.started_at)
    ]
    assert overlapping == []
