"""HTTP plumbing both sides share: actions talking to gateways and agencies, connectors
talking to bookkeeping platforms. Each side keeps its own policy (``actions/http.py``,
``connectors/http/``); only what must be the same lives here."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from ssl import SSLContext

import httpx

from debsync import __version__

USER_AGENT = f"debsync/{__version__}"


@cache
def tls_context() -> SSLContext:
    """httpx's default verification (the certifi bundle), loaded once per process rather than
    once per batch: loading the bundle costs more than a typical request."""
    return httpx.create_ssl_context()


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
