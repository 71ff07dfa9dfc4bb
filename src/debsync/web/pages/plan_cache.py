"""Today's plan kept between page views until the book changes.

Planning a large book takes seconds; a person pages, sorts and searches the same plan many
times. The plan depends on the store and the moment only, and every change to the store that
can change it writes an event or a sync run (:func:`debsync.store.reports.book_version`, the
dashboard's key too; a sync that found nothing new still records its run, which moves the
freshness). So the plan is reused while that version and the minute stay the same: a view is
at most a minute behind the clock (a freshness limit or a new day is seen within the
minute), never behind the book.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from debsync.config import Config
from debsync.store import Store
from debsync.store.reports import book_version
from debsync.web.pages.plan_items import PlanView, load_plan


class PlanCache:
    """One plan per console, recomputed when the book's version or the minute changes;
    concurrent views of a stale plan wait for one computation."""

    def __init__(self, compute: Callable[[Config, Store, datetime], PlanView] = load_plan):
        self._compute = compute
        self._lock = threading.Lock()
        self._version: tuple[Any, ...] | None = None
        self._view: PlanView | None = None

    def get(self, config: Config, store: Store, now: datetime) -> PlanView:
        with self._lock:
            version = (*book_version(store), now.replace(second=0, microsecond=0))
            if self._view is None or version != self._version:
                self._view, self._version = self._compute(config, store, now), version
            return self._view
