"""The command line's contract (issue 11, item 10): every usage error exits 2 with a message on
standard error, whichever command it is; dates and amounts are taken the Dutch way as well as
the ISO way; a hold cannot end in the past; Ctrl-C stops a sync at a page boundary and the run
is recorded as interrupted; ``config check`` checks the files it names; a repeated warning is
printed once with its count.

The commands are discovered from the typer app, so a command added later is walked too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import typer.main
from typer.testing import CliRunner, Result

from debsync.cli import app
from debsync.cli.common import warn
from debsync.clock import local_date, system_clock
from debsync.pauses import active_pauses
from debsync.plugins import Plugins
from debsync.store import open_store
from debsync.store.schema import sync_runs

from csv_helpers import export_header, write
from fake_http import FakeServer
from fake_moneybird import FakeMoneybird

TODAY = local_date(system_clock())
PLUGINS = Plugins()
"""Loaded once for the module, as ``debsync`` loads them once per process."""
NOT_A_DATE = "31-13-2026"
DATE_HELP = "2026-12-31"
"""Every option that takes a date says so in its help ("31-12-2026 or 2026-12-31")."""


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = [(path, command) for path, command in _walk(typer.main.get_command(app)) if path]
IDS = [" ".join(path) for path, _ in COMMANDS]


def _annotation(param: Any) -> Any:
    return param.type_descriptor.annotation


def _choices(param: Any) -> list[str]:
    kind = _annotation(param)
    return [e.value for e in kind] if isinstance(kind, type) and issubclass(kind, Enum) else []


def _value_for(param: Any) -> str:
    """A well-formed value for a parameter the test does not exercise."""
    if _choices(param):
        return _choices(param)[0]
    return "1" if _annotation(param) is int else "zzzzzz"


def _required(command: Any, but: Any = None) -> list[str]:
    """Arguments that fill every required parameter of ``command`` except ``but``."""
    args: list[str] = []
    for param in command.params:
        if param is but or not param.required:
            continue
        if param.param_type_name == "argument":
            args.append(_value_for(param))
        else:
            args += [param.opts[0], _value_for(param)]
    return args


def _write_project(directory: Path) -> None:
    """One debtor with one overdue invoice in a CSV export, and the shipped channels."""
    due = TODAY - timedelta(days=20)
    write(
        directory / "open-items.csv",
        [
            export_header("KvK-nummer", "Bedrag", "Valuta", "Betalingskenmerk"),
            [
                "D1",
                "Bakkerij De Gouden Korrel B.V.",
                "Zakelijk",
                "info@korrel.example.nl",
                "06-12345678",
                "Kerkstraat 1",
                "1234 AB",
                "Utrecht",
                "nl",
                "F-001",
                f"{due - timedelta(days=30):%d-%m-%Y}",
                f"{due:%d-%m-%Y}",
                "1.210,00",
            ],
        ],
    )
    (directory / "connectors.toml").write_text(
        textwrap.dedent(
            """
            [creditor]
            name = "Voorbeeld Installatietechniek B.V."
            address = { lines = ["Industrieweg 12"], postcode = "3542 AD", city = "Utrecht" }
            iban = "NL91ABNA0417164300"

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
            """
        ),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A synced project that the tests using it leave unchanged (every command they run is
    refused or only reads)."""
    directory = tmp_path_factory.mktemp("books")
    _write_project(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.delenv("DEBSYNC_CONFIG", raising=False)
        patch.delenv("DEBSYNC_DATABASE_URL", raising=False)
        debsync("sync")
        yield directory


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A synced project of the test's own, to change."""
    _write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    debsync("sync")
    return tmp_path


def debsync(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), obj=PLUGINS)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def usage_error(*args: str) -> str:
    """Run a command that must be refused as usage: exit 2, a message on stderr, nothing on
    stdout; returns the message."""
    result = debsync(*args, code=2)
    assert result.stderr.strip(), args
    assert not result.stdout.strip(), (args, result.stdout)
    return " ".join(result.stderr.split())


