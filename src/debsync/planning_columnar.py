"""Loading the scheduler's snapshot from the store as columns (:mod:`debsync.columnar`): the
rows as the database driver returns them (no per-value conversion), turned into arrays in
bulk. The same facts :func:`debsync.planning.load_snapshot` loads, for the columnar plan.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from itertools import repeat
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync.columnar import NO_COSTS, NO_DATE, ROLES, Book, codes
from debsync.facts import DebtorFacts, InstanceFacts, StepSent
from debsync.model import DebtorKind, Language
from debsync.pauses import load_active
from debsync.planning import (
    _KINDS,
    _LANGUAGES,
    DEBTOR_COLUMNS,
    OPEN_INVOICE_COLUMNS,
    STEP_SENT_COLUMNS,
    _date,
    _instances,
    add_recorded,
    messaged_on,
    pending_steps,
    unreachable_channels,
)
from debsync.policy import Policy
from debsync.scheduler import collector_paused
from debsync.store import Store
from debsync.store.schema import EventKind, debtors, events, invoices, outbox


def load_book(
    store: Store,
    policies_by_instance: Mapping[str, str],
    debtor_policies: Mapping[tuple[str, str], str] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
    today: date | None = None,
    policies: Mapping[str, Policy] | None = None,
) -> Book:
    """:func:`load_snapshot` as columns (:mod:`debsync.columnar`), for every configured
    instance: the rows as the database driver returns them, turned into arrays in bulk."""
    names = list(policies_by_instance)
    overrides = debtor_policies or {}
    with collector_paused(), store.engine.connect() as conn:
        instances = _instances(conn, names, policies_by_instance, sources)
        invoice_query, debtor_query, sent_query = book_queries(names)
        inst: list[str] = []
        ext: list[str] = []
        number: list[str] = []
        debtor_id: list[str] = []
        currency: list[str] = []
        arrays: list[tuple[Any, ...]] = []  # per chunk: due, open, the three flags
        for chunk in _chunks(conn, invoice_query):
            i, e, n, d, due, cur, amount, dd, failed, reminded = zip(*chunk, strict=True)
            for column, values in ((inst, i), (ext, e), (number, n), (debtor_id, d)):
                column.extend(values)
            currency.extend(cur)
            flags = (np.array(v, np.bool_) for v in (dd, failed, reminded))
            arrays.append((_ordinals(due), np.array(amount, np.int64), *flags))
        due_, open_, dd_, failed_, reminded_ = (
            (np.concatenate(c) for c in zip(*arrays, strict=True))
            if arrays
            else (np.zeros(0, np.int64) for _ in range(5))
        )
        del arrays
        debtor_codes: dict[tuple[str, str], int] = {}
        debtor = codes(list(zip(inst, debtor_id, strict=True)), debtor_codes)
        reach: dict[tuple[Any, ...], frozenset[str]] = {}
        held: dict[tuple[str, str], DebtorFacts] = {}  # the debtors the store holds
        for chunk in _chunks(conn, debtor_query):
            for i, e, kind, lang, emails, phones, address in chunk:
                if (i, e) in debtor_codes:
                    missing = _reachable(reach, emails, phones, address)
                    language = _LANGUAGES.get(lang, Language.NL)
                    policy = overrides.get((i, e))
                    held[(i, e)] = DebtorFacts(i, e, _KINDS[kind], language, policy, missing)
        facts = [held.get(key) or DebtorFacts(*key) for key in debtor_codes]
        known = {key: debtor_codes[key] for key in held}
        del held
        row_of: dict[str, dict[str, int]] = {name: {} for name in names}
        if len(names) == 1:
            row_of[names[0]] = dict(zip(ext, range(len(ext)), strict=True))
        else:
            for k, (name, invoice) in enumerate(zip(inst, ext, strict=True)):
                row_of[name][invoice] = k
        recorded = _recorded(conn, names, instances, facts, known, policies, row_of)
        own: dict[tuple[str, str], list[StepSent]] = defaultdict(list)
        steps: dict[str, int] = {}
        roles: dict[str | None, int] = {role: k for k, role in enumerate(ROLES)}
        parts: list[tuple[Any, ...]] = []
        for chunk in _chunks(conn, sent_query):
            ev_inst, ev_ext, step, sent_on, role, received, costs = zip(*chunk, strict=True)
            if len(names) == 1:
                located: Iterator[int] = map(row_of[names[0]].get, ev_ext, repeat(-1))
            else:
                located = (row_of[n].get(e, -1) for n, e in zip(ev_inst, ev_ext, strict=True))
            rows = np.fromiter(located, np.int64, len(chunk))
            keep = rows >= 0
            stated = [NO_COSTS if c is None else c for c in costs]
            columns: tuple[Any, ...] = (rows, codes(step, steps), codes(role, roles))
            columns += (_ordinals(sent_on), _ordinals(received), np.array(stated, np.int64))
            parts.append(tuple(c[keep] for c in columns))
            if recorded:
                for event in chunk:
                    if (event[0], event[1]) in recorded:
                        own[(event[0], event[1])].append(_step_sent(*event[2:]))
        ev_row, ev_step, ev_role, ev_sent, ev_received, ev_costs = (
            (np.concatenate(c) for c in zip(*parts, strict=True))
            if parts
            else (np.zeros(0, np.int64) for _ in range(6))
        )
        del parts
        histories: dict[int, Sequence[StepSent]] = {
            row_of[i][e]: sorted([*found, *own[(i, e)]], key=lambda s: s.sent_on)
            for (i, e), found in recorded.items()
        }
        waiting = pending_steps(conn, [outbox.c.instance.in_(names)])
        messaged = messaged_on(conn, [outbox.c.instance.in_(names)], today) if today else {}
        pauses = [p for p in load_active(conn) if p.instance in instances]
    currencies: dict[str, int] = {}
    currency_codes = codes(currency, currencies)
    return Book(
        instances=instances,
        instance_names=names,
        debtors=facts,
        inst=codes(inst, {name: k for k, name in enumerate(names)}),
        external_id=ext,
        number=number,
        debtor=debtor,
        debtor_id=debtor_id,
        due=due_,
        currencies=list(currencies),
        currency=currency_codes,
        open_minor=open_,
        closed=np.zeros(len(ext), np.bool_),
        direct_debit=dd_.astype(np.bool_),
        direct_debit_failed=failed_.astype(np.bool_),
        reminded_by_source=reminded_.astype(np.bool_),
        step_names=list(steps),
        roles=list(roles),
        ev_invoice=ev_row,
        ev_step=ev_step,
        ev_role=ev_role,
        ev_sent=ev_sent,
        ev_received=ev_received,
        ev_costs=ev_costs,
        histories=histories,
        pauses=pauses,
        pending=waiting,
        messaged_today=messaged,
    )


def book_queries(names: Sequence[str]) -> tuple[sa.Select[Any], sa.Select[Any], sa.Select[Any]]:
    """What :func:`load_book` reads of the instances ``names``: open invoices, debtors, and
    the steps sent (in the order sent)."""
    return (
        sa.select(*OPEN_INVOICE_COLUMNS).where(
            invoices.c.instance.in_(names), invoices.c.state == "open"
        ),
        sa.select(*DEBTOR_COLUMNS).where(debtors.c.instance.in_(names)),
        sa.select(*STEP_SENT_COLUMNS)
        .where(events.c.instance.in_(names), events.c.kind == EventKind.STEP_SENT)
        .order_by(events.c.id),
    )


_CHUNK = 50_000


def _chunks(conn: Connection, query: sa.Select[Any]) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` as the database driver returns them, a chunk at a time: no
    per-value conversion (dates stay ISO strings on SQLite, JSON stays text), which the
    loader does in bulk per chunk, holding one chunk of rows at a time."""
    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
    result = conn.exec_driver_sql(str(compiled), execution_options={"stream_results": True})
    yield from result.partitions(_CHUNK)


