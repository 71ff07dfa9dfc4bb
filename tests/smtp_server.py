"""A real SMTP server on loopback for tests: aiosmtpd in a background thread.

It records every message it receives (raw bytes, envelope, Message-ID, connection number),
counts connections and AUTH attempts, and can be told to fail::

    with SMTPTestServer(tls=ca.server_context(), users={"debsync": "s3cret"}) as server:
        server.fail("RCPT", "450 4.2.0 Mailbox busy")        # every RCPT, until cleared
        server.fail("CONTENT", DROP, times=1)                # next message: close, no reply
        ...
        assert server.connections == 1

Stages: ``"MAIL"``, ``"RCPT"`` (optionally for one recipient), ``"DATA"`` (the command, before
the 354 go-ahead) and ``"CONTENT"`` (after the whole message arrived, before the reply). A
fault is a reply line, :data:`DROP` (close the connection without replying) or :data:`HANG`
(never reply). A message that reached the server is recorded even when a fault follows.

``tls`` is the server's certificate context (see :class:`LoopbackCA`): offered through
STARTTLS, or wrapping the whole connection with ``implicit_tls=True``. ``users`` turns on
AUTH (PLAIN and LOGIN, only over TLS) and requires it before MAIL. ``dsn=True`` advertises DSN
and accepts its MAIL and RCPT parameters.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

DROP = "<drop the connection>"
HANG = "<never reply>"
STAGES = ("MAIL", "RCPT", "DATA", "CONTENT")
DSN_PARAMETERS = ("RET", "ENVID", "NOTIFY", "ORCPT")


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server got it. ``reply`` is what it answered, ``None`` when a fault
    dropped or hung the connection instead. Options are upper-cased by aiosmtpd."""

    connection: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None
    reply: str | None

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    @property
    def message_id(self) -> str | None:
        value = self.message["Message-ID"]
        return None if value is None else str(value).strip()  # a long one is folded


@dataclass
class _Fault:
    stage: str
    action: str
    recipient: str | None
    remaining: int | None


