"""What never reaches a log line or an error message: registered secrets, credential headers
and credential query parameters, in the client's own lines and in httpx's request log."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import httpx
from pydantic import SecretStr

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
    | {"x-auth-token", "x-access-token"}
)


SENSITIVE_PARAMS = frozenset(
    {"access_token", "refresh_token", "id_token", "token", "api_key", "apikey", "key"}
    | {"client_secret", "password", "secret", "signature", "sig", "session"}
)
"""Query parameters whose value is a credential, whatever the connector registered."""


REDACTED = "[redacted]"


_SCHEME_TOKEN = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


_PARAM_VALUE = re.compile(
    r"(?<![A-Za-z0-9_])(" + "|".join(sorted(SENSITIVE_PARAMS)) + r")=[^&\s#\"'<>]+",
    re.IGNORECASE,
)


class Redactor:
    """Removes secrets from text: every value registered with :meth:`add` (also as it appears
    percent-encoded in a URL), credentials after ``Bearer`` or ``Basic``, and the
    values of credential query parameters."""

    def __init__(self, secrets: Iterable[str | SecretStr | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)
        _LIVE.add(self)

    def add(self, secret: str | SecretStr | None) -> None:
        """Register a secret, e.g. a session token obtained mid-sync or a refreshed one."""
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            self._secrets.update({value, quote(value, safe=""), quote_plus(value)})

    def add_header(self, value: str) -> None:
        """Register a credential header's value, and its token without the scheme."""
        self.add(value)
        scheme, _, credentials = value.partition(" ")
        if credentials and scheme.isalpha():
            self.add(credentials.strip())

    def text(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = _SCHEME_TOKEN.sub(rf"\1 {REDACTED}", text)
        return _PARAM_VALUE.sub(rf"\1={REDACTED}", text)

    def url(self, url: httpx.URL | str) -> str:
        """A URL as it may be logged: no password, no credential parameters."""
        parsed = httpx.URL(url)
        if parsed.password:
            parsed = parsed.copy_with(password=REDACTED)
        return self.text(str(parsed))


class _HttpxLogFilter(logging.Filter):
    """httpx logs every request with its full URL at INFO; this rewrites those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for redactor in list(_LIVE):
            message = redactor.text(message)
        record.msg, record.args = message, None
        return True


_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
"""Redactors of live clients: httpx's own log lines are redacted with all of them."""

logging.getLogger("httpx").addFilter(_HttpxLogFilter())
