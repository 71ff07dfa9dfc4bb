"""Benchmark: `debsync run` workers on many small connector instances.

For each setup (SQLite with 1 process, PostgreSQL with 1 and with 3 processes) a fresh store
gets N small CSV instances with one overdue invoice each (N reminders) and an SMTP sink
(aiosmtpd on loopback). The workers start with ``sync_every = "1s"``, so every instance is
always due and the figures are the workers' capacity:

* **actions/s**: the N reminders delivered, from the workers' start (first syncs and plans
  included) to the last message;
* **sync cycles per minute**: instance syncs completed per minute in the following
  ``--seconds``, divided by N (one cycle is every instance synced once).

It prints figures and the ratio of 3 PostgreSQL workers to 1, and asserts nothing.

    python bench/daemon.py [--instances 1000] [--seconds 30] [--only sqlite|pg1|pg3]

PostgreSQL comes from ``DEBSYNC_TEST_DATABASE_URL`` (each setup in a schema of its own).
Target (issue 15): 3 workers on PostgreSQL >= 2.5x one worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from act import smtp_sink  # noqa: E402
from debsync.store import open_store  # noqa: E402
from debsync.store.schema import sync_runs  # noqa: E402
from test_scale_out import NOW, write_world  # noqa: E402

PG_ENV = "DEBSYNC_TEST_DATABASE_URL"
SETUPS = {"sqlite": ("sqlite", 1), "pg1": ("postgresql", 1), "pg3": ("postgresql", 3)}


@contextmanager
def store_url(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'debsync.db'}"
        return
    url = os.environ[PG_ENV]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def ok_syncs(url: str) -> int:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(sync_runs.c.status == "ok")
                ).scalar_one()
            )
    finally:
        store.dispose()


def measure(backend: str, processes: int, instances: int, seconds: float) -> dict[str, float]:
    controller, count = smtp_sink()
    count.messages = 0
    try:
        with tempfile.TemporaryDirectory() as tmp, store_url(backend, Path(tmp)) as url:
            config = write_world(
                Path(tmp),
                url,
                ("127.0.0.1", controller.port),
                instances=instances,
                debtors=1,
                sync_every="1s",
            )
            command = [sys.executable, "-m", "debsync", "--config", str(config)]
            subprocess.run([*command, "status"], capture_output=True, check=False)  # migrate
            env = {**os.environ, "DEBSYNC_NOW": NOW, "DEBSYNC_DISABLE_PLUGINS": ""}
            started = time.monotonic()
            workers = [
                subprocess.Popen(
                    [*command, "run"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
                for _ in range(processes)
            ]
            try:
                while count.messages < instances:
                    time.sleep(0.05)
                sent_in = time.monotonic() - started
                before = ok_syncs(url)
                time.sleep(seconds)
                synced = ok_syncs(url) - before
            finally:
                for w in workers:
                    w.send_signal(signal.SIGTERM)
                for w in workers:
                    w.wait(timeout=120)
    finally:
        controller.stop()
    return {
        "actions_per_s": instances / sent_in,
        "syncs_per_min": synced / seconds * 60,
        "cycles_per_min": synced / seconds * 60 / instances,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=tuple(SETUPS))
    args = parser.parse_args()
    wanted = [args.only] if args.only else list(SETUPS)
    if PG_ENV not in os.environ:
        wanted = [w for w in wanted if SETUPS[w][0] == "sqlite"]
        print(f"{PG_ENV} is not set: PostgreSQL setups skipped")
    figures = {}
    for name in wanted:
        backend, processes = SETUPS[name]
        figures[name] = f = measure(backend, processes, args.instances, args.seconds)
        print(
            f"{backend:>10} x{processes}: {f['actions_per_s']:8.1f} actions/s, "
            f"{f['syncs_per_min']:8.0f} instance syncs/min = {f['cycles_per_min']:6.2f} "
            f"cycles/min over {args.instances} instances",
            flush=True,
        )
    if "pg1" in figures and "pg3" in figures:
        one, three = figures["pg1"], figures["pg3"]
        print(
            f"PostgreSQL 3 workers / 1: {three['cycles_per_min'] / one['cycles_per_min']:.2f}x "
            f"sync cycles, {three['actions_per_s'] / one['actions_per_s']:.2f}x actions "
            "(target >= 2.5x)"
        )


if __name__ == "__main__":
    main()
