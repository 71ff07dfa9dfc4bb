"""What both e-mail types send: the rendered message and its exact MIME bytes.

``render`` fills the step template's ``subject``, ``opening`` and ``closing`` blocks into
``email/_layout.txt.j2`` and ``email/_layout.html.j2``; ``compose`` builds the RFC 5322 bytes
at send time, because only then are the ``Date`` (from the injected clock) and the invoice PDFs
(from the connector) known. Both types compose with this code, so a ``.eml`` file is byte for
byte what SMTP would submit.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from typing import Annotated, ClassVar, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field

from debsync.actions.base import (
    Action,
    ActionSettings,
    MessageContext,
    Payload,
    PermanentActionError,
    RenderError,
    RetryableActionError,
)
from debsync.actions.email import mime
from debsync.clock import AMSTERDAM
from debsync.model import Language, clean_text, plain_email

BLOCKS = ("subject", "opening", "closing")
THIS_MESSAGE = {Language.NL: "dit bericht", Language.EN: "this message"}
ATTACHMENT_STEM = {Language.NL: "factuur", Language.EN: "invoice"}
TEXT_LAYOUT = "email/_layout.txt.j2"
HTML_LAYOUT = "email/_layout.html.j2"

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@functools.lru_cache(maxsize=4096)
def ascii_address(value: str) -> str:
    """The address as SMTP without SMTPUTF8 carries it: syntax-checked, domain in IDNA form.
    Cached: every message checks the creditor's address, and a debtor's again each step; a
    plain ASCII address takes the debtor model's fast path to the same result."""
    plain = plain_email(value)
    if plain is not None:
        return plain
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid e-mail address: {exc}") from None
    if info.ascii_email is None:
        raise ValueError("the part before @ must be ASCII (debsync does not use SMTPUTF8)")
    return str(info.ascii_email)


MailAddress = Annotated[str, AfterValidator(ascii_address)]


class MessageSettings(ActionSettings):
    """What both e-mail types share: who a message is from and what it carries."""

    from_address: MailAddress | None = Field(
        default=None,
        description="From address; default the creditor's e-mail ([creditor] email). Its "
        "domain must allow the sending server (SPF, DKIM, DMARC) and names the Message-ID.",
    )
    from_name: str | None = Field(
        default=None, min_length=1, description="Display name in From; default the creditor's name."
    )
    reply_to: MailAddress | None = Field(
        default=None,
        description="Where the debtor's replies go; default the creditor's e-mail.",
    )
    attach_invoices: bool = Field(
        default=True,
        description="Attach each invoice's PDF when the connector can supply it; an invoice "
        "without one is sent without attachment.",
    )


MessageSettingsT = TypeVar("MessageSettingsT", bound=MessageSettings)


