"""Loading the scheduler's snapshot from the store in a handful of flat queries.

The scheduler is pure; this is the one place that reads what it needs: open invoices,
debtors and the channels that can reach them, the steps already carried out (``step.sent``
events, one per invoice and step, written by the outbox), the outbox actions still under way,
active pauses, and each instance's last successful sync.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync import law
from debsync.clock import local_date
from debsync.config import Config
from debsync.decisions import Plan
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, PendingStep, Snapshot, StepSent
from debsync.model import DebtorKind, Language, PriorStep
from debsync.pauses import load_active
from debsync.policy import DEFAULT_POLICY, Policy
from debsync.prior_steps import LEVELS, recorded_history
from debsync.scheduler import _freshness, collector_paused
from debsync.scheduler import plan as plan_snapshot
from debsync.store import Store
from debsync.store.reports import OPEN_OFF_INDEX, of_debtors
from debsync.store.schema import (
    BLOCKING_CANCELS,
    OPEN_STATES,
    ActionState,
    EventKind,
    connector_state,
    debtors,
    events,
    invoices,
    outbox,
)

_KINDS = {k.value: k for k in DebtorKind}
_LANGUAGES = {lang.value: lang for lang in Language}


OPEN_INVOICE_COLUMNS = (
    invoices.c.instance,
    invoices.c.external_id,
    invoices.c.number,
    invoices.c.debtor_id,
    invoices.c.due_date,
    invoices.c.currency,
    invoices.c.open_minor,
    invoices.c.direct_debit,
    invoices.c.direct_debit_failed,
    invoices.c.reminded_by_source,
)
"""What a plan reads of an open invoice (both loaders: the snapshot and the columnar book)."""
DEBTOR_COLUMNS = (
    debtors.c.instance,
    debtors.c.external_id,
    debtors.c.kind,
    debtors.c.language,
    debtors.c.emails,
    debtors.c.phones,
    debtors.c.address,
)
STEP_SENT_COLUMNS = (  # fields picked in the database: decoding JSON in Python costs more
    events.c.instance,
    events.c.invoice_id,
    events.c.data["step"].as_string(),
    events.c.data["sent_on"].as_string(),
    events.c.data["role"].as_string(),
    events.c.data["received_on"].as_string(),
    events.c.data["stated_costs_minor"].as_integer(),
)


@lru_cache(maxsize=65536)
def _can_text(phone: str) -> bool:
    """Whether an E.164 number can receive SMS (mobile, or a number that may be mobile)."""
    if phone.startswith("+316"):  # Dutch mobile numbers, the usual case, without parsing
        return True
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return False
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def unreachable_channels(
    emails: Sequence[str], phones: Sequence[str], address: Mapping[str, Any] | None
) -> frozenset[str]:
    """Channels that cannot reach a debtor with these contact details."""
    missing = set()
    if not emails:
        missing.add("email")
    if not phones:
        missing.add("call")
    if not any(_can_text(p) for p in phones):
        missing.add("sms")
    if not address or not (address.get("lines") and address.get("city")):
        missing.add("letter")
    return frozenset(missing)


def load_snapshot(
    store: Store,
    policies_by_instance: Mapping[str, str],
    debtor_policies: Mapping[tuple[str, str], str] | None = None,
    *,
    only: Collection[tuple[str, str]] | None = None,
    pending: bool = True,
    exclude_key: str | None = None,
    sources: Mapping[str, str] | None = None,
    today: date | None = None,
    policies: Mapping[str, Policy] | None = None,
) -> Snapshot:
    """The snapshot for the configured instances (name → policy name).

    :param only: ``(instance, debtor id)`` pairs to load those debtors only (the web
        console re-plans the debtors a change reached).
    :param pending: include outbox actions still under way; ``exclude_key`` leaves one out.
    :param sources: each instance's connector type, for the plan's explanations.
    :param today: the day planned, to load the actions already planned for it (one message
        per debtor and channel a day).
    :param policies: the policies by name, to place the steps the source recorded on each
        invoice's ladder (:mod:`debsync.prior_steps`); without them those are left out.
    """
    names = list(policies_by_instance)
    if only is not None:
        names = [name for name in names if name in {inst for inst, _ in only}]
    overrides = debtor_policies or {}

    is_open = invoices.c.state == "open" if only is None else OPEN_OFF_INDEX

    def scoped(table: sa.Table, column: str = "debtor_id") -> list[Any]:
        where: list[Any] = [table.c.instance.in_(names)]
        if only is not None:
            where.append(of_debtors(table, only, column))
        return where

    with collector_paused(), store.engine.connect() as conn:
        instances = _instances(conn, names, policies_by_instance, sources)
        open_invoices = [
            InvoiceFacts(*row[:8], direct_debit_failed=row[8], reminded_by_source=row[9])
            for row in conn.execute(
                sa.select(*OPEN_INVOICE_COLUMNS).where(*scoped(invoices), is_open)
            )
        ]
        debtor_facts = {
            (inst, ext): DebtorFacts(
                inst,
                ext,
                _KINDS[kind],
                _LANGUAGES.get(lang, Language.NL),
                overrides.get((inst, ext)),
                unreachable_channels(emails, phones, address),
            )
            for inst, ext, kind, lang, emails, phones, address in conn.execute(
                sa.select(*DEBTOR_COLUMNS).where(*scoped(debtors, "external_id"))
            )
        }
        history: dict[tuple[str, str], list[StepSent]] = defaultdict(list)
        facts_policies: dict[tuple[str, str], tuple[Policy | None, DebtorKind]] = {}
        for inst, invoice_id, step, sent_on, role, received_on, stated_costs in conn.execute(
            sa.select(*STEP_SENT_COLUMNS)
            .where(*scoped(events), events.c.kind == EventKind.STEP_SENT)
            .order_by(events.c.id)
        ):
            history[(inst, invoice_id)].append(
                StepSent(
                    step=step,
                    sent_on=date.fromisoformat(sent_on),
                    role=role,
                    received_on=_date(received_on),
                    stated_costs_minor=stated_costs,
                )
            )
        if policies:
            for (inst, debtor_id), facts in debtor_facts.items():
                policy = overrides.get((inst, debtor_id)) or instances[inst].policy
                facts_policies[(inst, debtor_id)] = (policies.get(policy), facts.kind)
            add_recorded(conn, scoped(events), facts_policies, history)
        waiting = pending_steps(conn, scoped(outbox), exclude_key) if pending else {}
        messaged = messaged_on(conn, scoped(outbox), today) if today else {}
        pauses = [p for p in load_active(conn) if p.instance in instances]
    return Snapshot(
        invoices=open_invoices,
        debtors=debtor_facts,
        instances=instances,
        history=dict(history),
        pauses=pauses,
        pending=waiting,
        messaged_today=messaged,
    )


def _instances(
    conn: Connection,
    names: Sequence[str],
    policies_by_instance: Mapping[str, str],
    sources: Mapping[str, str] | None,
) -> dict[str, InstanceFacts]:
    synced = dict(
        conn.execute(
            sa.select(connector_state.c.instance, connector_state.c.last_success_at).where(
                connector_state.c.instance.in_(names)
            )
        ).all()
    )
    return {
        name: InstanceFacts(
            name,
            policies_by_instance.get(name) or DEFAULT_POLICY,
            synced.get(name),
            (sources or {}).get(name, ""),
        )
        for name in names
    }


def add_recorded(
    conn: Connection,
    where: Sequence[Any],
    debtors_policies: Mapping[tuple[str, str], tuple[Policy | None, DebtorKind]],
    history: dict[tuple[str, str], list[StepSent]],
) -> None:
    """Add the steps the source recorded (``step.recorded_elsewhere``) to ``history`` as the
    debtor's policy places them, ordered by date among the steps debsync sent."""
    data = events.c.data
    query = sa.select(
        events.c.instance,
        events.c.debtor_id,
        events.c.invoice_id,
        data["step"].as_string(),
        data["sent_on"].as_string(),
        data["source"].as_string(),
    ).where(*where, events.c.kind == EventKind.STEP_RECORDED_ELSEWHERE)
    for inst, debtor_id, invoice_id, step, sent_on, source in conn.execute(
        query.order_by(events.c.id)
    ):
        policy, kind = debtors_policies.get((inst, debtor_id), (None, DebtorKind.UNKNOWN))
        if policy is None or step not in LEVELS:
            continue
        day = date.fromisoformat(sent_on)
        recorded = recorded_history(policy, kind, cast(PriorStep, step), day, source)
        steps = history[(inst, invoice_id)]
        steps[:] = sorted([*recorded, *steps], key=lambda s: s.sent_on)  # stable: recorded first


