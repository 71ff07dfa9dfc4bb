"""The daemon: one cycle is sync every instance, plan, execute what is due, and hear what
providers report; ``run`` repeats cycles until it is told to stop.

One cycle, in order (each step reads what the previous one committed):

1. :func:`debsync.sync.sync_instances`: every connector instance, one after another; a failing
   instance is recorded and the others carry on;
2. :meth:`debsync.outbox.executor.Dispatcher.act`: today's plan from the store, new actions
   queued, every due action sent exactly once;
3. :func:`debsync.inbound.poll`: delivery reports and agency events for what was sent.

The configuration is read again before every cycle, so an edited ``connectors.toml`` takes
effect without a restart; plugins are loaded once per process.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

from debsync import inbound
from debsync.clock import Clock, system_clock
from debsync.config import Config
from debsync.connectors.base import SyncResult
from debsync.outbox.executor import ActReport, Dispatcher
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.sync import sync_instances
from debsync.sync.engine import SyncProgress


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


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so the loop ends between cycles, never inside one;
    the previous handlers come back afterwards."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = [signal.signal(sig, lambda *_: stop.set()) for sig in signals]
    try:
        yield stop
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)


def run(
    load: Callable[[], tuple[Config, Store]],
    plugins: Plugins,
    *,
    once: bool,
    interval: timedelta,
    on_cycle: Callable[[CycleReport], None],
    progress: Callable[[], SyncProgress | None] = lambda: None,
    clock: Clock = system_clock,
) -> bool:
    """Cycles until SIGTERM or SIGINT, or one with ``once`` (where Ctrl-C interrupts as
    usual); whether the last cycle went well.

    :param load: reads the configuration and opens its store, afresh for every cycle.
    """
    waiting = nullcontext(threading.Event()) if once else stop_on_signals()
    with waiting as stop:
        while True:
            config, store = load()
            try:
                report = asyncio.run(
                    cycle(config, store, plugins, clock=clock, progress=progress())
                )
            finally:
                store.dispose()
            on_cycle(report)
            if once or stop.wait(interval.total_seconds()):
                return report.ok
