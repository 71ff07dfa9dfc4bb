"""The shared sync schedule: due instances, claims that never overlap, backoff and jitter."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from debsync import schedule
from debsync.store import Store, open_store
from debsync.store.schema import connector_state

NOW = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
EVERY = timedelta(minutes=15)
HOLD = timedelta(minutes=5)


def instances(n: int) -> dict[str, str]:
    return {f"books{i:03d}": "csv" for i in range(n)}


def state(store: Store, instance: str) -> sa.Row[tuple[datetime | None, int]]:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(connector_state.c.next_sync_at, connector_state.c.failures).where(
                connector_state.c.instance == instance
            )
        ).one()


def test_a_claimed_instance_is_not_due_until_its_hold_passes(store: Store) -> None:
    names = instances(3)
    assert schedule.due(store, names, NOW) == sorted(names)  # never synced: due
    assert schedule.claim(store, names, NOW, hold=HOLD, limit=2) == ["books000", "books001"]
    assert schedule.due(store, names, NOW) == ["books002"]
    assert schedule.claim(store, names, NOW, hold=HOLD, limit=5) == ["books002"]
    assert schedule.claim(store, names, NOW, hold=HOLD, limit=5) == []
    # A worker that died holding them: due again once the hold has passed.
    later = NOW + HOLD
    assert schedule.claim(store, names, later, hold=HOLD, limit=5) == sorted(names)
    schedule.release(store, ["books001"], later)
    assert schedule.due(store, names, later) == ["books001"]


def test_the_longest_waiting_instance_comes_first(store: Store) -> None:
    names = instances(3)
    schedule.claim(store, names, NOW, hold=HOLD, limit=3)
    for name, minutes in (("books000", 3), ("books001", 1), ("books002", 2)):
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(connector_state)
                .where(connector_state.c.instance == name)
                .values(next_sync_at=NOW + timedelta(minutes=minutes))
            )
    at = NOW + timedelta(minutes=5)
    assert schedule.due(store, names, at) == ["books001", "books002", "books000"]
    assert schedule.claim(store, names, at, hold=HOLD, limit=1) == ["books001"]


def test_concurrent_workers_never_claim_one_instance_twice(store: Store) -> None:
    names = instances(60)
    url = store.engine.url.render_as_string(hide_password=False)
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker() -> None:
        mine = open_store(url)
        try:
            start.wait()
            while got := schedule.claim(mine, names, NOW, hold=HOLD, limit=3):
                with lock:
                    claimed.extend(got)
        finally:
            mine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(claimed) == Counter(list(names))  # every one, each exactly once


def test_success_waits_the_interval_within_the_jitter(store: Store) -> None:
    names = instances(1)
    rng = random.Random(7)
    waits = []
    for _ in range(200):
        schedule.claim(store, names, NOW, hold=HOLD, limit=1)
        at = schedule.finished(
            store, "books000", True, NOW, every=EVERY, jitter=0.1, max_backoff=EVERY, rng=rng
        )
        assert state(store, "books000") == (at, 0)
        waits.append(at - NOW)
        with store.engine.begin() as conn:  # due again for the next round
            conn.execute(sa.update(connector_state).values(next_sync_at=None))
    assert min(waits) >= EVERY * 0.9 and max(waits) <= EVERY * 1.1
    assert max(waits) - min(waits) > EVERY * 0.1  # spread, not one fixed value


def test_failures_back_off_exponentially_up_to_the_cap_and_a_success_resets(
    store: Store,
) -> None:
    names = instances(1)
    rng = random.Random(1)
    cap = timedelta(hours=1)
    schedule.claim(store, names, NOW, hold=HOLD, limit=1)
    waits = []
    for _ in range(4):
        at = schedule.finished(
            store, "books000", False, NOW, every=EVERY, jitter=0, max_backoff=cap, rng=rng
        )
        waits.append(at - NOW)
    assert waits == [EVERY, 2 * EVERY, cap, cap]
    assert state(store, "books000").failures == 4
    schedule.finished(store, "books000", True, NOW, every=EVERY, jitter=0, max_backoff=cap, rng=rng)
    assert state(store, "books000") == (NOW + EVERY, 0)


def test_backoff_is_never_shorter_than_the_interval() -> None:
    assert schedule.backoff(1, timedelta(hours=6), timedelta(hours=4)) == timedelta(hours=6)
    assert schedule.backoff(3, timedelta(minutes=1), timedelta(hours=4)) == timedelta(minutes=4)
    assert schedule.backoff(400, timedelta(minutes=1), timedelta(hours=4)) == timedelta(hours=4)


def test_a_plan_a_dead_worker_never_made_is_made_by_another_and_each_day_anew(
    store: Store,
) -> None:
    """A worker plans what it synced; one SIGKILLed between its sync and its plan left
    those instances unplanned until their next sync (the scale-out test lost 185 of 1,000
    reminders). :func:`schedule.unplanned` finds them after the grace, and every instance
    planned on an earlier day."""
    names = instances(3)
    schedule.claim(store, names, NOW, hold=HOLD, limit=3)  # creates the rows
    with store.engine.begin() as conn:
        conn.execute(sa.update(connector_state).values(last_success_at=NOW))
    grace = timedelta(minutes=1)
    # just synced: the worker that synced them is planning them; nobody else does
    assert schedule.unplanned(store, names, NOW, grace=grace) == set()
    schedule.planned(store, ["books000"], NOW)
    later = NOW + grace
    assert schedule.unplanned(store, names, later, grace=grace) == {"books001", "books002"}
    schedule.planned(store, ["books001", "books002"], later)
    assert schedule.unplanned(store, names, later, grace=grace) == set()
    # a sync that ended while the plan was being made leaves that instance unplanned
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(connector_state)
            .where(connector_state.c.instance == "books002")
            .values(last_success_at=later + timedelta(seconds=1))
        )
    assert schedule.unplanned(store, names, later + 2 * grace, grace=grace) == {"books002"}
    # the next morning every instance is planned again, synced or not
    tomorrow = NOW + timedelta(days=1)
    schedule.planned(store, ["books002"], later + 2 * grace)
    assert schedule.unplanned(store, names, tomorrow, grace=grace) == set(names)