def messaged_on(
    conn: Connection, where: Sequence[Any], day: date
) -> dict[tuple[str, str, str], str]:
    """Per (instance, debtor, channel): an action planned on ``day`` that was not cancelled
    and did not die, so the debtor has (or will have) a message on that channel that day."""
    query = sa.select(outbox.c.instance, outbox.c.debtor_id, outbox.c.channel, outbox.c.key).where(
        *where,
        outbox.c.planned_on == day,
        outbox.c.state.not_in([ActionState.CANCELLED, ActionState.DEAD]),
    )
    return {(inst, debtor, channel): key for inst, debtor, channel, key in conn.execute(query)}


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def pending_steps(
    conn: Connection, where: Sequence[Any], exclude_key: str | None = None
) -> dict[tuple[str, str], PendingStep]:
    """Per (instance, invoice): the outbox action that keeps it from being planned again —
    one under way, dead, refused or rejected, or a letter not yet posted."""
    blocking = sa.or_(
        outbox.c.state.in_([*OPEN_STATES, ActionState.DEAD]),
        sa.and_(
            outbox.c.state == ActionState.CANCELLED, outbox.c.cancel_code.in_(BLOCKING_CANCELS)
        ),
        sa.and_(outbox.c.state == ActionState.SENT, outbox.c.dispatched_on.is_(None)),
    )
    query = sa.select(
        outbox.c.key,
        outbox.c.instance,
        outbox.c.step,
        outbox.c.channel,
        outbox.c.state,
        outbox.c.dispatched_on,
        outbox.c.invoice_ids,
    ).where(*where, blocking)
    if exclude_key is not None:
        query = query.where(outbox.c.key != exclude_key)
    found: dict[tuple[str, str], PendingStep] = {}
    for key, inst, step, channel, state, dispatched_on, invoice_ids in conn.execute(
        query.order_by(outbox.c.id)
    ):
        entry = PendingStep(key, step, channel, state, dispatched_on is not None)
        for invoice_id in invoice_ids:
            found[(inst, invoice_id)] = entry
    return found


