"""The built-in ``eboekhouden`` connector: open debtor items from e-Boekhouden.nl.

e-Boekhouden has no change feed, so every sync is a full snapshot of the open set: an item
that vanished is closed, a lower open amount is a partial payment. The REST API is read at
minimal cost (see ``snapshot``); administrations still on the legacy SOAP API are read with
``OpenSession``/``GetOpenPosten`` (``soap``). The reference is
``docs/connectors/eboekhouden.md``.

The package is the plugin module (``debsync.connectors.eboekhouden`` in ``DEFAULT_PLUGINS``);
its modules are ``settings``, ``rest`` (session and calls), ``mapping`` (records and
fingerprints), ``snapshot`` (one REST sync) and ``soap`` (the legacy API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from debsync import hookimpl
from debsync.connectors.base import JSON, Connector, ConnectorContext, ConnectorSettings, Page
from debsync.connectors.eboekhouden.rest import RestApi, error_detail
from debsync.connectors.eboekhouden.settings import EboekhoudenSettings
from debsync.connectors.eboekhouden.snapshot import RestSnapshot
from debsync.connectors.eboekhouden.soap import SoapSnapshot
from debsync.connectors.http import HttpClient, PacingLimiter

__all__ = ["EboekhoudenConnector", "EboekhoudenSettings", "debsync_register_connectors"]


class EboekhoudenConnector(Connector[EboekhoudenSettings]):
    """Reads the open debtor items of one e-Boekhouden administration as a full snapshot."""

    type_name: ClassVar[str] = "eboekhouden"
    Settings: ClassVar[type[ConnectorSettings]] = EboekhoudenSettings

    def __init__(
        self, instance: str, settings: EboekhoudenSettings, context: ConnectorContext
    ) -> None:
        super().__init__(instance, settings, context)
        self.pacing = PacingLimiter(1, per=60 / settings.calls_per_minute)
        """One request at a time, evenly spaced: no limit is published."""

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        settings = self.settings
        rest = settings.api == "rest"
        async with self.context.http.client(
            name=f"eboekhouden {self.instance}",
            base_url=settings.base_url.rstrip("/") + "/" if rest else "",
            headers={"Accept": "application/json"} if rest else {},
            limiters=[self.pacing],
            secrets=[settings.token, settings.security_code_1, settings.security_code_2],
            error_detail=error_detail if rest else None,
        ) as http:
            snapshot = self._rest(http) if rest else SoapSnapshot(http, settings, self.previous)
            async for page in snapshot.pages():
                yield page

    def _rest(self, http: HttpClient) -> RestSnapshot:
        token = self.settings.token
        assert token is not None  # the settings require it for REST
        api = RestApi(
            http,
            token=token.get_secret_value(),
            source=self.settings.source,
            clock=self.context.http.clock,
        )
        return RestSnapshot(api, self.settings, self.previous)


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(EboekhoudenConnector)
