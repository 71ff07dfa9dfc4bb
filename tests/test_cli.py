"""The command line end to end: a real connectors.toml, the CSV connector, the file, letter and
call actions, and the store; checked through the JSON shapes documented in docs/cli.md."""

from __future__ import annotations

import email
import email.policy
import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from debsync.cli import app
from debsync.clock import local_date, system_clock

from csv_helpers import export_header, write

TODAY = local_date(system_clock())  # debsync's today is Amsterdam's, not the machine's
HEADER = export_header("KvK-nummer", "Bedrag", "Valuta", "Betalingskenmerk")


def row(
    code: str, name: str, kind: str, mail: str, language: str, number: str, days: int, amount: str
) -> list[str]:
    due = TODAY - timedelta(days=days)
    return [
        code,
        name,
        kind,
        mail,
        "06-12345678",
        "Kerkstraat 1",
        "1234 AB",
        "Utrecht",
        language,
        number,
        f"{due - timedelta(days=30):%d-%m-%Y}",
        f"{due:%d-%m-%Y}",
        amount,
    ]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(
        tmp_path / "open-items.csv",
        [
            HEADER,
            row(
                "D1",
                "Bakkerij De Gouden Korrel B.V.",
                "Zakelijk",
                "info@korrel.example.nl",
                "nl",
                "F-001",
                3,
                "1.210,00",
            ),
            row(
                "D1",
                "Bakkerij De Gouden Korrel B.V.",
                "Zakelijk",
                "info@korrel.example.nl",
                "nl",
                "F-002",
                5,
                "605,00",
            ),
            row(
                "D2",
                "Oak & Ivy Consulting Ltd",
                "Zakelijk",
                "accounts@oakivy.example.com",
                "en",
                "F-003",
                4,
                "350,00",
            ),
            row("D3", "J.P. de Vries", "Particulier", "", "nl", "F-004", 10, "89,95"),
            row(
                "D4", "P. Jansen", "Particulier", "p.jansen@example.nl", "nl", "F-005", -10, "42,00"
            ),
        ],
    )
    (tmp_path / "connectors.toml").write_text(
        textwrap.dedent(
            """
            [creditor]
            name = "Voorbeeld Installatietechniek B.V."
            address = { lines = ["Industrieweg 12"], postcode = "3542 AD", city = "Utrecht" }
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
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    return tmp_path


def debsync(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, result.output
    return result


def as_json(*args: str, code: int = 0) -> Any:
    return json.loads(debsync(*args, "--json", code=code).stdout)


def test_a_cycle_writes_one_mail_per_debtor_in_their_language(project: Path) -> None:
    debsync("run", "--once")

    mails = {
        str(m["To"]): m
        for m in (
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted((project / "outbox").glob("*.eml"))
        )
    }
    assert sorted(mails) == [
        '"Bakkerij De Gouden Korrel B.V." <info@korrel.example.nl>',
        "Oak & Ivy Consulting Ltd <accounts@oakivy.example.com>",
    ]
    dutch = mails['"Bakkerij De Gouden Korrel B.V." <info@korrel.example.nl>']
    assert dutch["Subject"] == "Herinnering: facturen F-002, F-001"
    assert "€\xa01.815,00" in dutch.get_body(("plain",)).get_content()
    english = mails["Oak & Ivy Consulting Ltd <accounts@oakivy.example.com>"]
    assert english["Subject"] == "Reminder: invoice F-003"
    # D3 has no e-mail address: the reminder falls back to a letter (the ladder is never
    # skipped); the call follows a week after it
    assert len(list((project / "letters").glob("**/*.pdf"))) == 1
    assert as_json("calls")["calls"] == []

    again = debsync("run", "--once")
    assert "0 newly queued; nothing was due to send" in again.stdout
    assert len(list((project / "outbox").glob("*.eml"))) == 2


def test_status_json_has_aging_rejects_and_the_outbox(project: Path) -> None:
    debsync("run", "--once")
    status = as_json("status")
    (books,) = status["instances"]
    eur = books["currencies"]["EUR"]
    assert books["open_invoices"] == 5 and eur["open_amount"] == "2296.95"
    assert eur["aging_counts"] == {"not_due": 1, "0-30": 4, "31-60": 0, "61-90": 0, ">90": 0}
    assert status["outbox"]["counts"] == {"sent": 3}
    assert status["outbox"]["needs_review"] == [] and status["version"] == 1


def test_plan_json_explains_and_act_dry_run_changes_nothing(project: Path) -> None:
    debsync("sync")
    plan = as_json("plan")
    steps = {(a["debtor"], a["channel"]): a for a in plan["actions"]}
    assert set(steps) == {("D1", "email"), ("D2", "email"), ("D3", "letter")}  # no e-mail
    assert steps[("D1", "email")]["principal"] == "1815.00"
    assert [s["reason"] for s in plan["skipped"]] == ["not_yet_due"]
    explained = debsync("plan", "--explain", "F-005").stdout
    assert "not_yet_due" in explained and "reminder" in explained

    dry = debsync("act", "--dry-run").stdout
    assert "already queued: 0" in dry
    assert as_json("outbox")["actions"] == []


def test_approval_preview_and_dossier(project: Path) -> None:
    debsync("run", "--once")
    sent = as_json("outbox")["actions"]
    mail = next(a for a in sent if a["debtor"] == "D2")
    preview = debsync("preview", mail["id"][:10]).stdout
    assert "payload sha256" in preview and "Subject: Reminder: invoice F-003" in preview

    refused = debsync("approve", mail["id"], code=2)
    assert "is sent; only an action that is" in refused.output

    dossier = as_json("dossier", "D2")
    kinds = [e["kind"] for e in dossier["timeline"]]
    assert kinds[:2] == ["debtor.created", "invoice.opened"]
    assert kinds[-4:] == ["action.planned", "action.sending", "action.sent", "step.sent"]
    assert (
        dossier["actions"][0]["payload_sha256"] == dossier["timeline"][-3]["data"]["payload_sha256"]
    )


def test_a_call_outcome_pauses_the_ladder(project: Path) -> None:
    export = project / "open-items.csv"  # D3 has neither e-mail nor address: a call task
    lines = export.read_text(encoding="utf-8-sig").splitlines()
    lines = [
        ln.replace(";Kerkstraat 1;1234 AB;Utrecht;", ";;;;") if "F-004" in ln else ln
        for ln in lines
    ]
    export.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    debsync("run", "--once")
    (call,) = as_json("calls")["calls"]
    promised = TODAY + timedelta(days=5)
    done = debsync(
        "calls",
        "done",
        call["id"][:8],
        "--outcome",
        "promised",
        "--promise-date",
        promised.isoformat(),
        "--note",
        "betaalt vrijdag",
    )
    assert "1 invoice(s) paused" in done.stdout
    assert as_json("calls")["calls"] == []
    skipped = {
        s["number"]: s
        for s in as_json("plan", "--at", (TODAY + timedelta(days=7)).isoformat())["skipped"]
    }
    assert skipped["F-004"]["reason"] == "paused"
    assert "promised to pay by" in skipped["F-004"]["explanation"]


def test_a_letter_is_posted_by_hand(project: Path) -> None:
    (project / "connectors.toml").write_text(
        (project / "connectors.toml").read_text(encoding="utf-8")
        + textwrap.dedent(
            """
            [policies.default]
            [[policies.default.steps]]
            name = "aanmaning"
            channels = ["letter"]
            days_after_due = 1
            """
        ),
        encoding="utf-8",
    )
    debsync("run", "--once")
    letters = as_json("letters")["letters"]
    assert len(letters) == 3 and len(list((project / "letters").glob("*.pdf"))) == 3
    posted = debsync("letters", "posted", letters[0]["id"], "--date", TODAY.isoformat())
    assert f"posted on {TODAY:%d-%m-%Y}" in posted.stdout
    assert len(as_json("letters")["letters"]) == 2


def test_bad_configuration_is_exit_code_2_with_every_problem(project: Path) -> None:
    config = project / "connectors.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('path = "open-items.csv"', 'pad = "x.csv"'),
        encoding="utf-8",
    )
    result = debsync("config", "check", code=2)
    assert "[connectors.books.pad]: unknown key" in result.output
    assert "[connectors.books.path]: Field required" in result.output


def test_a_failed_sync_is_exit_code_1_and_shown_by_status(project: Path) -> None:
    (project / "open-items.csv").unlink()
    debsync("sync", code=1)
    status = as_json("status", code=1)
    assert "CSV file not found" in status["instances"][0]["last_error"]
