"""``type = "email"``: SMTP submission (RFC 6409) over implicit TLS or STARTTLS.

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
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import aiosmtplib
from pydantic import Field, SecretStr, model_validator

from debsync.actions.base import (
    ActionEnvironment,
    ActionError,
    ActionSettings,
    ActionUnavailableError,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.actions.email.message import MailAddress, MessageAction, MessageSettings

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}

_ADDRESS_IN_TEXT = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w.-]+")
_QUEUE_ID = (
    re.compile(r"queued as ([A-Za-z0-9]+)", re.IGNORECASE),  # Postfix
    re.compile(r"\bid=([\w.-]+)"),  # Exim
    re.compile(r"\bOK\s+\d+\s+(\S+)\s+-\s+gsmtp", re.IGNORECASE),  # Gmail
    re.compile(r"^(?:\d\.\d\.\d\s+)?(\S+)\s+Message accepted", re.IGNORECASE),  # Sendmail
    re.compile(r"^Ok\s+(\S+)$", re.IGNORECASE),  # Amazon SES
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
