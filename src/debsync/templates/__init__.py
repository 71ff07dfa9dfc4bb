"""Debtor-facing texts: Jinja2 templates per channel, step and language, rendered in a sandbox.

A template is ``<channel>/<name>.<language>.j2`` and defines *blocks* (``subject``,
``opening``, ``closing`` for email and letters; ``text`` for SMS; ``script`` for calls). The
channel assembles the message around them (salutation, invoice table, payment instructions,
signature), partly through layout templates such as ``email/_layout.html.j2``, so a step's
wording is written once for text, HTML and PDF. The operator's directory (``[outbox]
templates`` in ``connectors.toml``) is searched before the shipped one, file by file, and is
rendered in Jinja2's ``SandboxedEnvironment``: a template can format the context, not reach
into Python.

Money, dates, phone numbers and IBANs are formatted for the debtor's language by
:mod:`debsync.formatting` (filters ``money``, ``date``, ``shortdate``, ``number``, ``phone``,
``iban``): ``€ 1.234,56`` and ``22 november 2026`` in Dutch, ``€1,234.56`` and
``22 November 2026`` in English.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    nodes,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from debsync import formatting
from debsync.actions.base import MessageContext, RenderError
from debsync.errors import scrub
from debsync.model import Language
from debsync.templates import combined

LABELS: Mapping[Language, Mapping[str, str]] = {
    Language.NL: {
        "salutation": "Geachte heer/mevrouw,",
        "regards": "Met vriendelijke groet,",
        "invoice": "Factuur",
        "credit_note": "Creditnota",
        "invoice_date": "Factuurdatum",
        "due_date": "Vervaldatum",
        "days_overdue": "Dagen vervallen",
        "open": "Openstaand",
        "principal": "Totaal openstaand",
        "interest": "Wettelijke rente",
        "costs": "Incassokosten",
        "total": "Totaal te betalen",
        "pay_to": "Wilt u het bedrag overmaken naar",
        "in_name_of": "ten name van",
        "reference": "onder vermelding van",
        "pay_online": "U kunt ook direct online betalen",
        "deadline": "uiterlijk op",
        "our_reference": "Ons kenmerk",
        "date": "Datum",
        "subject": "Onderwerp",
        "page": "Pagina",
        "of": "van",
        "phone": "Telefoon",
        "email": "E-mail",
        "kvk": "KvK",
        "vat": "Btw-nr.",
        "iban": "IBAN",
    },
    Language.EN: {
        "salutation": "Dear Sir or Madam,",
        "regards": "Kind regards,",
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "invoice_date": "Invoice date",
        "due_date": "Due date",
        "days_overdue": "Days overdue",
        "open": "Outstanding",
        "principal": "Total outstanding",
        "interest": "Statutory interest",
        "costs": "Collection costs",
        "total": "Total due",
        "pay_to": "Please transfer the amount to",
        "in_name_of": "in the name of",
        "reference": "quoting",
        "pay_online": "You can also pay online",
        "deadline": "no later than",
        "our_reference": "Our reference",
        "date": "Date",
        "subject": "Subject",
        "page": "Page",
        "of": "of",
        "phone": "Phone",
        "email": "Email",
        "kvk": "Chamber of Commerce",
        "vat": "VAT no.",
        "iban": "IBAN",
    },
}


def _language(ctx: Context) -> Language:
    value = ctx.get("language", Language.NL)
    return value if isinstance(value, Language) else Language(str(value))


@functools.lru_cache(maxsize=4096)
def _formatted_money(amount: str, currency: str, language: Language) -> str:
    """Babel's formatting, once per amount as written (a message names its total two or
    three times, in text and HTML)."""
    return formatting.money(Decimal(amount), currency, language)


@functools.lru_cache(maxsize=4096)
def _formatted_date(day: date, language: Language, long: bool) -> str:
    """Babel's formatting, once per day: a batch's messages share a few due dates."""
    return formatting.long_date(day, language) if long else formatting.short_date(day, language)


@pass_context
def _money(ctx: Context, amount: Decimal | None, currency: str | None = None) -> str:
    if amount is None:
        return ""
    currency = currency or str(ctx.get("currency", "EUR"))
    return _formatted_money(str(amount), currency, _language(ctx))


@pass_context
def _stage(ctx: Context, step: str | None) -> str:
    return combined.stage_label(step, _language(ctx))


@pass_context
def _long_date(ctx: Context, day: date) -> str:
    return _formatted_date(day, _language(ctx), True)


@pass_context
def _short_date(ctx: Context, day: date) -> str:
    return _formatted_date(day, _language(ctx), False)


@pass_context
def _number(ctx: Context, value: Decimal | int) -> str:
    return formatting.number(value, _language(ctx))


@pass_context
def _phone(ctx: Context, value: str | None) -> str:
    return formatting.phone(value, _language(ctx)) if value else ""


def _iban(value: str | None) -> str:
    return formatting.iban(value) if value else ""


def _paragraphs(text: str) -> Markup:
    """Plain text with blank-line paragraphs as escaped HTML paragraphs."""
    # Joined as plain strings: Markup's join and format run escape() on every piece again.
    return Markup(
        "\n".join(
            "<p>" + "<br>\n".join([escape(line) for line in p.splitlines()]) + "</p>"
            for p in paragraphs(str(text))
        )
    )


def paragraphs(text: str) -> list[str]:
    """Plain text split into paragraphs (blank-line separated, inner line breaks kept)."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def context_variables(context: MessageContext) -> dict[str, Any]:
    """The template variables: every field of the context, plus ``total``, ``t`` (labels in
    the debtor's language), ``numbers`` (the invoice numbers, comma-separated), ``several``
    (more than one invoice), ``this_message`` (how the text calls itself: "deze brief",
    "dit bericht"), ``failed_collection`` (the sentence saying a direct debit did not succeed,
    or empty), ``credit_note`` and ``reminder_note`` (the credit notes offset, the invoices
    named at a lower stage: :mod:`debsync.templates.combined`, or empty) and ``ctx`` (the
    context itself)."""
    variables = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    variables.update(
        total=context.total,
        t=LABELS[context.language],
        numbers=", ".join(line.number for line in context.invoices),
        several=len(context.invoices) > 1,
        this_message=THIS_MESSAGE[(context.channel == "letter", context.language)],
        failed_collection=failed_collection(context),
        credit_note=combined.credit_note(context),
        reminder_note=combined.reminder_note(context),
        ctx=context,
    )
    return variables


