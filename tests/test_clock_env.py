"""DEBSYNC_NOW: every command that reads the time reads the injected moment.

The walk runs the README's example at 2026-12-15 10:00 Amsterdam time, two weeks after this
suite was written, so a date that comes from the machine's clock instead would show.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from debsync.cli import app
from debsync.clock import AMSTERDAM, local_date, parse_moment, starting_at

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-12-15T10:00:00+01:00"
TODAY = date(2026, 12, 15)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(REPO / "connectors.toml", tmp_path / "connectors.toml")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    return tmp_path


def debsync(*args: str, now: str = NOW, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env={"DEBSYNC_NOW": now})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(debsync(*args, "--json").stdout)


def on_today(timestamp: str) -> bool:
    """An ISO timestamp that falls on the injected day in Amsterdam."""
    return local_date(datetime.fromisoformat(timestamp)) == TODAY


def test_every_command_that_reads_the_time_reads_debsync_now(project: Path) -> None:
    debsync("run", "--once")  # sync, plan and act
    status = as_json("status")
    assert status["today"] == TODAY.isoformat()
    assert on_today(status["instances"][0]["last_sync"])
    assert as_json("plan")["today"] == TODAY.isoformat()
    actions = as_json("outbox")["actions"]
    assert actions and {a["planned_on"] for a in actions} == {TODAY.isoformat()}
    assert {a["dispatched_on"] for a in actions if a["channel"] == "email"} == {TODAY.isoformat()}

    letter = as_json("letters")["letters"][0]
    assert "15-12-2026" in debsync("letters", "posted", letter["id"]).stdout  # default: today

    # A hold ending on the day before the injected one has passed, though the machine's
    # calendar has not reached it yet.
    refused = debsync(
        "pause", "--until", "14-12-2026", "--reason", "x", "--debtor", "10239", code=2
    )
    assert "has passed" in refused.output
    debsync("pause", "--until", "20-12-2026", "--reason", "holiday", "--debtor", "10239")
    (pause,) = as_json("pauses")["pauses"]
    assert on_today(pause["since"])

    timeline = as_json("dossier", letter["debtor"])["timeline"]
    assert {e["kind"] for e in timeline} >= {"invoice.opened", "action.sent", "letter.posted"}
    assert all(on_today(e["at"]) for e in timeline)

    purge = as_json("purge", "--dry-run")
    cutoff = datetime.fromisoformat(purge["cutoff"])
    assert local_date(cutoff + timedelta(days=purge["retention_days"])) == TODAY

    exported = json.loads(debsync("export", letter["debtor"]).stdout)
    assert on_today(exported["exported_at"])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tomorrow", "Invalid isoformat string"),
        ("2026-12-15T10:00:00", "no offset"),
        ("15-12-2026 10:00", "Invalid isoformat string"),
    ],
)
def test_a_bad_debsync_now_is_a_usage_error_naming_the_variable(
    project: Path, value: str, reason: str
) -> None:
    result = debsync("status", now=value, code=2)
    assert "DEBSYNC_NOW" in result.output and reason in result.output


def test_the_injected_clock_starts_at_the_moment_and_moves_on_with_real_time() -> None:
    real = [datetime(2026, 12, 2, 1, 0, tzinfo=UTC)]
    clock = starting_at(parse_moment(NOW), lambda: real[0])
    assert clock() == datetime(2026, 12, 15, 10, 0, tzinfo=AMSTERDAM)
    real[0] += timedelta(minutes=15)
    assert clock() == datetime(2026, 12, 15, 10, 15, tzinfo=AMSTERDAM)
    assert parse_moment("2026-12-15T09:00:00Z") == parse_moment(NOW)
