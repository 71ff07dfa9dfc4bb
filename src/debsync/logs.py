"""Log records as debsync writes them: JSON lines for a log collector, and a scrubbing filter.

Log lines carry ids (instance, debtor and invoice ids, outbox keys, run ids), never a debtor's
name, e-mail address, phone number, address or IBAN, nor a secret. Modules are written that
way; :class:`Scrub` is the defence in depth behind them, on every handler debsync installs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from debsync.errors import scrub


class LogFormat(StrEnum):
    """``--log-format``: lines for a person, or one JSON object per line for a collector."""

    HUMAN = "human"
    JSON = "json"


_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_TRACEBACKS = logging.Formatter()


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a call passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class Scrub(logging.Filter):
    """Passes every record through :func:`debsync.errors.scrub`: its message with its
    arguments, its string fields and its traceback lose anything that looks like an e-mail
    address, IBAN or phone number."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        for key, value in extras(record).items():
            if isinstance(value, str):
                setattr(record, key, scrub(value))
        if record.exc_info and record.exc_text is None:
            record.exc_text = scrub(_TRACEBACKS.formatException(record.exc_info))
        return True


class Libraries(logging.Filter):
    """Other libraries' records from ``level`` up: ``-vv`` is debsync's own debug lines, not
    the thousands a font subsetter writes for every letter."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "debsync" or record.name.startswith("debsync.")
        return ours or record.levelno >= self.level


class JsonLines(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601 with offset), ``level``, ``logger``,
    ``msg``, the ``extra=`` fields, and ``exc`` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extras(record).items():
            line.setdefault(key, value)
        if record.exc_info and record.exc_text is None:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")
