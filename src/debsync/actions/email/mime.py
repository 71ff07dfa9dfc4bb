"""The bytes of debsync's e-mail written directly, exactly as ``EmailMessage`` would write them.

Building the message with the ``email`` package costs about 2 ms, most of it parsing and
refolding header objects; debsync's messages always have one shape (address headers, a
subject, ``multipart/alternative`` text and HTML, PDFs in ``multipart/mixed``). For the common
case (header values in ASCII or in the encoded words the stdlib writes, lines that fit or fold
the one way it folds them) :func:`compose` writes that shape directly with the stdlib's own
encoders (``email._encoded_words`` for RFC 2047 words, ``quoprimime``, ``binascii``) and its
decisions between 7bit, 8bit, quoted-printable and base64; for anything else it returns
``None`` and the caller builds an ``EmailMessage``.
``tests/test_mime.py`` holds the two byte-identical on a generated corpus.
"""

from __future__ import annotations

import binascii
import email._encoded_words as _encoded_words  # type: ignore[import-not-found]
import re
from collections.abc import Sequence
from email import quoprimime

from debsync.actions.base import Payload

MAX_LINE = 78  # email.policy.SMTP's max_line_length (tests/test_mime.py checks it)
NL = "\r\n"

# A display name the header parser leaves as written: printable ASCII words, single spaces,
# no quoting or escaping of its own and nothing that reads as an encoded word or a comment.
_NAME = re.compile(r"[!#-\[\]-~]+(?: [!#-\[\]-~]+)*")
_SPECIALS = re.compile(r'[()<>@,:;.\[\]"]')
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
_PLAIN = re.compile(r"[ -~]*")
_FILENAME = re.compile(r"[A-Za-z0-9._-]+")
_BASE64_BYTES_PER_LINE = MAX_LINE // 4 * 3


def compose(
    payload: Payload, date: str, documents: Sequence[tuple[str, bytes]], key: str
) -> bytes | None:
    """The message's bytes, or ``None`` when it is not the common case.

    ``documents`` are the attached PDFs as (filename, content); the boundaries are
    ``=_ds.<key>.<n>`` in the order ``EmailMessage.walk`` visits the multiparts."""
    sender = payload["from"]
    to_name = payload["to_name"]
    lines = [
        _address_line("From", [(sender["name"], sender["address"])]),
        _address_line("To", [(to_name, address) for address in payload["to"]]),
    ]
    if payload["reply_to"]:
        lines.append(_address_line("Reply-To", [("", payload["reply_to"])]))
    lines += [
        _moved_line("Subject", _encoded(payload["subject"])),
        _line("Date", date),
        _token_line("Message-ID", payload["message_id"]),
        _line("Auto-Submitted", "auto-generated"),
        _line("X-Auto-Response-Suppress", "OOF, AutoReply"),
        _line("MIME-Version", "1.0"),
    ]
    headers = [line for line in lines if line is not None]
    if len(headers) != len(lines):
        return None
    text = _text_part("plain", payload["text"])
    html = _text_part("html", payload["html"])
    alternative = _multipart("alternative", f"=_ds.{key}.{1 if documents else 0}", [text, html])
    if alternative is None:
        return None
    head, body = alternative
    if documents:
        pdfs = [_pdf_part(name, data) for name, data in documents]
        attachments = [pdf for pdf in pdfs if pdf is not None]
        if len(attachments) != len(pdfs):
            return None
        mixed = _multipart(
            "mixed", f"=_ds.{key}.0", [(head + NL).encode("ascii") + body, *attachments]
        )
        if mixed is None:
            return None
        head, body = mixed
    language = _line(
        "Content-Language", payload["language"] if _plain(payload["language"]) else None
    )
    if language is None:
        return None
    return (NL.join(headers) + NL + head + language + NL + NL).encode("ascii") + body


def _plain(value: str) -> bool:
    """Printable ASCII that does not read as an encoded word."""
    return _PLAIN.fullmatch(value) is not None and "=?" not in value


def _encoded(value: str) -> str | None:
    """Text as the header folder writes it on one line: ASCII words as they are, each run of
    words with other letters in it as one RFC 2047 encoded word (the stdlib's own encoder,
    which picks q or b)."""
    if "=?" in value or not all(
        " " <= ch <= "~" or (not ch.isascii() and ch.isprintable() and not ch.isspace())
        for ch in value
    ):
        return None
    words: list[str] = []
    run: list[str] = []
    for word in value.split(" "):
        if not word.isascii():
            run.append(word)
            continue
        if run:
            words.append(_encoded_words.encode(" ".join(run), charset="utf-8"))
            run = []
        words.append(word)
    if run:
        words.append(_encoded_words.encode(" ".join(run), charset="utf-8"))
    return " ".join(words)


def _clean(value: str | None) -> bool:
    """Printable ASCII without leading, trailing or doubled spaces, as the folder keeps it."""
    return (
        value is not None
        and value != ""
        and _PLAIN.fullmatch(value) is not None
        and value == value.strip(" ")
        and "  " not in value
    )


