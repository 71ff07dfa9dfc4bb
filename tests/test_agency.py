"""Agency handoff: the debsync.handoff/v1 case against its schema, the legal refusals, every
answer an agency can give, signed status events, polling, and a handoff through the outbox."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx
from pydantic import ValidationError

from debsync import outbox
from debsync.actions import agency as agency_module
from debsync.actions.agency import (
    AgencyAction,
    AgencyEvent,
    AgencyPayment,
    AgencySettings,
    AgencyStatus,
    EventError,
    EventReject,
    parse_status_event,
    split_street_line,
)
from debsync.actions.base import (
    ActionEnvironment,
    ActionUnavailableError,
    MessageContext,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RefusedError,
    RetryableActionError,
)
from debsync.actions.signing import SignatureError, sign, verify_signature
from debsync.config import ActionInstance, Config, CreditorSettings, OutboxSettings
from debsync.model import Address, DebtorKind, Invoice, Language, Money
from debsync.outbox.executor import Dispatcher
from debsync.plugins import Plugins
from debsync.policy import Policy, Step
from debsync.store import Store
from debsync.store.schema import ActionState as State
from debsync.sync import SyncEngine
from debsync.templates import Templates
from debsync.testing import ActionChecks, ActionHarness
from debsync.testing.samples import sample_context

from conftest import FrozenClock
from fakes import INSTANCE, FakeConnector, debtor, snapshot

BASE = "https://incasso.example.nl/debsync/v1"
SECRET = "whsec_" + "5f3a" * 8
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "handoff.schema.json").read_text())
KEY = sample_context("handoff", "agency").key


def settings(**changes: Any) -> AgencySettings:
    values: dict[str, Any] = {
        "base_url": BASE,
        "secret": SECRET,
        "token": "tok-123",
        "name": "Voorbeeld Incasso B.V.",
        "wki_registration_number": "WKI-2024-0042",
        "nvi_member": True,
    }
    values.update(changes)
    return AgencySettings.model_validate(values)


def make_action(
    tmp_path: Path = Path("."), clock: Callable[[], datetime] = lambda: NOW, **changes: Any
) -> AgencyAction:
    env = ActionEnvironment(
        instance="incasso", config_dir=tmp_path, templates=Templates(), clock=clock
    )
    return AgencyAction("incasso", settings(**changes), env)


def consumer(**changes: Any) -> MessageContext:
    return replace(sample_context("handoff", "agency"), **changes)


def business(**changes: Any) -> MessageContext:
    return replace(sample_context("handoff", "agency", kind=DebtorKind.BUSINESS), **changes)


def with_debtor(context: MessageContext, **changes: Any) -> MessageContext:
    return replace(context, debtor=replace(context.debtor, **changes))


def send(action: AgencyAction, payload: Payload, key: str = KEY) -> Receipt:
    async def once() -> Receipt:
        async with action:
            return await action.send(payload, key)

    return asyncio.run(once())


def validate(body: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(body)


# -- the fake agency: the handoff protocol of docs/handoff.md, on respx ---------------------------


Responder = Callable[[httpx.Request], httpx.Response]


class FakeAgency:
    """Takes cases at POST /cases (deduplicating on Idempotency-Key, refusing bad
    signatures), answers GET /cases/{id} and pages GET /cases/{id}/events."""

    def __init__(self, router: respx.Router) -> None:
        self.cases: dict[str, dict[str, Any]] = {}
        self.posts: list[httpx.Request] = []
        self.gets: list[httpx.Request] = []
        self.next_posts: list[Responder] = []  # scripted answers to the next POSTs
        self.next_gets: list[Responder] = []
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.page_size = 2
        self.clock: Callable[[], datetime] = lambda: NOW
        router.post(f"{BASE}/cases").mock(side_effect=self._post)
        router.get(url__regex=rf"^{BASE}/cases/[^/]+/events").mock(side_effect=self._events)
        router.get(url__regex=rf"^{BASE}/cases/[^/]+$").mock(side_effect=self._case)

    def _signed(self, request: httpx.Request) -> bool:
        try:
            verify_signature(
                SECRET, request.headers.get("Debsync-Signature"), request.content, self.clock()
            )
        except SignatureError:
            return False
        return request.headers.get("Authorization") == "Bearer tok-123"

    def accept(self, request: httpx.Request) -> dict[str, Any]:
        key = request.headers["Idempotency-Key"]
        if key not in self.cases:
            self.cases[key] = {
                "handoff_id": key,
                "agency_case_id": f"A-{778812 + len(self.cases)}",
                "status": "received",
                "body": json.loads(request.content),
            }
        return self.cases[key]

    def _post(self, request: httpx.Request) -> httpx.Response:
        self.posts.append(request)
        if not self._signed(request):
            return httpx.Response(401, json={"errors": [{"code": "bad_signature"}]})
        if self.next_posts:
            return self.next_posts.pop(0)(request)
        duplicate = request.headers["Idempotency-Key"] in self.cases
        case = self.accept(request)
        answer = {k: case[k] for k in ("handoff_id", "agency_case_id", "status")}
        return httpx.Response(409 if duplicate else 201, json=answer)

    def _case(self, request: httpx.Request) -> httpx.Response:
        self.gets.append(request)
        if not self._signed(request):
            return httpx.Response(401)
        if self.next_gets:
            return self.next_gets.pop(0)(request)
        case = self.cases.get(request.url.path.rsplit("/", 1)[1])
        if case is None:
            return httpx.Response(404, json={"errors": [{"code": "unknown_handoff"}]})
        return httpx.Response(200, json={k: case[k] for k in ("handoff_id", "agency_case_id")})

    def _events(self, request: httpx.Request) -> httpx.Response:
        self.gets.append(request)
        if not self._signed(request):
            return httpx.Response(401)
        if self.next_gets:
            return self.next_gets.pop(0)(request)
        handoff_id = request.url.path.split("/")[-2]
        if handoff_id not in self.events:
            return httpx.Response(404, json={"errors": [{"code": "unknown_handoff"}]})
        start = int(request.url.params.get("cursor", "0"))
        stop = start + self.page_size
        events = self.events[handoff_id]
        more = stop < len(events)
        return httpx.Response(
            200, json={"data": events[start:stop], "next": str(stop) if more else None}
        )

    def deliveries(self) -> int:
        return len(self.cases)


@pytest.fixture
def agency() -> Iterator[FakeAgency]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeAgency(router)


def answer(status: int, **kwargs: Any) -> Responder:
    return lambda request: httpx.Response(status, **kwargs)


def fail(
    exc: type[httpx.TransportError], *, after_accepting: FakeAgency | None = None
) -> Responder:
    """A lost connection; with ``after_accepting`` the agency took the case first."""

    def respond(request: httpx.Request) -> httpx.Response:
        if after_accepting is not None:
            after_accepting.accept(request)
        raise exc("connection lost", request=request)

    return respond


# -- the conformance kit ------------------------------------------------------------------------


class AgencyHarness(ActionHarness):
    def __init__(self, tmp_path: Path, agency: FakeAgency) -> None:
        super().__init__(tmp_path)
        self.agency = agency

    def action(self) -> AgencyAction:
        env = replace(self.environment("incasso"), clock=lambda: NOW)
        return AgencyAction("incasso", settings(), env)

    def deliveries(self) -> int:
        return self.agency.deliveries()

    def fail_next(self, kind: str) -> None:
        self.agency.next_posts.append(
            {
                "retryable": answer(503),
                "permanent": answer(422, json={"errors": [{"code": "invalid_debtor"}]}),
                "unknown": fail(httpx.ReadTimeout, after_accepting=self.agency),
                "unavailable": answer(401),
            }[kind]
        )


class TestTheAgencyActionPassesTheKit(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path, agency: FakeAgency) -> ActionHarness:
        return AgencyHarness(tmp_path, agency)


# -- the payload --------------------------------------------------------------------------------


def test_a_consumer_case_is_signed_keyed_and_valid_against_the_schema(
    agency: FakeAgency,
) -> None:
    action = make_action(headers={"X-Tenant": "voorbeeld"})
    payload = action.render(consumer())

    receipt = send(action, payload)

    (request,) = agency.posts
    assert request.method == "POST" and str(request.url) == f"{BASE}/cases"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["X-Tenant"] == "voorbeeld"
    assert request.headers["User-Agent"].startswith("debsync/")
    signed_at = verify_signature(SECRET, request.headers["Debsync-Signature"], request.content, NOW)
    assert signed_at == int(NOW.timestamp())
    body = json.loads(request.content)
    validate(body)
    assert body == {**payload, "created_at": "2026-11-23T09:00:00Z"}
    assert receipt == Receipt(
        provider_id="A-778812",
        details={"http_status": 201, "duplicate": False, "agency_status": "received"},
        content_sha256=hashlib.sha256(request.content).hexdigest(),
    )


def test_the_consumer_case_carries_the_claim_and_the_veertiendagenbrief() -> None:
    payload = make_action().render(consumer())

    assert payload["schema"] == "debsync.handoff/v1" and payload["handoff_id"] == KEY
    assert payload["agency"] == {
        "name": "Voorbeeld Incasso B.V.",
        "wki_registration_number": "WKI-2024-0042",
        "exempt_reason": None,
        "nvi_member": True,
    }
    assert payload["debtor"] == {
        "external_id": "D20017",
        "kind": "consumer",
        "name": "J.P. de Vries",
        "language": "nl",
        "address": {
            "lines": ["Dorpsstraat 14 A"],
            "street": "Dorpsstraat",
            "house_number": "14",
            "house_number_suffix": "A",
            "postal_code": "1234 AB",
            "city": "Haarlem",
            "country": "NL",
        },
        "emails": ["jp.devries@example.nl"],
        "phones": ["+31687654321"],
        "kvk": None,
        "vat_number": None,
    }
    claim = payload["claim"]
    assert (claim["currency"], claim["principal"], claim["total"]) == ("EUR", "1105.00", "1283.09")
    assert claim["interest"] == {
        "type": "6:119",
        "amount": "12.34",
        "from": "2026-10-05",  # the day after the earliest due date
        "until": "2026-11-23",
        "day_count": "act/365",
        "compounding": "anniversary",
    }
    assert claim["costs"] == {"basis": "bik_staffel", "amount": "165.75", "vat_rate": None}
    assert [(i["number"], i["amount_total"], i["amount_open"]) for i in claim["invoices"]] == [
        ("2026-0001", "605.00", "605.00"),
        ("2026-0002", "1210.00", "500.00"),
    ]
    assert payload["veertiendagenbrief"] == {
        "sent_on": "2026-10-30",
        "received_on": "2026-11-04",
        "term_last_day": "2026-11-18",
        "stated_costs": "165.75",
        "document_sha256": "0" * 64,
    }
    assert payload["steps"] == [{"step": "reminder", "role": None, "sent_on": "2026-11-03"}]
    assert payload["creditor"]["address"]["street"] == "Industrieweg"
    assert payload["creditor"]["vat_number"] == "NL123456789B01"
    validate({**payload, "created_at": "2026-11-23T09:00:00Z"})


def test_the_documented_example_is_valid_against_the_schema() -> None:
    text = (Path(__file__).parents[1] / "docs" / "handoff.md").read_text()
    blocks = [b.partition("\n")[2] for b in text.split("```json")[1:]]
    example = json.loads(next(b for b in blocks if '"debsync.handoff/v1"' in b).split("```")[0])

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validate(example)
    assert set(example) == set(make_action().render(consumer())) | {"created_at"}


def test_a_business_case_claims_handelsrente_and_the_fixed_compensation() -> None:
    payload = make_action().render(business())

    debtor_block, claim = payload["debtor"], payload["claim"]
    assert (debtor_block["kind"], debtor_block["kvk"], debtor_block["vat_number"]) == (
        "business",
        "87654321",
        "NL862745162B01",
    )
    assert claim["interest"]["type"] == "6:119a"
    assert claim["costs"] == {"basis": "b2b_compensation", "amount": "80.00", "vat_rate": None}
    assert payload["veertiendagenbrief"] is None
    validate({**payload, "created_at": "2026-11-23T09:00:00Z"})


def test_staffel_costs_and_their_vat_are_named_as_such() -> None:
    b2b = make_action().render(
        business(costs=Decimal("199.65"), costs_basis="staffel", costs_vat_rate=Decimal("0.21"))
    )
    b2c = make_action().render(consumer(costs_vat_rate=Decimal("0.21")))

    assert b2b["claim"]["costs"] == {"basis": "b2b_staffel", "amount": "199.65", "vat_rate": "0.21"}
    assert b2c["claim"]["costs"]["vat_rate"] == "0.21"


def test_a_debtor_of_unknown_kind_is_handed_off_as_a_consumer() -> None:
    payload = make_action().render(with_debtor(consumer(), kind=DebtorKind.UNKNOWN))

    assert payload["debtor"]["kind"] == "unknown"
    assert payload["claim"]["interest"]["type"] == "6:119"
    assert payload["claim"]["costs"]["basis"] == "bik_staffel"
    validate({**payload, "created_at": "2026-11-23T09:00:00Z"})


def test_per_invoice_interest_runs_from_the_day_after_the_due_date() -> None:
    context = consumer()
    lines = (
        replace(context.invoices[0], interest=Decimal("5.30")),
        replace(context.invoices[1], interest=Decimal("7.04")),
    )
    payload = make_action().render(replace(context, invoices=lines))

    assert [i["interest"] for i in payload["claim"]["invoices"]] == [
        {"from": "2026-10-15", "until": "2026-11-23", "amount": "5.30"},
        {"from": "2026-10-05", "until": "2026-11-23", "amount": "7.04"},
    ]


def test_a_claim_without_interest_or_costs_says_so_with_null() -> None:
    payload = make_action().render(business(interest=None, costs=None))

    assert payload["claim"]["interest"] is None and payload["claim"]["costs"] is None
    assert payload["claim"]["total"] == "1105.00"
    validate({**payload, "created_at": "2026-11-23T09:00:00Z"})


@pytest.mark.parametrize(
    ("line", "parts"),
    [
        ("Dorpsstraat 14 A", ("Dorpsstraat", "14", "A")),
        ("Kerkstraat 12a", ("Kerkstraat", "12", "a")),
        ("Hoofdweg 123-II", ("Hoofdweg", "123", "II")),
        ("2e Hugo de Grootstraat 12 III", ("2e Hugo de Grootstraat", "12", "III")),
        ("Plein 1940 5", ("Plein 1940", "5", None)),
        ("Keizersgracht  123 A 2", ("Keizersgracht", "123", "A 2")),
        ("Ruïnestraat 3", ("Ruïnestraat", "3", None)),
        ("Postbus 1234", ("Postbus", "1234", None)),
    ],
)
def test_dutch_street_lines_split_into_street_number_and_suffix(
    line: str, parts: tuple[str, str, str | None]
) -> None:
    found = split_street_line(line)
    assert found is not None
    assert (found.street, found.house_number, found.house_number_suffix) == parts


@pytest.mark.parametrize("line", ["Kerkstraat", "12 34", "Boerderij De Hoeve, achterom"])
def test_a_line_that_is_no_street_and_number_is_not_split(line: str) -> None:
    assert split_street_line(line) is None


def test_the_street_line_is_kept_when_it_does_not_split_or_is_not_dutch() -> None:
    farm = Address(lines=("t.a.v. de administratie", "De Hoeve"), postcode="1234 AB", city="Ee")
    abroad = Address(lines=("Rue de la Loi 16",), postcode="1000", city="Brussel", country="BE")
    for address in (farm, abroad):
        block = make_action().render(with_debtor(business(), address=address))["debtor"]["address"]
        assert block["lines"] == list(address.lines)
        assert (block["street"], block["house_number"], block["house_number_suffix"]) == (
            None,
            None,
            None,
        )
    assert block["country"] == "BE" and block["postal_code"] == "1000"


def test_the_preview_summarises_the_case_before_the_json() -> None:
    action = make_action()
    preview = action.preview(action.render(consumer()))

    head, _, rest = preview.partition("\n\n")
    assert head.splitlines() == [
        f"POST {BASE}/cases  Idempotency-Key: {KEY}",
        "agency: Voorbeeld Incasso B.V. (Wki: WKI-2024-0042)",
        "debtor: J.P. de Vries (D20017, consumer)",
        "claim: 2 invoice(s); principal EUR 1105.00; interest (art. 6:119 BW, 2026-10-05 to "
        "2026-11-23) EUR 12.34; costs (bik_staffel) EUR 165.75; total EUR 1283.09",
        "veertiendagenbrief: sent 2026-10-30, received 2026-11-04, term ended 2026-11-18, "
        "costs stated 165.75",
    ]
    assert json.loads(rest)["handoff_id"] == KEY


def test_rendering_is_pure_and_the_same_in_both_languages() -> None:
    action = make_action()
    nl = action.render(sample_context("handoff", "agency", Language.NL))
    en = action.render(sample_context("handoff", "agency", Language.EN))

    assert action.render(sample_context("handoff", "agency", Language.NL)) == nl
    assert {k: v for k, v in nl.items() if k != "debtor"} == {
        k: v for k, v in en.items() if k != "debtor"
    }
    assert (nl["debtor"]["language"], en["debtor"]["language"]) == ("nl", "en")


# -- refusals -----------------------------------------------------------------------------------


def refusal(context: MessageContext, **changes: Any) -> str:
    with pytest.raises(RefusedError) as caught:
        make_action(**changes).render(context)
    message = str(caught.value)
    assert "J.P. de Vries" not in message and "Gouden Korrel" not in message
    return message


def test_a_consumer_claim_without_a_veertiendagenbrief_is_refused() -> None:
    message = refusal(consumer(wik=None))

    assert message.startswith("handoff of debtor D20017 (consumer) to agency incasso refused")
    assert "art. 6:96 lid 6 BW" in message


def test_a_consumer_claim_whose_term_still_runs_is_refused() -> None:
    context = consumer()
    assert context.wik is not None
    running = replace(context.wik, term_last_day=context.today)

    assert "term runs until 2026-11-23" in refusal(replace(context, wik=running))


def test_a_debtor_of_unknown_kind_without_a_veertiendagenbrief_is_refused() -> None:
    context = with_debtor(consumer(wik=None), kind=DebtorKind.UNKNOWN)

    assert "(unknown)" in refusal(context) and "veertiendagenbrief" in refusal(context)


def test_a_consumer_claim_needs_a_wki_registration_or_an_exemption() -> None:
    message = refusal(consumer(), wki_registration_number=None)

    assert "Wet kwaliteit incassodienstverlening" in message
    exempt = make_action(wki_registration_number=None, exempt_reason="gerechtsdeurwaarder")
    payload = exempt.render(consumer())
    assert payload["agency"]["exempt_reason"] == "gerechtsdeurwaarder"
    validate({**payload, "created_at": "2026-11-23T09:00:00Z"})


def test_a_business_claim_needs_no_wki_registration() -> None:
    payload = make_action(wki_registration_number=None).render(business())

    assert payload["agency"]["wki_registration_number"] is None


def test_a_principal_below_the_agency_minimum_is_refused() -> None:
    message = refusal(consumer(), min_principal="2500")

    assert "below the agency's minimum of EUR 2500.00" in message
    assert "1105" not in message  # the debtor's amount stays out of logs
    assert make_action(min_principal="1105.00").render(consumer())["claim"]["principal"] == (
        "1105.00"
    )


def test_a_currency_the_agency_does_not_take_is_refused() -> None:
    message = refusal(business(currency="USD"))

    assert "takes claims in EUR only" in message
    payload = make_action(currencies=["EUR", "usd"]).render(business(currency="USD"))
    assert payload["claim"]["currency"] == "USD"


def test_every_reason_is_given_at_once() -> None:
    message = refusal(consumer(wik=None), wki_registration_number=None, min_principal="5000")

    assert message.count("; ") == 2


# -- answers from the agency ----------------------------------------------------------------------


def test_a_429_is_retried_after_the_time_the_agency_asks(agency: FakeAgency) -> None:
    agency.next_posts += [
        answer(429, headers={"Retry-After": "120"}),
        answer(429, headers={"Retry-After": "Mon, 23 Nov 2026 09:05:00 GMT"}),
    ]
    action = make_action()
    payload = action.render(consumer())

    with pytest.raises(RetryableActionError) as seconds:
        send(action, payload)
    with pytest.raises(RetryableActionError) as http_date:
        send(action, payload)

    assert seconds.value.retry_after == 120.0 and http_date.value.retry_after == 300.0
    assert "answered 429" in str(seconds.value) and agency.deliveries() == 0


def test_a_burst_of_5xx_is_retried_and_the_case_arrives_once(agency: FakeAgency) -> None:
    agency.next_posts += [answer(502), answer(503, headers={"Retry-After": "30"}), answer(500)]
    action = make_action()
    payload = action.render(business())
    errors = []
    for _ in range(3):
        with pytest.raises(RetryableActionError) as caught:
            send(action, payload)
        errors.append(caught.value.retry_after)

    receipt = send(action, payload)

    assert errors == [None, 30.0, None]
    assert receipt.provider_id == "A-778812" and agency.deliveries() == 1
    assert {r.headers["Idempotency-Key"] for r in agency.posts} == {KEY}


def test_an_unreachable_agency_makes_the_channel_unavailable(agency: FakeAgency) -> None:
    agency.next_posts += [fail(httpx.ConnectTimeout), fail(httpx.ConnectError)]
    action = make_action()
    payload = action.render(business())

    for _ in range(2):
        with pytest.raises(ActionUnavailableError, match=r"cannot reach incasso\.example\.nl"):
            send(action, payload)


def test_a_write_timeout_is_retried_because_the_request_did_not_get_out(agency: FakeAgency) -> None:
    agency.next_posts.append(fail(httpx.WriteTimeout))

    with pytest.raises(RetryableActionError, match="did not get out"):
        send(make_action(), make_action().render(business()))


def test_a_lost_answer_is_in_doubt_and_the_resend_finds_the_one_case(agency: FakeAgency) -> None:
    agency.next_posts.append(fail(httpx.ReadTimeout, after_accepting=agency))
    action = make_action()
    payload = action.render(business())

    with pytest.raises(OutcomeUnknownError, match="may have been processed"):
        send(action, payload)
    receipt = send(action, payload)

    assert receipt.provider_id == "A-778812"
    assert receipt.details == {"http_status": 409, "duplicate": True, "agency_status": "received"}
    assert agency.deliveries() == 1 and len(agency.posts) == 2


def test_a_409_without_the_case_id_is_looked_up(agency: FakeAgency) -> None:
    agency.accept(httpx.Request("POST", BASE, headers={"Idempotency-Key": KEY}, content=b"{}"))
    agency.next_posts.append(answer(409, json={"errors": [{"code": "duplicate"}]}))

    receipt = send(make_action(), make_action().render(business()))

    assert receipt.provider_id == "A-778812" and receipt.details["duplicate"] is True
    (lookup,) = agency.gets
    assert str(lookup.url) == f"{BASE}/cases/{KEY}"
    verify_signature(SECRET, lookup.headers["Debsync-Signature"], b"", NOW)


def test_a_409_about_another_handoff_is_a_conflict_for_a_person(agency: FakeAgency) -> None:
    other = {"handoff_id": "f" * 32, "agency_case_id": "A-1"}
    agency.next_posts += [answer(409, json=other), answer(409, text="Conflict")]
    action = make_action()
    payload = action.render(business())

    with pytest.raises(PermanentActionError, match=f"about handoff {'f' * 32}, not {KEY}"):
        send(action, payload)
    with pytest.raises(PermanentActionError, match="no case under handoff"):
        send(action, payload)


def test_a_success_without_a_readable_case_id_is_looked_up(agency: FakeAgency) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        agency.accept(request)
        return httpx.Response(201, text="<html>Created</html>")

    agency.next_posts.append(html)

    receipt = send(make_action(), make_action().render(business()))

    assert receipt.provider_id == "A-778812" and receipt.details["agency_status"] is None


def test_a_success_the_agency_cannot_confirm_stays_in_doubt(agency: FakeAgency) -> None:
    agency.next_posts.append(answer(200, json={"ok": True}))

    with pytest.raises(OutcomeUnknownError, match="does not know handoff"):
        send(make_action(), make_action().render(business()))


def test_a_numeric_case_id_is_kept_as_text(agency: FakeAgency) -> None:
    agency.next_posts.append(answer(201, json={"handoff_id": KEY, "agency_case_id": 778812}))

    assert send(make_action(), make_action().render(business())).provider_id == "778812"


def test_a_422_is_permanent_with_the_agency_codes_but_not_its_messages(
    agency: FakeAgency,
) -> None:
    errors = [
        {"code": "invalid_postal_code", "field": "debtor.address.postal_code",
         "message": "1234 AB does not exist for J.P. de Vries"},
        {"code": "Debtor J.P. de Vries is deceased"},
        {"code": "below_minimum", "field": "claim.principal"},
    ]  # fmt: skip
    agency.next_posts.append(answer(422, json={"errors": errors}))

    with pytest.raises(PermanentActionError) as caught:
        send(make_action(), make_action().render(consumer()))

    message = str(caught.value)
    assert message == (
        "action incasso: POST /debsync/v1/cases answered 422: invalid_postal_code "
        "(debtor.address.postal_code), below_minimum (claim.principal)"
    )


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_make_the_channel_unavailable(agency: FakeAgency, status: int) -> None:
    agency.next_posts.append(answer(status))

    with pytest.raises(ActionUnavailableError, match=f"answered {status}: credentials refused"):
        send(make_action(), make_action().render(business()))


def test_a_bad_signature_is_refused_by_the_agency_and_the_channel_stops(
    agency: FakeAgency,
) -> None:
    wrong = make_action(secret="another-secret-of-32-characters!")

    with pytest.raises(ActionUnavailableError, match="credentials refused"):
        send(wrong, wrong.render(business()))
    assert agency.deliveries() == 0


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (404, ActionUnavailableError, "check the URL"),
        (301, ActionUnavailableError, "check the URL"),
        (400, PermanentActionError, "answered 400"),
        (413, PermanentActionError, "answered 413"),
    ],
)
def test_other_answers_map_to_what_the_outbox_should_do(
    agency: FakeAgency, status: int, error: type[Exception], text: str
) -> None:
    agency.next_posts.append(answer(status, headers={"Location": f"{BASE}/v2/cases"}))

    with pytest.raises(error, match=text):
        send(make_action(), make_action().render(business()))


def test_one_batch_sends_several_cases(agency: FakeAgency) -> None:
    action = make_action()
    payload = action.render(business())

    async def batch() -> list[Receipt]:
        async with action:
            return [await action.send(payload, key) for key in ("a" * 32, "b" * 32)]

    receipts = asyncio.run(batch())

    assert [r.provider_id for r in receipts] == ["A-778812", "A-778813"]


# -- settings -------------------------------------------------------------------------------------


def test_the_settings_are_strict_documented_and_keep_secrets_secret() -> None:
    configured = settings()

    assert SECRET not in repr(configured) and "tok-123" not in repr(configured)
    assert all(f.description for f in AgencySettings.model_fields.values())
    with pytest.raises(ValidationError, match="at least 16 characters"):
        settings(secret="short")
    with pytest.raises(ValidationError, match="allow_insecure"):
        settings(base_url="http://incasso.example.nl")
    assert settings(base_url="http://localhost:8080", allow_insecure=True).base_url
    with pytest.raises(ValidationError, match="set by debsync"):
        settings(headers={"Idempotency-Key": "x"})
    with pytest.raises(ValidationError, match="credentials do not belong"):
        settings(base_url="https://user:pw@incasso.example.nl")
    with pytest.raises(ValidationError, match="exempt_reason"):
        settings(exempt_reason="notaris")
    with pytest.raises(ValidationError, match="ISO 4217"):
        settings(currencies=["EURO"])
    with pytest.raises(ValidationError, match="Extra inputs"):
        settings(wki="typo")


def test_the_agency_type_registers_like_a_plugin() -> None:
    plugins = Plugins(entry_points=False, extra=[("agency", agency_module)])

    assert plugins.action_types()["agency"] is AgencyAction


# -- status events ------------------------------------------------------------------------------


def event(type_: str, data: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "evt_01",
        "type": type_,
        "occurred_at": "2026-11-30T08:00:00Z",
        "handoff_id": KEY,
        "agency_case_id": "A-778812",
        "data": data or {},
    }
    body.update(changes)
    return body


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_a_signed_event_is_received() -> None:
    body = raw({**event("handoff.accepted"), "data": None})
    header = sign(SECRET, body, NOW - timedelta(seconds=5))

    received = make_action().receive_event(header, body)

    assert received == AgencyEvent(
        id="evt_01",
        type="handoff.accepted",
        occurred_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        handoff_id=KEY,
        agency_case_id="A-778812",
        status=AgencyStatus.ACCEPTED,
    )


def test_a_tampered_event_is_rejected() -> None:
    body = raw(event("payment.received", {"amount": "100.00", "currency": "EUR"}))
    header = sign(SECRET, body, NOW)
    tampered = body.replace(b"100.00", b"900.00")

    with pytest.raises(SignatureError, match="does not match"):
        make_action().receive_event(header, tampered)


@pytest.mark.parametrize(
    ("signed_at", "text"),
    [(NOW - timedelta(seconds=301), "301 s old"), (NOW + timedelta(seconds=400), "in the future")],
)
def test_a_stale_or_future_event_is_rejected(signed_at: datetime, text: str) -> None:
    body = raw(event("handoff.accepted"))

    with pytest.raises(SignatureError, match=text):
        make_action().receive_event(sign(SECRET, body, signed_at), body)


def test_an_event_signed_with_another_secret_or_unsigned_is_rejected() -> None:
    body = raw(event("handoff.accepted"))

    with pytest.raises(SignatureError, match="does not match"):
        make_action().receive_event(sign("someone-elses-secret-value", body, NOW), body)
    with pytest.raises(SignatureError, match="no Debsync-Signature"):
        make_action().receive_event(None, body)


def test_a_duplicate_delivery_is_the_same_event_for_the_core_to_deduplicate() -> None:
    body = raw(event("case.closed", {"reason": "paid"}))
    action = make_action()

    first = action.receive_event(sign(SECRET, body, NOW - timedelta(seconds=60)), body)
    again = action.receive_event(sign(SECRET, body, NOW), body)

    assert first == again and first.id == "evt_01"
    assert (first.status, first.close_reason) == (AgencyStatus.CLOSED, "paid")


def test_a_rejection_keeps_the_reason_codes() -> None:
    reasons = [{"code": "debtor_deceased"}, {"code": "Meneer de Vries is overleden"}]
    parsed = parse_status_event(raw(event("handoff.rejected", {"reasons": reasons})))

    assert parsed.status is AgencyStatus.REJECTED and parsed.reasons == ("debtor_deceased",)


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        ("amicable", AgencyStatus.IN_PROGRESS),
        ("legal", AgencyStatus.IN_PROGRESS),
        ("bailiff", AgencyStatus.IN_PROGRESS),
        ("accepted", AgencyStatus.ACCEPTED),
        ("closed", AgencyStatus.CLOSED),
    ],
)
def test_status_changes_are_normalised(phase: str, status: AgencyStatus) -> None:
    data = {"status": phase, "previous_status": "accepted"}
    parsed = parse_status_event(raw(event("case.status_changed", data)))

    assert (parsed.status, parsed.agency_status) == (status, phase)


def test_a_payment_comes_with_its_allocation() -> None:
    data = {
        "amount": "250.00",
        "currency": "eur",
        "received_on": "2026-11-29",
        "allocation": {"costs": "165.75", "interest": "12.34", "principal": "71.91"},
    }
    parsed = parse_status_event(raw(event("payment.received", data)))

    assert parsed.status is AgencyStatus.PAYMENT_RECEIVED
    assert parsed.payment == AgencyPayment(
        amount=Decimal("250.00"),
        currency="EUR",
        received_on=date(2026, 11, 29),
        costs=Decimal("165.75"),
        interest=Decimal("12.34"),
        principal=Decimal("71.91"),
    )
    bare = parse_status_event(raw(event("payment.received", {"amount": "10", "currency": "EUR"})))
    assert bare.payment == AgencyPayment(Decimal("10"), "EUR")


def test_an_unknown_event_type_is_kept_without_a_status() -> None:
    parsed = parse_status_event(raw(event("comment.created", {"text": "Debtor called"})))

    assert (parsed.type, parsed.status) == ("comment.created", None)


def test_times_are_normalised_to_utc_and_numeric_case_ids_to_text() -> None:
    body = event("handoff.accepted", occurred_at="2026-11-30T09:00:00+01:00", agency_case_id=5)
    parsed = parse_status_event(raw(body))

    assert parsed.occurred_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert parsed.occurred_at.utcoffset() == timedelta(0) and parsed.agency_case_id == "5"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"<html>", "not JSON"),
        (raw({k: v for k, v in event("handoff.accepted").items() if k != "id"}), "id: Field req"),
        (raw(event("handoff.accepted", occurred_at="2026-11-30T08:00:00")), "occurred_at"),
        (raw(event("case.status_changed")), "needs data.status"),
        (raw(event("payment.received", {"amount": "5.00"})), "amount and data.currency"),
        (raw(event("payment.received", {"amount": 5.5, "currency": "EUR"})), "data.amount"),
        (
            raw(
                event(
                    "payment.received",
                    {"amount": "10.00", "currency": "EUR", "allocation": {"principal": "9.00"}},
                )
            ),
            "does not add up",
        ),
        (raw(["not", "an", "event"]), "not a status event"),
    ],
)
def test_a_malformed_event_is_an_error_naming_the_field(body: bytes, text: str) -> None:
    with pytest.raises(EventError, match=text):
        parse_status_event(body)


# -- polling ------------------------------------------------------------------------------------


def polled_events() -> list[dict[str, Any]]:
    return [
        event("handoff.accepted", id="evt_1"),
        event("case.status_changed", {"status": "amicable"}, id="evt_2"),
        event("payment.received", {"amount": "100.00", "currency": "EUR"}, id="evt_3"),
    ]


def poll(action: AgencyAction, since: datetime | None = None, handoff: str = KEY) -> Any:
    return asyncio.run(action.poll_case(handoff, since))


def test_polling_follows_the_cursor_across_two_pages(agency: FakeAgency) -> None:
    agency.events[KEY] = polled_events()

    result = poll(make_action(), since=datetime(2026, 11, 29, 0, 0, tzinfo=UTC))

    assert [(e.id, e.status) for e in result.events] == [
        ("evt_1", AgencyStatus.ACCEPTED),
        ("evt_2", AgencyStatus.IN_PROGRESS),
        ("evt_3", AgencyStatus.PAYMENT_RECEIVED),
    ]
    assert result.rejects == ()
    first, second = agency.gets
    assert str(first.url) == f"{BASE}/cases/{KEY}/events?since=2026-11-29T00%3A00%3A00Z"
    assert dict(second.url.params) == {"cursor": "2"}
    for request in agency.gets:
        verify_signature(SECRET, request.headers["Debsync-Signature"], b"", NOW)
        assert request.headers["Authorization"] == "Bearer tok-123"


def test_polling_returns_each_event_once_and_skips_unreadable_ones(
    agency: FakeAgency, caplog: pytest.LogCaptureFixture
) -> None:
    events = polled_events()
    agency.events[KEY] = [
        events[0],
        events[1],
        events[1],  # delivered again on the next page
        event("case.status_changed", id="evt_bad"),
        event("handoff.accepted", id="evt_other", handoff_id="0" * 32),
        events[2],
    ]
    caplog.set_level(logging.WARNING, logger="debsync.action")

    result = poll(make_action())

    assert [e.id for e in result.events] == ["evt_1", "evt_2", "evt_3"]
    assert result.rejects == (
        EventReject("evt_bad", "case.status_changed needs data.status"),
        EventReject("evt_other", "the event is about another handoff"),
    )
    assert "agency event evt_bad skipped" in caplog.text
    assert "since" not in str(agency.gets[0].url)


def test_polling_an_unknown_handoff_is_permanent(agency: FakeAgency) -> None:
    with pytest.raises(PermanentActionError, match=f"does not know handoff {'9' * 32}"):
        poll(make_action(), handoff="9" * 32)


def test_a_429_while_polling_is_retried_later(agency: FakeAgency) -> None:
    agency.events[KEY] = polled_events()
    agency.next_gets += [
        lambda request: agency._events(request),  # the first page as usual
        answer(429, headers={"Retry-After": "60"}),
    ]

    with pytest.raises(RetryableActionError) as caught:
        poll(make_action())

    assert caught.value.retry_after == 60.0


@pytest.mark.parametrize(
    ("page", "error", "text"),
    [
        (answer(200, text="<html>"), RetryableActionError, "is not"),
        (answer(200, json={"data": {}, "next": None}), RetryableActionError, "is not"),
        (answer(200, json={"data": [], "next": "0"}), RetryableActionError, "repeat a cursor"),
        (fail(httpx.ReadTimeout), RetryableActionError, "a read changes nothing"),
        (answer(401), ActionUnavailableError, "credentials refused"),
    ],
    ids=["html", "data-not-a-list", "cursor-loop", "read-timeout", "401"],
)
def test_a_broken_events_page_is_an_error(
    agency: FakeAgency, page: Responder, error: type[Exception], text: str
) -> None:
    agency.events[KEY] = []
    agency.next_gets += [answer(200, json={"data": [], "next": "0"}), page]

    with pytest.raises(error, match=text):
        poll(make_action())


# -- through the outbox ----------------------------------------------------------------------


HANDOFF_POLICY = Policy(
    name="default",
    steps=(
        Step(
            name="handoff",
            channels=("agency",),
            days_after_due=30,
            kinds=(DebtorKind.BUSINESS,),
            role="handoff",
            claim_interest=True,
            claim_costs=True,
        ),
    ),
)


def test_a_handoff_in_doubt_is_retried_by_the_outbox_and_arrives_once(
    agency: FakeAgency, sqlite_store: Store, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))  # inside the rate table
    config = Config(
        path=tmp_path / "connectors.toml",
        store_url="",
        creditor=CreditorSettings(name="Voorbeeld B.V.", iban="NL91ABNA0417164300"),
        policies={"default": HANDOFF_POLICY},
        connectors={"books": INSTANCE},
        actions={"incasso": ActionInstance("incasso", "agency", AgencyAction, settings())},
        outbox=OutboxSettings(retry_initial_seconds=60),
    )
    address = {"lines": ["Kerkstraat 8"], "postcode": "8011 PK", "city": "Zwolle"}
    pages = snapshot(
        Invoice(
            external_id="F1",
            number="F1",
            debtor_id="D1",
            issue_date=date(2026, 4, 1),
            due_date=date(2026, 5, 1),
            total=Money.of("605.00"),
            open_amount=Money.of("605.00"),
        ),
        debtors=(debtor("D1", address=address, kvk="87654321"),),
    )
    synced = SyncEngine(sqlite_store, clock=clock).run(INSTANCE, FakeConnector(pages))
    assert asyncio.run(synced).ok
    dispatcher = Dispatcher(config, sqlite_store, Plugins(entry_points=False), clock=clock)
    agency.clock = clock
    agency.next_posts.append(fail(httpx.ReadTimeout, after_accepting=agency))

    first = asyncio.run(dispatcher.act())
    clock.now += timedelta(minutes=10)
    second = asyncio.run(dispatcher.execute())

    assert first.outcomes[State.IN_DOUBT] == 1 and second.outcomes[State.SENT] == 1
    (row,) = outbox.rows(sqlite_store)
    assert (row.state, row.provider_id, row.attempts) == (State.SENT, "A-778812", 2)
    assert agency.deliveries() == 1
    body = agency.cases[row.key]["body"]
    validate(body)
    assert body["handoff_id"] == row.key
    assert body["claim"]["invoices"][0]["number"] == "F1"
    assert body["claim"]["costs"] == {
        "basis": "b2b_compensation",
        "amount": "40.00",
        "vat_rate": None,
    }
    interest = body["claim"]["interest"]
    assert (interest["type"], interest["from"], interest["until"]) == (
        "6:119a",
        "2026-05-02",
        "2026-06-10",
    )
    assert interest["amount"] == "6.73"  # 605.00 x 10.15 % x 40 / 365
    assert body["debtor"]["address"]["street"] == "Kerkstraat"
    assert row.payload == {k: v for k, v in body.items() if k != "created_at"}