def failed_collection(context: MessageContext) -> str:
    """The sentence saying that the direct debit of (some of) the invoices did not succeed,
    in the message's language; empty when no collection failed."""
    failed = [line.number for line in context.invoices if line.direct_debit_failed]
    if not failed:
        return ""
    nl = context.language is Language.NL
    if len(failed) == len(context.invoices):
        which = ("deze factuur" if nl else "this invoice") if len(failed) == 1 else None
        which = which or ("deze facturen" if nl else "these invoices")
    elif len(failed) == 1:
        which = f"factuur {failed[0]}" if nl else f"invoice {failed[0]}"
    else:
        listed = f"{', '.join(failed[:-1])} {'en' if nl else 'and'} {failed[-1]}"
        which = f"de facturen {listed}" if nl else f"invoices {listed}"
    if nl:
        return f"De automatische incasso van {which} is helaas niet gelukt."
    return f"Unfortunately, the direct debit for {which} did not succeed."


THIS_MESSAGE = {
    (True, Language.NL): "deze brief",
    (True, Language.EN): "this letter",
    (False, Language.NL): "dit bericht",
    (False, Language.EN): "this message",
}
"""How the wording refers to itself: a letter is "deze brief", anything else "dit bericht"."""


def _failed(path: str, exc: Exception) -> str:
    return f"template {path} failed: {type(exc).__name__}: {scrub(str(exc))}"


class _Rechecked(BaseLoader):
    """A loader whose templates are checked for edits at most once per ``interval`` seconds:
    a daemon still picks up an edited template, without two ``stat`` calls per template of
    every message it renders."""

    def __init__(self, loader: BaseLoader, interval: float) -> None:
        self.loader = loader
        self.interval = interval

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.loader.get_source(environment, template)
        if uptodate is None:
            return source, filename, None
        checked = [time.monotonic(), True]  # when last checked, and what it said

        def rechecked() -> bool:
            now = time.monotonic()
            if checked[1] and now - checked[0] >= self.interval:
                checked[:] = [now, uptodate()]
            return bool(checked[1])

        return source, filename, rechecked

    def list_templates(self) -> list[str]:
        return self.loader.list_templates()