def _line(name: str, value: str | None) -> str | None:
    """``Name: value`` when it fits one line. Callers check that it holds no encoded word the
    parser would decode."""
    if value is None or not _clean(value) or len(name) + 2 + len(value) > MAX_LINE:
        return None
    return f"{name}: {value}"


def _moved_line(name: str, value: str | None) -> str | None:
    """An address list or a subject: too long for the first line but not for a continuation
    line, the folder moves it there whole (unless it holds an encoded word, which it splits)."""
    line = _line(name, value)
    if line is not None or value is None or not _clean(value):
        return line
    if "=?" in value or len(value) + 1 > MAX_LINE:
        return None
    return f"{name}:{NL} {value}"


def _token_line(name: str, value: str) -> str | None:
    """A header of one token (Message-ID): too long for the first line, the stdlib moves it
    whole to a continuation line; too long for that too, it leaves it unfolded."""
    if not _plain(value) or " " in value:
        return None
    if len(name) + 2 + len(value) <= MAX_LINE:
        return _line(name, value)
    if len(value) + 1 <= MAX_LINE:
        return f"{name}:{NL} {value}"
    return f"{name}: {value}"


def _address_line(name: str, addresses: Sequence[tuple[str, str]]) -> str | None:
    formatted = []
    for display, address in addresses:
        if _ADDRESS.fullmatch(address) is None or "=?" in address:
            return None
        if not display:
            formatted.append(address)
            continue
        if "=?" in display:
            return None
        if display.isascii():
            if _NAME.fullmatch(display) is None:
                return None
            if _SPECIALS.search(display):
                display = f'"{display}"'
        else:
            # Not quoted: the stdlib encodes a quoted phrase differently (whole, with specials).
            encoded = _encoded(display)
            if encoded is None or _SPECIALS.search(display) or "\\" in display:
                return None
            display = encoded
        formatted.append(f"{display} <{address}>")
    return _moved_line(name, ", ".join(formatted))


def _multipart(subtype: str, boundary: str, parts: Sequence[bytes]) -> tuple[str, bytes] | None:
    """The Content-Type line(s) and the body of a multipart of ``parts`` (each headers, blank
    line, content)."""
    content_type = f"multipart/{subtype};"
    parameter = f'boundary="{boundary}"'
    if not _plain(boundary) or '"' in boundary or " " in boundary:
        return None
    head = _line("Content-Type", f"{content_type} {parameter}")
    if head is None:
        if len(parameter) + 1 > MAX_LINE:
            return None
        head = f"Content-Type: {content_type}{NL} {parameter}"
    separator = f"{NL}--{boundary}{NL}".encode("ascii")
    body = (
        f"--{boundary}{NL}".encode("ascii")
        + separator.join(parts)
        + f"{NL}--{boundary}--{NL}".encode("ascii")
    )
    return head + NL, body


def _text_part(subtype: str, text: str) -> bytes:
    """``set_content(text)`` / ``add_alternative(text, subtype=...)``: UTF-8, the transfer
    encoding ``email.contentmanager`` picks by the same rule."""
    lines = text.encode("utf-8").splitlines()
    if max((len(line) for line in lines), default=0) <= MAX_LINE:
        cte = "7bit" if all(line.isascii() for line in lines) else "8bit"
        data = _joined(lines, NL)
    else:
        sniff = _joined(lines[:10], NL)
        qp = quoprimime.body_encode(sniff.decode("latin-1"), MAX_LINE)
        if len(qp) > len(binascii.b2a_base64(sniff)):
            cte = "base64"
            data = _base64(_joined(lines, NL))
        else:
            cte = "quoted-printable"
            if len(lines) > 10:  # the encoder works line by line: encode only the rest
                qp += quoprimime.body_encode(_joined(lines[10:], "\n").decode("latin-1"), MAX_LINE)
            data = qp.replace("\n", NL).encode("ascii")
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{NL}Content-Transfer-Encoding: {cte}{NL}{NL}'
    )
    return head.encode("ascii") + data


def _joined(lines: Sequence[bytes], separator: str) -> bytes:
    return separator.encode("ascii").join(lines) + separator.encode("ascii")


def _pdf_part(filename: str, data: bytes) -> bytes | None:
    """``add_attachment(data, "application", "pdf", filename=...)``; the action makes the
    filename safe (letters, digits, ``.``, ``_``, ``-``)."""
    disposition = _line("Content-Disposition", f'attachment; filename="{filename}"')
    if disposition is None or _FILENAME.fullmatch(filename) is None:
        return None
    head = (
        f"Content-Type: application/pdf{NL}Content-Transfer-Encoding: base64{NL}"
        f"{disposition}{NL}{NL}"
    )
    return head.encode("ascii") + _base64(data)


def _base64(data: bytes) -> bytes:
    return b"".join(
        binascii.b2a_base64(data[i : i + _BASE64_BYTES_PER_LINE]).replace(b"\n", b"\r\n")
        for i in range(0, len(data), _BASE64_BYTES_PER_LINE)
    )