def _step_sent(
    step: str, sent_on: str, role: str | None, received_on: str | None, costs: int | None
) -> StepSent:
    return StepSent(step, date.fromisoformat(sent_on), role, _date(received_on), costs)


_EPOCH = date(1970, 1, 1).toordinal()


def _ordinals(values: Sequence[Any]) -> Any:
    """Dates (ISO strings or ``date``, None for none) as day ordinals, 0 for none."""
    days = np.array(values, "datetime64[D]")
    out = days.astype(np.int64) + _EPOCH
    out[np.isnat(days)] = NO_DATE
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _reachable(
    seen: dict[tuple[Any, ...], frozenset[str]], emails: Any, phones: Any, address: Any
) -> frozenset[str]:
    """:func:`unreachable_channels` for raw column values, worked out once per distinct
    phones and address (most debtors share their kind of details)."""
    found = _json(emails)
    if not isinstance(phones, str) or not (address is None or isinstance(address, str)):
        return unreachable_channels(found, _json(phones), _json(address))
    key = (bool(found), phones, address)
    missing = seen.get(key)
    if missing is None:
        missing = seen[key] = unreachable_channels(found, _json(phones), _json(address))
    return missing


class _DebtorPolicies(Mapping[tuple[str, str], tuple[Policy | None, DebtorKind]]):
    """Each debtor's policy and kind for :func:`add_recorded`, looked up when asked."""

    def __init__(
        self,
        facts: Sequence[DebtorFacts],
        codes: Mapping[tuple[str, str], int],
        instances: Mapping[str, InstanceFacts],
        policies: Mapping[str, Policy],
    ) -> None:
        self.facts, self.codes, self.instances, self.policies = facts, codes, instances, policies

    def __getitem__(self, key: tuple[str, str]) -> tuple[Policy | None, DebtorKind]:
        debtor = self.facts[self.codes[key]]  # KeyError: not in the debtors table
        name = debtor.policy or self.instances[debtor.instance].policy
        return self.policies.get(name), debtor.kind

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)


def _recorded(
    conn: Connection,
    names: Sequence[str],
    instances: Mapping[str, InstanceFacts],
    facts: Sequence[DebtorFacts],
    debtor_codes: Mapping[tuple[str, str], int],
    policies: Mapping[str, Policy] | None,
    row_of: Mapping[str, Mapping[str, int]],
) -> dict[tuple[str, str], list[StepSent]]:
    """The steps their source recorded on open invoices, placed as :func:`add_recorded`
    places them for :func:`load_snapshot` (without the policies: none)."""
    if not policies:
        return {}
    recorded: dict[tuple[str, str], list[StepSent]] = defaultdict(list)
    by_debtor = _DebtorPolicies(facts, debtor_codes, instances, policies)
    add_recorded(conn, [events.c.instance.in_(names)], by_debtor, recorded)
    return {key: steps for key, steps in recorded.items() if key[1] in row_of.get(key[0], {})}
