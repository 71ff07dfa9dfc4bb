"""Read-only settings (connectors.toml as debsync understood it) and the installed plugins.

Secrets are never shown: the store URL loses its password, and any setting whose name says
it holds a secret is masked even when it is only a reference to one.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debsync.web.auth import require
from debsync.web.context import NavItem, console, render
from debsync.web.roles import Role

SECRET_NAME = re.compile(r"secret|token|password|passwd|key|credential|auth", re.IGNORECASE)
MASK = "••••••"


def _fields(settings: BaseModel) -> list[tuple[str, str]]:
    """A settings model's fields as (name, text), secrets masked."""
    shown = []
    for name, value in settings.model_dump(mode="json").items():
        if SECRET_NAME.search(name):
            text = MASK if value else "–"
        elif value is None:
            text = "–"
        elif isinstance(value, list | dict):
            text = ", ".join(map(str, value)) if isinstance(value, list) else _mapping(value)
        else:
            text = str(value)
        shown.append((name, text))
    return shown


def _mapping(value: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {MASK if SECRET_NAME.search(k) else v}" for k, v in value.items())


@require(Role.VIEWER)
def settings(request: Request) -> Response:
    config = console(request).config
    sections = {
        "[store]": [("url", sa.make_url(config.store_url).render_as_string(hide_password=True))]
        if config.store_url
        else [],
        "[creditor]": _fields(config.creditor) if config.creditor else [],
        "[daemon]": _fields(config.daemon),
        "[http]": _fields(config.http),
        "[web]": _fields(config.web),
        "[outbox]": _fields(config.outbox),
        "[privacy]": _fields(config.privacy),
        "[law]": _fields(config.law),
    }
    connectors = [
        (c.name, c.type_name, c.policy, _fields(c.settings)) for c in config.connectors.values()
    ]
    actions = [
        (a.name, a.type_name, a.channel, _fields(a.settings)) for a in config.actions.values()
    ]
    policies = [(p.name, [s.name for s in p.steps]) for p in config.policies.values()]
    return render(
        request,
        "settings.html",
        {
            "path": str(config.path),
            "sections": sections,
            "connectors": connectors,
            "actions": actions,
            "policies": policies,
        },
    )


@require(Role.VIEWER)
def plugins(request: Request) -> Response:
    infos = sorted(console(request).plugins.infos.values(), key=lambda i: (i.builtin, i.name))
    return render(request, "plugins.html", {"plugins": infos})


routes = [
    Route("/settings", settings, methods=["GET"], name="settings"),
    Route("/plugins", plugins, methods=["GET"], name="plugins"),
]
nav = [NavItem("settings", "nav.settings"), NavItem("plugins", "nav.plugins")]
messages = {
    "settings.title": ("Instellingen", "Settings"),
    "settings.read_only": (
        "Alleen-lezen: wijzig {path} en herlaad de daemon. Geheimen worden nooit getoond.",
        "Read-only: change {path} and reload the daemon. Secrets are never shown.",
    ),
    "settings.connectors": ("Administraties (koppelingen)", "Administrations (connectors)"),
    "settings.actions": ("Kanalen (acties)", "Channels (actions)"),
    "settings.policies": ("Beleid", "Policies"),
    "settings.name": ("Naam", "Name"),
    "settings.type": ("Soort", "Type"),
    "settings.policy": ("Beleid", "Policy"),
    "settings.channel": ("Kanaal", "Channel"),
    "settings.steps": ("Stappen", "Steps"),
    "settings.setting": ("Instelling", "Setting"),
    "settings.value": ("Waarde", "Value"),
    "settings.none": ("Niets ingesteld.", "Nothing configured."),
    "plugins.title": ("Plug-ins", "Plugins"),
    "plugins.name": ("Naam", "Name"),
    "plugins.version": ("Versie", "Version"),
    "plugins.status": ("Status", "Status"),
    "plugins.provides": ("Levert", "Provides"),
    "plugins.error": ("Fout", "Error"),
    "plugins.builtin": ("ingebouwd", "built-in"),
    "plugins.loaded": ("geladen", "loaded"),
    "plugins.broken": ("defect", "broken"),
    "plugins.disabled": ("uitgeschakeld", "disabled"),
}
