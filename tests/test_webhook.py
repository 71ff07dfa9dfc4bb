"""Signed webhooks: the debsync.event/v1 body, its signature, data minimisation, and every
answer a receiver can give; plus the signature scheme itself."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from debsync.actions import webhook as webhook_module
from debsync.actions.base import (
    ActionEnvironment,
    ActionUnavailableError,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.actions.signing import SignatureError, sign, signature, verify_signature
from debsync.actions.webhook import WebhookAction, WebhookSettings
from debsync.http import retry_after
from debsync.model import DebtorKind
from debsync.plugins import Plugins
from debsync.templates import Templates
from debsync.testing import ActionChecks, ActionHarness
from debsync.testing.samples import sample_context

URL = "https://sales.example.nl/hooks/debsync"
SECRET = "hook-secret-" + "ab12" * 6
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = sample_context("aanmaning", "webhook").key


def make_action(**changes: Any) -> WebhookAction:
    values: dict[str, Any] = {"url": URL, "secret": SECRET}
    values.update(changes)
    env = ActionEnvironment(
        instance="sales", config_dir=Path("."), templates=Templates(), clock=lambda: NOW
    )
    return WebhookAction("sales", WebhookSettings.model_validate(values), env)


def send(action: WebhookAction, payload: Payload, key: str = KEY) -> Receipt:
    async def once() -> Receipt:
        async with action:
            return await action.send(payload, key)

    return asyncio.run(once())


Responder = Callable[[httpx.Request], httpx.Response]


class Receiver:
    """A receiving system: checks the signature, records each event id once."""

    def __init__(self, router: respx.Router) -> None:
        self.requests: list[httpx.Request] = []
        self.received: dict[str, dict[str, Any]] = {}
        self.next: list[Responder] = []
        router.post(URL).mock(side_effect=self._post)

    def record(self, request: httpx.Request) -> None:
        body = json.loads(request.content)
        self.received.setdefault(body["id"], body)

    def _post(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            verify_signature(SECRET, request.headers.get("Debsync-Signature"), request.content, NOW)
        except SignatureError:
            return httpx.Response(401)
        if self.next:
            return self.next.pop(0)(request)
        self.record(request)
        return httpx.Response(204)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with respx.mock(assert_all_called=False) as router:
        yield Receiver(router)


def answer(status: int, **kwargs: Any) -> Responder:
    return lambda request: httpx.Response(status, **kwargs)


def lost(receiver: Receiver | None = None) -> Responder:
    """The connection drops after the receiver got the event (with ``receiver``) or before."""

    def respond(request: httpx.Request) -> httpx.Response:
        if receiver is None:
            raise httpx.ConnectError("connection refused", request=request)
        receiver.record(request)
        raise httpx.ReadTimeout("no answer", request=request)

    return respond


class WebhookHarness(ActionHarness):
    def __init__(self, tmp_path: Path, receiver: Receiver) -> None:
        super().__init__(tmp_path)
        self.receiver = receiver

    def action(self) -> WebhookAction:
        settings = WebhookSettings.model_validate({"url": URL, "secret": SECRET})
        env = replace(self.environment("sales"), clock=lambda: NOW)
        return WebhookAction("sales", settings, env)

    def deliveries(self) -> int:
        return len(self.receiver.received)

    def fail_next(self, kind: str) -> None:
        self.receiver.next.append(
            {
                "retryable": answer(429, headers={"Retry-After": "5"}),
                "permanent": answer(422),
                "unknown": lost(self.receiver),
                "unavailable": lost(),
            }[kind]
        )


class TestTheWebhookActionPassesTheKit(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path, receiver: Receiver) -> ActionHarness:
        return WebhookHarness(tmp_path, receiver)


def test_the_event_is_signed_and_carries_ids_amounts_and_the_deadline(
    receiver: Receiver,
) -> None:
    action = make_action(token="hook-token", headers={"X-Source": "debsync"})
    payload = action.render(sample_context("aanmaning", "webhook"))

    receipt = send(action, payload)

    (request,) = receiver.requests
    assert str(request.url) == URL and request.headers["Idempotency-Key"] == KEY
    assert request.headers["Authorization"] == "Bearer hook-token"
    assert request.headers["X-Source"] == "debsync"
    assert verify_signature(SECRET, request.headers["Debsync-Signature"], request.content, NOW)
    assert json.loads(request.content) == {
        "schema": "debsync.event/v1",
        "id": KEY,
        "type": "dunning.step",
        "created_at": "2026-11-23T09:00:00Z",
        "instance": "example",
        "step": "aanmaning",
        "role": None,
        "debtor": {"id": "D20017", "kind": "consumer"},
        "currency": "EUR",
        "invoices": [
            {"number": "2026-0001", "due_date": "2026-10-14", "days_overdue": 40,
             "open_amount": "605.00"},
            {"number": "2026-0002", "due_date": "2026-10-04", "days_overdue": 50,
             "open_amount": "500.00"},
        ],
        "principal": "1105.00",
        "interest": "12.34",
        "costs": None,
        "total": "1117.34",
        "deadline": "2026-12-07",
    }  # fmt: skip
    assert b"de Vries" not in request.content  # no name unless include_names
    assert receipt == Receipt(
        details={"http_status": 204, "duplicate": False},
        content_sha256=hashlib.sha256(request.content).hexdigest(),
    )


def test_names_are_included_only_when_configured() -> None:
    context = sample_context("handoff", "webhook", kind=DebtorKind.BUSINESS)

    payload = make_action(include_names=True).render(context)

    assert payload["debtor"] == {
        "id": "D10042",
        "kind": "business",
        "name": "Bakkerij De Gouden Korrel B.V.",
    }
    assert (payload["role"], payload["costs"]) == ("handoff", "80.00")


def test_the_event_id_is_stable_across_retries(receiver: Receiver) -> None:
    receiver.next += [answer(503), answer(502)]
    action = make_action()
    payload = action.render(sample_context("reminder", "webhook"))

    for _ in range(2):
        with pytest.raises(RetryableActionError):
            send(action, payload)
    send(action, payload)

    assert [json.loads(r.content)["id"] for r in receiver.requests] == [KEY] * 3
    assert len(receiver.received) == 1


def test_a_lost_answer_is_in_doubt_and_the_receiver_deduplicates_the_resend(
    receiver: Receiver,
) -> None:
    receiver.next.append(lost(receiver))
    action = make_action()
    payload = action.render(sample_context("reminder", "webhook"))

    with pytest.raises(OutcomeUnknownError):
        send(action, payload)
    send(action, payload)

    assert len(receiver.requests) == 2 and len(receiver.received) == 1


def test_a_409_means_the_receiver_already_has_the_event(receiver: Receiver) -> None:
    receiver.next.append(answer(409, json={"error": "duplicate event"}))

    receipt = send(make_action(), make_action().render(sample_context("reminder", "webhook")))

    assert receipt.details == {"http_status": 409, "duplicate": True}


@pytest.mark.parametrize(
    ("responder", "error", "text"),
    [
        (answer(429, headers={"Retry-After": "90"}), RetryableActionError, "answered 429"),
        (answer(500), RetryableActionError, "answered 500"),
        (answer(401), ActionUnavailableError, "credentials refused"),
        (answer(403), ActionUnavailableError, "credentials refused"),
        (answer(404), ActionUnavailableError, "check the URL"),
        (answer(410), ActionUnavailableError, "check the URL"),
        (answer(307, headers={"Location": URL + "/v2"}), ActionUnavailableError, "check the URL"),
        (
            answer(422, json={"errors": [{"code": "unknown_debtor", "message": "J.P. de Vries"}]}),
            PermanentActionError,
            "answered 422: unknown_debtor$",
        ),
        (answer(400, text="<html>Bad Request</html>"), PermanentActionError, "answered 400$"),
        (lost(), ActionUnavailableError, "cannot reach sales.example.nl"),
    ],
    ids=["429", "500", "401", "403", "404", "410", "307", "422", "400", "refused"],
)
def test_failures_map_to_what_the_outbox_should_do(
    receiver: Receiver, responder: Responder, error: type[Exception], text: str
) -> None:
    receiver.next.append(responder)

    with pytest.raises(error, match=text) as caught:
        send(make_action(), make_action().render(sample_context("reminder", "webhook")))

    if isinstance(caught.value, RetryableActionError) and "429" in str(caught.value):
        assert caught.value.retry_after == 90.0


def test_the_preview_names_the_url() -> None:
    action = make_action()

    preview = action.preview(action.render(sample_context("reminder", "webhook")))

    assert preview.splitlines()[0] == f"POST {URL}"
    assert json.loads(preview.partition("\n")[2])["type"] == "dunning.step"


def test_the_settings_are_strict_and_keep_secrets_secret() -> None:
    action = make_action(token="hook-token")

    assert SECRET not in repr(action.settings) and "hook-token" not in repr(action.settings)
    assert all(f.description for f in WebhookSettings.model_fields.values())
    for bad, text in [
        ({"url": "ftp://sales.example.nl"}, "https://"),
        ({"url": "https://sales.example.nl/hook?token=x"}, "query"),
        ({"url": "http://sales.example.nl"}, "allow_insecure"),
        ({"secret": "x" * 15}, "at least 16"),
        ({"headers": {"Authorization": "Basic eA=="}}, "set by debsync"),
        ({"headers": {"Bad Name": "x"}}, "not a header name"),
        ({"headers": {"X-A": "x\r\nX-B: y"}}, "line break"),
        ({"include_name": True}, "Extra inputs"),
    ]:
        with pytest.raises(ValidationError, match=text):
            make_action(**bad)


def test_the_webhook_type_registers_like_a_plugin() -> None:
    plugins = Plugins(entry_points=False, extra=[("webhook", webhook_module)])

    assert plugins.action_types()["webhook"] is WebhookAction


# -- the signature scheme ---------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_over_the_time_and_the_raw_body() -> None:
    body = b'{"id":"evt_1"}'

    header = sign("topsecret-topsecret", body, NOW)

    t = int(NOW.timestamp())
    assert header == f"t={t},v1={signature('topsecret-topsecret', t, body)}"
    expected = hmac.new(b"topsecret-topsecret", f"{t}.".encode() + body, hashlib.sha256)
    assert header.endswith(expected.hexdigest())
    assert verify_signature("topsecret-topsecret", header, body, NOW) == t


def test_a_rotated_secret_verifies_with_either_signature() -> None:
    body = b"{}"
    t = int(NOW.timestamp())
    old, new = signature("old-secret-0123456", t, body), signature("new-secret-0123456", t, body)
    header = f"t={t},v1={old},v1={new}"

    assert verify_signature("new-secret-0123456", header, body, NOW) == t
    assert verify_signature("old-secret-0123456", header, body, NOW) == t


@pytest.mark.parametrize(
    ("header", "text"),
    [
        ("", "no Debsync-Signature"),
        ("garbage", "malformed"),
        ("v1=abc", "exactly one numeric t="),
        ("t=abc,v1=abc", "exactly one numeric t="),
        ("t=1,t=2,v1=abc", "exactly one numeric t="),
        (f"t={int(NOW.timestamp())}", "no v1= signature"),
        (f"t={int(NOW.timestamp())},v1=ë", "does not match"),
        (f"t={int(NOW.timestamp())},v0=" + "0" * 64, "no v1= signature"),
    ],
)
def test_a_malformed_signature_header_is_rejected(header: str, text: str) -> None:
    with pytest.raises(SignatureError, match=text):
        verify_signature("a-secret-of-some-length", header, b"{}", NOW)


def test_the_tolerance_bounds_the_age_either_way() -> None:
    body = b"{}"
    old = sign("a-secret-of-some-length", body, NOW - timedelta(seconds=300))
    older = sign("a-secret-of-some-length", body, NOW - timedelta(seconds=301))

    assert verify_signature("a-secret-of-some-length", old, body, NOW)
    with pytest.raises(SignatureError, match="301 s old"):
        verify_signature("a-secret-of-some-length", older, body, NOW)
    assert verify_signature("a-secret-of-some-length", older, body, NOW, tolerance=600)
    with pytest.raises(ValueError, match="naive"):
        verify_signature("a-secret-of-some-length", old, body, NOW.replace(tzinfo=None))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120", NOW) == 120.0
    assert retry_after("Mon, 23 Nov 2026 09:01:00 GMT", NOW) == 60.0
    assert retry_after("Mon, 23 Nov 2026 08:00:00 GMT", NOW) == 0.0
    assert retry_after("soon", NOW) is None and retry_after(None, NOW) is None
