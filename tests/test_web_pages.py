"""The console's work pages over a seeded book (tests/web_book.py): the plan with its
approvals and holds, message previews, the outbox, the call list and the dossier; each change
lands in the store with the signed-in user as its author, and roles and the CSRF token guard
every POST."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from debsync.config import Config, load_config
from debsync.facts import PauseKind
from debsync.model import Language
from debsync.outbox import rows
from debsync.pauses import active_pauses
from debsync.plugins import Plugins
from debsync.store import Store, open_store
from debsync.store.schema import ActionState, events
from debsync.web.auth import SESSION_COOKIE, list_users, start_session
from debsync.web.pages import outbox, plan
from debsync.web.pages.plan_items import NOT_QUEUED, load_plan
from web_book import NOW, TODAY, USERS, seed, walk

from conftest import FrozenClock

pytest_plugins = ["browser"]  # the web_console fixture

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    config: Config
    store: Store
    url: str
    clock: FrozenClock
    clients: list[httpx.Client]

    def client(self, name: str) -> httpx.Client:
        """A browser's session of ``name``, over real HTTP. The session is started as the
        login page starts it, without the password check (argon2 is slow by design; the
        browser test signs in through the form)."""
        (user,) = [u for u in list_users(self.store) if u.name == name]
        token = start_session(self.store, user, self.clock(), self.config.web.session_lifetime)
        client = httpx.Client(base_url=self.url, follow_redirects=False)
        client.cookies.set(SESSION_COOKIE, token)
        self.clients.append(client)
        return client

    def action(self, debtor: str, step: str) -> Any:
        return next(r for r in rows(self.store) if r.debtor_id == debtor and r.step == step)

    def events(self, kind: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(events).where(events.c.kind == kind)))


@pytest.fixture
def console(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, web_console: Any
) -> Iterator[Console]:
    path = seed(tmp_path, tmp_path_factory.getbasetemp() / "web-book")
    plugins = Plugins()
    config = load_config(path, plugins)
    store = open_store(config.store_url)
    clock = FrozenClock(NOW)
    served = web_console(config, store, clock, users=USERS, plugins=plugins)
    running = Console(config, store, served.url, clock, [])
    yield running
    for client in running.clients:
        client.close()
    store.dispose()


def csrf(page: Any) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found[1]


def text(html: str) -> str:
    """What a reader sees of ``html``: tags stripped, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def table_rows(html: str) -> list[str]:
    """The text of each body row of the page's first table, tags stripped."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [text(r) for r in body.split("</tr>")[:-1]]


# -- the plan -----------------------------------------------------------------------------------


def test_the_plan_lists_queued_and_new_actions_with_why(console: Console) -> None:
    view = load_plan(console.config, console.store, NOW)
    assert {(i.debtor_id, i.step, i.state) for i in view.items} == {
        ("D1", "handoff", ActionState.AWAITING_APPROVAL),
        ("D2", "handoff", NOT_QUEUED),
    }
    page = console.client("vera").get("/plan")
    assert page.status_code == 200
    shown = table_rows(page.text)
    assert len(shown) == 2
    assert shown[0].startswith(
        "Bakkerij De Gouden Korrel B.V. (D1) handoff akkoord nodig email F-001"
    )
    assert "€ 1.210,00" in shown[0] and "wacht op akkoord" in shown[0]
    assert "Oak & Ivy Consulting Ltd (D2)" in shown[1] and "nog niet ingepland" in shown[1]
    assert view.items[0].why(Language.NL)[0] in shown[0]  # the explanation in Dutch
    assert "approve_one" not in page.text  # a viewer is offered no decisions


def test_the_work_pages_speak_english_by_choice(console: Console) -> None:
    client = console.client("otto")
    client.cookies.set("debsync_lang", "en")
    plan_page = text(client.get("/plan").text)
    assert "Plan for 7 Nov 2026" in plan_page and "awaiting approval" in plan_page
    assert "€1,210.00" in plan_page
    calls = text(client.get("/calls").text)
    assert "Promise to pay" in calls and "+31 6 12345678" in calls


def test_plan_search_filter_sort_and_paging(console: Console) -> None:
    client = console.client("vera")
    assert [r.split(" (")[0] for r in table_rows(client.get("/plan?q=F-003").text)] == [
        "Oak & Ivy Consulting Ltd"
    ]
    assert len(table_rows(client.get("/plan?q=korrel").text)) == 1  # by name, any case
    assert len(table_rows(client.get("/plan?q=D2").text)) == 1  # by debtor number
    queued = table_rows(client.get("/plan?state=not_queued").text)
    assert len(queued) == 1 and "D2" in queued[0]
    by_amount = table_rows(client.get("/plan?sort=principal&desc=1").text)
    assert "D1" in by_amount[0] and "D2" in by_amount[1]
    by_amount = table_rows(client.get("/plan?sort=principal").text)
    assert "D2" in by_amount[0]
    assert "Niets gevonden." in client.get("/plan?q=nobody").text


def test_plan_and_outbox_page_on_the_server(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "SPEC", replace(plan.SPEC, per_page=1))
    monkeypatch.setattr(outbox, "SPEC", replace(outbox.SPEC, per_page=4))
    client = console.client("vera")
    first, second = (client.get(f"/plan?sort=debtor&page={n}").text for n in (1, 2))
    assert "D1" in table_rows(first)[0] and "D2" in table_rows(second)[0]
    assert "Pagina 1 van 2" in first and 'rel="next"' in first and 'rel="prev"' in second
    assert "D2" in table_rows(client.get("/plan?sort=debtor&page=9").text)[0]  # the last
    pages = [table_rows(client.get(f"/outbox?page={n}").text) for n in (1, 2)]
    assert [len(p) for p in pages] == [4, 2] and not set(pages[0]) & set(pages[1])


def test_approving_from_the_plan_records_the_user(console: Console) -> None:
    client = console.client("anna")
    page = client.get("/plan")
    handoff = console.action("D1", "handoff")
    done = client.post("/plan", data={"csrf": csrf(page), "approve_one": handoff.key})
    assert done.status_code == 200 and "1 actie(s) verwerkt: akkoord gegeven." in done.text
    assert console.action("D1", "handoff").state == ActionState.APPROVED
    (approved,) = console.events("action.approved")
    assert approved.data["author"] == "anna" and approved.data["key"] == handoff.key


def test_bulk_reject_queues_a_new_action_first(console: Console) -> None:
    client = console.client("anna")
    page = client.get("/plan")
    keys = [i.key for i in load_plan(console.config, console.store, NOW).items]
    done = client.post(
        "/plan",
        data={"csrf": csrf(page), "key": keys, "decision": "reject", "reason": "klant belt zelf"},
    )
    assert "2 actie(s) verwerkt: afgewezen." in done.text
    rejected = {r.debtor_id: r for r in rows(console.store) if r.step == "handoff"}
    assert {d: r.state for d, r in rejected.items()} == {
        "D1": ActionState.CANCELLED,
        "D2": ActionState.CANCELLED,
    }
    assert {e.data["author"] for e in console.events("action.cancelled")} == {"anna"}
    assert table_rows(done.text) == ["Niets gevonden."]


def test_holding_pauses_the_invoices_and_the_plan_changes(console: Console) -> None:
    client = console.client("otto")  # an operator may hold, not approve
    page = client.get("/plan")
    assert 'value="hold"' in page.text and 'value="approve"' not in page.text
    d2 = next(i for i in load_plan(console.config, console.store, NOW).items if i.debtor_id == "D2")
    until = (TODAY + timedelta(days=14)).isoformat()
    done = client.post(
        "/plan",
        data={
            "csrf": csrf(page),
            "key": [d2.key],
            "decision": "hold",
            "reason": "in overleg",
            "until": until,
        },
    )
    assert "1 actie(s) verwerkt: aangehouden." in done.text
    (pause,) = active_pauses(console.store)
    assert (pause.kind, pause.target, pause.author, pause.until.isoformat()) == (
        PauseKind.HOLD,
        "F-003",
        "otto",
        until,
    )
    assert [i.debtor_id for i in load_plan(console.config, console.store, NOW).items] == ["D1"]
    queued = console.action("D1", "handoff").key  # held once queued: shown paused until sent
    client.post(
        "/plan",
        data={
            "csrf": csrf(page),
            "key": [queued],
            "decision": "hold",
            "reason": "x",
            "until": until,
        },
    )
    (d1,) = table_rows(client.get("/plan").text)
    assert "wacht op akkoord gepauzeerd" in d1


def test_a_hold_needs_a_reason_and_a_date_to_come(console: Console) -> None:
    client = console.client("otto")
    page = client.get("/plan")
    key = console.action("D1", "handoff").key
    past = (TODAY - timedelta(days=1)).isoformat()
    refused = client.post(
        "/plan",
        data={"csrf": csrf(page), "key": [key], "decision": "hold", "reason": "x", "until": past},
    )
    assert refused.status_code == 400 and active_pauses(console.store) == []


def test_a_viewer_or_operator_approving_gets_403(console: Console) -> None:
    key = console.action("D1", "handoff").key
    for name in ("vera", "otto"):
        client = console.client(name)
        token = csrf(client.get("/plan"))
        refused = client.post("/plan", data={"csrf": token, "approve_one": key})
        assert refused.status_code == 403, name
    assert console.action("D1", "handoff").state == ActionState.AWAITING_APPROVAL
    assert console.events("action.approved") == []


def test_a_post_without_the_csrf_token_gets_403(console: Console) -> None:
    client = console.client("anna")
    key = console.action("D1", "handoff").key
    assert client.post("/plan", data={"approve_one": key}).status_code == 403
    assert client.post("/plan", data={"approve_one": key, "csrf": "forged"}).status_code == 403
    call = console.action("D1", "call").key
    assert client.post(f"/calls/{call}/outcome", data={"outcome": "reached"}).status_code == 403
    assert console.action("D1", "handoff").state == ActionState.AWAITING_APPROVAL
    assert console.events("call.completed") == []


# -- previews -----------------------------------------------------------------------------------


def test_an_email_is_previewed_as_it_went_out_in_a_sandbox(console: Console) -> None:
    client = console.client("vera")
    reminder = console.action("D1", "reminder")
    page = client.get(f"/messages/{reminder.key}")
    assert page.status_code == 200
    assert f"SHA-256 {reminder.payload_sha256}" in page.text
    assert 'sandbox=""' in page.text and f"/messages/{reminder.key}/body.html" in page.text
    body = client.get(f"/messages/{reminder.key}/body.html")
    assert body.text == reminder.payload["html"]
    assert body.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    # its own policy only: the console's frame-ancestors 'none' would keep it out of the frame
    assert len(body.headers.get_list("content-security-policy")) == 1
    assert body.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert body.headers["x-content-type-options"] == "nosniff"


def test_a_queued_handoff_is_previewed_with_todays_figures(console: Console) -> None:
    client = console.client("vera")
    handoff = console.action("D1", "handoff")
    page = client.get(f"/messages/{handoff.key}")
    assert "Zoals het vandaag zou worden verstuurd" in page.text
    assert "Subject: " in page.text and "F-001" in page.text
    body = client.get(f"/messages/{handoff.key}/body.html")
    assert body.status_code == 200 and "F-001" in body.text and "<html" in body.text


def test_a_letter_is_offered_as_its_pdf(console: Console) -> None:
    client = console.client("vera")
    letter = console.action("D3", "reminder")
    page = client.get(f"/messages/{letter.key}")
    assert f"/messages/{letter.key}/letter.pdf" in page.text
    pdf = client.get(f"/messages/{letter.key}/letter.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert client.get("/messages/0000000000/letter.pdf").status_code == 404


# -- the outbox ---------------------------------------------------------------------------------


def test_the_outbox_filters_by_state_and_channel_and_pages(console: Console) -> None:
    client = console.client("vera")
    everything = table_rows(client.get("/outbox").text)
    assert len(everything) == 6
    sent_mail = table_rows(client.get("/outbox?state=sent&channel=email").text)
    assert len(sent_mail) == 2 and all("reminder" in r for r in sent_mail)
    assert len(table_rows(client.get("/outbox?q=F-004").text)) == 1  # D3's letter
    by_debtor = table_rows(client.get("/outbox?sort=debtor&desc=0").text)
    assert "Bakkerij" in by_debtor[0] and "Oak & Ivy" in by_debtor[-1]


def test_an_in_doubt_message_is_confirmed_or_sent_again(console: Console) -> None:
    with console.store.engine.begin() as conn:
        for debtor in ("D1", "D2"):
            key = console.action(debtor, "reminder").key
            conn.execute(
                sa.text("UPDATE outbox SET state = 'in_doubt' WHERE key = :key"), {"key": key}
            )
    client = console.client("anna")
    page = client.get("/outbox?state=in_doubt")
    assert page.text.count("Is aangekomen") == 2
    token = csrf(page)
    first, second = console.action("D1", "reminder"), console.action("D2", "reminder")
    assert client.post(f"/outbox/{first.key}/confirm", data={"csrf": token}).status_code == 200
    assert client.post(f"/outbox/{second.key}/resend", data={"csrf": token}).status_code == 200
    assert console.action("D1", "reminder").state == ActionState.SENT
    assert console.action("D2", "reminder").state == ActionState.PLANNED
    assert {e.data["author"] for e in console.events("action.sent")[-1:]} == {"anna"}
    assert console.events("action.planned")[-1].data["author"] == "anna"
    viewer = console.client("vera")
    refused = viewer.post(f"/outbox/{first.key}/resend", data={"csrf": csrf(viewer.get("/outbox"))})
    assert refused.status_code == 403


# -- calls --------------------------------------------------------------------------------------


def test_the_call_list_shows_open_items_and_contacts(console: Console) -> None:
    page = console.client("vera").get("/calls")
    assert page.status_code == 200
    shown = text(page.text)
    assert "Bakkerij De Gouden Korrel B.V." in shown and "Oak & Ivy Consulting Ltd" in shown
    assert "06 12345678" in shown and "F-001 01-11-2026 3 € 1.210,00" in shown, shown
    assert "02-11-2026: reminder (email)" in shown
    assert 'name="outcome"' not in page.text  # a viewer records nothing
    found = console.client("vera").get("/calls?q=F-003")
    assert "Oak &amp; Ivy" in found.text and "Bakkerij" not in found.text


def test_a_promise_on_the_phone_pauses_until_its_date(console: Console) -> None:
    client = console.client("otto")
    call = console.action("D2", "call")
    promised = (TODAY + timedelta(days=10)).isoformat()
    done = client.post(
        f"/calls/{call.key}/outcome",
        data={
            "csrf": csrf(client.get("/calls")),
            "outcome": "promised",
            "promise_date": promised,
            "promise_amount": "350.00",
        },
    )
    assert done.status_code == 200 and "1 factuur/facturen gepauzeerd" in done.text
    (completed,) = console.events("call.completed")
    assert completed.data["author"] == "otto" and completed.data["promise_date"] == promised
    assert completed.data["note"] == "promised amount 350.00"
    (pause,) = active_pauses(console.store)
    assert (pause.kind, pause.author, pause.until.isoformat()) == (
        PauseKind.PROMISE,
        "otto",
        promised,
    )
    assert "Oak &amp; Ivy" not in done.text.split("<h1>", 1)[1].split('role="status"')[0]
    assert [i.debtor_id for i in load_plan(console.config, console.store, NOW).items] == ["D1"]


def test_a_dispute_needs_its_reason_and_a_promise_its_date(console: Console) -> None:
    client = console.client("otto")
    call = console.action("D1", "call").key
    token = csrf(client.get("/calls"))
    no_reason = client.post(f"/calls/{call}/outcome", data={"csrf": token, "outcome": "disputed"})
    assert no_reason.status_code == 409
    no_date = client.post(f"/calls/{call}/outcome", data={"csrf": token, "outcome": "promised"})
    assert no_date.status_code == 400
    assert console.events("call.completed") == []
    disputed = client.post(
        f"/calls/{call}/outcome",
        data={"csrf": token, "outcome": "disputed", "note": "levering onvolledig"},
    )
    assert disputed.status_code == 200
    (pause,) = active_pauses(console.store)
    assert (pause.kind, pause.reason, pause.author) == (
        PauseKind.DISPUTE,
        "levering onvolledig",
        "otto",
    )


# -- the dossier --------------------------------------------------------------------------------


def test_the_dossier_shows_the_timeline_and_the_documents(console: Console) -> None:
    client = console.client("vera")
    page = client.get("/debtors/books/D1")
    assert page.status_code == 200
    assert "Dossier Bakkerij De Gouden Korrel B.V." in page.text
    reminder = console.action("D1", "reminder")
    assert f"/messages/{reminder.key}" in page.text  # a document sent
    assert (
        "invoice F-001 opened" in page.text and "handoff by email: awaiting approval" in page.text
    )
    assert 'name="kind"' not in page.text  # a viewer records no pauses
    assert client.get("/debtors/books/nobody").status_code == 404
    listed = table_rows(client.get("/debtors?q=F-004").text)
    assert len(listed) == 1 and listed[0].startswith("J.P. de Vries D3")


def test_pauses_start_and_end_from_the_dossier(console: Console) -> None:
    client = console.client("otto")
    page = client.get("/debtors/books/D1")
    plan_pause = client.post(
        "/debtors/books/D1/pause",
        data={
            "csrf": csrf(page),
            "kind": "payment_plan",
            "invoice": "",
            "reason": "regeling in 2 termijnen",
            "instalment_date": [(TODAY + timedelta(days=7)).isoformat(), "", ""],
            "instalment_amount": ["605.00", "", ""],
        },
    )
    assert plan_pause.status_code == 200
    (pause,) = active_pauses(console.store)
    assert (pause.kind, pause.scope, pause.author, pause.instalments[0].amount_minor) == (
        PauseKind.PAYMENT_PLAN,
        "debtor",
        "otto",
        60500,
    )
    assert f'id="pause-{pause.id}"' in plan_pause.text
    ended = client.post(
        "/debtors/books/D1/resume",
        data={"csrf": csrf(page), "pause": pause.id, "reason": "regeling vervalt"},
    )
    assert ended.status_code == 200 and active_pauses(console.store) == []
    (end,) = console.events("pause.ended")
    assert end.data["author"] == "otto"
    dispute = client.post(
        "/debtors/books/D1/pause",
        data={"csrf": csrf(page), "kind": "dispute", "invoice": "F-001", "reason": ""},
    )
    assert dispute.status_code == 409 and active_pauses(console.store) == []


# -- both backends ------------------------------------------------------------------------------


def test_the_lists_search_sort_and_decide_on_both_backends(
    store: Store, tmp_path: Path, web_console: Any
) -> None:
    """The SQL the lists build (search by invoice number, sorting by a joined name, counts
    per debtor) and an approval, on SQLite and on PostgreSQL."""
    url = store.engine.url.render_as_string(hide_password=False)
    plugins = Plugins()
    config = load_config(walk(tmp_path, url), plugins)
    clock = FrozenClock(NOW)
    served = web_console(config, store, clock, users=USERS, plugins=plugins)
    running = Console(config, store, served.url, clock, [])
    with running.client("anna") as client:
        assert len(table_rows(client.get("/outbox?q=f-004").text)) == 1
        by_debtor = table_rows(client.get("/outbox?sort=debtor&desc=1").text)
        assert "Oak & Ivy" in by_debtor[0] and "Bakkerij" in by_debtor[-1]
        debtors = table_rows(client.get("/debtors?sort=open&desc=0&q=d").text)
        assert [r.split()[-1] for r in debtors] == ["1", "1", "1"]
        (found,) = table_rows(client.get("/plan?q=KORREL").text)
        assert "Bakkerij De Gouden Korrel B.V. (D1)" in found
        key = running.action("D1", "handoff").key
        page = client.get("/plan")
        approved = client.post("/plan", data={"csrf": csrf(page), "approve_one": key})
        assert approved.status_code == 200
    assert running.action("D1", "handoff").state == ActionState.APPROVED
