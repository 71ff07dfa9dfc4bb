"""The email channel against a real SMTP server on loopback (aiosmtpd, see smtp_server.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from debsync.actions import email as email_actions
from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionUnavailableError,
    MessageContext,
    OutcomeUnknownError,
    PermanentActionError,
    Receipt,
    RenderError,
    RetryableActionError,
)
from debsync.actions.email import (
    THIS_MESSAGE,
    FileAction,
    FileSettings,
    SmtpAction,
    SmtpSettings,
    debsync_register_actions,
)
from debsync.config import load_config
from debsync.errors import ConfigError
from debsync.model import Language
from debsync.plugins import Plugins
from debsync.templates import Templates
from debsync.testing.samples import SAMPLE_CREDITOR, sample_context, sample_debtor

from conftest import FIXED_NOW, FrozenClock
from fakes import batch
from smtp_server import DROP, HANG, LoopbackCA, SMTPTestServer

KEY = "3f2a9c0d41b7e6a85c1d2e3f4a5b6c7d"  # sample_context's key
DEBTOR_ADDRESS = "jp.devries@example.nl"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
DOCUMENTS = {"F2026-0001": PDF}  # the second sample invoice has no document to supply


async def fetch_document(instance: str, invoice_id: str) -> bytes | None:
    assert instance == "example"
    return DOCUMENTS.get(invoice_id)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCA:
    return LoopbackCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def start_server() -> Iterator[Callable[..., SMTPTestServer]]:
    servers: list[SMTPTestServer] = []

    def start(**options: Any) -> SMTPTestServer:
        server = SMTPTestServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates()  # shared: compiling the templates is the slow part of rendering


@pytest.fixture
def env(tmp_path: Path, templates: Templates) -> ActionEnvironment:
    return ActionEnvironment(
        instance="mail",
        config_dir=tmp_path,
        templates=templates,
        clock=FrozenClock(),
        fetch_document=fetch_document,
    )


@pytest.fixture
def smtp(env: ActionEnvironment, ca: LoopbackCA) -> Callable[..., SmtpAction]:
    """An SMTP action for a test server: STARTTLS with the test CA unless told otherwise."""

    def make(server: SMTPTestServer, **settings: Any) -> SmtpAction:
        table = {
            "host": server.host,
            "port": server.port,
            "security": "starttls",
            "ca_file": str(ca.ca_file),
            "helo_name": "debsync.test",
            "timeout": 5,
            **settings,
        }
        return SmtpAction("mail", SmtpSettings.model_validate(table), env)

    return make


def context(language: Language = Language.NL, **changes: Any) -> MessageContext:
    return replace(sample_context("reminder", "email", language), **changes)


# -- rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "subject", "amount", "deadline", "phrase", "attachment"),
    [
        (
            Language.NL,
            "Herinnering: facturen 2026-0001, 2026-0002",
            "€\xa01.234,56",
            "22 november 2026",
            "kunt u dit bericht als niet verzonden beschouwen",
            "factuur-2026-0001.pdf",
        ),
        (
            Language.EN,
            "Reminder: invoices 2026-0001, 2026-0002",
            "€1,234.56",
            "22 November 2026",
            "please disregard this message",
            "invoice-2026-0001.pdf",
        ),
    ],
)
def test_render_builds_text_and_html_from_the_shipped_templates(
    env: ActionEnvironment,
    language: Language,
    subject: str,
    amount: str,
    deadline: str,
    phrase: str,
    attachment: str,
) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    ctx = context(language, principal=Decimal("1234.56"), deadline=date(2026, 11, 22))

    payload = action.render(ctx)

    assert payload["subject"] == subject
    assert payload["language"] == language.value
    for body in (payload["text"], payload["html"]):
        assert amount in body
        assert deadline in body
        assert phrase in body
        assert "2026-0002" in body
    assert payload["text"].startswith(("Geachte heer/mevrouw,", "Dear Sir or Madam,"))
    assert f"<title>{subject}</title>" in payload["html"]
    assert "<p>" in payload["html"] and "<p>" not in payload["text"]
    assert payload["to"] == [DEBTOR_ADDRESS]
    assert payload["to_name"] == "J.P. de Vries"
    assert payload["from"] == {"name": SAMPLE_CREDITOR.name, "address": SAMPLE_CREDITOR.email}
    assert payload["reply_to"] == SAMPLE_CREDITOR.email
    assert payload["attachments"] == [
        {"instance": "example", "invoice_id": "F2026-0001", "filename": attachment},
        {
            "instance": "example",
            "invoice_id": "F2026-0002",
            "filename": attachment.replace("0001", "0002"),
        },
    ]
    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize("step", ["courtesy", "reminder", "aanmaning", "veertiendagenbrief"])
@pytest.mark.parametrize("language", list(Language))
def test_every_shipped_email_step_renders(
    env: ActionEnvironment, step: str, language: Language
) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    payload = action.render(sample_context(step, "email", language, invoices=1))
    assert "2026-0001" in payload["subject"]
    assert THIS_MESSAGE[language] in payload["text"]
    assert payload["html"].count("<p>") >= 4


def test_message_id_is_derived_from_the_key(env: ActionEnvironment) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    first, second = action.render(context()), action.render(context())
    assert first["message_id"] == second["message_id"] == f"<ds.{KEY}@voorbeeld-installatie.nl>"

    own = FileAction(
        "mail",
        FileSettings(
            directory=Path("out"),
            from_address="Noreply@Incasso.Example.NL",
            from_name="Debiteurenbeheer",
            reply_to="vragen@example.nl",
            attach_invoices=False,
        ),
        env,
    )
    payload = own.render(context())
    assert payload["message_id"] == f"<ds.{KEY}@incasso.example.nl>"
    assert payload["from"] == {"name": "Debiteurenbeheer", "address": "Noreply@incasso.example.nl"}
    assert payload["reply_to"] == "vragen@example.nl"
    assert payload["attachments"] == []


def test_render_refuses_a_debtor_without_address_naming_only_the_id(
    env: ActionEnvironment,
) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    ctx = context(debtor=replace(sample_debtor(), emails=()))
    with pytest.raises(RenderError) as raised:
        action.render(ctx)
    assert "D20017" in str(raised.value)
    assert "Vries" not in str(raised.value)


def test_render_refuses_without_a_from_address(env: ActionEnvironment) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    ctx = context(creditor=replace(SAMPLE_CREDITOR, email=None))
    with pytest.raises(RenderError, match="from_address"):
        action.render(ctx)


def test_render_sends_only_to_addresses_smtp_can_carry(env: ActionEnvironment) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    debtor = replace(
        sample_debtor(), emails=("jósé@example.nl", "info@bäckerij.example.nl", DEBTOR_ADDRESS)
    )
    assert action.render(context(debtor=debtor))["to"] == [
        "info@xn--bckerij-5wa.example.nl",
        DEBTOR_ADDRESS,
    ]
    with pytest.raises(RenderError, match="D20017 has no e-mail address with an ASCII"):
        action.render(context(debtor=replace(debtor, emails=("jósé@example.nl",))))


def test_preview_shows_headers_and_the_text_body(env: ActionEnvironment) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    payload = action.render(context())
    preview = action.preview(payload)
    head, _, body = preview.partition("\n\n")
    assert head.splitlines() == [
        f"From: {SAMPLE_CREDITOR.name} <{SAMPLE_CREDITOR.email}>",
        f"To: J.P. de Vries <{DEBTOR_ADDRESS}>",
        f"Reply-To: {SAMPLE_CREDITOR.email}",
        "Subject: Herinnering: facturen 2026-0001, 2026-0002",
        f"Message-ID: <ds.{KEY}@voorbeeld-installatie.nl>",
        "Content-Language: nl",
        "Attachments (if the connector supplies them): factuur-2026-0001.pdf, "
        "factuur-2026-0002.pdf",
    ]
    assert body == payload["text"]


# -- settings --------------------------------------------------------------------------------------


def test_plaintext_is_refused_unless_explicitly_allowed() -> None:
    with pytest.raises(ValidationError, match="allow_insecure"):
        SmtpSettings.model_validate({"host": "smtp.example.nl", "security": "none"})
    settings = SmtpSettings.model_validate(
        {"host": "smtp.example.nl", "security": "none", "allow_insecure": True}
    )
    assert settings.effective_port == 25


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="together"):
        SmtpSettings.model_validate({"host": "smtp.example.nl", "username": "debsync"})
    with pytest.raises(ValidationError, match="hots"):
        SmtpSettings.model_validate({"hots": "smtp.example.nl"})
    with pytest.raises(ValidationError, match="ASCII"):
        SmtpSettings.model_validate({"host": "smtp.example.nl", "from_address": "jösé@x.nl"})
    with pytest.raises(ValidationError, match="helo_name"):
        SmtpSettings.model_validate({"host": "smtp.example.nl", "helo_name": "a b\r\nRSET"})
    settings = SmtpSettings.model_validate(
        {"host": "smtp.example.nl", "username": "debsync", "password": "s3cret"}
    )
    assert (settings.security, settings.effective_port) == ("tls", 465)
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    assert SmtpSettings.model_validate({"host": "h", "security": "starttls"}).effective_port == 587


def test_connectors_toml_names_the_table_of_a_bad_email_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(
        '[creditor]\nname = "Voorbeeld B.V."\n\n'
        '[connectors.books]\ntype = "csv"\npath = "open.csv"\n\n'
        '[actions.mail]\ntype = "email"\nhost = "relay.lan"\nsecurity = "none"\n'
    )
    plugins = Plugins(entry_points=False, extra=[("debsync.actions.email", email_actions)])
    with pytest.raises(ConfigError) as raised:
        load_config(path, plugins)
    [problem] = raised.value.problems
    assert problem.key_path == ("actions", "mail")
    assert "allow_insecure" in problem.message

    monkeypatch.setenv("DEBSYNC_TEST_SMTP_PASSWORD", "s3cret")
    path.write_text(
        path.read_text().replace('security = "none"', 'security = "starttls"')
        + 'username = "debsync"\npassword = { env = "DEBSYNC_TEST_SMTP_PASSWORD" }\n'
    )
    settings = load_config(path, plugins).actions["mail"].settings
    assert isinstance(settings, SmtpSettings)
    assert settings.password is not None and settings.password.get_secret_value() == "s3cret"


def test_both_types_register_on_the_email_channel() -> None:
    registered: list[type[Action[Any]]] = []
    debsync_register_actions(registered.append)
    assert registered == [SmtpAction, FileAction]
    assert [(a.type_name, a.channel, a.idempotent) for a in registered] == [
        ("email", "email", False),
        ("file", "email", True),
    ]


# -- SMTP: delivery --------------------------------------------------------------------------------


def test_smtp_delivers_over_starttls_with_auth(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = start_server(tls=ca.server_context(), users={"debsync": "s3cret"})
    action = smtp(
        server,
        username="debsync",
        password="s3cret",
        bounce_address="bounces@voorbeeld-installatie.nl",
    )
    payload = action.render(context())

    with caplog.at_level(logging.INFO):
        receipt = run(action.send(payload, KEY))

    [received] = server.messages
    assert received.tls and received.login == "debsync"
    assert received.mail_from == "bounces@voorbeeld-installatie.nl"
    assert received.rcpt_tos == (DEBTOR_ADDRESS,)
    assert received.mail_options == (f"SIZE={len(received.data)}",)  # no DSN offered
    message = received.message
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (SAMPLE_CREDITOR.name, SAMPLE_CREDITOR.email)
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("J.P. de Vries", DEBTOR_ADDRESS)
    assert message["Reply-To"] == SAMPLE_CREDITOR.email
    assert message["Subject"] == "Herinnering: facturen 2026-0001, 2026-0002"
    assert message["Message-ID"] == f"<ds.{KEY}@voorbeeld-installatie.nl>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "nl"
    assert message["Date"] == "Sun, 22 Nov 2026 10:30:00 +0100"
    assert message["Date"].datetime == FIXED_NOW
    assert message.get_content_type() == "multipart/mixed"
    text, html = (message.get_body((kind,)).get_content() for kind in ("plain", "html"))
    assert (text.replace("\r\n", "\n"), html.replace("\r\n", "\n")) == (
        payload["text"],
        payload["html"],
    )
    attachments = [(a.get_filename(), a.get_content()) for a in message.iter_attachments()]
    assert attachments == [("factuur-2026-0001.pdf", PDF)]  # invoice 2 has no document

    assert receipt.provider_id == "Q000001"
    assert receipt.content_sha256 == hashlib.sha256(received.data).hexdigest()
    assert receipt.details["message_id"] == payload["message_id"]
    assert receipt.details["reply"] == "250 2.0.0 Ok: queued as Q000001"
    assert (receipt.details["recipients"], receipt.details["refused"]) == (1, 0)
    commands = [command for _, command in server.commands]
    assert commands == ["EHLO", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("debsync"))
    assert KEY in ours and DEBTOR_ADDRESS not in ours and "Vries" not in ours


def test_implicit_tls_with_a_ca_file_relative_to_the_config(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    env: ActionEnvironment,
) -> None:
    shutil.copy(ca.ca_file, env.config_dir / "private-ca.pem")
    server = start_server(tls=ca.server_context(), implicit_tls=True)
    action = smtp(server, security="tls", ca_file="private-ca.pem")
    receipt = run(action.send(action.render(context()), KEY))
    [received] = server.messages
    assert received.tls
    assert receipt.provider_id == "Q000001"


def test_plaintext_delivery_when_allowed(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction]
) -> None:
    server = start_server()
    action = smtp(server, security="none", allow_insecure=True, ca_file=None)
    run(action.send(action.render(context()), KEY))
    [received] = server.messages
    assert not received.tls


@pytest.mark.parametrize("dsn", [True, False])
def test_dsn_is_requested_only_when_the_server_offers_it(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], dsn: bool
) -> None:
    server = start_server(dsn=dsn)
    action = smtp(server, security="none", allow_insecure=True, ca_file=None, verp=True)
    receipt = run(action.send(action.render(context()), KEY))
    [received] = server.messages
    assert received.mail_from == f"debiteuren+{KEY}@voorbeeld-installatie.nl"  # VERP
    size = f"SIZE={len(received.data)}"
    if dsn:
        assert received.mail_options == (size, "RET=HDRS", f"ENVID={KEY.upper()}")
        assert received.rcpt_options == (
            "NOTIFY=FAILURE,DELAY",
            f"ORCPT=RFC822;{DEBTOR_ADDRESS}".upper(),
        )
    else:
        assert (received.mail_options, received.rcpt_options) == ((size,), ())
    assert receipt.details["dsn"] is dsn


def test_a_batch_uses_one_connection(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
) -> None:
    server = start_server(tls=ca.server_context(), users={"debsync": "s3cret"})
    action = smtp(server, username="debsync", password="s3cret")
    items = []
    for n in range(10):
        ctx = context(key=f"{n:032x}")
        items.append((action.render(ctx), ctx.key))

    receipts = run(batch(action, items))

    assert [r.provider_id for r in receipts] == [f"Q{n:06d}" for n in range(1, 11)]
    assert server.connections == 1 and server.auth_attempts == 1
    assert [m.message_id for m in server.messages] == [p["message_id"] for p, _ in items]
    assert {m.connection for m in server.messages} == {1}


def test_a_send_outside_a_batch_opens_and_closes_its_own_connection(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], ca: LoopbackCA
) -> None:
    server = start_server(tls=ca.server_context())
    action = smtp(server)
    payload = action.render(context())
    run(action.send(payload, KEY))
    run(action.send(payload, KEY))
    assert server.connections == 2
    assert [c for c in server.commands if c[1] == "QUIT"] == [(1, "QUIT"), (2, "QUIT")]


def test_an_idle_connection_closed_by_the_server_is_reopened_once(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], ca: LoopbackCA
) -> None:
    server = start_server(tls=ca.server_context())
    action = smtp(server)
    payload = action.render(context())

    async def scenario() -> list[Receipt]:
        async with action:
            first = await action.send(payload, KEY)
            server.drop_connections()  # the server's idle timeout
            second = await action.send(payload, KEY)
            server.fail("MAIL", "421 4.4.2 Idle for too long, closing", times=1)
            third = await action.send(payload, KEY)
            return [first, second, third]

    receipts = run(scenario())
    assert [r.provider_id for r in receipts] == ["Q000001", "Q000002", "Q000003"]
    assert server.connections == 3
    assert [m.connection for m in server.messages] == [1, 2, 3]


# -- SMTP: the channel is unavailable --------------------------------------------------------------


def test_wrong_password_costs_one_login_per_batch(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], ca: LoopbackCA
) -> None:
    server = start_server(tls=ca.server_context(), users={"debsync": "s3cret"})
    action = smtp(server, username="debsync", password="not-the-password")
    payload = action.render(context())

    outcomes = run(batch(action, [(payload, KEY)] * 5))

    assert all(isinstance(o, ActionUnavailableError) for o in outcomes)
    message = str(outcomes[0])
    assert {str(o) for o in outcomes} == {message}
    assert f"127.0.0.1:{server.port}" in message and "'debsync'" in message
    assert "535" in message and "not-the-password" not in message
    assert (server.auth_attempts, server.connections, server.messages) == (1, 1, [])

    run(batch(action, [(payload, KEY)]))  # the next run tries again, once
    assert server.auth_attempts == 2


def test_a_server_that_requires_a_login_makes_the_channel_unavailable(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], ca: LoopbackCA
) -> None:
    server = start_server(tls=ca.server_context(), users={"debsync": "s3cret"})
    action = smtp(server)
    with pytest.raises(ActionUnavailableError, match="530"):
        run(action.send(action.render(context()), KEY))


def test_starttls_not_offered_is_refused(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction]
) -> None:
    server = start_server()  # no TLS at all
    action = smtp(server, username="debsync", password="s3cret")
    with pytest.raises(ActionUnavailableError, match="does not offer STARTTLS"):
        run(action.send(action.render(context()), KEY))
    assert [c for _, c in server.commands] == ["EHLO"]  # no AUTH, no MAIL in plaintext


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_untrusted_certificate_fails_the_handshake(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    security: str,
) -> None:
    server = start_server(tls=ca.server_context(), implicit_tls=security == "tls")
    action = smtp(server, security=security, ca_file=None)  # the system store
    with pytest.raises(ActionUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        run(action.send(action.render(context()), KEY))
    assert server.messages == []


def test_an_unreadable_ca_file_makes_the_channel_unavailable(env: ActionEnvironment) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=9, ca_file=Path("missing-ca.pem"))
    action = SmtpAction("mail", settings, env)
    with pytest.raises(ActionUnavailableError, match=r"cannot load ca_file .*missing-ca\.pem"):
        run(action.send(action.render(context()), KEY))


def test_connection_refused(env: ActionEnvironment, ca: LoopbackCA) -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, security="tls", ca_file=ca.ca_file)
        action = SmtpAction("mail", settings, env)
        payload = action.render(context())
        outcomes = run(batch(action, [(payload, KEY)] * 2))
    assert all(isinstance(o, ActionUnavailableError) for o in outcomes)
    assert f"127.0.0.1:{port}" in str(outcomes[0])


def test_a_server_that_never_greets_times_out(env: ActionEnvironment, ca: LoopbackCA) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never says 220
        port = silent.getsockname()[1]
        settings = SmtpSettings(
            host="127.0.0.1", port=port, security="starttls", ca_file=ca.ca_file, timeout=0.2
        )
        action = SmtpAction("mail", settings, env)
        with pytest.raises(ActionUnavailableError, match="Timed out"):
            run(action.send(action.render(context()), KEY))


# -- SMTP: refusals and lost connections -----------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "fault", "connections"),
    [
        ("MAIL", "451 4.3.0 Try again later", 1),
        ("RCPT", "450 4.2.0 Mailbox busy", 1),
        ("DATA", "451 4.3.0 Not now", 1),
        ("CONTENT", "452 4.3.1 Insufficient system storage", 1),
        ("MAIL", DROP, 2),
        ("RCPT", DROP, 2),
        ("DATA", DROP, 2),  # lost before the 354 go-ahead: the content never left
    ],
)
def test_temporary_failures_are_retryable(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    stage: str,
    fault: str,
    connections: int,
) -> None:
    server = start_server(tls=ca.server_context())
    server.fail(stage, fault, times=1)
    action = smtp(server)
    payload = action.render(context())

    failed, delivered = run(batch(action, [(payload, KEY)] * 2))

    assert isinstance(failed, RetryableActionError)
    if fault != DROP:
        assert fault in str(failed)
    assert isinstance(delivered, Receipt)
    assert len(server.accepted) == 1
    assert server.connections == connections


@pytest.mark.parametrize(
    ("stage", "fault", "error"),
    [
        ("RCPT", "550 5.1.1 <jp.devries@example.nl>: Recipient unknown", PermanentActionError),
        ("DATA", "554 5.5.1 Error: no valid recipients", PermanentActionError),
        ("CONTENT", "554 5.7.1 Message rejected as spam", PermanentActionError),
        ("MAIL", "552 5.3.4 Message size exceeds fixed limit", PermanentActionError),
        ("MAIL", "553 5.7.1 Sender address rejected: not owned by user", ActionUnavailableError),
    ],
)
def test_permanent_refusals(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    stage: str,
    fault: str,
    error: type[Exception],
) -> None:
    server = start_server(tls=ca.server_context())
    server.fail(stage, fault)
    action = smtp(server)
    with pytest.raises(error) as raised:
        run(action.send(action.render(context()), KEY))
    assert type(raised.value) is error
    assert fault.split()[0] in str(raised.value)
    assert DEBTOR_ADDRESS not in str(raised.value)
    assert server.accepted == []


def test_some_recipients_refused_still_delivers(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], ca: LoopbackCA
) -> None:
    server = start_server(tls=ca.server_context())
    server.fail("RCPT", "550 5.1.1 <old@example.nl>: User unknown", recipient="old@example.nl")
    action = smtp(server)
    debtor = replace(sample_debtor(), emails=("old@example.nl", DEBTOR_ADDRESS))

    receipt = run(action.send(action.render(context(debtor=debtor)), KEY))

    [received] = server.accepted
    assert received.rcpt_tos == (DEBTOR_ADDRESS,)
    assert (receipt.details["recipients"], receipt.details["refused"]) == (1, 1)
    assert receipt.details["refused_replies"] == ["550 5.1.1 <[address]>: User unknown"]


def test_mixed_temporary_and_permanent_refusals_are_retried(
    start_server: Callable[..., SMTPTestServer], smtp: Callable[..., SmtpAction], ca: LoopbackCA
) -> None:
    server = start_server(tls=ca.server_context())
    server.fail("RCPT", "550 5.1.1 User unknown", recipient="old@example.nl")
    server.fail("RCPT", "450 4.2.1 Try later", recipient=DEBTOR_ADDRESS)
    action = smtp(server)
    debtor = replace(sample_debtor(), emails=("old@example.nl", DEBTOR_ADDRESS))
    with pytest.raises(RetryableActionError, match=r"450 4\.2\.1"):
        run(action.send(action.render(context(debtor=debtor)), KEY))
    assert server.messages == []


@pytest.mark.parametrize(
    ("fault", "reason"), [(DROP, "connection lost"), (HANG, "no reply within 0.5 s")]
)
def test_lost_after_the_content_was_sent_is_unknown(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    fault: str,
    reason: str,
) -> None:
    server = start_server(tls=ca.server_context())
    server.fail("CONTENT", fault, times=1)
    action = smtp(server, timeout=0.5)
    payload = action.render(context())

    unknown, delivered = run(batch(action, [(payload, KEY)] * 2))

    assert isinstance(unknown, OutcomeUnknownError)
    assert reason in str(unknown) and "may have accepted" in str(unknown)
    assert isinstance(delivered, Receipt)
    first, second = server.messages
    assert first.reply is None and first.message_id == payload["message_id"]  # it did arrive
    assert second.reply is not None and server.connections == 2


def test_a_failing_document_fetch_sends_nothing(
    start_server: Callable[..., SMTPTestServer],
    ca: LoopbackCA,
    env: ActionEnvironment,
) -> None:
    async def broken(instance: str, invoice_id: str) -> bytes | None:
        raise ConnectionError("connector down")

    server = start_server(tls=ca.server_context())
    settings = SmtpSettings(
        host=server.host, port=server.port, security="starttls", ca_file=ca.ca_file
    )
    action = SmtpAction("mail", settings, replace(env, fetch_document=broken))
    with pytest.raises(RetryableActionError, match="F2026-0001"):
        run(action.send(action.render(context()), KEY))
    assert server.connections == 0


# -- the file type ---------------------------------------------------------------------------------


def test_file_writes_the_same_bytes_smtp_would_send(
    start_server: Callable[..., SMTPTestServer],
    smtp: Callable[..., SmtpAction],
    ca: LoopbackCA,
    env: ActionEnvironment,
) -> None:
    action = FileAction("mail", FileSettings(directory=Path("var/outbox")), env)
    payload = action.render(context())

    receipt = run(action.send(payload, KEY))

    folder = env.config_dir / "var" / "outbox"
    path = folder / f"{KEY}.eml"
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left
    content = path.read_bytes()
    assert receipt.provider_id == path.name
    assert receipt.content_sha256 == hashlib.sha256(content).hexdigest()
    assert receipt.details == {"message_id": payload["message_id"], "path": str(path)}
    assert path.stat().st_mode & 0o077 == 0  # personal data: the daemon's user only

    server = start_server(tls=ca.server_context())
    run(smtp(server).send(payload, KEY))
    assert server.messages[0].data == content

    again = run(action.send(payload, KEY))  # idempotent: the same file, the same bytes
    assert again == receipt
    assert [p.name for p in folder.iterdir()] == [path.name]


def test_file_cannot_write_makes_the_channel_unavailable(env: ActionEnvironment) -> None:
    (env.config_dir / "taken").write_text("not a folder")
    action = FileAction("mail", FileSettings(directory=Path("taken")), env)
    with pytest.raises(ActionUnavailableError, match="cannot write to"):
        run(action.send(action.render(context()), KEY))


def test_an_unsafe_key_never_names_a_file(env: ActionEnvironment) -> None:
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    with pytest.raises(RenderError):
        action.render(context(key="../../etc/passwd"))
    with pytest.raises(PermanentActionError):
        run(action.send(action.render(context()), "../escape"))
    assert not (env.config_dir / "escape.eml").exists()
