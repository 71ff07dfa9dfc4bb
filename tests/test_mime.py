"""The direct MIME composer writes exactly the bytes ``EmailMessage`` writes, or declines.

A corpus of 2,000 generated messages (Dutch and English, accents in names and bodies, long
subjects, several recipients, attachments, HTML with long lines) and a Hypothesis search over
header edge cases: every message the direct path accepts is byte-identical to the stdlib's;
the rest are left to the stdlib; the common shape (the shipped templates, ASCII names) takes
the direct path.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
from datetime import UTC, datetime, timedelta
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync.actions.base import ActionEnvironment, Payload, PermanentActionError
from debsync.actions.email import FileAction, FileSettings, mime
from debsync.actions.email.message import email_message_bytes
from debsync.clock import AMSTERDAM
from debsync.model import Language
from debsync.templates import Templates
from debsync.testing.samples import sample_context

from conftest import FrozenClock

FIRST = ["Jan", "Anna", "Pieter", "José", "Françoise", "Ömer", "Zoë", "Hélène", "Mark", "Kees"]
LAST = ["de Vries", "Jansen", "van 't Hof", "Müller", "O'Brien", "Bakker", "Çelik", "Smit"]
COMPANY = ["B.V.", "& Zn.", "V.O.F.", "(Utrecht)", "Ltd", "Holding", "Café", "Bouw"]
WORDS_NL = [
    "geachte",
    "heer",
    "mevrouw",
    "factuur",
    "bedrag",
    "openstaand",
    "betaling",
    "vóór",
    "datum",
    "één",
    "reeds",
]
WORDS_EN = [
    "dear",
    "sir",
    "madam",
    "invoice",
    "amount",
    "outstanding",
    "payment",
    "before",
    "date",
    "kindly",
    "regards",
]
EXTRA = ["€", "€ 1.234,56", "naïef", "coöperatie", "–", "“quote”", "ĳ", "日本"]
SUBJECTS = {
    "nl": ["Herinnering: factuur", "Aanmaning: facturen", "Laatste aanmaning: factuur"],
    "en": ["Reminder: invoice", "Payment demand: invoices", "Final reminder: invoice"],
}


def _name(rng: random.Random) -> str:
    match rng.randrange(4):
        case 0:
            return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        case 1:
            return f"{rng.choice(LAST).title()} {rng.choice(COMPANY)}"
        case 2:
            return f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(COMPANY)}"
        case _:
            return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 12)))


def _address(rng: random.Random) -> str:
    local = "".join(rng.choice(string.ascii_lowercase + "._+-") for _ in range(rng.randint(1, 20)))
    local = ".".join(part for part in local.split(".") if part) or "x"
    domain = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.choice([4, 8, 12, 40])))
    return f"{local}@{domain}.{rng.choice(['nl', 'example.nl', 'com'])}"


def _body(rng: random.Random, language: str, html: bool) -> str:
    words = WORDS_NL if language == "nl" else WORDS_EN
    lines = []
    for _ in range(rng.choice([1, 3, 10, 11, 14])):
        line = " ".join(rng.choice(words) for _ in range(rng.choice([0, 3, 12, 20])))
        if rng.random() < 0.3:
            line += " " + rng.choice(EXTRA) * rng.choice([1, 1, 40])
        lines.append(f"<p>{line}</p>" if html else line)
    return "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")


def generated_message(rng: random.Random) -> tuple[Payload, str, list[tuple[str, bytes]], str]:
    """One message's payload, Date, documents and key, varied as real ones vary."""
    language = rng.choice(["nl", "en"])
    key = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    if rng.random() < 0.1:
        key = "".join(rng.choice(string.ascii_letters + "._-") for _ in range(rng.randint(1, 99)))
        key = "k" + key
    sender = _address(rng)
    numbers = ", ".join(
        f"2026-{rng.randrange(10**6):06d}" for _ in range(rng.choice([1, 1, 2, 3, 6]))
    )
    subject = f"{rng.choice(SUBJECTS[language])} {numbers}"
    if rng.random() < 0.15:
        subject += " " + rng.choice(EXTRA)
    payload = {
        "from": {"name": _name(rng), "address": sender},
        "to": [_address(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))],
        "to_name": _name(rng) if rng.random() < 0.95 else "",
        "reply_to": _address(rng) if rng.random() < 0.7 else None,
        "subject": subject,
        "text": _body(rng, language, html=False),
        "html": _body(rng, language, html=True),
        "language": language,
        "message_id": f"<ds.{key}@{sender.rpartition('@')[2]}>",
    }
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8))
    documents = [
        (f"factuur-2026-{n:04d}.pdf", rng.randbytes(rng.choice([0, 1, 56, 57, 58, 1500])))
        for n in range(rng.choice([0, 0, 1, 2, 3]))
    ]
    return payload, _date(moment), documents, key


def _date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(AMSTERDAM))


def test_the_line_limit_is_the_smtp_policys() -> None:
    assert SMTP_POLICY.max_line_length == mime.MAX_LINE


