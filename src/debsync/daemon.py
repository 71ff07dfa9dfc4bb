"""The daemon: ``debsync run`` as a long-running asyncio process, one of any number of workers
sharing a store (on PostgreSQL; on SQLite one per database).

What a worker does, all the time and each part on its own rhythm:

* **Sync.** Every :data:`TICK` it claims due connector instances from the shared schedule
  (:mod:`debsync.schedule`), as many as it has free sync slots (``concurrency``), and syncs each
  with the existing engine in a thread of its own (:class:`LoopThread`): a connector or a store
  call that blocks stalls neither the other syncs nor the loop (nor an HTTP server running in
  it). A failing instance backs off alone, its reason in ``connector_state.last_error``.
* **Act.** After successful syncs the plan follows (``Dispatcher.act``: plan, enqueue, send);
  in between, what comes due is sent (retries, a window that opens). Only the channels whose
  send window is open send (:mod:`debsync.send_window`); planning and queueing run any time.
  Acting has one thread of its own, so the action instances (their SMTP connections and HTTP
  clients) always live in one event loop.
* **Hear.** Delivery reports and agency events are polled every ``sync_every``.
* **Beat.** Every third of ``[daemon] lease`` the worker's row in ``workers`` says it lives and
  what it holds (:mod:`debsync.workers`).

SIGTERM or SIGINT: nothing new is claimed; work in flight has ``shutdown_grace`` to finish and
is then cancelled. A cancelled sync records its run as interrupted (the pages written stay,
nothing is closed) and its instance is due again at once; a cancelled send leaves its row
``sending`` under its lease, which the outbox's sweep turns into ``in_doubt`` (retried only on a
channel that deduplicates, else for a person to review): never sent twice. Then the worker
leaves the registry and the process exits 0. SIGHUP reads ``connectors.toml`` again; an
invalid file leaves the running configuration in place and the log says why.

``debsync run --once`` is one :func:`cycle`: every instance synced, planned, every due action
sent (whatever the windows: a person ran it), providers polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from debsync import inbound, schedule, send_window, workers
from debsync.clock import Clock, system_clock
from debsync.config import Config
from debsync.connectors.base import SyncResult
from debsync.errors import ConfigError, StoreError, scrub
from debsync.outbox.executor import ActReport, Dispatcher
from debsync.outbox.table import worker_id
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.store.locks import store_lock
from debsync.sync import sync_instances
from debsync.sync.engine import AlreadySyncing, SyncProgress

log = logging.getLogger("debsync.daemon")

T = TypeVar("T")

TICK = 2.0
"""Seconds between looks at the schedule and the outbox, unless something wakes the loop."""
CANCEL_WAIT = 5.0
"""Seconds cancelled work gets, after the grace, to record that it was interrupted."""

Extra = Callable[[asyncio.Event], Awaitable[None]]
"""A coroutine run alongside the daemon's loops (the HTTP server): given the event that is set
when the daemon stops, it should return soon after."""


# -- one cycle: debsync run --once -------------------------------------------------------------


@dataclass
class CycleReport:
    """What one cycle did."""

    synced: list[SyncResult]
    acted: ActReport
    heard: inbound.Recorded

    @property
    def ok(self) -> bool:
        return self.acted.ok and all(r.ok for r in self.synced)


async def cycle(
    config: Config,
    store: Store,
    plugins: Plugins,
    *,
    clock: Clock = system_clock,
    progress: SyncProgress | None = None,
) -> CycleReport:
    """One cycle over everything ``config`` names."""
    synced = await sync_instances(
        config, store, list(config.connectors), plugins, clock=clock, progress=progress
    )
    dispatcher = Dispatcher(config, store, plugins, clock=clock)
    acted = await dispatcher.act()
    heard = await inbound.poll(store, dispatcher.actions(), clock)
    return CycleReport(synced, acted, heard)


# -- the long-running worker -------------------------------------------------------------------


class DaemonRunning(StoreError):
    """Another ``debsync run`` holds this SQLite database."""


@contextlib.contextmanager
def exclusive(store: Store) -> Iterator[None]:
    """On SQLite, one daemon per database for the process's life (the store lock ``daemon``);
    on PostgreSQL any number of workers share the store."""
    if store.engine.dialect.name == "postgresql":
        yield
        return
    with store_lock(store.engine, "daemon", wait=False) as held:
        if not held:
            raise DaemonRunning(
                f"another `debsync run` is already running on {store.engine.url.database}; "
                "on SQLite one daemon serves a database (several workers need PostgreSQL)"
            )
        yield


class LoopThread:
    """An event loop in a thread of its own for work that may block. Cancelling the task that
    awaits :meth:`run` cancels the work in the thread too; :meth:`drain` waits for it to end."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the thread's tasks (cancelled ones included)."""

        async def tasks_done() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if others:
                await asyncio.wait(others, timeout=timeout)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.run(tasks_done()), timeout + 1)

    def stop(self, timeout: float = CANCEL_WAIT) -> None:
        """Stop the loop and close it; a thread still stuck in blocking work after
        ``timeout`` is left to die with the process (it is a daemon thread)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


class Daemon:
    """One worker. ``reload`` reads the configuration again (SIGHUP) and raises
    :class:`~debsync.errors.ConfigError` when it is invalid."""

    def __init__(
        self,
        config: Config,
        store: Store,
        plugins: Plugins,
        *,
        reload: Callable[[], Config],
        clock: Clock = system_clock,
        concurrency: int = 4,
        on_sync: Callable[[SyncResult], None] | None = None,
        on_act: Callable[[ActReport], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.plugins = plugins
        self.clock = clock
        self.id = worker_id()
        self.concurrency = concurrency
        self._reload = reload
        self._on_sync = on_sync
        self._on_act = on_act
        self._rng = rng or random.Random()
        self.syncing: dict[str, asyncio.Task[None]] = {}
        self._dispatcher: Dispatcher | None = None
        self._last_poll: datetime | None = None

    # -- the process's life ----------------------------------------------------------------

    async def run(self, extra: Sequence[Extra] = ()) -> None:
        """Work until SIGTERM or SIGINT (or :meth:`stop`), then wind down within the grace.
        ``extra`` coroutines (the HTTP server) run alongside and are told when to stop."""
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self._wake, self._act_wake = asyncio.Event(), asyncio.Event()
        self._synced: set[str] = set()  # synced since the last plan: planned next
        self._ready = asyncio.Event()
        self._threads: asyncio.Queue[LoopThread] = asyncio.Queue()
        pool = [LoopThread(f"debsync-sync-{n}") for n in range(self.concurrency)]
        for thread in pool:
            self._threads.put_nowait(thread)
        self._acting = LoopThread("debsync-act")
        signals = {signal.SIGTERM: self.stop, signal.SIGINT: self.stop, signal.SIGHUP: self._hup}
        for sig, handler in signals.items():
            loop.add_signal_handler(sig, handler)
        await asyncio.to_thread(self._enter)
        heartbeats = asyncio.create_task(self._heartbeats())
        others = [asyncio.create_task(self._act_loop())]
        others += [asyncio.create_task(_logged(x(self.stopping))) for x in extra]
        try:
            await self._claim_loop()
            await self._wind_down(others, [*pool, self._acting])
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
            await asyncio.to_thread(workers.remove, self.store, [self.id])
            await asyncio.gather(*(asyncio.to_thread(t.stop) for t in (*pool, self._acting)))
            log.info("worker %s stopped", self.id)

    def stop(self) -> None:
        """Stop claiming work and wind down (SIGTERM, SIGINT)."""
        if not self.stopping.is_set():
            log.info("stopping: no new work is claimed, %d sync(s) in flight", len(self.syncing))
        self.stopping.set()
        self._wake.set()
        self._act_wake.set()

    def _enter(self) -> None:
        now = self.clock()
        gone = workers.dead(self.store, now, self.config.daemon.lease)
        workers.remove(self.store, [w.id for w in gone])
        for w in gone:
            log.info("worker %s had stopped beating; its row is removed", w.id)
        workers.register(self.store, self.id, now)
        log.info(
            "worker %s started: %d connector instance(s), %d sync slot(s)",
            self.id,
            len(self.config.connectors),
            self.concurrency,
        )

    async def _wind_down(self, others: list[asyncio.Task[None]], threads: list[LoopThread]) -> None:
        await asyncio.to_thread(workers.mark_stopping, self.store, self.id)
        pending = [*self.syncing.values(), *others]
        grace = self.config.daemon.shutdown_grace.total_seconds()
        _, late = await asyncio.wait(pending, timeout=grace) if pending else (set(), set())
        interrupted = list(self.syncing)
        if late:
            log.warning("%d task(s) still running after the grace: cancelled", len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=CANCEL_WAIT)
            await asyncio.gather(*(t.drain(CANCEL_WAIT) for t in threads))
        await asyncio.to_thread(schedule.release, self.store, interrupted, self.clock())

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.daemon.lease.total_seconds() / 3)
            try:
                await asyncio.to_thread(
                    workers.heartbeat, self.store, self.id, self.clock(), list(self.syncing)
                )
            except Exception as exc:  # the store away for a moment: the next beat tries again
                log.warning("worker %s: heartbeat failed: %s", self.id, scrub(str(exc)))

    async def _pause(self, wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), TICK)
        wake.clear()

    # -- syncing ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        first = True
        while not self.stopping.is_set():
            free = self.concurrency - len(self.syncing)
            if free > 0:
                wanted = {
                    name: c.type_name
                    for name, c in self.config.connectors.items()
                    if name not in self.syncing
                }
                try:
                    claimed = await asyncio.to_thread(
                        schedule.claim,
                        self.store,
                        wanted,
                        self.clock(),
                        hold=self.config.daemon.lease,
                        limit=free,
                    )
                except Exception as exc:  # the store away for a moment: claim again next tick
                    log.warning("claiming due instances failed: %s", scrub(str(exc)))
                    claimed = []
                for name in claimed:
                    self.syncing[name] = asyncio.create_task(self._sync(name))
            if first:  # what was due when the worker started is synced before it sends
                first = False
                self._started = asyncio.create_task(self._ready_after(list(self.syncing.values())))
            await self._pause(self._wake)

    async def _ready_after(self, syncs: list[asyncio.Task[None]]) -> None:
        if syncs:
            await asyncio.wait(syncs)
        self._ready.set()
        self._act_wake.set()

    async def _sync(self, name: str) -> None:
        thread = await self._threads.get()
        config = self.config
        try:
            if name not in config.connectors:  # removed by a reload since it was claimed
                return
            error = None
            try:
                (result,) = await thread.run(
                    sync_instances(config, self.store, [name], self.plugins, clock=self.clock)
                )
            except Exception as exc:  # the connector could not even be built
                log.error("sync %s: %s", name, scrub(traceback.format_exc()))
                error = scrub(f"{type(exc).__name__}: {exc}")
                result = SyncResult(instance=name, run_id=0, snapshot=False, error=error)
            if isinstance(result, AlreadySyncing):
                return  # the process syncing it schedules it when it is done
            daemon = config.daemon
            at = await asyncio.to_thread(
                schedule.finished,
                self.store,
                name,
                result.ok,
                self.clock(),
                every=config.sync_every(name),
                jitter=daemon.jitter,
                max_backoff=daemon.max_backoff,
                rng=self._rng,
                error=error,
            )
            log.debug("sync %s: next at %s", name, at.isoformat(), extra={"instance": name})
            if result.ok:
                self._synced.add(name)
                self._act_wake.set()
            if self._on_sync is not None:
                self._on_sync(result)
        finally:
            del self.syncing[name]
            self._threads.put_nowait(thread)
            self._wake.set()

    # -- acting ----------------------------------------------------------------------------

    async def _act_loop(self) -> None:
        """Sends nothing before the syncs due at start are done: a worker started after a
        weekend would otherwise send on Friday's figures."""
        while not self._ready.is_set() and not self.stopping.is_set():
            await self._pause(self._act_wake)
        while not self.stopping.is_set():
            plan, self._synced = self._synced, set()
            config = self.config
            channels = send_window.open_channels(
                config.daemon, {a.channel for a in config.actions.values()}, self.clock()
            )
            try:
                report = await self._acting.run(self._act(config, plan, channels))
            except Exception:  # a bug must not end the worker: log it, try again next tick
                log.error("acting failed:\n%s", scrub(traceback.format_exc()))
            else:
                if report is not None and (plan or report.outcomes) and self._on_act:
                    self._on_act(report)
            await self._pause(self._act_wake)

    async def _act(self, config: Config, plan: set[str], channels: set[str]) -> ActReport | None:
        """In the act thread: plan the instances this worker synced (and any whose plan is
        missing: :func:`schedule.unplanned`) and send, or send what is due; poll. Each
        worker plans what it synced, so N workers plan the store once between them, not N
        times."""
        if self._dispatcher is None or self._dispatcher.config is not config:
            self._dispatcher = Dispatcher(
                config, self.store, self.plugins, clock=self.clock, owner=self.id
            )
        dispatcher = self._dispatcher
        report = None
        at = self.clock()  # before the plan reads the store: a sync ending later is planned again
        plan |= schedule.unplanned(self.store, config.connectors, at, grace=config.daemon.lease)
        if plan:
            report = await dispatcher.act(channels, instances=plan)
            schedule.planned(self.store, plan, at)
        elif channels:
            report = await dispatcher.execute(None, channels)
        now = self.clock()
        if self._last_poll is None or now - self._last_poll >= config.daemon.sync_every:
            self._last_poll = now
            heard = await inbound.poll(self.store, dispatcher.actions(), self.clock)
            if heard.new:
                log.info("%d status report(s) from providers filed in the dossiers", heard.new)
        return report

    # -- reloading -------------------------------------------------------------------------

    def _hup(self) -> None:
        task = asyncio.create_task(self._reload_config())
        self._reloading = task  # keep a reference until it is done

    async def _reload_config(self) -> None:
        try:
            config = await asyncio.to_thread(self._reload)
        except ConfigError as exc:
            log.error("SIGHUP: the configuration stays as it was, the new one is invalid: %s", exc)
            return
        if config.store_url != self.config.store_url:
            log.error("SIGHUP: the configuration stays as it was: a new [store] needs a restart")
            return
        self.config = config
        log.info(
            "SIGHUP: configuration reloaded: %d connector instance(s), %d action instance(s)",
            len(config.connectors),
            len(config.actions),
        )
        self._wake.set()


async def _logged(work: Awaitable[None]) -> None:
    """An extra task's failure is logged, and does not stop the daemon."""
    try:
        await work
    except Exception:
        log.error("a task beside the daemon failed:\n%s", scrub(traceback.format_exc()))


def next_window(config: Config, at: datetime) -> datetime:
    """When the next send window of the configured channels opens (``at`` if one is open):
    what ``plan`` and ``status`` tell a person."""
    channels = {a.channel for a in config.actions.values()}
    return send_window.next_opening(config.daemon, channels, at)


__all__ = ["CycleReport", "Daemon", "DaemonRunning", "Extra", "cycle", "exclusive", "next_window"]
