"""The dashboard: per administration its open and overdue amounts, aging, DSO and its trend,
the cash expected in the coming weeks, the last sync and what needs attention."""

from __future__ import annotations

from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debsync import law
from debsync.errors import scrub
from debsync.store.reports import AGING_BUCKETS, CurrencyTotals
from debsync.web import charts
from debsync.web.auth import require
from debsync.web.context import NavItem, console, render, today
from debsync.web.figures import FiguresCache, main_currency
from debsync.web.roles import Role


@require(Role.VIEWER)
def dashboard(request: Request) -> Response:
    parts = console(request)
    config, day = parts.config, today(request)
    cache: FiguresCache = request.app.state.dashboard_figures
    instances = {n: c.type_name for n, c in config.connectors.items()}
    statuses = cache.statuses_for(parts.store, instances, day)
    warnings: list[tuple[str, dict[str, object]]] = []
    rate_warnings = law.rate_table_warnings(day, config.law.interest_rates)
    if rate_warnings:
        warnings.append(("dashboard.warn.rates", {"detail": " ".join(rate_warnings)}))
    for info in parts.plugins.broken():
        warnings.append(("dashboard.warn.plugin", {"name": info.name}))
    if not statuses:
        return render(request, "dashboard.html", {"status": None, "warnings": warnings})
    names = [s.instance for s in statuses]
    chosen = request.query_params.get("instance")
    status = statuses[names.index(chosen)] if chosen in names else statuses[0]
    found = cache.figures_for(parts.store, status, day)
    totals = status.totals.get(main_currency(status), CurrencyTotals())
    aging = [totals.aging.get(b, Decimal(0)) for b in AGING_BUCKETS]
    if status.unknown_kind:
        warnings.append(("dashboard.warn.unknown_kind", {"count": len(status.unknown_kind)}))
    if found.without_contact:
        warnings.append(("dashboard.warn.no_contact", {"count": found.without_contact}))
    return render(
        request,
        "dashboard.html",
        {
            "instances": names,
            "status": status,
            "today": day,
            "totals": totals,
            "figures": found,
            "buckets": list(zip(AGING_BUCKETS, aging, charts.bars(aging), strict=True)),
            "weeks": list(
                zip(found.forecast, charts.bars([w.total for w in found.forecast]), strict=True)
            ),
            "trend": list(zip(found.dso, charts.line([p.days for p in found.dso]), strict=True)),
            "chart": charts,
            "last_error": scrub(status.last_error) if status.last_error else None,
            "warnings": warnings,
        },
    )


routes = [Route("/", dashboard, methods=["GET"], name="dashboard")]
nav = [NavItem("dashboard", "nav.dashboard")]
messages = {
    "dashboard.title": ("Overzicht", "Dashboard"),
    "dashboard.none": (
        "Nog geen administraties gesynchroniseerd. Voer eerst ‘debsync sync’ uit.",
        "No administrations synced yet. Run ‘debsync sync’ first.",
    ),
    "dashboard.administrations": ("Administraties", "Administrations"),
    "dashboard.open": ("Openstaand", "Open"),
    "dashboard.overdue": ("Vervallen", "Overdue"),
    "dashboard.open_invoices": ("Open facturen", "Open invoices"),
    "dashboard.other_currency": (
        "Daarnaast in {currency}: {amount} open, waarvan {overdue} vervallen (facturen: "
        "{count}); de grafieken tonen alleen de hoofdvaluta.",
        "Also in {currency}: {amount} open, {overdue} of it overdue (invoices: {count}); the "
        "charts show the main currency only.",
    ),
    "dashboard.dso": ("DSO (dagen)", "DSO (days)"),
    "dashboard.dso_none": ("geen omzet", "no sales"),
    "dashboard.aging": ("Ouderdom op {day}", "Aging as of {day}"),
    "dashboard.aging_desc": (
        "Openstaand bedrag per aantal dagen na de vervaldatum.",
        "Open amount by days past the due date.",
    ),
    "dashboard.bucket": ("Dagen na vervaldatum", "Days past due"),
    "dashboard.bucket.not_due": ("nog niet vervallen", "not yet due"),
    "dashboard.bucket.0-30": ("1–30 dagen", "1–30 days"),
    "dashboard.bucket.31-60": ("31–60 dagen", "31–60 days"),
    "dashboard.bucket.61-90": ("61–90 dagen", "61–90 days"),
    "dashboard.bucket.>90": ("meer dan 90 dagen", "over 90 days"),
    "dashboard.invoices": ("Facturen", "Invoices"),
    "dashboard.amount": ("Bedrag", "Amount"),
    "dashboard.trend": ("DSO over de laatste 12 maanden", "DSO over the last 12 months"),
    "dashboard.trend_desc": (
        "Debiteurendagen aan het eind van elke maand: openstaand gedeeld door de omzet van "
        "de 90 dagen ervoor, maal 90.",
        "Days sales outstanding at each month's end: the receivable over the 90 days' sales "
        "before it, times 90.",
    ),
    "dashboard.date": ("Datum", "Date"),
    "dashboard.receivable": ("Openstaand", "Receivable"),
    "dashboard.sales": ("Omzet 90 dagen", "Sales 90 days"),
    "dashboard.forecast": ("Verwachte ontvangsten", "Expected cash"),
    "dashboard.forecast_desc": (
        "Per week de komende 8 weken: vervaldatums en betaalbeloftes.",
        "Per week for the next 8 weeks: due dates and promises to pay.",
    ),
    "dashboard.week": ("Week", "Week"),
    "dashboard.due": ("Vervalt", "Falls due"),
    "dashboard.promised": ("Beloofd", "Promised"),
    "dashboard.total": ("Totaal", "Total"),
    "dashboard.sync": ("Synchronisatie", "Sync"),
    "dashboard.last_sync": ("Laatste geslaagde synchronisatie", "Last successful sync"),
    "dashboard.never": ("nog nooit", "never"),
    "dashboard.last_error": ("Laatste fout", "Last error"),
    "dashboard.rejects": (
        "{count} record(s) geweigerd of hersteld bij de laatste synchronisatie.",
        "{count} record(s) rejected or repaired in the last sync.",
    ),
    "dashboard.attention": ("Aandachtspunten", "Needs attention"),
    "dashboard.warn.rates": (
        "De tabel met wettelijke rente is (bijna) verouderd: {detail}",
        "The statutory interest table is (nearly) out of date: {detail}",
    ),
    "dashboard.warn.unknown_kind": (
        "{count} debiteur(en) met open posten van onbekende soort (zakelijk of particulier).",
        "{count} debtor(s) with open items of unknown kind (business or consumer).",
    ),
    "dashboard.warn.no_contact": (
        "{count} debiteur(en) met open posten zonder e-mailadres, telefoonnummer of adres.",
        "{count} debtor(s) with open items without e-mail address, phone number or address.",
    ),
    "dashboard.warn.plugin": (
        "Plug-in {name} is defect en wordt overgeslagen.",
        "Plugin {name} is broken and skipped.",
    ),
}
