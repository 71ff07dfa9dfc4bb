"""Moneybird webhooks: the signature check and the events debsync subscribes to.

A delivery carries ``Moneybird-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``, where each
``v1`` is HMAC-SHA256 over ``f"{t}.{raw body}"`` with one of the webhook's active secrets (two
during a rotation); any match is accepted, and a ``t`` more than five minutes from now is
refused. Unknown schemes in the header are ignored, as Moneybird asks. Each delivery has an
``Idempotency-Key`` that a retry repeats. Source: developer.moneybird.com/webhooks/
verifying-signatures and /webhooks/events.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from debsync.connectors.base import WebhookRefused

MAX_AGE_SECONDS = 300
"""How far ``t`` may lie from now, either way."""

EVENTS = (
    "sales_invoice_state_changed",
    "sales_invoice_updated",
    "sales_invoice_destroyed",
    "payment_registered",
    "payment_destroyed",
    "contact_changed",
)
"""What ``debsync webhooks register`` subscribes: every state change of a sales invoice (paid,
late, reminded, uncollectible, ...: the event group), edits, removals, payments and contact
changes."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` digest of ``body`` sent at ``timestamp`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> str:
    """The delivery's ``Idempotency-Key`` when one ``v1`` matches ``secret`` and ``t`` is
    fresh; :class:`WebhookRefused` otherwise (``headers`` with lower-case names)."""
    header = headers.get("moneybird-signature")
    if not header:
        raise WebhookRefused("no Moneybird-Signature header")
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            digests.append(value.strip().lower())
    if timestamp is None or not digests:
        raise WebhookRefused("Moneybird-Signature has no t= or no v1=")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, d) for d in digests):
        raise WebhookRefused("signature does not match the webhook secret")
    if abs(now.timestamp() - timestamp) > MAX_AGE_SECONDS:
        raise WebhookRefused("signature timestamp is more than 5 minutes from now")
    key = (headers.get("idempotency-key") or "").strip()
    if not key or len(key) > 200:
        raise WebhookRefused("no usable Idempotency-Key header")
    return key