# -- every command, walked -----------------------------------------------------------------


def test_the_walk_finds_the_commands_and_their_subcommands() -> None:
    found = set(IDS)
    assert {"sync", "status", "plan", "pause", "calls done", "outbox cancel", "config check"} <= (
        found
    )


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_an_unknown_option_is_usage(books: Path, path: tuple[str, ...], command: Any) -> None:
    message = usage_error(*path, *_required(command), "--no-such-option")
    assert "No such option: --no-such-option" in message


@pytest.mark.parametrize(
    ("path", "command"),
    [(p, c) for p, c in COMMANDS if any(param.required for param in c.params)],
    ids=[i for i, (_, c) in zip(IDS, COMMANDS, strict=True) if any(p.required for p in c.params)],
)
def test_a_missing_required_parameter_is_usage(
    books: Path, path: tuple[str, ...], command: Any
) -> None:
    for param in command.params:
        if param.required:
            message = usage_error(*path, *_required(command, but=param))
            assert "Missing" in message, message


def _typed(command: Any) -> Iterator[tuple[Any, str]]:
    """Each parameter of ``command`` that checks its value, with a value it must refuse."""
    for param in command.params:
        if param.param_type_name != "option" or param.is_flag or param.count:
            continue
        if _choices(param):
            yield param, "no-such-choice"
        elif _annotation(param) is int:
            yield param, "many"
        elif DATE_HELP in (param.help or ""):
            yield param, NOT_A_DATE


TYPED = [
    (path, command, param, bad) for path, command in COMMANDS for param, bad in _typed(command)
]


@pytest.mark.parametrize(
    ("path", "command", "param", "bad"),
    TYPED,
    ids=[f"{' '.join(p)} {param.opts[0]}" for p, _, param, _ in TYPED],
)
def test_a_bad_value_is_usage(
    books: Path, path: tuple[str, ...], command: Any, param: Any, bad: str
) -> None:
    message = usage_error(*path, *_required(command, but=param), param.opts[0], bad)
    assert bad in message or "Invalid value" in message, message


def test_every_date_option_is_walked() -> None:
    dated = {f"{' '.join(p)} {param.opts[0]}" for p, _, param, bad in TYPED if bad == NOT_A_DATE}
    assert {"pause --until", "promise --date", "plan --at", "status --at"} <= dated
    assert {"calls done --promise-date", "letters posted --date"} <= dated


# -- the cases the issue names -------------------------------------------------------------


def test_the_issues_usage_errors_exit_2(books: Path) -> None:
    assert "--outcome promised needs --promise-date" in usage_error(
        "calls", "done", "abcdef", "--outcome", "promised"
    )
    assert "no invoice numbered '9999-9999'" in usage_error(
        "pause", "--invoice", "9999-9999", "--until", "31-12-2099", "--reason", "x"
    )
    assert "give at least 6 characters of the action id" in usage_error("preview", "49e6")
    assert "no active pause 'zzzzzz'" in usage_error("resume", "zzzzzz", "--reason", "x")
    assert "no open invoice numbered 'F-999'" in usage_error("plan", "--explain", "F-999")
    assert "no debtor 'D9'" in usage_error("dossier", "D9")
    assert "no action 'zzzzzz'" in usage_error("approve", "zzzzzz")


def test_a_hold_ending_in_the_past_is_refused(project: Path) -> None:
    yesterday = TODAY - timedelta(days=1)
    message = usage_error(
        "pause", "--invoice", "F-001", "--until", f"{yesterday:%d-%m-%Y}", "--reason", "x"
    )
    assert f"--until {yesterday:%d-%m-%Y} has passed" in message
    assert json.loads(debsync("pauses", "--json").stdout)["pauses"] == []
    debsync("pause", "--invoice", "F-001", "--until", f"{TODAY:%d-%m-%Y}", "--reason", "x")