def test_a_corpus_of_2000_messages_is_byte_identical_or_left_to_the_stdlib() -> None:
    rng = random.Random(16)
    direct = declined = 0
    shapes: set[tuple[str, ...]] = set()
    for _ in range(2000):
        payload, date, documents, key = generated_message(rng)
        expected = email_message_bytes(payload, date, documents, key)
        composed = mime.compose(payload, date, documents, key)
        if composed is None:
            declined += 1
            continue
        direct += 1
        assert composed == expected, (payload, date, key)
        shapes.add(
            tuple(
                line.split(b": ", 1)[1].decode()
                for line in composed.split(b"\r\n")
                if line.startswith(b"Content-Transfer-Encoding: ")
            )
        )
    assert direct > 500 and declined > 500, (direct, declined)
    # Every body encoding the stdlib chooses was written directly at least once.
    assert {cte for shape in shapes for cte in shape} == {
        "7bit",
        "8bit",
        "quoted-printable",
        "base64",
    }


def test_accented_names_and_subjects_are_encoded_directly_and_the_rest_left_to_the_stdlib() -> None:
    rng = random.Random(3)
    payload, date, documents, key = generated_message(rng)
    payload |= {
        "from": {"name": "Voorbeeld B.V.", "address": "info@voorbeeld.nl"},
        "to": ["jan@example.nl"],
        "to_name": "Jan Jansen",
        "reply_to": "antwoord@voorbeeld.nl",
        "subject": "Herinnering: factuur 2026-0001",
    }
    for direct in (
        {},
        {"to_name": "José Müller"},
        {"to_name": "Zoë van 't Hof"},
        {"subject": "Herinnering: factuur 2026-0001 – € 12"},
    ):
        message = payload | direct
        composed = mime.compose(message, date, documents, key)
        assert composed == email_message_bytes(message, date, documents, key), direct
    for change in (
        {"to_name": "Ömer Çelik B.V."},  # a quoted phrase: the stdlib encodes it whole
        {"subject": "Herinnering: facturen " + ", ".join(["2026-000001"] * 7)},
        {"subject": "=?utf-8?q?Herinnering?="},
        {"to_name": 'Jan "de" Vries'},
        {"to": ["a@example.nl", "b@example.nl"], "to_name": "Handelsonderneming Jansen B.V."},
    ):
        assert mime.compose(payload | change, date, documents, key) is None, change


_HEADER_TEXT = st.text(
    alphabet=st.sampled_from(string.printable[:95] + "é€\t"), min_size=0, max_size=90
)


@settings(max_examples=120, deadline=None)
@given(
    sender_name=_HEADER_TEXT,
    to_name=_HEADER_TEXT,
    subject=_HEADER_TEXT.filter(lambda s: s.strip() != ""),
    domain=st.from_regex(r"[a-z][a-z0-9-]{0,60}\.nl", fullmatch=True),
    key=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", fullmatch=True),
    recipients=st.integers(min_value=1, max_value=3),
)
def test_header_edge_cases_are_identical_when_accepted(
    sender_name: str, to_name: str, subject: str, domain: str, key: str, recipients: int
) -> None:
    payload: Payload = {
        "from": {"name": sender_name, "address": f"debiteuren@{domain}"},
        "to": [f"klant{n}@example.nl" for n in range(recipients)],
        "to_name": to_name,
        "reply_to": f"antwoord@{domain}",
        "subject": subject,
        "text": "Geachte heer/mevrouw,\n\nFactuur 2026-0001 staat open.\n",
        "html": "<p>Geachte heer/mevrouw,</p>\n",
        "language": "nl",
        "message_id": f"<ds.{key}@{domain}>",
    }
    date = _date(datetime(2026, 11, 23, 9, tzinfo=UTC))
    try:
        expected = email_message_bytes(payload, date, [], key)
    except PermanentActionError:  # a header the stdlib refuses: refused before sending
        assert mime.compose(payload, date, [], key) is None
        return
    composed = mime.compose(payload, date, [], key)
    if composed is not None:
        assert composed == expected


@pytest.mark.parametrize("language", [Language.NL, Language.EN])
@pytest.mark.parametrize("step", ["courtesy", "reminder", "aanmaning", "veertiendagenbrief"])
def test_the_shipped_templates_take_the_direct_path_and_keep_their_hash(
    tmp_path: Path, language: Language, step: str
) -> None:
    """What the file sink writes, and its receipt's hash, is the stdlib's message exactly."""

    async def fetch_document(instance: str, invoice_id: str) -> bytes | None:
        return b"%PDF-1.7\n%%EOF\n" * 40 if invoice_id.endswith("1") else None

    clock = FrozenClock()
    env = ActionEnvironment(
        instance="mail",
        config_dir=tmp_path,
        templates=Templates(),
        clock=clock,
        fetch_document=fetch_document,
    )
    action = FileAction("mail", FileSettings(directory=Path("out")), env)
    context = sample_context(step, "email", language)
    payload = action.render(context)
    receipt: Any = asyncio.run(action.send(payload, context.key))
    written = (tmp_path / "out" / f"{context.key}.eml").read_bytes()
    documents = [(payload["attachments"][0]["filename"], b"%PDF-1.7\n%%EOF\n" * 40)]
    date = _date(clock())
    assert mime.compose(payload, date, documents, context.key) == written
    assert written == email_message_bytes(payload, date, documents, context.key)
    assert receipt.content_sha256 == hashlib.sha256(written).hexdigest()
