"""Exact Online's OData v2 dialect: the ``guid'…'`` and ``…L`` literals of ``$filter``,
``/Date(ms)/`` values, padded account codes, the ``{"d": ...}`` envelope with its ``__next``
link, and the error envelope.

Everything here is pure: the connector and the fake both speak through it, so a literal the
connector writes is the literal the fake parses.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
"""Exact Online writes ``/Date(ms)/`` in Dutch local time, not UTC (Airbyte's connector and
picqer read it so): a date at local midnight is that calendar day."""

CODE_WIDTH = 18
"""Account codes are right-aligned in 18 characters, padded with spaces."""

_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def guid(value: str) -> str:
    """``guid'…'``; raises ``ValueError`` for a value that is no GUID (never a quote in a
    filter)."""
    return f"guid'{UUID(value)}'"


def int64(value: int) -> str:
    """An Int64 literal: ``123L`` (sync ``Timestamp`` comparisons)."""
    return f"{int(value)}L"


def padded_code(code: str | int) -> str:
    """An account code as Exact stores it: right-aligned, space-padded to 18 characters."""
    return str(code).strip().rjust(CODE_WIDTH)


def parse_date(value: Any) -> datetime | None:
    """``/Date(1717200000000)/`` (milliseconds since the epoch, Amsterdam local time) to an
    aware datetime; ``None`` for ``None``; ``ValueError`` for anything else."""
    if value is None:
        return None
    match = _DATE.match(str(value))
    if match is None:
        raise ValueError(f"not an OData date: {str(value)[:40]!r}")
    naive = datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).replace(tzinfo=None)
    return naive.replace(tzinfo=AMSTERDAM)


def parse_day(value: Any) -> date | None:
    """The calendar day of an OData date."""
    return None if value is None else _day(str(value))


@lru_cache(maxsize=8192)
def _day(text: str) -> date | None:
    """Cached: an administration's invoices share a few hundred dates."""
    moment = parse_date(text)
    return moment.date() if moment else None


def format_date(day: date | datetime) -> str:
    """The inverse of :func:`parse_date`: a local day or moment as ``/Date(ms)/``."""
    if isinstance(day, datetime):
        wall = day.astimezone(AMSTERDAM) if day.tzinfo else day
        seconds = (wall.date() - _EPOCH).days * 86400 + wall.hour * 3600 + wall.minute * 60
        return f"/Date({(seconds + wall.second) * 1000})/"
    return f"/Date({(day - _EPOCH).days * 86_400_000})/"


_EPOCH = date(1970, 1, 1)


def decode(response: httpx.Response) -> Any:
    """The JSON body with numbers as ``Decimal``: money never passes through a float."""
    return json.loads(response.content, parse_float=Decimal)


def results(body: Any) -> list[dict[str, Any]]:
    """The records of an envelope: ``{"d": {"results": [...]}}``, ``{"d": [...]}`` (older and
    ``$top`` answers) or a keyed ``{"d": {...}}``."""
    inner = body.get("d") if isinstance(body, dict) else None
    if isinstance(inner, list):
        return inner
    if isinstance(inner, dict):
        found = inner.get("results")
        return found if isinstance(found, list) else [inner]
    raise ValueError("not an OData envelope: no 'd'")


def next_url(response: httpx.Response) -> str | None:
    """``d.__next``: the full URL of the next page, ``$skiptoken`` included."""
    try:
        inner = response.json().get("d")
    except (ValueError, AttributeError):
        return None
    link = inner.get("__next") if isinstance(inner, dict) else None
    return link if isinstance(link, str) and link else None


def error_detail(response: httpx.Response) -> str | None:
    """The message of ``{"error": {"code": "", "message": {"lang": "", "value": "…"}}}``,
    bounded, with the ``Reason`` header when Exact sends one. Exact's messages name fields and
    filters, not a debtor's data."""
    reason = response.headers.get("Reason")
    try:
        error = response.json().get("error")
        message = error.get("message")
        text = message.get("value") if isinstance(message, dict) else message
    except (ValueError, AttributeError):
        text = None
    parts = [str(p)[:200] for p in (text, reason) if p]
    return "; ".join(parts) or None