def test_dutch_dates_and_amounts_are_taken_wherever_iso_ones_are(project: Path) -> None:
    debsync("pause", "--invoice", "F-001", "--until", "31/12/2099", "--reason", "holiday")
    debsync(
        "plan-payments",
        "--debtor",
        "D1",
        "--instalment",
        "15-12-2099=20.000,00",
        "--instalment",
        "2100-01-15=1210.5",
        "--instalment",
        "15.02.2100=20000,00",
    )
    store = open_store(f"sqlite:///{project / 'var' / 'debsync.db'}")
    try:
        found = {p.kind.value: p for p in active_pauses(store)}
    finally:
        store.dispose()
    assert found["hold"].until is not None and found["hold"].until.isoformat() == "2099-12-31"
    plan = [(i.due_on.isoformat(), i.amount_minor) for i in found["payment_plan"].instalments]
    assert plan == [("2099-12-15", 2_000_000), ("2100-01-15", 121_050), ("2100-02-15", 2_000_000)]
    debsync("plan", "--at", f"{TODAY:%d-%m-%Y}")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("15-12-2099=20.000", "reads as 20000 or as 20.000"),  # could be either: refused
        ("15-12-2099=abc", "expects an amount"),
        ("15-12-2099", "expects DATE=AMOUNT"),
        ("31-02-2099=10,00", "expects a date"),
        ("15-12-2099=10,0015", "is a positive amount in euros and cents"),
        ("15-12-2099=-10,00", "is a positive amount in euros and cents"),
    ],
)
def test_a_bad_instalment_is_usage(books: Path, value: str, reason: str) -> None:
    assert reason in usage_error("plan-payments", "--debtor", "D1", "--instalment", value)


def test_the_human_output_speaks_dutch_and_json_stays_iso(books: Path) -> None:
    status = debsync("status").stdout
    assert "€ 1.210,00 open" in " ".join(status.replace("\xa0", " ").split())
    assert f"aging as of {TODAY:%d-%m-%Y}" in status
    data = json.loads(debsync("status", "--json").stdout)
    assert data["today"] == TODAY.isoformat()
    assert data["instances"][0]["currencies"]["EUR"]["open_amount"] == "1210.00"
    dossier = " ".join(debsync("dossier", "D1").stdout.replace("\xa0", " ").split())
    assert "€ 1.210,00" in dossier and f"{TODAY - timedelta(days=20):%d-%m-%Y}" in dossier


def test_log_lines_carry_iso_timestamps(books: Path) -> None:
    result = debsync("-v", "sync")
    stamps = [line.split()[0] for line in result.stderr.splitlines() if "debsync.sync" in line]
    assert stamps, result.stderr
    assert all(s[:4].isdigit() and s[4] == "-" and "T" in s for s in stamps), stamps


# -- config check ----------------------------------------------------------------------------


def test_config_check_names_every_missing_file_by_its_key(project: Path) -> None:
    (project / "open-items.csv").unlink()
    config = project / "connectors.toml"
    (project / "blocker").write_text("a file where a folder should be", encoding="utf-8")
    text = config.read_text(encoding="utf-8").replace('"letters"', '"blocker"')
    text += '\n[law]\ninterest_rates = "rates.csv"\n'
    config.write_text(text, encoding="utf-8")
    message = usage_error("config", "check")
    assert f"[connectors.books.path]: {project / 'open-items.csv'} does not exist" in message
    assert f"[law.interest_rates]: {project / 'rates.csv'} does not exist" in message
    assert f"[actions.print.directory]: {project / 'blocker'} is not a folder" in message
    assert "[actions.files.directory]" not in message  # created on first use


def test_config_check_passes_when_the_files_are_there(project: Path) -> None:
    assert "ok" in debsync("config", "check").stdout


# -- warnings --------------------------------------------------------------------------------


def test_a_repeated_warning_is_printed_once_with_its_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    warn(["the rate table ends 30-06-2026"] * 44 + ["2 action(s) wait"])
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "warning: the rate table ends 30-06-2026 (44 times)",
        "warning: 2 action(s) wait",
    ]