class Templates:
    """The template set: the operator's directory first, then the shipped templates. An
    edited template is picked up within ``recheck_seconds``."""

    def __init__(self, override_dir: Path | None = None, *, recheck_seconds: float = 1.0) -> None:
        self.override_dir = override_dir
        loaders: list[Any] = []
        if override_dir is not None:
            loaders.append(FileSystemLoader(str(override_dir)))
        loaders.append(PackageLoader("debsync", "templates"))
        common = {
            "loader": _Rechecked(ChoiceLoader(loaders), recheck_seconds),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
        }
        self._blocks_only: weakref.WeakKeyDictionary[Template, bool] = weakref.WeakKeyDictionary()
        self._text = SandboxedEnvironment(autoescape=False, **common)
        self._html = SandboxedEnvironment(autoescape=True, **common)
        for env in (self._text, self._html):
            env.filters.update(
                money=_money,
                date=_long_date,
                shortdate=_short_date,
                number=_number,
                phone=_phone,
                iban=_iban,
                paragraphs=_paragraphs,
                stage=_stage,
            )

    @staticmethod
    def path(channel: str, name: str, language: Language) -> str:
        return f"{channel}/{name}.{language.value}.j2"

    def exists(self, channel: str, name: str, language: Language) -> bool:
        try:
            self._text.get_template(self.path(channel, name, language))
        except TemplateNotFound:
            return False
        return True

    def missing(
        self, channel: str, names: Iterable[str], languages: Iterable[Language] = tuple(Language)
    ) -> list[str]:
        """Template paths that neither the operator nor debsync provides."""
        return [
            self.path(channel, name, language)
            for name in names
            for language in languages
            if not self.exists(channel, name, language)
        ]

    def blocks(
        self,
        channel: str,
        context: MessageContext,
        required: Iterable[str],
        optional: Iterable[str] = (),
        **extra: Any,
    ) -> dict[str, str]:
        """Render the named blocks of the context's template for ``channel``; ``extra`` adds
        channel-specific variables (``this_message``: "deze brief" or "dit bericht").

        :raises RenderError: the template is missing, lacks a required block, or fails.
        """
        path = self.path(channel, context.template, context.language)
        variables = {**context_variables(context), **extra}
        try:
            template = self._text.get_template(path)
            context_ = template.new_context(variables)
            if not self._only_blocks(template, path):
                # Rendering the root once resolves {% extends %} (inherited blocks register
                # in the context's block stack, child overrides first) and runs top-level
                # statements ({% set %}) the blocks may read.
                for _ in template.root_render_func(context_):
                    pass
            rendered: dict[str, str] = {}
            for name in (*required, *optional):
                stack = context_.blocks.get(name)
                if not stack:
                    if name in required:
                        raise RenderError(f"template {path} has no block {name!r}")
                    continue
                rendered[name] = "".join(stack[0](context_)).strip()
        except TemplateNotFound:
            where = (
                f"{self.override_dir} or the shipped templates"
                if self.override_dir
                else "the shipped templates"
            )
            raise RenderError(f"no template {path} in {where}") from None
        except TemplateError as exc:
            raise RenderError(f"template {path}: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # a template's own error ({{ 1 / 0 }}): this message fails
            raise RenderError(_failed(path, exc)) from None
        return rendered

    def _only_blocks(self, template: Template, path: str) -> bool:
        """Whether the template is nothing but blocks and literal text, as the shipped ones
        are: then its root renders every block once more for nothing. Parsed once per
        compiled template."""
        known = self._blocks_only.get(template)
        if known is None:
            env = self._text
            assert env.loader is not None
            source, _, _ = env.loader.get_source(env, path)
            known = self._blocks_only[template] = all(
                isinstance(node, nodes.Block)
                or (
                    isinstance(node, nodes.Output)
                    and all(isinstance(part, nodes.TemplateData) for part in node.nodes)
                )
                for node in env.parse(source).body
            )
        return known

    def layout(self, name: str, context: MessageContext, *, html: bool, **extra: Any) -> str:
        """Render a layout template (``email/_layout.txt.j2``) around already rendered blocks."""
        env = self._html if html else self._text
        variables = {**context_variables(context), **extra}
        try:
            return env.get_template(name).render(variables).strip() + "\n"
        except TemplateNotFound:
            raise RenderError(f"no layout template {name}") from None
        except TemplateError as exc:
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from None
        except Exception as exc:
            raise RenderError(_failed(name, exc)) from None
