"""The ``Debsync-Signature`` header: HMAC-SHA256 over ``"{t}.{raw body}"``.

debsync signs every request its agency and webhook actions send, and agencies sign the status
events they send back, with the same scheme (the one Stripe and Debitura use)::

    Debsync-Signature: t=1764489600,v1=5257a869e7ec…(64 hex digits)

``t`` is the Unix time of signing; ``v1`` is the lower-case hex HMAC-SHA256, keyed with the
shared secret (its UTF-8 bytes), of the ASCII ``t``, a dot and the raw body bytes exactly as
sent. Binding the time into the MAC lets a receiver refuse replays older than a tolerance;
a sender rotating its secret may give several ``v1`` values, any one of which may match.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

from pydantic import SecretStr

from debsync.actions.base import InboundSignatureError

SIGNATURE_HEADER = "Debsync-Signature"
DEFAULT_TOLERANCE = 300.0
"""Seconds a signature stays acceptable, either side of the receiver's clock."""

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(InboundSignatureError):
    """A request is not provably from the holder of the secret, or is too old: refuse it
    (answer 401) and record nothing."""


def _key(secret: SecretStr | str) -> bytes:
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not text:
        raise ValueError("the signing secret is empty")
    return text.encode()


def signature(secret: SecretStr | str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` value for ``body`` signed at ``timestamp``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: SecretStr | str, body: bytes, now: datetime) -> str:
    """The ``Debsync-Signature`` header value for ``body`` sent at ``now``."""
    timestamp = int(now.timestamp())
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: SecretStr | str,
    header: str | None,
    raw_body: bytes,
    now: datetime,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """Check a ``Debsync-Signature`` header against the raw body as received (before any JSON
    parsing: re-serialising changes the bytes). Returns the signing time.

    :param now: the receiver's clock, timezone-aware.
    :param tolerance: seconds the signing time may lie before or after ``now``.
    :raises SignatureError: the header is missing or malformed, the time is outside the
        tolerance, or no ``v1`` value matches.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware now")
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            candidates.append(value.lower())
        # other schemes (v0, a later v2) are ignored, as the scheme's versioning intends
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise SignatureError(f"{SIGNATURE_HEADER} needs exactly one numeric t=")
    if not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} has no v1= signature")
    timestamp = int(timestamps[0])
    age = now.timestamp() - timestamp
    if abs(age) > tolerance:
        raise SignatureError(
            f"signature time is {abs(age):.0f} s {'old' if age > 0 else 'in the future'}; "
            f"at most {tolerance:.0f} s is accepted"
        )
    expected = signature(secret, timestamp, raw_body)
    matches = (
        hmac.compare_digest(expected, candidate)
        for candidate in candidates
        if _HEX_SHA256.match(candidate)  # compare_digest takes ASCII only
    )
    if not any(matches):
        raise SignatureError("signature does not match the body")
    return timestamp
