"""Today's plan kept up to date in the background while a server runs, so nobody waits for it.

Planning a whole book of 100,000 invoices takes seconds, and it happens at start, on each new
day, and when an instance's staleness changes; a change re-plans only the debtors it reaches.
The servers (``debsync web``, ``debsync run``) run :func:`keep_warm` beside the HTTP server:
it asks the plan cache for the plan every :data:`EVERY` seconds (one cheap version check when
nothing changed), so the console's pages find it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette

from debsync.web.context import Console
from debsync.web.pages.plan_cache import PlanCache

log = logging.getLogger(__name__)

EVERY = 30.0
"""Seconds between two looks at the plan."""


async def keep_warm(app: Starlette, stop: asyncio.Event, every: float = EVERY) -> None:
    """Bring the console's plan up to date now and every ``every`` seconds until ``stop``."""
    console: Console = app.state.console
    cache: PlanCache = app.state.work_plan_cache
    while not stop.is_set():
        try:
            await asyncio.to_thread(cache.get, console.config, console.store, console.clock())
        except Exception as exc:  # a page that needs the plan shows the error; try again later
            log.warning("could not bring today's plan up to date: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
