"""A seeded book for the console's work pages: a real connectors.toml, the CSV connector, the
file, letter and call actions, and a ladder walked day by day with ``debsync run --once``.

On :data:`TODAY` (the console's day) the book holds, for the administration ``books``:

* D1 Bakkerij De Gouden Korrel B.V.: reminder e-mailed, call task filed, handoff awaiting
  approval;
* D2 Oak & Ivy Consulting Ltd: reminder e-mailed, call task filed; its handoff is due today
  and not queued yet (the plan's dry run shows it);
* D3 J.P. de Vries (a consumer without e-mail): the reminder went as a letter, a call task
  is filed.

The walk runs once per test session; each test gets a copy of the SQLite file.
"""

from __future__ import annotations

import shutil
import textwrap
from datetime import date, datetime, time, timedelta
from pathlib import Path

from typer.testing import CliRunner

from debsync.cli import app
from debsync.clock import AMSTERDAM

from csv_helpers import export_header, write

USERS = {"vera": "viewer", "otto": "operator", "anna": "approver"}
"""The console's users the tests add: one of each role that works."""
START = date(2026, 11, 2)  # a Monday: the first reminders
TODAY = START + timedelta(days=5)
NOW = datetime.combine(TODAY, time(9, 0), tzinfo=AMSTERDAM)
HEADER = export_header("KvK-nummer", "Bedrag", "Valuta", "Betalingskenmerk")

CONFIG = """
[store]
url = "{url}"

[creditor]
name = "Voorbeeld Installatietechniek B.V."
address = {{ lines = ["Industrieweg 12"], postcode = "3542 AD", city = "Utrecht" }}
iban = "NL91ABNA0417164300"
email = "debiteuren@voorbeeld-installatie.nl"

[connectors.books]
type = "csv"
path = "open-items.csv"

[actions.files]
type = "file"
directory = "outbox"

[actions.print]
type = "letter"
directory = "letters"

[actions.calls]
type = "call"

[[policies.default.steps]]
name = "reminder"
channels = ["email"]
days_after_due = 1

[[policies.default.steps]]
name = "call"
channels = ["call"]
days_after_previous = 2
fallback_channels = []

[[policies.default.steps]]
name = "handoff"
channels = ["email"]
template = "aanmaning"
days_after_previous = 2
requires_approval = true
role = "handoff"
kinds = ["business"]
"""


def _row(
    code: str, name: str, kind: str, mail: str, number: str, due: date, amount: str
) -> list[str]:
    return [
        code,
        name,
        kind,
        mail,
        "06-12345678",
        "Kerkstraat 1",
        "1234 AB",
        "Utrecht",
        "nl",
        number,
        f"{due - timedelta(days=30):%d-%m-%Y}",
        f"{due:%d-%m-%Y}",
        amount,
    ]


def walk(directory: Path, url: str) -> Path:
    """Write the book into ``directory`` with its store at ``url`` and walk the ladder up to
    :data:`TODAY`; returns the connectors.toml."""
    due = START - timedelta(days=1)
    write(
        directory / "open-items.csv",
        [
            HEADER,
            _row(
                "D1",
                "Bakkerij De Gouden Korrel B.V.",
                "Zakelijk",
                "info@korrel.example.nl",
                "F-001",
                due,
                "1.210,00",
            ),
            _row(
                "D2",
                "Oak & Ivy Consulting Ltd",
                "Zakelijk",
                "accounts@oakivy.example.com",
                "F-003",
                due + timedelta(days=1),
                "350,00",
            ),
            _row("D3", "J.P. de Vries", "Particulier", "", "F-004", due, "89,95"),
        ],
    )
    config = directory / "connectors.toml"
    config.write_text(textwrap.dedent(CONFIG).format(url=url), "utf-8")
    for offset in range(5):  # the daemon's daily cycle, up to the day before TODAY
        moment = datetime.combine(START + timedelta(days=offset), time(9, 0), tzinfo=AMSTERDAM)
        result = CliRunner().invoke(
            app,
            ["--config", str(config), "run", "--once"],
            env={"DEBSYNC_NOW": moment.isoformat(), "DEBSYNC_CONFIG": None},
        )
        assert result.exit_code == 0, (result.output, result.exception)
    return config


_SEEDED: dict[str, Path] = {}


def seed(directory: Path, cache: Path) -> Path:
    """A copy of the book walked once into SQLite under ``cache``, in ``directory``; returns
    its connectors.toml."""
    if "book" not in _SEEDED:
        cache.mkdir(parents=True, exist_ok=True)
        walk(cache, _sqlite(cache))
        _SEEDED["book"] = cache
    source = _SEEDED["book"]
    for name in ("open-items.csv", "debsync.db"):
        shutil.copy(source / name, directory / name)
    for folder in ("outbox", "letters"):
        if (source / folder).exists():
            shutil.copytree(source / folder, directory / folder, dirs_exist_ok=True)
    config = directory / "connectors.toml"
    config.write_text(textwrap.dedent(CONFIG).format(url=_sqlite(directory)), "utf-8")
    return config


def _sqlite(directory: Path) -> str:
    return f"sqlite:///{(directory / 'debsync.db').as_posix()}"
