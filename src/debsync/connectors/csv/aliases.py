"""Which header names mean which field: the aliases Dutch and English exports use, and how
headers are compared."""

from __future__ import annotations

import unicodedata
from typing import Literal

ColumnKey = Literal[
    "debtor_id",
    "name",
    "kind",
    "email",
    "phone",
    "language",
    "address",
    "house_number",
    "postcode",
    "city",
    "country",
    "kvk",
    "vat",
    "iban",
    "number",
    "issue_date",
    "due_date",
    "total",
    "open_amount",
    "currency",
    "payment_reference",
    "payment_url",
    "payment_method",
    "prior_level",
    "prior_date",
]
"""The fields the connector reads; the keys of the ``columns`` setting."""

ALIASES: dict[str, tuple[str, ...]] = {
    "debtor_id": (
        "Relatiecode", "Relatienr", "Relatienummer", "Debiteurnummer", "Debiteurnr",
        "Deb.nr.", "Debiteurcode", "Debiteur code", "Klantnummer", "Klantnr", "Klantcode",
        "AccountCode", "Customer ID", "Customer number", "Customer no", "Customer code",
        "Debtor ID", "Debtor number", "Account ID", "Klant ID", "Code",
    ),
    "name": (
        "Naam", "Relatienaam", "Naam relatie", "Debiteurnaam", "Naam debiteur", "Bedrijfsnaam",
        "Bedrijf", "Klantnaam", "AccountName", "Customer name", "Debtor name", "Company name",
        "Company", "Name", "Relatie", "Debiteur", "Klant", "Customer", "Debtor", "Account",
    ),
    "kind": (
        "Type", "Soort", "Soort relatie", "Relatiesoort", "Relatietype", "Klanttype",
        "Customer type", "Debtor type", "Kind",
    ),
    "email": (
        "E-mail", "Emailadres", "E-mailadres", "E-mail adres", "E-mail facturen",
        "Factuur e-mail", "Mail", "Email address", "Invoice email", "Billing email",
    ),
    "phone": (
        "Telefoon", "Telefoonnummer", "Telefoonnr", "Tel", "Mobiel", "Mobielnummer",
        "Mobiel nummer", "GSM", "Phone", "Phone number", "Telephone", "Mobile",
        "Mobile phone",
    ),
    "language": ("Taal", "Voorkeurstaal", "Correspondentietaal", "Language"),
    "address": (
        "Adres", "Straat", "Straat en huisnummer", "Adresregel 1", "Bezoekadres",
        "Address", "Street", "Address line 1",
    ),
    "house_number": ("Huisnummer", "Huisnr", "House number"),
    "postcode": ("Postcode", "Zip", "Zipcode", "Zip code", "Postal code"),
    "city": ("Plaats", "Woonplaats", "Vestigingsplaats", "Stad", "City", "Town"),
    "country": ("Land", "Landcode", "LandID", "Country", "Country code"),
    "kvk": (
        "KvK", "KvK-nummer", "KvK nr", "Kamer van Koophandel", "Chamber of Commerce",
        "CoC number", "CoC",
    ),
    "vat": (
        "BTW-nummer", "BTW nr", "BTW-id", "Btw-identificatienummer", "VAT number", "VAT ID",
        "VAT no", "VAT",
    ),
    "iban": ("IBAN", "Bankrekening", "Rekeningnummer", "Bank account"),
    "number": (
        "Factuurnummer", "Factuurnr.", "Boekstuknummer", "Boekstuk", "Invoice number",
        "Invoice no", "InvoiceNumber", "Invoice ID",
    ),
    "issue_date": (
        "Factuurdatum", "Datum", "Boekdatum", "Documentdatum", "Invoice date", "Issue date",
        "Date",
    ),
    "due_date": ("Vervaldatum", "Vervalt", "Vervaldag", "Due date", "Payment due", "Due"),
    "total": (
        "Bedrag incl. btw", "Factuurbedrag", "Bedrag", "Factuur", "Totaalbedrag", "Totaal",
        "Invoice amount", "Amount incl. VAT", "Total amount", "Amount", "Total",
    ),
    "open_amount": (
        "Openstaand", "Openstaand bedrag", "Openstaand saldo", "Openstaand saldo incl. btw",
        "Open bedrag", "Saldo", "Restant", "Restbedrag", "Nog te betalen", "Open amount",
        "Outstanding", "Outstanding amount", "Amount due", "Balance due", "Balance",
    ),
    "currency": ("Valuta", "Valutacode", "Munteenheid", "Currency"),
    "payment_reference": (
        "Betalingskenmerk", "Betaalkenmerk", "Betalingsreferentie", "Payment reference",
    ),
    "payment_url": ("Betaallink", "Betaal-URL", "Payment link", "Payment URL", "Pay link"),
    "payment_method": ("Betaalwijze", "Betaalmethode", "Betalingswijze", "Payment method"),
    "prior_level": (
        "Aanmaningsniveau", "Herinneringsniveau", "Aanmaningniveau", "Aanmaanniveau",
        "Niveau aanmaning", "Aantal aanmaningen", "Aanmaning", "Herinnering", "Aanmaningen",
        "Herinneringen", "Dunning level", "Reminder level", "Dunning letter", "Reminder count",
        "Number of reminders",
    ),
    "prior_date": (
        "Laatste aanmaning", "Datum laatste aanmaning", "Laatste herinnering",
        "Datum laatste herinnering", "Aanmaningsdatum", "Herinneringsdatum", "Datum aanmaning",
        "Datum herinnering", "Herinnering verstuurd", "Aanmaning verstuurd", "Last reminder",
        "Last reminder date", "Last dunning date", "Dunning date", "Reminder date",
        "Reminder sent",
    ),
}  # fmt: skip
"""Header names per field, most specific first: when several columns match one field, the
earliest alias wins (AFAS exports carry both ``Factuurnr.`` and ``Boekstuk``)."""

MULTI_COLUMN: frozenset[str] = frozenset({"email", "phone"})
"""Fields that collect every matching column (``Telefoon`` and ``Mobiel``)."""

REQUIRED = ("number", "debtor_id", "open_amount")
DEBTOR_FIELDS = (
    "debtor_id", "name", "kind", "email", "phone", "language", "address", "house_number",
    "postcode", "city", "country", "kvk", "vat", "iban",
)  # fmt: skip
INVOICE_FIELDS = (
    "number", "issue_date", "due_date", "total", "open_amount", "currency",
    "payment_reference", "payment_url", "payment_method", "prior_level", "prior_date",
)  # fmt: skip


def normalise_header(text: str) -> str:
    """Header matching ignores case, accents, whitespace and punctuation: ``Deb.nr.`` and
    ``debnr`` are the same header."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if ch.isalnum())


ALIAS_INDEX: dict[str, tuple[str, int]] = {
    normalise_header(alias): (key, rank)
    for key, aliases in ALIASES.items()
    for rank, alias in enumerate(aliases)
}

EITHER: frozenset[str] = frozenset(
    normalise_header(h) for h in ("Relatie", "Debiteur", "Klant", "Customer", "Debtor", "Account")
)
"""Headers that name the debtor in one program and hold its code in another (Twinfield's
``Debiteur`` is the code, e-Boekhouden's ``Relatie`` the name): matched as the name, then the
column's values decide (``sniffing.resolve_either``)."""