def test_many_rejects_of_one_kind_are_said_once_with_their_count(project: Path) -> None:
    header = export_header("KvK-nummer", "Bedrag", "Valuta", "Betalingskenmerk")
    debtor = ["D1", "Bakkerij De Gouden Korrel B.V.", "Zakelijk", "info@korrel.example.nl"]
    bad = [
        [*debtor, "", "", "", "", "nl", f"F-{n:03d}", "01-10-2026", "32-13-2026", "100,00"]
        for n in range(30)
    ]
    write(project / "open-items.csv", [header, *bad])
    result = debsync("sync")
    said = " ".join(result.stderr.split())
    assert said.count("rejected") == 1, result.stderr
    assert "30 record(s) rejected or repaired; see `debsync status`" in said
    listed = " ".join(debsync("status").stdout.split())
    assert "30 rejected or repaired record(s) in the last sync:" in listed
    assert (
        "rejected 30 × row (open-items.csv:2, open-items.csv:3, open-items.csv:4 and 27 more): "
        "column 'Vervaldatum': '32-13-2026' is not a valid date"
    ) in listed
    assert listed.count("is not a valid date") == 1
    rejects = json.loads(debsync("status", "--json").stdout)["instances"][0]["rejects"]
    assert len(rejects) == 30  # the machine output keeps every record


# -- Ctrl-C during a sync ------------------------------------------------------------------


class Stalling:
    """The Moneybird fake, holding back the third page of sales invoices until released: the
    test interrupts the sync while it waits for that page."""

    def __init__(self, fake: FakeMoneybird) -> None:
        self.fake = fake
        self.pages = 0
        self.waiting = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/sales_invoices.json"):
            self.pages += 1
            if self.pages == 3:
                self.waiting.set()
                self.release.wait(60)
        return self.fake(request)


def test_ctrl_c_stops_a_sync_at_a_page_boundary_and_records_it(tmp_path: Path) -> None:
    fake = FakeMoneybird()
    contact = fake.add_contact(company_name="Bakkerij De Gouden Korrel B.V.")
    for n in range(5):
        fake.add_invoice(
            contact["id"],
            f"2026-{n:04d}",
            total="121.00",
            invoice_date="2026-10-01",
            due_date="2026-10-31",
        )
    stalling = Stalling(fake)
    database = tmp_path / "debsync.db"
    with FakeServer(stalling) as server:
        config = tmp_path / "connectors.toml"
        config.write_text(
            textwrap.dedent(
                f"""
                [store]
                url = "sqlite:///{database}"

                [connectors.mb]
                type = "moneybird"
                administration_id = "{fake.administration_id}"
                base_url = "{server.url}/api/v2"
                token = {{ env = "MB_TOKEN" }}
                per_page = 1
                """
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "MB_TOKEN": fake.token}
        env.pop("DEBSYNC_DATABASE_URL", None)
        command = [sys.executable, "-m", "debsync", "-c", str(config), "sync"]
        # A suite started as a shell's background job ignores SIGINT, and so would the child
        # (an ignored signal stays ignored across exec): give it the terminal's default.
        ignoring = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        finally:
            signal.signal(signal.SIGINT, ignoring)
        try:
            assert stalling.waiting.wait(60), "the sync never asked for the third page"
            process.send_signal(signal.SIGINT)
        finally:
            stalling.release.set()
            stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (stdout, stderr)
    assert "interrupted: the sync stopped at a page boundary" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    store = open_store(f"sqlite:///{database}")
    try:
        with store.engine.connect() as conn:
            (run,) = conn.execute(sa.select(sync_runs)).mappings()
            open_invoices = conn.execute(sa.text("select count(*) from invoices")).scalar_one()
    finally:
        store.dispose()
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert run["pages"] == 1 and open_invoices == 1  # the first page is kept, whole
    assert run["error"] == "interrupted after 1 page(s); nothing was closed"
