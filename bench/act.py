"""Benchmark: actions per second through the outbox on SQLite.

Builds a store with N debtors that each have one invoice due for a reminder, then runs
``debsync act``: plan and enqueue (timed apart), then send through the outbox (claim,
re-check, render, mark sending, send, record) with

* a no-op action (renders a small payload, sends nowhere), and
* the ``email`` action against a real SMTP server (aiosmtpd) on loopback, one connection per
  batch.

    python bench/act.py [--actions 5000] [--emails 2000] [--rounds 3] [--only noop|email]

Targets (issue 4): >= 2,000 no-op actions/s on SQLite; >= 200 emails/s with connection reuse;
(issue 16) >= 3,000 no-op actions/s, and e-mail within 2x of the floor:
``../shared/bench/smtp_limit.py``'s one-connection loop (bare smtplib and ``EmailMessage``), run
against the same server in this run. Pin it to one core (``taskset -c 1``); on a busy machine
the per-CPU-second figure printed beside actions/s shows how much of the gap is the machine.
Each phase runs in a fresh process so its figures are its own; e-mail and its floor alternate
for ``--rounds`` rounds and the median of the rounds' ratios is the figure to report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NOOP_TARGET = 3000
DUE = date(2026, 11, 20)


def seed(url: str, debtors: int) -> None:
    """N debtors with one overdue invoice each, synced an hour ago."""
    import sqlalchemy as sa

    from debsync.store import open_store
    from debsync.store.schema import connector_state, invoices
    from debsync.store.schema import debtors as debtors_table

    store = open_store(url)
    now = NOW - timedelta(hours=1)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(connector_state).values(
                instance="bench", type="csv", last_success_at=now, last_attempt_at=now
            )
        )
        conn.execute(
            sa.insert(debtors_table),
            [
                {
                    "instance": "bench",
                    "external_id": f"D{n:07d}",
                    "name": f"Handelsonderneming {n} B.V.",
                    "kind": "business",
                    "emails": [f"debiteur{n}@example.nl"],
                    "phones": ["+31612345678"],
                    "language": "nl" if n % 7 else "en",
                    "address": {
                        "lines": [f"Dorpsstraat {n}"],
                        "postcode": "1234 AB",
                        "city": "Utrecht",
                    },
                    "kvk": None,
                    "vat": None,
                    "iban": None,
                    "fingerprint": b"0" * 16,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(debtors)
            ],
        )
        conn.execute(
            sa.insert(invoices),
            [
                {
                    "instance": "bench",
                    "external_id": f"F{n:08d}",
                    "number": f"2026-{n:07d}",
                    "debtor_id": f"D{n:07d}",
                    "issue_date": DUE - timedelta(days=30),
                    "due_date": DUE,
                    "currency": "EUR",
                    "total_minor": 12100 + n,
                    "open_minor": 12100 + n,
                    "payment_reference": f"RF18{n:010d}",
                    "payment_url": None,
                    "direct_debit": False,
                    "has_document": False,
                    "state": "open",
                    "closed_at": None,
                    "fingerprint": b"0" * 16,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(debtors)
            ],
        )
    store.dispose()


def phase(kind: str, work: Path, count: int, port: int | None) -> dict[str, float]:
    from debsync.actions.base import Action, ActionSettings, MessageContext, Receipt
    from debsync.config import ActionInstance, Config, ConnectorInstance, CreditorSettings
    from debsync.connectors.base import Connector, ConnectorSettings, Page
    from debsync.outbox.executor import Dispatcher
    from debsync.outbox.table import enqueue
    from debsync.planning import plan_from_store
    from debsync.plugins import Plugins
    from debsync.store import open_store
    from debsync.store.schema import ActionState

    class NoopSettings(ActionSettings):
        pass

    class NoopAction(Action[NoopSettings]):
        type_name: ClassVar[str] = "noop"
        Settings: ClassVar[type[ActionSettings]] = NoopSettings
        channel: ClassVar[str] = "email"
        idempotent: ClassVar[bool] = True

        def render(self, context: MessageContext) -> dict[str, Any]:
            return {"to": list(context.debtor.emails), "total": str(context.total)}

        async def send(self, payload: dict[str, Any], idempotency_key: str) -> Receipt:
            return Receipt(provider_id=idempotency_key[:12])

    class StoredOnly(Connector[ConnectorSettings]):
        """The bench seeds the store directly; nothing is fetched."""

        type_name: ClassVar[str] = "stored"
        Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings

        async def fetch(self, cursor: Any) -> Any:
            yield Page(snapshot_complete=True)

    url = f"sqlite:///{work / 'bench.db'}"
    seed(url, count)
    plugins = Plugins(entry_points=False)
    if kind == "noop":
        action = ActionInstance("noop", "noop", NoopAction, NoopSettings())
    else:
        email_cls = plugins.action_types()["email"]
        settings = email_cls.Settings.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "allow_insecure": True,
                "from_address": "debiteuren@voorbeeld.example.nl",
            }
        )
        action = ActionInstance("mail", "email", email_cls, settings)
    config = Config(
        path=work / "connectors.toml",
        store_url=url,
        creditor=CreditorSettings(name="Voorbeeld B.V.", iban="NL91ABNA0417164300"),
        connectors={"bench": ConnectorInstance("bench", "stored", StoredOnly, ConnectorSettings())},
        actions={action.name: action},
    )
    store = open_store(url)
    dispatcher = Dispatcher(config, store, plugins, clock=lambda: NOW)
    started = time.perf_counter()
    queued = enqueue(store, plan_from_store(config, store, NOW).actions, NOW)
    planned = time.perf_counter()
    cpu = time.process_time()
    report = asyncio.run(dispatcher.execute())
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    sent = report.outcomes[ActionState.SENT]
    if sent != count or len(queued.new) != count:
        outcomes = dict(report.outcomes)
        raise SystemExit(f"{kind}: sent {sent} of {count}: {outcomes} {report.unavailable}")
    return {
        "plan_seconds": planned - started,
        "send_seconds": done - planned,
        "send_cpu_seconds": cpu,
        "sent": sent,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_phase(kind: str, count: int, port: int | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="debsync-bench-act-") as tmp:
        args = [sys.executable, __file__, "--phase", kind, "--work", tmp, "--count", str(count)]
        if port is not None:
            args += ["--port", str(port)]
        output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def smtp_sink() -> Any:
    """An aiosmtpd server on loopback that accepts and counts messages."""
    from aiosmtpd.controller import Controller

    class Count:
        messages = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Count.messages += 1
            return "250 2.0.0 Ok: queued"

    class FreePort(Controller):
        def _trigger_server(self) -> None:
            # Bound to port 0: learn the real port before aiosmtpd's start-up probe connects.
            assert isinstance(self.server, asyncio.Server)
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    controller = FreePort(Count(), hostname="127.0.0.1", port=0)
    controller.start()
    return controller, Count


def floor(port: int, count: int) -> dict[str, float]:
    """``smtp_limit.py``'s one-connection figure: bare smtplib, one message re-sent with a new
    Message-ID, no outbox, no rendering."""
    import smtplib
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "debiteuren@example.nl"
    msg["To"] = "klant@example.nl"
    msg["Subject"] = "Herinnering factuur F2026-0101"
    msg.set_content(
        "Geachte heer/mevrouw,\n\nVolgens onze administratie staat factuur F2026-0101 van "
        "€ 1.234,56 nog open.\n" * 5
    )
    msg.add_alternative(
        "<p>Geachte heer/mevrouw,</p><p>Volgens onze administratie ...</p>" * 5, subtype="html"
    )
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            del msg["Message-ID"]
            msg["Message-ID"] = f"<{i}@debsync.example>"
            smtp.send_message(msg)
    return {"sent": count, "send_seconds": time.perf_counter() - started}


def report(label: str, figures: dict[str, float]) -> None:
    sent, plan, send = figures["sent"], figures["plan_seconds"], figures["send_seconds"]
    cpu = figures["send_cpu_seconds"]
    print(
        f"{label}: {sent:,.0f} actions through the outbox (claim, re-check, render, send, "
        f"record) in {send:.2f} s = {sent / send:,.0f} actions/s ({sent / cpu:,.0f} per second "
        f"of this process's CPU time, less sensitive to a busy machine); planning and queueing "
        f"them took {plan:.2f} s ({sent / plan:,.0f}/s); peak RSS "
        f"{figures['peak_rss_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--only", choices=("noop", "email"))
    parser.add_argument("--rounds", type=int, default=3, help="e-mail and floor, alternated")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "floor":
        print(json.dumps(floor(args.port, args.count)))
        return
    if args.phase:
        print(json.dumps(phase(args.phase, args.work, args.count, args.port)))
        return
    if args.only in (None, "noop"):
        figures = run_phase("noop", args.actions)
        report("no-op action, SQLite", figures)
        rate = figures["sent"] / figures["send_seconds"]
        verdict = "met" if rate >= NOOP_TARGET else "not met"
        print(f"{'':>20}  target (issue 16): >= {NOOP_TARGET:,} no-op actions/s: {verdict}")
    if args.only in (None, "email"):
        controller, counter = smtp_sink()
        rounds = []
        received = 0
        try:
            for _ in range(args.rounds):  # alternated: a busy spell hits both sides alike
                before = counter.messages
                figures = run_phase("email", args.emails, controller.port)
                received += counter.messages - before
                limit = run_phase("floor", args.emails, controller.port)
                rounds.append((figures, limit))
        finally:
            controller.stop()
        ratios = sorted(
            (limit["sent"] / limit["send_seconds"]) / (figures["sent"] / figures["send_seconds"])
            for figures, limit in rounds
        )
        figures, limit = sorted(rounds, key=lambda r: r[0]["send_seconds"])[len(rounds) // 2]
        report("email to aiosmtpd, SQLite (median round)", figures)
        print(f"{'':>26}  the server received {received:,} of debsync's messages")
        limit_rate = limit["sent"] / limit["send_seconds"]
        print(
            f"{'':>26}  floor (smtp_limit.py, one connection): {limit_rate:,.0f} msgs/s; "
            f"ratio to floor per round: {', '.join(f'{r:.1f}x' for r in ratios)}; "
            f"median ratio to floor: {ratios[len(ratios) // 2]:.1f}x"
        )


if __name__ == "__main__":
    main()
