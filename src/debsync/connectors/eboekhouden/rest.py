"""The e-Boekhouden REST API: the session token exchange, authorised GETs and offset paging,
on the shared connector HTTP layer (:mod:`debsync.connectors.http`).

The API token is exchanged at ``POST /v1/session`` for a session token that expires
(``expiresIn`` seconds, an hour in practice). The session is renewed shortly before it expires
and exactly once on a 401; a second 401 is fatal. It is not revoked at the end of a sync
(``DELETE /v1/session`` would cost a call per sync; it expires by itself).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from debsync.clock import Clock
from debsync.connectors.http import FatalHttpError, HttpClient
from debsync.errors import FatalConnectorError

RENEW_MARGIN = timedelta(seconds=60)
"""Renew a session this long before it expires, so no request carries a dying token."""

OUTSTANDING = "v1/mutation/invoice/outstanding"


def decode(response: httpx.Response) -> Any:
    """The JSON body with every number that has a fraction as a ``Decimal``: money never
    passes through a float."""
    return json.loads(response.content, parse_float=Decimal)


def error_detail(response: httpx.Response) -> str | None:
    """e-Boekhouden's error code and title (``{"code": "MUTA_006", "title": "…"}``); the
    longer ``message`` is left out, it may quote the record."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    parts = [str(body[key]) for key in ("code", "title") if body.get(key)]
    return ": ".join(parts)[:160] or None


class RestApi:
    """Authorised calls to one administration (one API token)."""

    def __init__(self, http: HttpClient, *, token: str, source: str, clock: Clock) -> None:
        self.http = http
        self._token = token
        self._source = source
        self._clock = clock
        self._session: str | None = None
        self._expires_at: datetime | None = None
        self.sessions = 0
        """Sessions opened by this client: read by tests and the benchmark."""

    async def _open_session(self) -> str:
        response = await self.http.request(
            "POST",
            "v1/session",
            json={"accessToken": self._token, "source": self._source},
            idempotent=True,  # a second session harms nothing
        )
        body = self._json(response)
        session = body.get("token") if isinstance(body, dict) else None
        expires_in = body.get("expiresIn") if isinstance(body, dict) else None
        if not isinstance(session, str) or not session or not isinstance(expires_in, int):
            raise FatalConnectorError(
                f"{self.http.name}: POST /v1/session answered without a session token and its "
                "expiresIn"
            )
        self.http.redactor.add(session)
        self.sessions += 1
        self._session = session
        self._expires_at = self._clock() + timedelta(seconds=expires_in)
        return session

    async def _current(self) -> str:
        expires_at = self._expires_at
        if (
            self._session is None
            or expires_at is None
            or self._clock() >= expires_at - RENEW_MARGIN
        ):
            return await self._open_session()
        return self._session

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` with the session; a 401 renews the session once and tries again."""
        session = await self._current()
        try:
            response = await self.http.get(path, params=params, headers={"Authorization": session})
        except FatalHttpError as exc:
            if exc.status != 401:
                raise
            session = await self._open_session()
            response = await self.http.get(path, params=params, headers={"Authorization": session})
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return decode(response)
        except ValueError:
            where = f"{response.request.method} {self.http.redactor.url(response.request.url)}"
            raise FatalConnectorError(f"{self.http.name}: {where} did not answer JSON") from None

    async def pages(
        self, path: str, params: Mapping[str, Any], *, limit: int
    ) -> AsyncIterator[tuple[int, list[Any], bool]]:
        """``(offset, items, last)`` for every page of an ``{"items", "count"}`` list. ``count``
        is the number of items in the page, not a total, so the list ends at the first page
        shorter than ``limit``."""
        offset = 0
        while True:
            body = await self.get(path, {**params, "limit": limit, "offset": offset})
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise FatalConnectorError(
                    f"{self.http.name}: GET /{path} answered without an items list"
                )
            last = len(items) < limit
            yield offset, items, last
            if last:
                return
            offset += limit
