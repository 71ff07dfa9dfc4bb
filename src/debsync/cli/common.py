"""Shared parts of the ``debsync`` command line: the typer app, options, errors, JSON output.

Exit codes: 0 ok, 1 a run failed, 2 bad usage or configuration (a bad or unknown argument
included), 130 interrupted by Ctrl-C. ``--json`` output shapes are documented in
``docs/cli.md`` and versioned by their ``"version"`` field.

Human output speaks the operator's Dutch through :mod:`debsync.formatting` (``€ 968.249,55``,
``06-12-2026``); ``--json`` keeps ISO dates and decimal strings. Arguments take the same forms
as the CSV reader: ``31-12-2026`` or ``2026-12-31``, ``20.000,00`` or ``20000.00``.
"""

from __future__ import annotations

import functools
import getpass
import importlib.metadata
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.text import Text

from debsync import __version__, logs
from debsync.clock import Clock, parse_moment, starting_at, system_clock
from debsync.errors import ConfigError, StoreError

if TYPE_CHECKING:  # the rest loads in the commands that use it: --version and --help stay fast
    from debsync.config import Config
    from debsync.connectors.csv.values import Values
    from debsync.plugins import Plugins
    from debsync.store import Store

JSON_VERSION = 1
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(
    name="debsync",
    help="Dutch accounts-receivable follow-up next to your bookkeeping program.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate connectors.toml.", no_args_is_help=True)
app.add_typer(config_app, name="config")

out = Console()
# Messages on stderr are not folded at the terminal's width: a path or key in an error stays
# whole, to be copied or grepped.
err = Console(stderr=True, soft_wrap=True)


@dataclass
class _Options:
    config: Path
    verbose: int
    plugins: Plugins | None = None  # loaded once per process: by main(), or on first use


def _version(value: bool) -> None:
    if value:
        out.print(f"debsync {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Configuration file [default: $DEBSYNC_CONFIG or ./connectors.toml].",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="More log output (-vv: debug; -vvv: libraries' too).",
        ),
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    log_format: Annotated[
        logs.LogFormat,
        typer.Option(
            "--log-format",
            envvar="DEBSYNC_LOG_FORMAT",
            help="Log lines on stderr: human, or one JSON object per line.",
        ),
    ] = logs.LogFormat.HUMAN,
) -> None:
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    handler: logging.Handler
    if log_format is logs.LogFormat.JSON:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logs.JsonLines())
    else:
        handler = RichHandler(
            console=err,
            show_path=False,
            show_time=verbose > 0,
            omit_repeated_times=False,
            log_time_format=_log_time,
        )
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(logs.Libraries(logging.DEBUG if verbose > 2 else logging.WARNING))
    handler.addFilter(logs.Scrub())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    _set_clock()
    from debsync.config import config_path
    from debsync.plugins import Plugins

    loaded = ctx.obj if isinstance(ctx.obj, Plugins) else None
    ctx.obj = _Options(config=config_path(config), verbose=verbose, plugins=loaded)


_clock: Clock = system_clock


def _set_clock() -> None:
    """``DEBSYNC_NOW`` (a testing aid, docs/cli.md): the process's clock starts at that moment
    and moves on with real time; every command reads the time through :func:`now`."""
    global _clock
    given = os.environ.get("DEBSYNC_NOW", "").strip()
    try:
        _clock = starting_at(parse_moment(given)) if given else system_clock
    except ValueError as exc:
        fail(f"DEBSYNC_NOW expects an ISO 8601 timestamp like 2026-12-15T10:00:00+01:00: {exc}")


def now() -> datetime:
    """The current moment for every command: the system clock, or ``DEBSYNC_NOW``'s."""
    return _clock()


def _log_time(moment: datetime) -> Text:
    """Log lines carry ISO 8601 timestamps with their offset, never ``[12/01/26 …]``."""
    return Text(moment.astimezone().isoformat(timespec="seconds"))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def instance_or_only(config: Config, instance: str | None) -> str:
    """The ``--instance`` given, or the only configured one; several without a choice is
    usage."""
    if instance is not None:
        return instance
    if len(config.connectors) != 1:
        fail("several connector instances are configured; name one with --instance")
    return next(iter(config.connectors))


