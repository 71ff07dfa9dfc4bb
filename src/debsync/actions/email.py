"""E-mail: SMTP submission (``type = "email"``) and ``.eml`` files in a folder (``type = "file"``).

Both types render the same message: the step template's ``subject``, ``opening`` and
``closing`` blocks inside ``email/_layout.txt.j2`` and ``email/_layout.html.j2``, as
``multipart/alternative`` text and HTML. The MIME bytes are built at send time, because only
then are the ``Date`` (from the injected clock) and the invoice PDFs (from the connector) known;
both types build them with the same code, so a ``.eml`` file is byte for byte what SMTP would
submit. The file type is the safe default of a fresh install: nothing reaches a debtor until an
operator configures a mail server.

SMTP is not idempotent: once the message content has been sent, a lost connection leaves the
outcome unknown and the outbox holds the action for review. Every earlier failure is classified
precisely (channel down, retry later, never), so only a real in-doubt case needs a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, SecretStr, model_validator

from debsync import hookimpl
from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionError,
    ActionSettings,
    ActionUnavailableError,
    MessageContext,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RenderError,
    RetryableActionError,
)
from debsync.actions.files import write_atomically
from debsync.clock import AMSTERDAM
from debsync.hookspecs import RegisterAction
from debsync.model import Language

BLOCKS = ("subject", "opening", "closing")
THIS_MESSAGE = {Language.NL: "dit bericht", Language.EN: "this message"}
ATTACHMENT_STEM = {Language.NL: "factuur", Language.EN: "invoice"}
TEXT_LAYOUT = "email/_layout.txt.j2"
HTML_LAYOUT = "email/_layout.html.j2"
DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_ADDRESS_IN_TEXT = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w.-]+")
_QUEUE_ID = (
    re.compile(r"queued as ([A-Za-z0-9]+)", re.IGNORECASE),  # Postfix
    re.compile(r"\bid=([\w.-]+)"),  # Exim
    re.compile(r"\bOK\s+\d+\s+(\S+)\s+-\s+gsmtp", re.IGNORECASE),  # Gmail
    re.compile(r"^(?:\d\.\d\.\d\s+)?(\S+)\s+Message accepted", re.IGNORECASE),  # Sendmail
    re.compile(r"^Ok\s+(\S+)$", re.IGNORECASE),  # Amazon SES
)


def ascii_address(value: str) -> str:
    """The address as SMTP without SMTPUTF8 carries it: syntax-checked, domain in IDNA form."""
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


Security = Literal["tls", "starttls", "none"]


class SmtpSettings(MessageSettings):
    """``type = "email"``: submission to a mail server (RFC 6409)."""

    host: str = Field(pattern=r"^\S+$", description="Host name of the submission server.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="TCP port; default 465 for tls, 587 for starttls, 25 for none.",
    )
    security: Security = Field(
        default="tls",
        description='"tls": implicit TLS (RFC 8314, preferred); "starttls": plain connection '
        'upgraded with STARTTLS, refused when the server does not offer it; "none": no '
        "encryption at all (needs allow_insecure = true).",
    )
    allow_insecure: bool = Field(
        default=False,
        description='Confirms security = "none": messages and password travel unencrypted. '
        "Only for a relay on the same host or a trusted network.",
    )
    username: str | None = Field(
        default=None, min_length=1, description="Login name for SMTP AUTH (PLAIN or LOGIN)."
    )
    password: SecretStr | None = Field(
        default=None,
        description='Password for SMTP AUTH; give a reference such as { env = "SMTP_PASSWORD" }.',
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file with the CA certificate(s) to trust instead of the system store, "
        "for a server with a private CA; relative to the folder of connectors.toml.",
    )
    timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds to wait for the connection and for each server reply, including "
        "the final one after the message; keep it below [outbox] lease_seconds.",
    )
    helo_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.:\[\]-]+$",
        description="Host name this machine gives in EHLO; default its fully qualified name.",
    )
    bounce_address: MailAddress | None = Field(
        default=None,
        description="Envelope sender (Return-Path) that receives bounces; default the From "
        "address.",
    )
    verp: bool = Field(
        default=False,
        description="Envelope sender local+<key>@domain, so a bounce names the action it "
        "belongs to (the bounce mailbox must accept + addresses).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.security == "none" and not self.allow_insecure:
            raise ValueError(
                'security = "none" sends messages and the password unencrypted; use "tls" or '
                '"starttls", or set allow_insecure = true to confirm'
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class FileSettings(MessageSettings):
    """``type = "file"``: one ``<key>.eml`` per message in a folder."""

    directory: Path = Field(
        description="Folder for the .eml files; relative to the folder of connectors.toml; "
        "created if missing."
    )


def _redact(text: str) -> str:
    """A server reply fit for logs and the dossier: one line, e-mail addresses removed (servers
    echo the recipient in their refusals)."""
    return " ".join(_ADDRESS_IN_TEXT.sub("[address]", text).split())[:300]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {_redact(exc.message)}"
    return _redact(str(exc)) or type(exc).__name__


def _queue_id(reply: str) -> str | None:
    for pattern in _QUEUE_ID:
        found = pattern.search(reply.strip())
        if found:
            return found.group(1)
    return None


def _xtext(value: str) -> str:
    """RFC 3461 xtext, the encoding of DSN parameters."""
    return "".join(
        ch if 33 <= ord(ch) <= 126 and ch not in "+=" else f"+{ord(ch):02X}" for ch in value
    )


def _dot_stuffed(content: bytes) -> bytes:
    """The DATA payload: lines starting with a dot doubled (RFC 5321 4.5.2), then the end mark."""
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", content) + b".\r\n"


def _abort(smtp: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Drop a connection at once. ``SMTP.close()`` alone starts a TLS close handshake that an
    event loop about to stop (``debsync act`` ends with it) never finishes, leaving the socket
    open; aborting the transport releases it on the loop's next iteration."""
    transport = transport or smtp.transport
    smtp.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()


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
        blocks["subject"] = " ".join(blocks["subject"].split())
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
            "to_name": debtor.name,
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
        sender = payload["from"]
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = Address(sender["name"], addr_spec=sender["address"])
        message["To"] = [Address(payload["to_name"], addr_spec=a) for a in payload["to"]]
        if payload["reply_to"]:
            message["Reply-To"] = payload["reply_to"]
        message["Subject"] = payload["subject"]
        message["Date"] = format_datetime(self.env.clock().astimezone(AMSTERDAM))
        message["Message-ID"] = payload["message_id"]
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        message["X-Auto-Response-Suppress"] = "OOF, AutoReply"  # the same for Exchange
        message.set_content(payload["text"])
        message.add_alternative(payload["html"], subtype="html")
        for attachment in payload["attachments"]:
            document = await self._document(attachment)
            if document is not None:
                message.add_attachment(
                    document,
                    maintype="application",
                    subtype="pdf",
                    filename=attachment["filename"],
                )
        # Set last: making the message multipart moves Content-* headers into the first part.
        message["Content-Language"] = payload["language"]
        multiparts = [part for part in message.walk() if part.is_multipart()]
        for number, part in enumerate(multiparts):
            # "=_" cannot occur in base64 or quoted-printable content.
            part.set_boundary(f"=_ds.{idempotency_key}.{number}")
        for part in message.walk():
            if part is not message:
                del part["MIME-Version"]  # EmailMessage adds one to every part it creates
        return message.as_bytes()

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