class LoopbackCA:
    """A throwaway CA (trustme) with a certificate for 127.0.0.1 and localhost."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = directory / "smtp-test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context


class _Server(SMTP):
    """aiosmtpd's SMTP with a connection number, DSN parameters and the DATA-command fault."""

    def __init__(self, owner: SMTPTestServer, number: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.number = number

    def connection_lost(self, error: Exception | None) -> None:
        self.owner._live.discard(self)
        super().connection_lost(error)

    def _getparams(self, params: Any) -> dict[str, Any] | None:
        # aiosmtpd refuses every MAIL/RCPT parameter it does not know; a DSN server knows these.
        result: dict[str, Any] | None = super()._getparams(params)
        if result is not None and self.owner.dsn:
            for name in DSN_PARAMETERS:
                result.pop(name, None)
        return result

    async def smtp_DATA(self, arg: str) -> None:
        self.owner._command(self, "DATA")
        fault = self.owner._take("DATA")
        if fault is None:
            await super().smtp_DATA(arg)
        else:
            await self.push(await self.owner._apply(self, fault))

    @property
    def secure(self) -> bool:
        return (
            self.transport is not None and self.transport.get_extra_info("sslcontext") is not None
        )


class _Handler:
    def __init__(self, owner: SMTPTestServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: _Server,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.owner._command(server, "EHLO")
        session.host_name = hostname
        if self.owner.dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_AUTH(
        self, server: _Server, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        self.owner._command(server, "AUTH")
        return MISSING

    async def handle_MAIL(
        self,
        server: _Server,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> Any:
        self.owner._command(server, "MAIL")
        fault = self.owner._take("MAIL")
        return MISSING if fault is None else await self.owner._apply(server, fault)

    async def handle_RCPT(
        self,
        server: _Server,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> Any:
        self.owner._command(server, "RCPT")
        fault = self.owner._take("RCPT", address)
        return MISSING if fault is None else await self.owner._apply(server, fault)

    async def handle_RSET(self, server: _Server, session: Session, envelope: Envelope) -> Any:
        self.owner._command(server, "RSET")
        return MISSING

    async def handle_QUIT(self, server: _Server, session: Session, envelope: Envelope) -> Any:
        self.owner._command(server, "QUIT")
        return MISSING

    async def handle_DATA(self, server: _Server, session: Session, envelope: Envelope) -> Any:
        fault = self.owner._take("CONTENT")
        reply = None
        if fault is None:
            reply = f"250 2.0.0 Ok: queued as Q{len(self.owner.messages) + 1:06d}"
        elif fault not in (DROP, HANG):
            reply = fault
        content = envelope.original_content
        assert isinstance(content, bytes)
        login = session.auth_data  # what _authenticate returned: the user name
        self.owner._record(
            ReceivedMessage(
                connection=server.number,
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                mail_options=tuple(envelope.mail_options),
                rcpt_options=tuple(envelope.rcpt_options),
                data=content,
                tls=server.secure,
                login=login if isinstance(login, str) else None,
                reply=reply,
            )
        )
        if reply is None:
            assert fault is not None
            return await self.owner._apply(server, fault)
        return reply


class _Controller(Controller):
    def __init__(self, owner: SMTPTestServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), hostname="127.0.0.1", port=0, **kwargs)
        self.owner = owner

    def factory(self) -> _Server:
        return self.owner._connected(self.handler, self.SMTP_kwargs, self.loop)

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before aiosmtpd's start-up probe connects.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SMTPTestServer:
    """An aiosmtpd server on 127.0.0.1 and a free port; see the module docstring."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        users: Mapping[str, str] | None = None,
        dsn: bool = False,
    ) -> None:
        if (implicit_tls or require_starttls) and tls is None:
            raise ValueError("implicit_tls and require_starttls need a tls context")
        if users is not None and tls is None:
            raise ValueError("AUTH is only offered over TLS: give a tls context")
        self.users = dict(users or {})
        self.dsn = dsn
        self.messages: list[ReceivedMessage] = []
        self.commands: list[tuple[int, str]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._live: set[_Server] = set()
        kwargs: dict[str, Any] = {"server_hostname": "smtp.debsync.test"}
        if implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs.update(tls_context=tls, require_starttls=require_starttls)
        if users is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._controller = _Controller(self, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> Self:
        self._controller.start()
        with self._lock:  # forget aiosmtpd's start-up probe
            self.connections = 0
            self.commands.clear()
        return self

    def stop(self) -> None:
        self._close_connections(abort=True)  # no TLS close handshake left for a stopped loop
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests use ------------------------------------------------------------------------

    def fail(
        self, stage: str, action: str, *, recipient: str | None = None, times: int | None = None
    ) -> None:
        """Answer ``stage`` with ``action`` (a reply line, DROP or HANG), ``times`` times or
        until :meth:`clear_faults`; for RCPT optionally only for ``recipient``."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")
        with self._lock:
            self._faults.append(_Fault(stage, action, recipient, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def drop_connections(self) -> None:
        """Close every open client connection from the server side, as an idle timeout does."""
        self._close_connections(abort=False)

    @property
    def auth_attempts(self) -> int:
        return sum(1 for _, command in self.commands if command == "AUTH")

    @property
    def accepted(self) -> list[ReceivedMessage]:
        return [m for m in self.messages if m.reply is not None and m.reply.startswith("250")]

    def by_message_id(self, message_id: str) -> list[ReceivedMessage]:
        return [m for m in self.messages if m.message_id == message_id]

    def _close_connections(self, *, abort: bool) -> None:
        async def close_all() -> None:
            for server in list(self._live):
                if isinstance(server.transport, asyncio.WriteTransport):
                    if abort:
                        server.transport.abort()
                    else:
                        server.transport.close()

        asyncio.run_coroutine_threadsafe(close_all(), self._controller.loop).result(timeout=5)

    # -- called from the server thread -----------------------------------------------------------

    def _connected(self, handler: _Handler, kwargs: dict[str, Any], loop: Any) -> _Server:
        with self._lock:
            self.connections += 1
            server = _Server(self, self.connections, handler, loop=loop, **kwargs)
            self._live.add(server)
        return server

    def _command(self, server: _Server, command: str) -> None:
        with self._lock:
            self.commands.append((server.number, command))

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def _take(self, stage: str, recipient: str | None = None) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.stage != stage or fault.recipient not in (None, recipient):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault.action
        return None

    async def _apply(self, server: _Server, action: str) -> str:
        """The reply line for aiosmtpd to send; DROP and HANG never return."""
        if action == DROP and server.transport is not None:
            server.transport.close()
        if action in (DROP, HANG):
            await asyncio.Event().wait()  # cancelled when the connection goes
        return action

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)
