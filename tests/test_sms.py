"""The SMS channel: encoding and segments, settings, rendering, and the three providers' HTTP
APIs faked with respx in their documented request and response shapes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import respx
from pydantic import ValidationError

from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionUnavailableError,
    OutcomeUnknownError,
    PermanentActionError,
    Receipt,
    RenderError,
    RetryableActionError,
)
from debsync.actions.sms import (
    DeliveryReport,
    DeliveryReportError,
    InboundRequest,
    SignatureError,
    SmsAction,
    SmsSettings,
    cm_reference,
    debsync_register_actions,
    measure,
    normalise_text,
    twilio_signature,
)
from debsync.model import DebtorKind, Language
from debsync.templates import Templates
from debsync.testing.samples import sample_context

from conftest import FIXED_NOW, FrozenClock
from fakes import batch

KEY = "3f2a9c0d41b7e6a85c1d2e3f4a5b6c7d"  # sample_context's key
MOBILE = "+31687654321"  # the sample consumer's mobile number
WORKSPACE = "a1405560-c8d3-4b1a-877d-3f449ad95352"
CHANNEL = "5e8c1d2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
BIRD_MESSAGE = "f303d128-0619-49ce-9e2a-669098d7d78b"
ACCOUNT = "AC" + "0123456789abcdef" * 2
SID = "SM" + "fedcba9876543210" * 2
CALLBACK = "https://debsync.example.nl/dlr/twilio"

SETTINGS: dict[str, dict[str, Any]] = {
    "cm": {
        "provider": "cm",
        "product_token": "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b",
        "sender": "Voorbeeld",
    },
    "bird": {
        "provider": "bird",
        "access_key": "bird-access-key",
        "workspace_id": WORKSPACE,
        "channel_id": CHANNEL,
        "signing_key": "bird-signing-key",
    },
    "twilio": {
        "provider": "twilio",
        "account_sid": ACCOUNT,
        "auth_token": "twilio-auth-token",
        "sender": "Voorbeeld",
        "status_callback_url": CALLBACK,
    },
}
SEND_URL = {
    "cm": "https://gw.cmtelecom.com/v1.0/message",
    "bird": f"https://api.bird.com/workspaces/{WORKSPACE}/channels/{CHANNEL}/messages",
    "twilio": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
}
PROVIDERS = tuple(SETTINGS)


def cm_answer(reference: str = KEY, parts: int = 2) -> dict[str, Any]:
    return {
        "details": "Created 1 message(s)",
        "errorCode": 0,
        "messages": [
            {
                "to": "0031687654321",
                "status": "Accepted",
                "reference": reference,
                "parts": parts,
                "messageDetails": None,
                "messageErrorCode": 0,
            }
        ],
    }


def bird_message(status: str = "accepted", **changes: Any) -> dict[str, Any]:
    message = {
        "id": BIRD_MESSAGE,
        "channelId": CHANNEL,
        "sender": {"connector": {"id": "0b2a6e5c-1d3f-4a7b-9c8d-2e4f6a8b0c1d"}},
        "receiver": {
            "contacts": [
                {
                    "id": "8f0b5377-2edc-4116-a8e8-6a475f245a04",
                    "identifierKey": "phonenumber",
                    "identifierValue": MOBILE,
                }
            ]
        },
        "body": {"type": "text", "text": {"text": "Herinnering"}},
        "reference": KEY,
        "status": status,
        "reason": "",
        "direction": "outgoing",
        "lastStatusAt": "2026-11-22T09:30:01.250Z",
        "createdAt": "2026-11-22T09:30:00.912Z",
        "updatedAt": "2026-11-22T09:30:01.250Z",
    }
    message.update(changes)
    return message


def twilio_message(status: str = "queued", segments: str = "1", **changes: Any) -> dict[str, Any]:
    message = {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": "Herinnering",
        "date_created": "Sun, 22 Nov 2026 09:30:00 +0000",
        "date_sent": None,
        "date_updated": "Sun, 22 Nov 2026 09:30:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": "Voorbeeld",
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": segments,
        "price": None,
        "price_unit": "EUR",
        "sid": SID,
        "status": status,
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}/Media.json"},
        "to": MOBILE,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
    }
    message.update(changes)
    return message


ACCEPTED = {
    "cm": lambda: httpx.Response(200, json=cm_answer()),
    "bird": lambda: httpx.Response(202, json=bird_message()),
    "twilio": lambda: httpx.Response(201, json=twilio_message()),
}


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def make(provider: str, *, templates: Templates | None = None, **changes: Any) -> SmsAction:
    settings = SmsSettings.model_validate({**SETTINGS[provider], **changes})
    env = ActionEnvironment(
        instance="sms",
        config_dir=Path("."),
        templates=templates or Templates(),
        clock=FrozenClock(),
    )
    return SmsAction("sms", settings, env)


def reminder(action: SmsAction, **context: Any) -> dict[str, Any]:
    return action.render(sample_context("reminder", "sms", Language.NL, invoices=1, **context))


def send_once(action: SmsAction, payload: dict[str, Any] | None = None) -> Any:
    return run(batch(action, [(payload or reminder(action), KEY)]))[0]


def free_of_personal_data(text: str) -> bool:
    return all(p not in text for p in (MOBILE, "0031687654321", "687654321", "Herinnering"))


# -- encoding and segments --------------------------------------------------------------------

RESEARCH_EXAMPLE = (
    "Herinnering: factuur 2026-0012 van € 123,45 is verlopen. Betaal via https://pay.example/abc"
)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        pytest.param(RESEARCH_EXAMPLE, "gsm7", 92, 1, id="91 chars with euro: 1 part"),
        pytest.param(
            "Herinnering: uw financiële administratie toont factuur 2026-0012 van € 123,45. "
            "Betaal via https://pay.e",
            "ucs2",
            103,
            2,
            id="financiele forces UCS-2",
        ),
        pytest.param("a" * 161 + "€", "gsm7", 163, 2, id="162 chars with one euro: 2 parts"),
        pytest.param("a" * 160, "gsm7", 160, 1, id="160 septets: 1 part"),
        pytest.param("a" * 161, "gsm7", 161, 2, id="161 septets: 2 parts"),
        pytest.param("a" * 159 + "€", "gsm7", 161, 2, id="euro tips 159 chars over"),
        pytest.param("a" * 306, "gsm7", 306, 2, id="306 septets: 2 parts"),
        pytest.param("a" * 307, "gsm7", 307, 3, id="307 septets: 3 parts"),
        pytest.param("ë" * 70, "ucs2", 70, 1, id="70 code units: 1 part"),
        pytest.param("ë" * 71, "ucs2", 71, 2, id="71 code units: 2 parts"),
        pytest.param("ë" * 134, "ucs2", 134, 2, id="134 code units: 2 parts"),
        pytest.param("ë" * 135, "ucs2", 135, 3, id="135 code units: 3 parts"),
        pytest.param("^{}\\[~]|€", "gsm7", 18, 1, id="extension table: 2 septets each"),
        pytest.param("a" * 152 + "€" + "a" * 152, "gsm7", 306, 3, id="an escape pair never splits"),
        pytest.param(
            "ë" * 66 + "😀" + "ë" * 66, "ucs2", 134, 3, id="a surrogate pair never splits"
        ),
    ],
)
def test_measure(text: str, encoding: str, units: int, segments: int) -> None:
    length = measure(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


@pytest.mark.parametrize(
    ("char", "gsm7"), [(c, True) for c in "éèäöüàÄÖÜÉß"] + [(c, False) for c in "ëïóáâêôç’"]
)
def test_dutch_letters_in_and_outside_gsm7(char: str, gsm7: bool) -> None:
    assert (measure(f"Factuur {char}").encoding == "gsm7") is gsm7


def test_normalise_text_replaces_space_separators_only() -> None:
    assert normalise_text("open €\u00a0605,00 en\u202f€\u2009 1\r\nbijna ") == (
        "open € 605,00 en €  1\nbijna"
    )
    assert normalise_text("België: financiële") == "België: financiële"  # letters stay


def test_a_no_break_space_alone_would_force_ucs2() -> None:
    assert measure("open €\u00a0605,00").encoding == "ucs2"
    assert measure(normalise_text("open €\u00a0605,00")) == measure("open € 605,00")


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender", ["Voorbeeld", "VB Incasso", "A", "Debsync 24", "+31612345678", "+123456789012345"]
)
def test_valid_senders(sender: str) -> None:
    assert SmsSettings.model_validate({**SETTINGS["cm"], "sender": sender}).sender == sender


@pytest.mark.parametrize(
    ("sender", "complaint"),
    [
        ("", "alphanumeric"),
        ("Voorbeeld BV", "1 to 11"),
        ("Café Koster", "1 to 11"),
        ("Van-Dijk", "1 to 11"),
        (" Voorbeeld", "space"),
        ("1234 5678", "at least one letter"),
        ("0612345678", "E.164"),
        ("+0612345678", "E.164"),
        ("+1234567890123456", "at most 15 digits"),
    ],
)
def test_invalid_senders(sender: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        SmsSettings.model_validate({**SETTINGS["cm"], "sender": sender})


@pytest.mark.parametrize(
    ("provider", "changes", "complaint"),
    [
        ("cm", {"product_token": None}, "provider 'cm' needs product_token"),
        ("cm", {"sender": None}, "provider 'cm' needs sender"),
        ("cm", {"access_key": "x"}, "access_key belongs to provider 'bird', not 'cm'"),
        ("cm", {"status_callback_url": CALLBACK}, "Channels app"),
        ("cm", {"max_segments": 9}, "at most 8 parts"),
        ("cm", {"max_segments": 0}, "greater than or equal to 1"),
        ("bird", {"sender": "Voorbeeld"}, "installed on channel_id"),
        ("bird", {"channel_id": None}, "provider 'bird' needs channel_id"),
        ("bird", {"workspace_id": "workspace-1"}, "UUID"),
        ("bird", {"status_callback_url": CALLBACK}, "webhook subscription"),
        ("bird", {"auth_token": "x"}, "auth_token belongs to provider 'twilio'"),
        ("twilio", {"sender": None}, "needs sender \\(From\\) or messaging_service_sid"),
        ("twilio", {"account_sid": "AC123"}, "pattern"),
        ("twilio", {"product_token": "x"}, "product_token belongs to provider 'cm'"),
        ("twilio", {"signing_key": "x"}, "signing_key belongs to provider 'bird'"),
        ("twilio", {"timeout": 0}, "greater than 0"),
        ("twilio", {"password": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_combinations(provider: str, changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        SmsSettings.model_validate({**SETTINGS[provider], **changes})


def test_twilio_may_send_through_a_messaging_service_alone() -> None:
    service = "MG" + "0" * 32
    settings = SmsSettings.model_validate(
        {**SETTINGS["twilio"], "sender": None, "messaging_service_sid": service}
    )
    assert (settings.sender, settings.messaging_service_sid) == (None, service)


def test_secrets_never_print() -> None:
    for provider in PROVIDERS:
        text = repr(SmsSettings.model_validate(SETTINGS[provider]))
        assert "6f1c2a3b" not in text and "bird-access-key" not in text
        assert "twilio-auth-token" not in text and "bird-signing-key" not in text


def test_registers_the_sms_type() -> None:
    registered: list[type[Action[Any]]] = []
    debsync_register_actions(registered.append)
    assert registered == [SmsAction]
    assert (SmsAction.type_name, SmsAction.channel, SmsAction.idempotent) == ("sms", "sms", False)


# -- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["courtesy", "reminder", "aanmaning", "veertiendagenbrief"])
@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("kind", [DebtorKind.CONSUMER, DebtorKind.BUSINESS])
def test_every_shipped_template_fits_three_segments(
    step: str, language: Language, kind: DebtorKind
) -> None:
    action = make("cm")
    for invoices in (1, 2, 3):
        context = sample_context(step, "sms", language, kind=kind, invoices=invoices)
        payload = action.render(context)
        assert payload["encoding"] == "gsm7"
        assert 1 <= payload["segments"] <= 3
        assert payload["segments"] == measure(payload["text"]).segments
        assert payload["to"] == context.debtor.phones[0]
        assert payload["sender"] == "Voorbeeld"
        assert "2026-0001" in payload["text"] and "\u00a0" not in payload["text"]


def test_render_payload() -> None:
    payload = reminder(make("cm"))
    assert payload == {
        "to": MOBILE,
        "text": "Voorbeeld Installatietechniek B.V.: herinnering factuur 2026-0001, open "
        "€ 605,00. Graag betaald voor 07-12-2026: https://betalen.example.nl/2026-0001. "
        "Al betaald? Dan dank u wel.",
        "encoding": "gsm7",
        "segments": 2,
        "sender": "Voorbeeld",
    }
    json.dumps(payload)  # the outbox stores it as JSON


def test_recipient_is_the_first_mobile_number() -> None:
    context = sample_context("reminder", "sms", Language.NL, invoices=1)
    debtor = replace(context.debtor, phones=("+31301234567", "06 12 34 56 78", "+31687654321"))
    assert make("cm").render(replace(context, debtor=debtor))["to"] == "+31612345678"


@pytest.mark.parametrize("phones", [(), ("+31301234567",), ("0201234567", "not a number")])
def test_no_mobile_number_fails_the_render(phones: tuple[str, ...]) -> None:
    context = sample_context("reminder", "sms", Language.NL, invoices=1)
    debtor = replace(context.debtor, phones=phones)
    with pytest.raises(RenderError) as caught:
        make("cm").render(replace(context, debtor=debtor))
    assert str(caught.value) == (
        "debtor D20017 has no mobile phone number (fixed lines cannot receive SMS)"
    )


def test_too_many_segments_fails_the_render() -> None:
    action = make("cm", max_segments=1)
    context = sample_context("reminder", "sms", Language.NL, invoices=3)
    with pytest.raises(RenderError) as caught:
        action.render(context)
    assert str(caught.value) == (
        "the text of sms/reminder.nl.j2 is GSM-7, 230 septets, 2 segments; max_segments is 1"
    )


def test_a_ucs2_text_names_the_character_that_forced_it(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "reminder.nl.j2").write_text(
        "{% block text %}{{ creditor.name }}: uw financiële administratie toont factuur "
        "{{ numbers }} van {{ principal|money }} als onbetaald. Betaal via "
        "{{ payment.url }}{% endblock %}",
        encoding="utf-8",
    )
    action = make("cm", templates=Templates(tmp_path), max_segments=2)
    with pytest.raises(RenderError) as caught:
        reminder(action)
    assert str(caught.value) == (
        "the text of sms/reminder.nl.j2 is UCS-2, 163 UTF-16 code units, 3 segments "
        "(U+00EB is not GSM-7); max_segments is 2"
    )


def test_an_empty_text_fails_the_render(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "reminder.nl.j2").write_text("{% block text %} \u00a0 {% endblock %}")
    with pytest.raises(RenderError, match="rendered an empty text"):
        reminder(make("cm", templates=Templates(tmp_path)))


def test_preview() -> None:
    action = make("twilio")
    assert action.preview(reminder(action)).splitlines()[:2] == [
        f"SMS to {MOBILE} from Voorbeeld via Twilio (GSM-7, 2 segments)",
        "",
    ]
    bird = make("bird")
    assert bird.preview(reminder(bird)).startswith(
        f"SMS to {MOBILE} from the sender configured at Bird via Bird"
    )


# -- CM.com -----------------------------------------------------------------------------------


@respx.mock
def test_cm_send(caplog: pytest.LogCaptureFixture) -> None:
    route = respx.post(SEND_URL["cm"]).mock(return_value=ACCEPTED["cm"]())
    action = make("cm")
    payload = reminder(action)
    with caplog.at_level(logging.INFO, logger="debsync.action"):
        receipt = send_once(action, payload)
    assert receipt == Receipt(
        provider_id=KEY,
        details={
            "provider": "cm",
            "status": "Accepted",
            "segments": 2,
            "encoding": "gsm7",
            "reference": KEY,
        },
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messages": {
            "authentication": {"producttoken": "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"},
            "msg": [
                {
                    "allowedChannels": ["SMS"],
                    "from": "Voorbeeld",
                    "to": [{"number": "0031687654321"}],
                    "body": {"type": "auto", "content": payload["text"]},
                    "reference": KEY,
                    "minimumNumberOfMessageParts": 1,
                    "maximumNumberOfMessageParts": 3,
                    "customGrouping3": "debsync",
                }
            ],
        }
    }
    assert f"action {KEY}: CM.com accepted message {KEY} (Accepted, 2 segment(s))" in caplog.text
    assert free_of_personal_data(caplog.text)


@respx.mock
def test_cm_numeric_sender_regional_gateway_and_long_keys() -> None:
    long_key = "example/D20017/reminder/F2026-0001"
    reference = cm_reference(long_key)
    assert reference == hashlib.sha256(long_key.encode()).hexdigest()[:32]
    route = respx.post("https://gw-uk.cmtelecom.com/v1.0/message").mock(
        return_value=httpx.Response(200, json=cm_answer(reference=reference, parts=3))
    )
    action = make("cm", sender="+3197010203040", base_url="https://gw-uk.cmtelecom.com/")
    [receipt] = run(batch(action, [(reminder(action), long_key)]))
    sent = json.loads(route.calls.last.request.content)["messages"]["msg"][0]
    assert (sent["from"], sent["reference"]) == ("003197010203040", reference)
    assert (receipt.provider_id, receipt.details["segments"]) == (reference, 3)


CM_REFUSALS = [
    pytest.param(400, {"errorCode": 101, "messages": []}, ActionUnavailableError, "101", id="101"),
    pytest.param(400, {"errorCode": 102, "messages": []}, ActionUnavailableError, "102", id="102"),
    pytest.param(400, {"errorCode": 301, "messages": []}, ActionUnavailableError, "301", id="301"),
    pytest.param(400, {"errorCode": 302, "messages": []}, PermanentActionError, "302", id="302"),
    pytest.param(
        200,
        {
            "details": "Not all messages were sent",
            "errorCode": 201,
            "messages": [
                {
                    "to": "0031687654321",
                    "status": "Rejected",
                    "reference": KEY,
                    "parts": 0,
                    "messageDetails": "Gsm '0031687654321' is not a number.",
                    "messageErrorCode": "303",
                }
            ],
        },
        PermanentActionError,
        "errorCode 303 (recipient number invalid)",
        id="201 with 303",
    ),
    pytest.param(
        200,
        {
            **cm_answer(),
            "messages": [
                {**cm_answer()["messages"][0], "status": "Rejected", "messageErrorCode": 402}
            ],
        },
        PermanentActionError,
        "messageErrorCode 402 (recipient blacklisted)",
        id="rejected message",
    ),
    pytest.param(200, {"errorCode": 999, "messages": []}, OutcomeUnknownError, "999", id="999"),
    pytest.param(200, {"errorCode": 0, "messages": []}, OutcomeUnknownError, "", id="no message"),
    pytest.param(
        200, cm_answer(reference="someoneelse"), OutcomeUnknownError, "", id="other reference"
    ),
]


@pytest.mark.parametrize(("status", "body", "error", "text"), CM_REFUSALS)
@respx.mock
def test_cm_error_codes(
    status: int, body: dict[str, Any], error: type[Exception], text: str
) -> None:
    respx.post(SEND_URL["cm"]).mock(return_value=httpx.Response(status, json=body))
    outcome = send_once(make("cm"))
    assert type(outcome) is error
    assert text in str(outcome) and free_of_personal_data(str(outcome))


# -- Bird -------------------------------------------------------------------------------------


@respx.mock
def test_bird_send() -> None:
    route = respx.post(SEND_URL["bird"]).mock(return_value=ACCEPTED["bird"]())
    action = make("bird")
    payload = reminder(action)
    assert payload["sender"] is None
    receipt = send_once(action, payload)
    assert receipt == Receipt(
        provider_id=BIRD_MESSAGE,
        details={
            "provider": "bird",
            "status": "accepted",
            "segments": 2,
            "encoding": "gsm7",
            "reference": KEY,
        },
    )
    request = route.calls.last.request
    assert request.headers["authorization"] == "AccessKey bird-access-key"
    assert json.loads(request.content) == {
        "receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": MOBILE}]},
        "body": {"type": "text", "text": {"text": payload["text"]}},
        "reference": KEY,
    }


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        pytest.param(
            httpx.Response(
                422,
                json={
                    "code": "InvalidPayload",
                    "message": "The payload is invalid",
                    "details": {"receiver.contacts[0].identifierValue": [MOBILE]},
                },
            ),
            PermanentActionError,
            "Bird refused the message: HTTP 422, code InvalidPayload",
            id="422",
        ),
        pytest.param(
            httpx.Response(
                202, json=bird_message("rejected", failure={"code": 14, "description": "x"})
            ),
            PermanentActionError,
            f"Bird reports message {BIRD_MESSAGE} as rejected (failure 14)",
            id="rejected at once",
        ),
        pytest.param(
            httpx.Response(202, json={"status": "accepted"}),
            OutcomeUnknownError,
            "Bird answered HTTP 202 with a body debsync does not understand",
            id="no id",
        ),
    ],
)
@respx.mock
def test_bird_refusals(response: httpx.Response, error: type[Exception], text: str) -> None:
    respx.post(SEND_URL["bird"]).mock(return_value=response)
    outcome = send_once(make("bird"))
    assert type(outcome) is error
    assert text in str(outcome) and free_of_personal_data(str(outcome))


# -- Twilio -----------------------------------------------------------------------------------


@respx.mock
def test_twilio_send() -> None:
    route = respx.post(SEND_URL["twilio"]).mock(
        return_value=httpx.Response(201, json=twilio_message(segments="2"))
    )
    action = make("twilio")
    payload = reminder(action)
    receipt = send_once(action, payload)
    assert receipt == Receipt(
        provider_id=SID,
        details={"provider": "twilio", "status": "queued", "segments": 2, "encoding": "gsm7"},
    )
    request = route.calls.last.request
    credentials = base64.b64encode(f"{ACCOUNT}:twilio-auth-token".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.content.decode())) == {
        "To": MOBILE,
        "From": "Voorbeeld",
        "Body": payload["text"],
        "StatusCallback": CALLBACK,
    }


@respx.mock
def test_twilio_messaging_service() -> None:
    service = "MG" + "1" * 32
    route = respx.post(SEND_URL["twilio"]).mock(return_value=ACCEPTED["twilio"]())
    action = make("twilio", sender=None, messaging_service_sid=service, status_callback_url=None)
    send_once(action)
    form = dict(parse_qsl(route.calls.last.request.content.decode()))
    assert form["MessagingServiceSid"] == service and "From" not in form
    assert "StatusCallback" not in form


def twilio_error(status: int, code: int) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "code": code,
            "message": f"The 'To' number {MOBILE} is not a valid phone number.",
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        (twilio_error(400, 21211), PermanentActionError, "code 21211 (invalid To number)"),
        (twilio_error(400, 21614), PermanentActionError, "code 21614 (To is not a mobile"),
        (twilio_error(400, 21610), PermanentActionError, "code 21610 (the recipient has unsub"),
        (twilio_error(400, 21617), PermanentActionError, "code 21617 (see Twilio errors)"),
        (twilio_error(400, 21212), ActionUnavailableError, "code 21212 (invalid From number)"),
        (twilio_error(400, 21611), RetryableActionError, "code 21611 (the sender's queue"),
        (twilio_error(401, 20003), ActionUnavailableError, "HTTP 401: the credentials"),
        (
            httpx.Response(201, json=twilio_message("failed", error_code=30007)),
            PermanentActionError,
            f"Twilio failed message {SID} at once: error 30007",
        ),
    ],
)
@respx.mock
def test_twilio_refusals(
    response: httpx.Response, error: type[Exception], text: str, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(SEND_URL["twilio"]).mock(return_value=response)
    with caplog.at_level(logging.WARNING, logger="debsync.action"):
        outcome = send_once(make("twilio"))
    assert type(outcome) is error
    assert text in str(outcome) and free_of_personal_data(str(outcome))
    assert caplog.messages == [f"action {KEY}: {outcome}"]


# -- what every provider shares ---------------------------------------------------------------


def answer(status: int, **content: Any) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(status, **content)


HTTP_OUTCOMES = [
    pytest.param(answer(401, json={"code": 20003}), ActionUnavailableError, id="401"),
    pytest.param(answer(403, json={"code": "Forbidden"}), ActionUnavailableError, id="403"),
    pytest.param(answer(404, json={"code": "NotFound"}), ActionUnavailableError, id="404"),
    pytest.param(
        answer(301, headers={"location": "https://elsewhere"}), ActionUnavailableError, id="301"
    ),
    pytest.param(answer(400, text="Bad Request"), PermanentActionError, id="400"),
    pytest.param(answer(408), RetryableActionError, id="408"),
    pytest.param(answer(502, text="Bad Gateway"), RetryableActionError, id="502"),
    pytest.param(answer(503, text="Service Unavailable"), RetryableActionError, id="503"),
    pytest.param(answer(504, text="Gateway Timeout"), RetryableActionError, id="504"),
    pytest.param(answer(500, json={"message": "oops"}), OutcomeUnknownError, id="500"),
    pytest.param(answer(202, text="<html>ok</html>"), OutcomeUnknownError, id="2xx not JSON"),
    pytest.param(answer(200, json=["a", "list"]), OutcomeUnknownError, id="2xx not an object"),
    pytest.param(httpx.ConnectError, RetryableActionError, id="connect error"),
    pytest.param(httpx.ConnectTimeout, RetryableActionError, id="connect timeout"),
    pytest.param(httpx.PoolTimeout, RetryableActionError, id="pool timeout"),
    pytest.param(httpx.WriteTimeout, RetryableActionError, id="write timeout"),
    pytest.param(httpx.ReadTimeout, OutcomeUnknownError, id="read timeout"),
    pytest.param(httpx.ReadError, OutcomeUnknownError, id="read error"),
    pytest.param(httpx.RemoteProtocolError, OutcomeUnknownError, id="closed without answer"),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("effect", "error"), HTTP_OUTCOMES)
@respx.mock
def test_http_outcomes(provider: str, effect: Any, error: type[Exception]) -> None:
    route = respx.post(SEND_URL[provider])
    if isinstance(effect, type):
        route.mock(side_effect=effect)
    else:
        route.mock(return_value=effect())
    outcome = send_once(make(provider))
    assert type(outcome) is error
    assert free_of_personal_data(str(outcome))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("30", 30.0), ("Sun, 22 Nov 2026 09:31:00 GMT", 60.0), ("soon", None), (None, None)],
)
@respx.mock
def test_rate_limit_honours_retry_after(
    provider: str, retry_after: str | None, seconds: float | None
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    respx.post(SEND_URL[provider]).mock(
        return_value=httpx.Response(429, headers=headers, json={"code": 20429})
    )
    outcome = send_once(make(provider))
    assert isinstance(outcome, RetryableActionError)
    assert outcome.retry_after == seconds
    assert str(outcome).endswith("answered HTTP 429: try again later")


@pytest.mark.parametrize("provider", PROVIDERS)
@respx.mock
def test_a_5xx_burst_then_success_in_one_batch(provider: str) -> None:
    route = respx.post(SEND_URL[provider]).mock(
        side_effect=[httpx.Response(503), httpx.Response(502), ACCEPTED[provider]()]
    )
    action = make(provider)
    clients: list[httpx.AsyncClient] = []
    original = action.gateway.client

    def counting() -> httpx.AsyncClient:
        clients.append(original())
        return clients[-1]

    action.gateway.client = counting  # type: ignore[method-assign]
    payload = reminder(action)
    outcomes = run(batch(action, [(payload, KEY)] * 3))
    assert [type(o) for o in outcomes] == [RetryableActionError, RetryableActionError, Receipt]
    assert route.call_count == 3
    assert len(clients) == 1 and clients[0].is_closed  # one client for the batch, then closed


def test_a_lone_send_opens_and_closes_its_own_client() -> None:
    action = make("twilio")
    with respx.mock:
        respx.post(SEND_URL["twilio"]).mock(return_value=ACCEPTED["twilio"]())
        receipt = run(action.send(reminder(action), KEY))
    assert receipt.provider_id == SID


# -- status lookups ---------------------------------------------------------------------------


@respx.mock
def test_bird_fetch_status() -> None:
    failure = {"code": 30003, "source": "operator", "description": "Unreachable destination"}
    route = respx.get(f"{SEND_URL['bird']}/{BIRD_MESSAGE}").mock(
        return_value=httpx.Response(200, json=bird_message("delivery_failed", failure=failure))
    )
    action = make("bird")
    assert action.can_fetch_status
    report = run(action.fetch_status(BIRD_MESSAGE))
    assert report == DeliveryReport(
        provider="bird",
        provider_message_id=BIRD_MESSAGE,
        reference=KEY,
        status="failed",
        at=datetime(2026, 11, 22, 9, 30, 1, 250000, tzinfo=UTC),
        error_code="30003",
        provider_status="delivery_failed",
    )
    assert route.calls.last.request.headers["authorization"] == "AccessKey bird-access-key"


@respx.mock
def test_twilio_fetch_status() -> None:
    route = respx.get(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json")
    route.mock(
        return_value=httpx.Response(
            200,
            json=twilio_message(
                "delivered",
                date_sent="Sun, 22 Nov 2026 09:30:02 +0000",
                date_updated="Sun, 22 Nov 2026 09:30:05 +0000",
            ),
        )
    )
    report = run(make("twilio").fetch_status(SID))
    assert (report.status, report.provider_message_id, report.error_code) == (
        "delivered",
        SID,
        None,
    )
    assert report.at == datetime(2026, 11, 22, 9, 30, 5, tzinfo=UTC)
    assert report.event_id == f"twilio:{SID}:delivered"


@pytest.mark.parametrize(
    ("effect", "error"),
    [
        pytest.param(answer(404, json={"code": 20404}), PermanentActionError, id="404"),
        pytest.param(answer(500), RetryableActionError, id="500 is safe to retry"),
        pytest.param(answer(401), ActionUnavailableError, id="401"),
        pytest.param(answer(200, text="{"), PermanentActionError, id="unreadable"),
        pytest.param(httpx.ReadTimeout, RetryableActionError, id="read timeout"),
    ],
)
@respx.mock
def test_lookup_failures(effect: Any, error: type[Exception]) -> None:
    route = respx.get(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json")
    if isinstance(effect, type):
        route.mock(side_effect=effect)
    else:
        route.mock(return_value=effect())
    with pytest.raises(error):
        run(make("twilio").fetch_status(SID))


def test_lookups_refuse_foreign_ids_and_cm_has_none() -> None:
    with pytest.raises(ValueError, match="not a Twilio message SID"):
        run(make("twilio").fetch_status("../Calls/CA123"))
    with pytest.raises(ValueError, match="badly formed hexadecimal UUID"):
        run(make("bird").fetch_status("../../channels"))
    cm = make("cm")
    assert not cm.can_fetch_status
    with pytest.raises(NotImplementedError, match=r"CM\.com has no API"):
        run(cm.fetch_status(KEY))


# -- delivery reports -------------------------------------------------------------------------

TWILIO_DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def test_twilio_signature_matches_twilios_published_vectors() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", TWILIO_DOC_URL, params.items()) == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert twilio_signature("12345", TWILIO_DOC_URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def twilio_callback(
    status: str = "delivered", *, url: str = CALLBACK, sign_url: str = CALLBACK, **extra: str
) -> InboundRequest:
    params = {
        "ApiVersion": "2010-04-01",
        "AccountSid": ACCOUNT,
        "From": "Voorbeeld",
        "MessageSid": SID,
        "MessageStatus": status,
        "SmsSid": SID,
        "SmsStatus": status,
        "To": MOBILE,
        **extra,
    }
    body = urlencode(params).encode()
    signature = twilio_signature("twilio-auth-token", sign_url, params.items())
    return InboundRequest(
        "POST",
        url,
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        body,
    )


def test_twilio_status_callback() -> None:
    [report] = make("twilio").parse_delivery_report(
        twilio_callback("undelivered", ErrorCode="30003")
    )
    assert report == DeliveryReport(
        provider="twilio",
        provider_message_id=SID,
        reference=None,
        status="failed",
        at=FIXED_NOW,
        error_code="30003",
        provider_status="undelivered",
    )
    assert free_of_personal_data(repr(report))


@pytest.mark.parametrize(
    ("status", "normalised"),
    [("sent", "accepted"), ("delivered", "delivered"), ("failed", "failed"), ("x", "unknown")],
)
def test_twilio_statuses(status: str, normalised: str) -> None:
    [report] = make("twilio").parse_delivery_report(twilio_callback(status))
    assert report.status == normalised


def test_twilio_callback_through_a_proxy_that_adds_the_default_port() -> None:
    request = twilio_callback(url="https://debsync.example.nl:443/dlr/twilio")
    assert make("twilio").parse_delivery_report(request)[0].status == "delivered"


def test_twilio_callbacks_that_are_refused() -> None:
    action = make("twilio")
    forged = twilio_callback()
    with pytest.raises(SignatureError):
        action.parse_delivery_report(replace(forged, body=forged.body.replace(b"deliv", b"fail")))
    with pytest.raises(SignatureError):
        action.parse_delivery_report(replace(forged, headers={}))
    with pytest.raises(SignatureError):
        action.parse_delivery_report(twilio_callback(sign_url="https://attacker.example/dlr"))
    other = twilio_callback(AccountSid="AC" + "9" * 32)
    with pytest.raises(DeliveryReportError, match="another account"):
        action.parse_delivery_report(other)


BIRD_HOOK = "https://debsync.example.nl/dlr/bird?instance=sms"


def bird_event(
    message: dict[str, Any],
    *,
    event: str = "sms.outbound",
    at: datetime = FIXED_NOW,
    key: str = "bird-signing-key",
) -> InboundRequest:
    """A webhook request signed the way Bird documents it, computed here independently."""
    body = json.dumps({"service": "channels", "event": event, "payload": message}).encode()
    timestamp = str(int(at.timestamp()))
    signed = f"{timestamp}\n{BIRD_HOOK}\n".encode() + hashlib.sha256(body).digest()
    signature = base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "MessageBird-Signature": signature.decode(),
        "MessageBird-Request-Timestamp": timestamp,
    }
    return InboundRequest("POST", BIRD_HOOK, headers, body)


def test_bird_webhook_event() -> None:
    [report] = make("bird").parse_delivery_report(bird_event(bird_message("delivered")))
    assert report == DeliveryReport(
        provider="bird",
        provider_message_id=BIRD_MESSAGE,
        reference=KEY,
        status="delivered",
        at=datetime(2026, 11, 22, 9, 30, 1, 250000, tzinfo=UTC),
        error_code=None,
        provider_status="delivered",
    )
    assert report.event_id == f"bird:{BIRD_MESSAGE}:delivered"


@pytest.mark.parametrize(
    ("status", "normalised"),
    [
        ("accepted", "accepted"),
        ("sent", "accepted"),
        ("sending_failed", "failed"),
        ("delivery_failed", "failed"),
        ("rejected", "rejected"),
        ("someday", "unknown"),
    ],
)
def test_bird_statuses(status: str, normalised: str) -> None:
    [report] = make("bird").parse_delivery_report(bird_event(bird_message(status)))
    assert report.status == normalised


def test_bird_accepts_a_retry_of_seven_hours_ago() -> None:
    request = bird_event(bird_message("delivered"), at=FIXED_NOW - timedelta(hours=7))
    assert make("bird").parse_delivery_report(request)[0].status == "delivered"


def test_bird_events_that_are_refused() -> None:
    action = make("bird")
    good = bird_event(bird_message("delivered"))
    for request in (
        bird_event(bird_message("delivered"), at=FIXED_NOW - timedelta(hours=13)),
        bird_event(bird_message("delivered"), at=FIXED_NOW + timedelta(minutes=10)),
        bird_event(bird_message("delivered"), key="another-key"),
        replace(good, body=good.body.replace(b"delivered", b"delivery_failed")),
        replace(good, url="https://debsync.example.nl/dlr/bird"),
        replace(good, headers={"MessageBird-Signature": good.headers["MessageBird-Signature"]}),
    ):
        with pytest.raises(SignatureError):
            action.parse_delivery_report(request)
    with pytest.raises(SignatureError, match="no signing_key"):
        make("bird", signing_key=None).parse_delivery_report(good)


def test_bird_events_about_something_else_are_acknowledged_and_ignored() -> None:
    action = make("bird")
    other_channel = bird_message("delivered", channelId="00000000-0000-4000-8000-000000000000")
    assert action.parse_delivery_report(bird_event(other_channel)) == []
    assert action.parse_delivery_report(bird_event(bird_message(), event="sms.inbound")) == []
    with pytest.raises(DeliveryReportError):
        action.parse_delivery_report(bird_event({"id": BIRD_MESSAGE, "channelId": CHANNEL}))


def cm_report(code: str, error_code: str = "0", received: str = "2026-11-22T10:31:07") -> bytes:
    message = {
        "received": received,
        "to": "0031687654321",
        "reference": KEY,
        "status": {"code": code, "errorCode": error_code, "errorDescription": "Unknown"},
        "operator": "20416",
    }
    return json.dumps({"messages": {"msg": message}}).encode()


@pytest.mark.parametrize(
    ("code", "normalised"),
    [("0", "accepted"), ("1", "rejected"), ("2", "delivered"), ("3", "failed"), ("7", "unknown")],
)
def test_cm_status_report(code: str, normalised: str) -> None:
    request = InboundRequest("POST", "https://debsync.example.nl/dlr/cm", {}, cm_report(code, "5"))
    [report] = make("cm").parse_delivery_report(request)
    assert report == DeliveryReport(
        provider="cm",
        provider_message_id=None,
        reference=KEY,
        status=normalised,  # type: ignore[arg-type]
        at=datetime(2026, 11, 22, 9, 31, 7, tzinfo=UTC),  # CM's local time, CET
        error_code="5",
        provider_status=code,
    )
    assert free_of_personal_data(repr(report))


@pytest.mark.parametrize(
    "body", [b"", b"not json", b'{"messages": {}}', b'{"messages": {"msg": 1}}']
)
def test_malformed_cm_status_reports(body: bytes) -> None:
    with pytest.raises(DeliveryReportError):
        make("cm").parse_delivery_report(InboundRequest("POST", "https://x/dlr", {}, body))


def test_a_cm_report_without_a_usable_time_is_dated_on_arrival() -> None:
    [report] = make("cm").parse_delivery_report(
        InboundRequest("POST", "https://x/dlr", {}, cm_report("2", received="not a date"))
    )
    assert (report.status, report.at) == ("delivered", FIXED_NOW)
