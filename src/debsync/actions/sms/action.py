"""The SMS action: render a step's text for the debtor's mobile number, send it through the
configured provider's gateway, read its delivery reports back."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import ClassVar

import phonenumbers

from debsync import hookimpl
from debsync.actions.base import (
    ActionEnvironment,
    ActionError,
    ActionSettings,
    DebtorContext,
    InboundRequest,
    MessageContext,
    Payload,
    PermanentActionError,
    Receipt,
    RenderError,
    SentAction,
    StatusReport,
)
from debsync.actions.http import HttpAction, HttpChannel
from debsync.actions.sms.bird import BirdGateway
from debsync.actions.sms.cm import CmGateway
from debsync.actions.sms.encoding import is_gsm7, measure, normalise_text
from debsync.actions.sms.gateway import Gateway, status_error
from debsync.actions.sms.reports import DeliveryReport, as_status_report
from debsync.actions.sms.settings import Provider, SmsSettings
from debsync.actions.sms.twilio import TwilioGateway
from debsync.hookspecs import RegisterAction
from debsync.model import DEFAULT_PHONE_REGION

MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def mobile_number(debtor: DebtorContext) -> str | None:
    """The debtor's first number that can receive SMS, in E.164; fixed lines cannot."""
    for value in debtor.phones:
        try:
            number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
        except phonenumbers.NumberParseException:
            continue
        valid = phonenumbers.is_valid_number(number)
        if valid and phonenumbers.number_type(number) in MOBILE_TYPES:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


GATEWAYS: Mapping[Provider, type[Gateway]] = {
    "cm": CmGateway,
    "bird": BirdGateway,
    "twilio": TwilioGateway,
}


class SmsAction(HttpAction[SmsSettings]):
    """Texts the debtor's mobile number through the configured provider. One HTTP client
    serves a batch; a lone send gets a client of its own."""

    type_name: ClassVar[str] = "sms"
    Settings: ClassVar[type[ActionSettings]] = SmsSettings
    channel: ClassVar[str] = "sms"
    idempotent: ClassVar[bool] = False
    uses_templates: ClassVar[bool] = True

    def __init__(self, instance: str, settings: SmsSettings, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        self.gateway = GATEWAYS[settings.provider](settings)
        # a failed connection to a provider's gateway is one transient path: retry the text
        self._http = HttpChannel(
            lambda: self.gateway.client(), name=self.gateway.label, unreachable_stops_channel=False
        )

    def render(self, context: MessageContext) -> Payload:
        to = mobile_number(context.debtor)
        if to is None:
            raise RenderError(
                f"debtor {context.debtor.external_id} has no mobile phone number "
                "(fixed lines cannot receive SMS)"
            )
        text = normalise_text(self.env.templates.blocks("sms", context, ["text"])["text"])
        template = self.env.templates.path("sms", context.template, context.language)
        if not text:
            raise RenderError(f"template {template} rendered an empty text")
        length = measure(text)
        if length.segments > self.settings.max_segments:
            culprit = next((c for c in text if not is_gsm7(c)), None)
            why = f" (U+{ord(culprit):04X} is not GSM-7)" if culprit else ""
            raise RenderError(
                f"the text of {template} is {length}{why}; max_segments is "
                f"{self.settings.max_segments}"
            )
        return {
            "to": to,
            "text": text,
            "encoding": length.encoding,
            "segments": length.segments,
            "sender": self.settings.sender,
        }

    def preview(self, payload: Payload) -> str:
        sender = payload["sender"] or f"the sender configured at {self.gateway.label}"
        plural = "" if payload["segments"] == 1 else "s"
        encoding = "GSM-7" if payload["encoding"] == "gsm7" else "UCS-2"
        return (
            f"SMS to {payload['to']} from {sender} via {self.gateway.label} "
            f"({encoding}, {payload['segments']} segment{plural})\n\n{payload['text']}\n"
        )

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        try:
            receipt = await self._submit(payload, idempotency_key)
        except ActionError as exc:
            self.env.logger.warning("action %s: %s", idempotency_key, exc)
            raise
        self.env.logger.info(
            "action %s: %s accepted message %s (%s, %s segment(s))",
            idempotency_key,
            self.gateway.label,
            receipt.provider_id,
            receipt.details["status"],
            receipt.details["segments"],
        )
        return receipt

    async def _submit(self, payload: Payload, key: str) -> Receipt:
        gateway = self.gateway
        response = await self._http.exchange(
            lambda client: gateway.submission(client, payload, key)
        )
        error = status_error(response, gateway.label, self.env.clock())
        error = error or gateway.refusal(response)
        if error is None and not response.is_success:
            error = PermanentActionError(
                f"{gateway.label} refused the message: HTTP {response.status_code}"
            )
        if error is not None:
            raise error
        return gateway.receipt(response, payload, key)

    @property
    def can_fetch_status(self) -> bool:
        """Whether the provider can be asked for a message's status (Bird, Twilio; not CM)."""
        return self.gateway.can_fetch_status

    async def fetch_status(self, provider_id: str) -> DeliveryReport:
        """The provider's current status of a sent message (``Receipt.provider_id``): how the
        core recovers a report it missed, or checks an in-doubt send.

        :raises NotImplementedError: the provider has no lookup API (CM).
        :raises ActionError: as :meth:`send` would, except that a lookup is safe to repeat, so
            timeouts and 5xx answers are retryable; a 404 is a :class:`PermanentActionError`.
        """
        gateway = self.gateway
        response = await self._http.exchange(
            lambda client: gateway.status_request(client, provider_id)
        )
        now = self.env.clock()
        error = status_error(response, gateway.label, now)
        if error is None and not response.is_success:
            error = PermanentActionError(
                f"{gateway.label} refused the lookup: HTTP {response.status_code}"
            )
        if error is not None:
            raise error
        report = gateway.status_report(response, now)
        if report is None:
            raise PermanentActionError(
                f"{gateway.label} answered the lookup with HTTP {response.status_code} and a "
                "body debsync does not understand"
            )
        return report

    poll_window_days: ClassVar[int] = 2  # a text is delivered, or not, within hours

    def callback_secret(self) -> str | None:
        """The secret in the URL CM calls (``/inbound/<instance>/<secret>``): CM does not sign
        its reports, so the URL must be unguessable. Derived from the product token and the
        instance, so there is nothing more to configure; a new token gives a new URL. Bird and
        Twilio sign their callbacks: ``None``."""
        token = self.settings.product_token
        if self.settings.provider != "cm" or token is None:
            return None
        label = f"debsync inbound callback {self.instance}".encode()
        return hmac.new(token.get_secret_value().encode(), label, hashlib.sha256).hexdigest()[:32]

    def receive(self, request: InboundRequest) -> list[StatusReport]:
        """The provider's delivery-report callback as status reports for the dossier."""
        return [as_status_report(r) for r in self.parse_delivery_report(request)]

    async def poll(self, sent: Sequence[SentAction]) -> list[StatusReport]:
        """Look up texts still without a final report, where the provider has a lookup."""
        if not self.can_fetch_status:
            return []
        return [
            as_status_report(await self.fetch_status(s.provider_id))
            for s in sent
            if s.provider_id is not None
        ]

    def parse_delivery_report(self, request: InboundRequest) -> list[DeliveryReport]:
        """The delivery reports in a provider callback, as the HTTP endpoint received it.

        :raises SignatureError: the provider signs its callbacks (Bird, Twilio) and this one's
            signature is missing, wrong or too old; answer 401.
        :raises DeliveryReportError: it is not a report of this provider; answer 400.
        """
        return self.gateway.reports(request, self.env.clock())


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(SmsAction)
