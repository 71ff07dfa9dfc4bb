"""No personal data and no secret in any log line, at the highest verbosity.

The README's example project, with its e-mail sent through a real SMTP server that asks for a
password, goes through a full cycle at ``-vv`` in both log formats. Two things are scanned for
every debtor's name, e-mail address, phone number (as exported, national, E.164 and
international), street address and IBAN (compact and grouped), and the SMTP password:

- the log records as the modules wrote them, caught on the ``debsync`` logger before the
  scrubbing filter on the handler touches them: the sources themselves must be clean;
- the log lines the handler wrote on stderr, as an operator's log collector would get them.

What a command prints on stdout for a person (the dossier's name, say) is its output, not a
log line, and is not scanned.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import phonenumbers
import pytest
from typer.testing import CliRunner

from debsync.cli import app
from debsync.connectors.csv.reader import FileReader
from debsync.formatting import iban
from debsync.logs import JsonLines, Scrub
from debsync.plugins import TRACE_ENV

from smtp_server import LoopbackCA, SMTPTestServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "open-items.csv"
PASSWORD = "Vr7-privacy-Kq2x!smtp"  # nothing else in a run could contain this by chance
NOW = "2026-12-15T10:00:00+01:00"
REFUSED_DEBTOR, REFUSED_NAME, REFUSED_ADDRESS = "10239", "M. Jansen-Bakker", "m.jansen@example.nl"


def personal_data() -> set[str]:
    """Every name, e-mail address, phone number, street address and IBAN in the example."""
    found: set[str] = set()
    with EXAMPLE.open(encoding="utf-8-sig", newline="") as file:
        for row in csv.DictReader(file, delimiter=";"):
            found |= {row["Naam"], row["Adres"]}
            found |= {a.strip() for a in row["E-mail"].replace(",", ";").split(";")}
            if row["Telefoon"]:
                found.add(row["Telefoon"])
                number = phonenumbers.parse(row["Telefoon"], "NL")
                found |= {
                    phonenumbers.format_number(number, style)
                    for style in (
                        phonenumbers.PhoneNumberFormat.E164,
                        phonenumbers.PhoneNumberFormat.NATIONAL,
                        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                    )
                }
                found.add("".join(c for c in row["Telefoon"] if c.isdigit()))
            if row["IBAN"]:
                compact = "".join(row["IBAN"].split())
                found |= {row["IBAN"], compact, iban(compact)}
    found.discard("")
    return found


class Records(logging.Handler):
    """Every record the ``debsync`` loggers emit, formatted before any filter runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.levelname} {record.name}: {text} {extras}")


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "taskName"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SMTPTestServer]:
    ca = LoopbackCA(tmp_path)
    with SMTPTestServer(tls=ca.server_context(), users={"debsync": PASSWORD}) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    shutil.copytree(REPO / "examples", directory / "examples")
    config = (REPO / "connectors.toml").read_text(encoding="utf-8")
    files = '[actions.outbox-files]\ntype = "file"\ndirectory = "var/outbox"\n'
    assert files in config
    smtp = (
        '[actions.mail]\ntype = "email"\n'
        f'host = "{server.host}"\nport = {server.port}\nsecurity = "starttls"\n'
        f'ca_file = "{tmp_path / "smtp-test-ca.pem"}"\nhelo_name = "debsync.test"\n'
        'username = "debsync"\npassword = { env = "DEBSYNC_TEST_SMTP_PASSWORD" }\n'
    )
    (directory / "connectors.toml").write_text(config.replace(files, smtp), encoding="utf-8")
    monkeypatch.chdir(directory)
    monkeypatch.setenv("DEBSYNC_TEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    # The SMTP server runs in this process: its own logging is the server's, not debsync's.
    monkeypatch.setattr(logging.getLogger("mail.log"), "disabled", True)
    return directory


# Both formats see every subsystem: the first cycle (syncing, sending, printing letters, a
# refusal) in one, a second cycle (syncing, planning, nothing left to send) in the other.
COMMANDS = [
    ("human", ["sync"]),
    ("json", ["plan"]),
    ("human", ["run", "--once"]),
    ("json", ["run", "--once"]),
    ("json", ["status"]),
    ("human", ["status"]),
    ("human", ["plan"]),
    ("json", ["dossier", REFUSED_DEBTOR]),
    ("human", ["dossier", REFUSED_DEBTOR]),
]


def test_a_full_run_at_debug_level_logs_no_personal_data_and_no_password(
    project: Path, server: SMTPTestServer
) -> None:
    # A real server's refusal names the address it refuses.
    reply = f"550 5.1.1 <{REFUSED_ADDRESS}>: Recipient address rejected: User unknown"
    server.fail("RCPT", reply, recipient=REFUSED_ADDRESS)
    records = Records()
    logging.getLogger("debsync").addHandler(records)
    written: dict[str, list[str]] = {"human": [], "json": []}
    shown = ""
    try:
        for log_format, command in COMMANDS:
            result = CliRunner().invoke(
                app,
                ["-vv", "--log-format", log_format, *command],
                env={"DEBSYNC_NOW": NOW, TRACE_ENV: "1"},  # hook calls logged too
            )
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert result.exit_code in (0, 1), result.output  # status: 1 for the refusal
            written[log_format] += [line for line in result.stderr.splitlines() if line.strip()]
            shown += result.stdout
    finally:
        logging.getLogger("debsync").removeHandler(records)

    sent = [m for m in server.messages if m.reply and m.reply.startswith("250")]
    assert sent and {m.login for m in sent} == {"debsync"}  # the password was used, over TLS
    assert logging.getLogger("debsync").getEffectiveLevel() == logging.DEBUG  # -vv is debug
    assert any("accepted <ds." in line for line in records.lines)  # each sent mail is logged
    assert REFUSED_ADDRESS not in {rcpt for m in sent for rcpt in m.rcpt_tos}
    assert any("550 5.1.1" in line for line in records.lines)  # the refusal was logged
    objects = [json.loads(line) for line in written["json"] if line.startswith("{")]
    assert objects and all({"ts", "level", "logger", "msg"} <= set(o) for o in objects)
    assert {"debsync.sync", "debsync.plugins"} <= {o["logger"] for o in objects}
    assert any(o.get("instance") == "example" and o.get("run_id") for o in objects)  # extra=
    assert any("debsync.action: action" in line for line in written["human"])

    secrets = personal_data() | {PASSWORD}
    assert REFUSED_NAME in secrets and REFUSED_NAME in shown  # the dossier's output, not a log
    for source, lines in (
        ("a log record", records.lines),
        ("a human log line", written["human"]),
        ("a JSON log line", written["json"]),
    ):
        for line in lines:
            leaked = sorted(s for s in secrets if s in line)
            assert not leaked, f"{source} carries {leaked}: {line}"
        folded = " ".join(" ".join(lines).split())  # a long line the console wrapped
        assert not [s for s in secrets if " ".join(s.split()) in folded], source


def test_the_handler_scrubs_message_fields_and_traceback_and_writes_json_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(Scrub())
    log = logging.getLogger("debsync.test_log_privacy")
    log.addHandler(handler)
    try:
        log.warning(
            "action %s: %s refused",
            "3f2a9c0d41b7",
            "jp.devries@example.nl",
            extra={"instance": "example", "run_id": 7, "to": "+31 6 12345678"},
        )
        try:
            raise ValueError("IBAN NL91 ABNA 0417 1643 00 is blocked")
        except ValueError:
            log.exception("action %s: unexpected error", "3f2a9c0d41b7")
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "action 3f2a9c0d41b7: [e-mail] refused"
    assert (first["level"], first["logger"]) == ("warning", "debsync.test_log_privacy")
    assert (first["instance"], first["run_id"], first["to"]) == ("example", 7, "[phone]")
    assert datetime.fromisoformat(first["ts"]).tzinfo is not None
    assert "ValueError: IBAN [IBAN] is blocked" in second["exc"] and "NL91" not in second["exc"]


def test_a_bug_on_a_row_is_logged_by_where_it_failed_not_by_what_the_row_holds(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's message may quote the cells it choked on: the log keeps the frames and the
    exception's type, and the row is rejected by its reference."""

    def choke(self: FileReader, line: int, row: list[str], number: str) -> None:
        raise ValueError(f"cannot handle {row[1]!r} at {row[5]!r}")

    monkeypatch.setattr(FileReader, "invoice_row", choke)
    records = Records()
    logging.getLogger("debsync").addHandler(records)
    try:
        result = CliRunner().invoke(app, ["-vv", "sync"], env={"DEBSYNC_NOW": NOW})
    finally:
        logging.getLogger("debsync").removeHandler(records)
    assert result.exit_code == 0, result.output
    errors = [line for line in records.lines if line.startswith("ERROR ")]
    assert errors and all("unexpected ValueError" in line and "choke" in line for line in errors)
    secrets = personal_data()
    assert not [s for s in secrets for line in errors if s in line]
