"""The legacy e-Boekhouden SOAP API, for administrations that have only its security codes:
``OpenSession`` then ``GetOpenPosten(OpSoort=Debiteuren)``, then ``CloseSession``.

Envelopes are built by hand rather than with zeep: two SOAP 1.1 calls with flat arguments do
not justify a WSDL-driven client and its download of the WSDL on every start, and a hand-built
envelope is exactly what the test fake checks. A ``200`` answer whose result carries an
``ErrorMsg`` with a ``LastErrorCode`` is a failure, like a SOAP Fault.

SOAP open items carry no relation details beyond the code and company name, and no payment
term: the due date is the invoice date plus ``default_payment_term_days``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from xml.sax.saxutils import escape

from debsync.connectors.base import Page, Previous, RecordBuilder
from debsync.connectors.eboekhouden.mapping import (
    Fingerprints,
    ItemError,
    OpenItem,
    amount,
    day,
    invoice_data,
)
from debsync.connectors.eboekhouden.settings import EboekhoudenSettings
from debsync.connectors.http import HttpClient
from debsync.errors import FatalConnectorError

NS = "http://www.e-boekhouden.nl/soap"
_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(method: str, arguments: dict[str, str]) -> bytes:
    """A SOAP 1.1 request for ``method`` with flat, escaped arguments."""
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in arguments.items())
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{_ENV}"><soap:Body>'
        f'<{method} xmlns="{NS}">{body}</{method}>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def _text(element: ET.Element | None, name: str) -> str:
    found = element.find(f"{{{NS}}}{name}") if element is not None else None
    return (found.text or "").strip() if found is not None else ""


class SoapApi:
    """Calls of one SOAP session."""

    def __init__(self, http: HttpClient, settings: EboekhoudenSettings) -> None:
        self.http = http
        self.settings = settings

    async def call(self, method: str, arguments: dict[str, str]) -> ET.Element:
        """The ``<method>Result`` element; an ``ErrorMsg`` in it is raised as fatal."""
        response = await self.http.request(
            "POST",
            self.settings.soap_url,
            content=envelope(method, arguments),
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{NS}/{method}"',
            },
            idempotent=method != "OpenSession",
        )
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            raise FatalConnectorError(f"{self.http.name}: {method} did not answer XML") from None
        result = root.find(f".//{{{NS}}}{method}Result")
        if result is None:
            raise FatalConnectorError(f"{self.http.name}: {method} answered without a result")
        error = result.find(f"{{{NS}}}ErrorMsg")
        code = _text(error, "LastErrorCode")
        if code:
            description = self.http.redact(_text(error, "LastErrorDescription"))[:160]
            raise FatalConnectorError(f"{self.http.name}: {method} failed: {code}: {description}")
        return result

    async def open_session(self) -> tuple[str, str]:
        settings = self.settings
        assert settings.username and settings.security_code_1 and settings.security_code_2
        code_2 = settings.security_code_2.get_secret_value()
        result = await self.call(
            "OpenSession",
            {
                "Username": settings.username,
                "SecurityCode1": settings.security_code_1.get_secret_value(),
                "SecurityCode2": code_2,
                "Source": settings.source,
            },
        )
        session = _text(result, "SessionID")
        if not session:
            raise FatalConnectorError(f"{self.http.name}: OpenSession answered no SessionID")
        self.http.redactor.add(session)
        return session, code_2


class SoapSnapshot:
    """One snapshot from ``GetOpenPosten``: a single unpaged answer, so a single page."""

    def __init__(self, http: HttpClient, settings: EboekhoudenSettings, previous: Previous) -> None:
        self.api = SoapApi(http, settings)
        self.settings = settings
        self.previous = previous
        self.fingerprints = Fingerprints(f"soap:{settings.default_payment_term_days}")

    async def pages(self) -> AsyncIterator[Page]:
        session, code_2 = await self.api.open_session()
        try:
            result = await self.api.call(
                "GetOpenPosten",
                {"SessionID": session, "SecurityCode2": code_2, "OpSoort": "Debiteuren"},
            )
        finally:
            await self.api.call("CloseSession", {"SessionID": session})
        builder = RecordBuilder()
        items = result.find(f"{{{NS}}}Openposten")
        debtors: set[str] = set()
        seen: set[str] = set()
        rows = items.findall(f"{{{NS}}}cOpenPost") if items is not None else []
        for index, row in enumerate(rows, start=1):
            self.row(builder, row, f"open item {index}", debtors, seen)
        yield builder.page(cursor=None, snapshot_complete=True)

    def row(
        self,
        builder: RecordBuilder,
        row: ET.Element,
        position: str,
        debtors: set[str],
        seen: set[str],
    ) -> None:
        number, code = _text(row, "MutFactuur"), _text(row, "RelCode")
        if not number or not code:
            builder.reject("row", position, "MutFactuur or RelCode is missing")
            return
        ref = f"invoice {number}"
        try:
            item = OpenItem(
                external_id=number,
                number=number,
                debtor_id=code,
                issue_date=day(_text(row, "MutDatum"), "MutDatum"),
                total=amount(_text(row, "Bedrag"), "Bedrag"),
                paid=amount(_text(row, "Voldaan") or "0", "Voldaan"),
                outstanding=amount(_text(row, "Openstaand"), "Openstaand"),
                debtor_entry=(code, _text(row, "RelBedrijf")),
            )
            data = invoice_data(item, self.settings.default_payment_term_days)
        except ItemError as exc:
            builder.reject("invoice", ref, str(exc), invoice_id=number)
            return
        if number in seen:
            return
        seen.add(number)
        if code not in debtors:
            debtors.add(code)
            raw = self.fingerprints.debtor(item)
            if self.previous.debtors.get(code) == raw:
                builder.unchanged("debtor", code)
            else:
                name = item.debtor_entry[1] or code
                builder.debtor({"external_id": code, "name": name}, ref=f"relation {code}", raw=raw)
        raw = self.fingerprints.invoice(item, self.settings.default_payment_term_days)
        if self.previous.invoices.get(number) == raw:
            builder.unchanged("invoice", number)
        else:
            builder.invoice(data, ref=ref, raw=raw)