class SmtpAction(MessageAction[SmtpSettings]):
    """Submits over one connection per batch (``async with action:``), opened on the first
    send and closed on exit. A channel-level failure (unreachable, TLS, login refused) is
    remembered for the rest of the batch, so a wrong password costs one login attempt, not one
    per message."""

    type_name: ClassVar[str] = "email"
    Settings: ClassVar[type[ActionSettings]] = SmtpSettings
    idempotent: ClassVar[bool] = False

    def __init__(self, instance: str, settings: SmtpSettings, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        ca_file = settings.ca_file
        self._ca_file = (
            ca_file if ca_file is None or ca_file.is_absolute() else env.config_dir / ca_file
        )
        self._tls: ssl.SSLContext | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self._batch = False
        self._unavailable: ActionUnavailableError | None = None
        self._where = f"SMTP server {settings.host}:{settings.effective_port}"

    async def __aenter__(self) -> Self:
        self._batch = True
        self._unavailable = None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._batch = False
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        transport = smtp.transport  # quit() forgets it
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
        _abort(smtp, transport)

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        if not self._batch:  # a lone send is a batch of one
            async with self:
                return await self.send(payload, idempotency_key)
        if self._unavailable is not None:
            raise ActionUnavailableError(str(self._unavailable))
        content = await self.compose(payload, idempotency_key)
        try:
            return await self._submit(payload, content, idempotency_key)
        except ActionUnavailableError as exc:
            self._unavailable = exc
            self._discard()
            raise

    async def _submit(self, payload: Payload, content: bytes, key: str) -> Receipt:
        sender = self.settings.bounce_address or payload["from"]["address"]
        if self.settings.verp:
            local, _, domain = sender.rpartition("@")
            sender = f"{local}+{key}@{domain}"
        smtp = await self._mail_from(sender, len(content), key)
        dsn = smtp.supports_extension("dsn")
        accepted, refused = await self._rcpt_to(smtp, payload["to"], dsn)
        reply = await self._data(smtp, content)
        queue_id = _queue_id(reply.message)
        self.env.logger.info(
            "action %s: %s accepted %s (queue id %s)",
            key,
            self._where,
            payload["message_id"],
            queue_id,
        )
        details: dict[str, Any] = {
            "message_id": payload["message_id"],
            "reply": f"{reply.code} {_redact(reply.message)}",
            "recipients": accepted,
            "refused": len(refused),
            "dsn": dsn,
        }
        if refused:
            details["refused_replies"] = [_describe(exc) for exc in refused]
        return Receipt(
            provider_id=queue_id,
            details=details,
            content_sha256=hashlib.sha256(content).hexdigest(),
        )

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                self._tls = ssl.create_default_context(
                    cafile=None if self._ca_file is None else str(self._ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                raise ActionUnavailableError(
                    f"action {self.instance}: cannot load ca_file {self._ca_file}: {exc}"
                ) from exc
        return self._tls

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            use_tls=settings.security == "tls",
            start_tls=False,  # done below, so a server without STARTTLS is refused, not used
            tls_context=None if settings.security == "none" else self._tls_context(),
            timeout=settings.timeout,
            local_hostname=settings.helo_name,
        )
        try:
            await smtp.connect()
            await smtp.ehlo()
            if settings.security == "starttls":
                if not smtp.supports_extension("starttls"):
                    raise ActionUnavailableError(
                        f"{self._where} does not offer STARTTLS; refusing to send unencrypted "
                        '(if it speaks implicit TLS, set security = "tls")'
                    )
                await smtp.starttls()
                await smtp.ehlo()
            if settings.username is not None and settings.password is not None:
                await self._login(smtp, settings.username, settings.password)
        except ActionUnavailableError:
            _abort(smtp)
            raise
        except aiosmtplib.SMTPAuthenticationError as exc:
            _abort(smtp)
            raise ActionUnavailableError(
                f"{self._where} refused the login of user {settings.username!r} "
                f"({_describe(exc)}); check username and password"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            _abort(smtp)
            raise ActionUnavailableError(
                f"cannot use {self._where} (security {settings.security}): {_describe(exc)}"
            ) from exc
        return smtp

    async def _login(self, smtp: aiosmtplib.SMTP, username: str, password: SecretStr) -> None:
        """One AUTH command: a refusal is final for the batch (aiosmtplib's ``login`` would try
        every advertised mechanism in turn)."""
        methods = smtp.server_auth_methods
        if "plain" in methods:
            await smtp.auth_plain(username, password.get_secret_value())
        elif "login" in methods:
            await smtp.auth_login(username, password.get_secret_value())
        else:
            offered = ", ".join(methods) or "none"
            raise ActionUnavailableError(
                f"{self._where} offers no password login (AUTH PLAIN or LOGIN; offered: {offered})"
            )

    def _discard(self) -> None:
        if self._smtp is not None:
            _abort(self._smtp)
            self._smtp = None

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """End a refused transaction so the connection can carry the next message."""
        if not smtp.is_connected:
            self._discard()
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._discard()

    def _refused(self, stage: str, code: int, message: str) -> ActionError:
        reason = f"{self._where} answered {code} {_redact(message)} to {stage}"
        if code == 421 or not 400 <= code < 600:
            self._discard()
        if stage == "MAIL FROM" and code >= 500 and code != 552:
            # The sender is the same for every message: the channel is misconfigured (no
            # login, sender not allowed for this account), not this one message.
            return ActionUnavailableError(f"{reason}; check the login and from/bounce address")
        if code >= 500:
            return PermanentActionError(reason)
        return RetryableActionError(reason)

    async def _mail_from(self, sender: str, size: int, key: str) -> aiosmtplib.SMTP:
        """Start the transaction on the batch's connection. A server may close a connection
        that sat idle between two messages; then this reconnects once, which is safe because
        nothing of this message has been sent."""
        while True:
            fresh = self._smtp is None or not self._smtp.is_connected
            if fresh:
                self._discard()
                self._smtp = await self._connect()
            smtp = self._smtp
            assert smtp is not None
            options = [f"SIZE={size}"] if smtp.supports_extension("size") else []
            if smtp.supports_extension("dsn"):
                options += ["RET=HDRS", f"ENVID={_xtext(key)}"]
            try:
                await smtp.mail(sender, options=options)
                return smtp
            except aiosmtplib.SMTPSenderRefused as exc:
                if exc.code != 421 or fresh:
                    await self._reset(smtp)
                    raise self._refused("MAIL FROM", exc.code, exc.message) from None
                lost: Exception = exc
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
                lost = exc
            self._discard()
            if fresh:
                raise RetryableActionError(
                    f"{self._where}: connection lost at MAIL FROM ({_describe(lost)})"
                )
            self.env.logger.info("%s closed the idle connection; reconnecting", self._where)

    async def _rcpt_to(
        self, smtp: aiosmtplib.SMTP, recipients: Sequence[str], dsn: bool
    ) -> tuple[int, list[aiosmtplib.SMTPRecipientRefused]]:
        accepted = 0
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for address in recipients:
            options = ["NOTIFY=FAILURE,DELAY", f"ORCPT=rfc822;{_xtext(address)}"] if dsn else []
            try:
                await smtp.rcpt(address, options=options)
                accepted += 1
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused.append(exc)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
                self._discard()
                raise RetryableActionError(
                    f"{self._where}: connection lost at RCPT TO ({_describe(exc)})"
                ) from None
        if accepted:
            return accepted, refused
        await self._reset(smtp)
        if all(exc.code >= 500 for exc in refused):
            raise PermanentActionError(
                f"{self._where} refused all {len(refused)} recipient(s): {_describe(refused[0])}"
            )
        temporary = next(exc for exc in refused if exc.code < 500)
        raise RetryableActionError(
            f"{self._where} refused the recipient(s) for now: {_describe(temporary)}"
        )

    async def _data(self, smtp: aiosmtplib.SMTP, content: bytes) -> aiosmtplib.SMTPResponse:
        """DATA in two steps, because they fail differently: a connection lost before the
        server's go-ahead (354) sent nothing; one lost after the content may have delivered."""
        try:
            go_ahead = await smtp.execute_command(b"DATA")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            self._discard()
            raise RetryableActionError(
                f"{self._where}: connection lost at DATA, before the content ({_describe(exc)})"
            ) from None
        if go_ahead.code != 354:
            await self._reset(smtp)
            raise self._refused("DATA", go_ahead.code, go_ahead.message)
        protocol = smtp.protocol
        if protocol is None:
            self._discard()
            raise RetryableActionError(f"{self._where}: connection lost before the content")
        lost: str | None = None
        try:
            protocol.write(_dot_stuffed(content))
            reply = await protocol.read_response(timeout=self.settings.timeout)
        except aiosmtplib.SMTPTimeoutError:
            lost = f"no reply within {self.settings.timeout:g} s"
        except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            lost = f"connection lost ({_describe(exc)})"
        except aiosmtplib.SMTPException as exc:
            lost = f"unreadable reply ({_describe(exc)})"
        if lost is not None:
            self._discard()
            raise OutcomeUnknownError(
                f"{self._where}: {lost} after the message content was sent; the server may "
                "have accepted it"
            )
        if reply.code != 250:
            raise self._refused("the message content", reply.code, reply.message)
        return reply


class FileAction(MessageAction[FileSettings]):
    """Writes ``<key>.eml`` into a folder, for another program or a person to send.
    Idempotent: writing the same key again replaces the file, it cannot reach a debtor twice."""

    type_name: ClassVar[str] = "file"
    Settings: ClassVar[type[ActionSettings]] = FileSettings
    idempotent: ClassVar[bool] = True

    def __init__(self, instance: str, settings: FileSettings, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        directory = settings.directory
        self.directory = directory if directory.is_absolute() else env.config_dir / directory

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        content = await self.compose(payload, idempotency_key)
        path = self.directory / f"{idempotency_key}.eml"
        try:
            # Mode 0o600: the message holds personal data, for the daemon's user only.
            await asyncio.to_thread(write_atomically, path, content, mode=0o600)
        except OSError as exc:
            raise ActionUnavailableError(
                f"action {self.instance}: cannot write to {self.directory}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from exc
        self.env.logger.info("action %s: written to %s", idempotency_key, path)
        return Receipt(
            provider_id=path.name,
            details={"message_id": payload["message_id"], "path": str(path)},
            content_sha256=hashlib.sha256(content).hexdigest(),
        )


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(SmtpAction)
    register(FileAction)