class MessageAction(Action[MessageSettingsT]):
    """The rendering and MIME building both e-mail types share."""

    channel: ClassVar[str] = "email"
    uses_templates: ClassVar[bool] = True

    def render(self, context: MessageContext) -> Payload:
        debtor = context.debtor
        recipients: list[str] = []
        for address in debtor.emails:
            with contextlib.suppress(ValueError):
                recipients.append(ascii_address(address))
        if not debtor.emails:
            raise RenderError(f"debtor {debtor.external_id} has no e-mail address")
        if not recipients:
            raise RenderError(
                f"debtor {debtor.external_id} has no e-mail address with an ASCII part before "
                "@ (debsync does not use SMTPUTF8)"
            )
        creditor_address = None
        if context.creditor.email:
            with contextlib.suppress(ValueError):
                creditor_address = ascii_address(context.creditor.email)
        sender = self.settings.from_address or creditor_address
        if sender is None:
            raise RenderError(
                f"action {self.instance}: no From address: set from_address or [creditor] email"
            )
        if not _KEY.match(context.key):
            raise RenderError(f"action key {context.key!r} cannot name a message")
        templates = self.env.templates
        blocks = templates.blocks(
            self.channel, context, BLOCKS, this_message=THIS_MESSAGE[context.language]
        )
        blocks["subject"] = " ".join(clean_text(blocks["subject"]).split())
        if not blocks["subject"]:
            raise RenderError(f"template {context.template!r} renders an empty subject")
        attachments = [
            {
                "instance": context.instance,
                "invoice_id": line.external_id,
                "filename": f"{ATTACHMENT_STEM[context.language]}-"
                f"{_UNSAFE_FILENAME.sub('-', line.number).strip('-.') or line.external_id}.pdf",
            }
            for line in context.invoices
            if line.has_document and self.settings.attach_invoices
        ]
        return {
            "from": {
                "name": self.settings.from_name or context.creditor.name,
                "address": sender,
            },
            "to": list(dict.fromkeys(recipients)),
            "to_name": clean_text(debtor.name),  # stored before the model cleaned names
            "reply_to": self.settings.reply_to or creditor_address,
            "subject": blocks["subject"],
            "text": templates.layout(TEXT_LAYOUT, context, html=False, **blocks),
            "html": templates.layout(HTML_LAYOUT, context, html=True, **blocks),
            "language": context.language.value,
            "message_id": f"<ds.{context.key}@{sender.rpartition('@')[2]}>",
            "attachments": attachments,
        }

    def preview(self, payload: Payload) -> str:
        sender = payload["from"]
        headers = {
            "From": f"{sender['name']} <{sender['address']}>",
            "To": ", ".join(f"{payload['to_name']} <{a}>" for a in payload["to"]),
            "Reply-To": payload["reply_to"],
            "Subject": payload["subject"],
            "Message-ID": payload["message_id"],
            "Content-Language": payload["language"],
            "Attachments (if the connector supplies them)": ", ".join(
                a["filename"] for a in payload["attachments"]
            ),
        }
        lines = [f"{name}: {value}" for name, value in headers.items() if value]
        return "\n".join(lines) + "\n\n" + str(payload["text"])

    async def compose(self, payload: Payload, idempotency_key: str) -> bytes:
        """The exact RFC 5322 bytes of the message: ``Date`` now, the available PDFs attached,
        boundaries derived from the key so the same inputs give the same bytes."""
        if not _KEY.match(idempotency_key):
            raise PermanentActionError(f"action key {idempotency_key!r} cannot name a message")
        documents = []
        for attachment in payload["attachments"]:
            document = await self._document(attachment)
            if document is not None:
                documents.append((attachment["filename"], document))
        date = format_datetime(self.env.clock().astimezone(AMSTERDAM))
        direct = mime.compose(payload, date, documents, idempotency_key)
        if direct is not None:
            return direct
        return email_message_bytes(payload, date, documents, idempotency_key)

    async def _document(self, attachment: Mapping[str, str]) -> bytes | None:
        invoice_id = attachment["invoice_id"]
        try:
            document = await self.env.fetch_document(attachment["instance"], invoice_id)
        except Exception as exc:  # nothing was sent yet: a later attempt may get it
            raise RetryableActionError(
                f"invoice {invoice_id}: fetching its document failed ({type(exc).__name__})"
            ) from exc
        if document is None:
            self.env.logger.info("invoice %s: no document to attach", invoice_id)
        return document


def email_message_bytes(
    payload: Payload, date: str, documents: Sequence[tuple[str, bytes]], key: str
) -> bytes:
    """The message built with ``EmailMessage``: every case :func:`mime.compose` leaves to it
    (non-ASCII or folded headers), and the reference its bytes are tested against."""
    sender = payload["from"]
    message = EmailMessage(policy=SMTP_POLICY)
    try:
        message["From"] = Address(sender["name"], addr_spec=sender["address"])
        message["To"] = [Address(payload["to_name"], addr_spec=a) for a in payload["to"]]
        if payload["reply_to"]:
            message["Reply-To"] = payload["reply_to"]
        message["Subject"] = payload["subject"]
    except (ValueError, TypeError) as exc:  # a line break in a header: nothing was sent
        raise PermanentActionError(
            f"the message headers cannot be built ({type(exc).__name__})"
        ) from None
    message["Date"] = date
    message["Message-ID"] = payload["message_id"]
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    message["X-Auto-Response-Suppress"] = "OOF, AutoReply"  # the same for Exchange
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    for filename, document in documents:
        message.add_attachment(document, maintype="application", subtype="pdf", filename=filename)
    # Set last: making the message multipart moves Content-* headers into the first part.
    message["Content-Language"] = payload["language"]
    multiparts = [part for part in message.walk() if part.is_multipart()]
    for number, part in enumerate(multiparts):
        # "=_" cannot occur in base64 or quoted-printable content.
        part.set_boundary(f"=_ds.{key}.{number}")
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # EmailMessage adds one to every part it creates
    return message.as_bytes()
