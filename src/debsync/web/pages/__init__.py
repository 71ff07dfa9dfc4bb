"""The console's pages, one module each. A page module exposes ``routes`` (a list of
Starlette routes), and may expose ``nav`` (a list of :class:`~debsync.web.context.NavItem`
for the layout's menu) and ``messages`` (its texts, see :mod:`debsync.web.i18n`).

To add a page, write its module here and add its name to :data:`PAGE_MODULES`: the menu
follows this order.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PAGE_MODULES = (
    "login",
    "dashboard",
    "plan",
    "calls",
    "outbox",
    "dossier",
    "messages",
    "settings",
)


def page_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in PAGE_MODULES]