def plugins_of(ctx: typer.Context) -> Plugins:
    """The process's plugins, loaded once: by :func:`main` before the arguments are parsed
    (plugins may add commands), or here on first use when the app is invoked directly."""
    from debsync.plugins import Plugins

    options: _Options = ctx.find_root().obj
    if options.plugins is None:
        options.plugins = Plugins()
    return options.plugins


def load(ctx: typer.Context) -> tuple[Plugins, Config]:
    from debsync.config import load_config

    plugins = plugins_of(ctx)
    for info in plugins.broken():
        err.print(f"[yellow]warning:[/] plugin {info.name} is broken and skipped: {info.error}")
    try:
        return plugins, load_config(ctx.obj.config, plugins)
    except ConfigError as exc:
        fail(str(exc))


def open_store_or_exit(config: Config) -> Store:
    from debsync.store import open_store

    try:
        return open_store(config.store_url)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(value: object) -> str:
    if isinstance(value, Decimal | date):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


@functools.cache
def _arguments() -> Values:
    """The CSV reader's parsing of dates and amounts, for arguments: one parser for both."""
    from debsync.connectors.csv.values import Values

    return Values(day_first=True, decimal={",": ",", ".": "."}, strict=False)


def parse_date(text: str, option: str) -> date:
    """``2026-12-31``, ``31-12-2026``, ``31/12/2026`` or ``31.12.2026``."""
    found = _arguments().day(text.strip())
    if isinstance(found, str):
        fail(f"{option} expects a date like 31-12-2026 or 2026-12-31, got {text!r}")
    return found


def parse_amount(text: str, option: str) -> Decimal:
    """``20000``, ``20000,00``, ``20.000,00``, ``20000.00`` or ``20,000.00``; a value that
    reads two ways (``20.000``) is refused rather than guessed."""
    dutch, english = _arguments().amount(text.strip(), ","), _arguments().amount(text.strip(), ".")
    if isinstance(dutch, str) or isinstance(english, str):
        fail(f"{option} expects an amount like 20.000,00 or 20000.00, got {text!r}")
    if dutch != english:
        fail(f"{option}: {text!r} reads as {dutch} or as {english}; write the decimals too")
    return dutch


def money(amount: Decimal, currency: str) -> str:
    """An amount as the operator reads it: ``€ 968.249,55``."""
    from debsync import formatting

    return formatting.money(amount, currency)


def day(value: date) -> str:
    """A date as the operator reads it in a table: ``06-12-2026``."""
    from debsync import formatting

    return formatting.short_date(value)


def warn(warnings: Iterable[str]) -> None:
    """Print warnings on stderr, each text once: one repeated for many records is printed
    once with its count."""
    for text, count in Counter(warnings).items():
        times = f" ({count} times)" if count > 1 else ""
        err.print(f"[yellow]warning:[/] {escape(text)}{times}", highlight=False)


def main() -> None:
    """Console-script entry point. Installed plugins may add commands, so when any is
    installed all plugins load before the arguments are parsed; the built-ins add none, so
    without one they load on first use and ``--version`` and ``--help`` start fast."""
    from debsync.plugins import ENTRY_POINT_GROUP, Plugins

    if not importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        app()
        return
    plugins = Plugins()
    plugins.register_commands(app)
    app(obj=plugins)


ActionId = Annotated[str, typer.Argument(metavar="ACTION_ID", help="The action id (or 6+ chars).")]


AuthorOption = Annotated[
    str | None, typer.Option("--by", help="Who decided [default: the current user].")
]


JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def who(author: str | None) -> str:
    return author or getpass.getuser()


def short(key: str) -> str:
    return key[:12]


def decide(config: Config, decision: Any) -> Any:
    from debsync.outbox.table import OutboxError

    store = open_store_or_exit(config)
    try:
        return decision(store)
    except OutboxError as exc:  # an unknown id, an action in the wrong state: usage
        fail(str(exc))
    finally:
        store.dispose()


def rows_json(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.key,
            "instance": r.instance,
            "debtor": r.debtor_id,
            "step": r.step,
            "channel": r.channel,
            "state": r.state,
            "invoices": r.invoice_ids,
            "attempts": r.attempts,
            "planned_on": r.planned_on.isoformat(),
            "dispatched_on": r.dispatched_on.isoformat() if r.dispatched_on else None,
            "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
            "provider_id": r.provider_id,
            "error": r.last_error,
        }
        for r in rows
    ]