def plan_from_store(
    config: Config,
    store: Store,
    now: datetime,
    *,
    rates: law.RateTable | None = None,
    check_freshness: bool = True,
    instances: Collection[str] | None = None,
    debtors: Collection[tuple[str, str]] | None = None,
) -> Plan:
    """Today's plan for every configured instance, from what the store holds: the columnar
    path (:mod:`debsync.columnar_plan`), equal to ``scheduler.plan()`` on the snapshot.
    ``instances`` narrows it to some of them; ``debtors`` to some ``(instance, debtor id)``
    pairs, through ``scheduler.plan()`` on their snapshot (each debtor is planned on its own:
    its invoices, credit notes, pauses and history, so the part is the whole plan's part)."""
    from debsync.columnar_plan import plan as plan_columns
    from debsync.planning_columnar import load_book

    connectors = {
        name: c for name, c in config.connectors.items() if instances is None or name in instances
    }
    policies_by_instance = {name: c.policy for name, c in connectors.items()}
    debtor_policies = {
        (name, debtor): policy
        for name, c in connectors.items()
        for debtor, policy in c.debtor_policies.items()
    }
    sources = {name: c.type_name for name, c in connectors.items()}
    rates = rates or law.load_rate_table(config.law.interest_rates)
    if debtors is not None:
        snapshot = load_snapshot(
            store,
            policies_by_instance,
            debtor_policies,
            only=debtors,
            sources=sources,
            today=local_date(now),
            policies=config.policies,
        )
        return plan_snapshot(
            snapshot, config.policies, now, rates=rates, check_freshness=check_freshness
        )
    book = load_book(
        store,
        policies_by_instance,
        debtor_policies,
        sources=sources,
        today=local_date(now),
        policies=config.policies,
    )
    return plan_columns(book, config.policies, now, rates=rates, check_freshness=check_freshness)


def stale_instances(config: Config, store: Store, now: datetime) -> frozenset[str]:
    """The configured instances whose last successful sync is too old to act on at ``now``:
    with the day, the only way the clock changes a plan."""
    with store.engine.connect() as conn:
        facts = _instances(
            conn, list(config.connectors), {n: c.policy for n, c in config.connectors.items()}, None
        )
    return frozenset(_freshness(facts, config.policies, now))
