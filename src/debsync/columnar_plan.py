"""The scheduler over a columnar book (:mod:`debsync.columnar`): a vectorised pass settles
the invoices with nothing to do today, the reference code (:mod:`debsync.scheduler`) the rest.

Most of a steady-state book has nothing to do today: not yet due, step already taken,
credit notes, direct debits. One pass over arrays finds those, and their decisions are built
only when someone reads them (``plan --explain``, ``status``). The invoices with a step due
today are grouped and turned into actions by the scheduler's own group stage; a debtor with
anything rare or complex (a pause, an action under way, steps the source recorded, an
unknown step, a claim old enough to have prescribed, an unknown policy) goes through the
scheduler's per-invoice loop whole. The result equals ``scheduler.plan()`` on the same facts
(``tests/test_columnar_plan.py``).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

from debsync import eligibility, law
from debsync.claims import wik_dates, wik_sent
from debsync.clock import local_date
from debsync.columnar import NO_COSTS, Book, Bools, Decisions, Ints, days
from debsync.decisions import Decision, Plan, Reason
from debsync.facts import InvoiceFacts, Snapshot, StepSent
from debsync.ladder import Ladder, Rung, Unreachable
from debsync.policy import Policy
from debsync.scheduler import Groups, _decide, _freshness, _Group, _why, act_on, collector_paused

_YOUNG_DAYS = 365 * law.PRESCRIPTION_MIN_YEARS
"""An invoice less than this many days past due cannot have prescribed."""

# Codes of the decisions the vectorised pass settles (index into _SETTLED), and of the rest.
_SETTLED = (
    Reason.PAID,
    Reason.CREDIT,
    Reason.NET_BALANCE,
    Reason.STALE,
    Reason.HANDED_OFF,
    Reason.SOURCE_REMINDS,
    Reason.DIRECT_DEBIT,
    Reason.LADDER_DONE,
    Reason.NEEDS_CONTACT,
    Reason.WAITING_WIK_TERM,
    Reason.NO_WIK,
    Reason.LOWER_STEP_MISSING,
    Reason.NOT_DUE,
)
_CODE = {reason: code for code, reason in enumerate(_SETTLED)}
_OPEN = -1  # not decided yet
_DUE = -2  # a step is due today: grouped into a message
_ROUTED = -3  # the debtor goes through the reference loop
_MAX_BITS = 62
_STALE_DEBTOR, _NO_POLICY = -2, -3  # a debtor's ladder code when it has none


def plan(
    book: Book,
    policies: Mapping[str, Policy],
    now: datetime,
    *,
    rates: law.RateTable | None = None,
    check_freshness: bool = True,
) -> Plan:
    """``scheduler.plan()`` over a columnar book: the same actions, decisions and warnings;
    the decisions on invoices with nothing to do are built when first read."""
    with collector_paused():
        return _Pass(book, policies, now, check_freshness).plan(rates)


class _Pass:
    """One plan over a book: a decision code per invoice, then the messages."""

    def __init__(
        self, book: Book, policies: Mapping[str, Policy], now: datetime, check_freshness: bool
    ) -> None:
        self.book, self.policies, self.now = book, policies, now
        self.check_freshness = check_freshness
        self.today = today = local_date(now)
        self.t = t = today.toordinal()
        n = len(book)
        self.code = code = np.full(n, _OPEN, np.int8)
        self.stale = _freshness(book.instances, policies, now) if check_freshness else {}
        self._rows: dict[tuple[str, str], int] | None = None
        self._events()
        route = self._debtors()
        undecided = np.ones(n, np.bool_)

        def settle(mask: Bools, value: int) -> None:
            hit = undecided & mask
            code[hit] = value
            undecided[hit] = False

        key = book.debtor * len(book.currencies) + book.currency
        live = ~book.closed
        net = np.zeros(len(book.debtors) * len(book.currencies), np.int64)
        np.add.at(net, key[live], book.open_minor[live])
        settle(book.closed | (book.open_minor == 0), _CODE[Reason.PAID])
        settle(book.open_minor < 0, _CODE[Reason.CREDIT])
        settle(net[key] <= 0, _CODE[Reason.NET_BALANCE])
        settle(self.deb_stale[book.debtor], _CODE[Reason.STALE])
        handoff = self.role_code("handoff")
        settle(self.last_role == handoff, _CODE[Reason.HANDED_OFF])
        settle(route[book.debtor], _ROUTED)  # paused, or anything else rare
        settle(t - book.due >= _YOUNG_DAYS, _ROUTED)  # may have prescribed
        settle(book.reminded_by_source, _CODE[Reason.SOURCE_REMINDS])
        settle(book.direct_debit & ~book.direct_debit_failed, _CODE[Reason.DIRECT_DEBIT])
        self._ladder(np.nonzero(undecided)[0])
        # a debtor is planned whole, by one path
        routed = route
        routed[book.debtor[code == _ROUTED]] = True
        code[routed[book.debtor]] = _ROUTED
        self.routed_debtors = routed

    def role_code(self, role: str) -> int:
        roles = self.book.roles
        return roles.index(role) if role in roles else -9

    def _events(self) -> None:
        """Per invoice: its step events (a range of ``self.order``), the last one, and the
        last veertiendagenbrief."""
        book, n = self.book, len(self.book)
        self.order = order = np.argsort(book.ev_invoice, kind="stable")
        counts = np.bincount(book.ev_invoice, minlength=n)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        has = counts > 0
        self.last_ev = np.full(n, -1, np.int64)
        self.last_ev[has] = last = order[self.ends[has] - 1]
        self.last_role = np.full(n, -1, np.int64)
        self.last_role[has] = book.ev_role[last]
        self.last_step = np.full(n, len(book.step_names), np.int64)  # none sent: the extra code
        self.last_step[has] = book.ev_step[last]
        self.last_sent = np.zeros(n, np.int64)
        self.last_sent[has] = book.ev_sent[last]
        self.wik_ev = np.full(n, -1, np.int64)
        wik = np.nonzero(book.ev_role[order] == self.role_code("wik_notice"))[0]
        if len(wik):
            rows = book.ev_invoice[order[wik]]
            last = np.ones(len(wik), np.bool_)
            last[:-1] = rows[1:] != rows[:-1]
            self.wik_ev[rows[last]] = order[wik[last]]

    def histories(self, rows: Sequence[int]) -> dict[int, Sequence[StepSent]]:
        """The steps sent for each of ``rows``, oldest first, as the scheduler reads them."""
        book = self.book
        at = np.asarray(rows, np.int64)
        counts = self.ends[at] - self.starts[at]
        total = int(counts.sum())
        first = np.repeat(self.starts[at], counts)
        offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        ev = self.order[first + offset]
        names, roles, day = book.step_names, book.roles, days()
        steps = [
            StepSent(
                names[step],
                day(sent),
                roles[role],
                day(got) if got else None,
                None if costs == NO_COSTS else costs,
            )
            for step, sent, role, got, costs in zip(
                book.ev_step[ev].tolist(),
                book.ev_sent[ev].tolist(),
                book.ev_role[ev].tolist(),
                book.ev_received[ev].tolist(),
                book.ev_costs[ev].tolist(),
                strict=True,
            )
        ]
        found: dict[int, Sequence[StepSent]] = {}
        start = 0
        for i, n in zip(rows, counts.tolist(), strict=True):
            found[i] = book.histories.get(i) or steps[start : start + n]
            start += n
        return found

    def rows(self) -> dict[tuple[str, str], int]:
        """(instance, invoice id) → row, built the first time a key must be found."""
        if self._rows is None:
            names = self.book.instance_names
            self._rows = {
                (names[c], ext): i
                for i, (c, ext) in enumerate(
                    zip(self.book.inst.tolist(), self.book.external_id, strict=True)
                )
            }
        return self._rows

    def _debtors(self) -> Bools:
        """Per debtor: its ladder, stale data, and whether it goes through the reference
        loop (no policy, a pause, an action under way, steps a source recorded)."""
        book = self.book
        self.ladders: list[Ladder] = []
        known: dict[tuple[str, Any, frozenset[str]], int] = {}
        instances, stale, policies = book.instances, self.stale, self.policies

        def ladder_of(instance: str, policy: str | None, kind: Any, unreachable: Any) -> int:
            if instance in stale:
                return _STALE_DEBTOR
            name = policy or instances[instance].policy
            if name not in policies:
                return _NO_POLICY
            ladder_key = (name, kind, unreachable)
            at = known.get(ladder_key)
            if at is None:
                at = known[ladder_key] = len(self.ladders)
                self.ladders.append(Ladder(policies[name], kind, unreachable))
            return at

        # debtors alike share their verdict: worked out once per instance, policy, kind and
        # unreachable channels
        alike = _Memo(ladder_of)
        found: Ints = np.array(
            [alike[d.instance, d.policy, d.kind, d.unreachable] for d in book.debtors], np.int64
        ).reshape(-1)
        self.deb_stale = found == _STALE_DEBTOR
        route: Bools = found == _NO_POLICY
        self.deb_ladder = np.where(found >= 0, found, -1)
        paused = {p.instance for p in book.pauses if p.scope == "instance"}
        if paused:
            names = [book.instance_names.index(i) for i in paused if i in book.instance_names]
            route[book.debtor[np.isin(book.inst, names)]] = True
        debtor_rows = [
            self.rows().get((p.instance, p.target)) for p in book.pauses if p.scope == "invoice"
        ]
        debtor_rows += [self.rows().get(key) for key in book.pending] if book.pending else []
        debtor_rows += list(book.histories)
        route[[int(book.debtor[r]) for r in debtor_rows if r is not None]] = True
        targets = {(p.instance, p.target) for p in book.pauses if p.scope == "debtor"}
        if targets:
            route[
                [k for k, d in enumerate(book.debtors) if (d.instance, d.external_id) in targets]
            ] = True
        return route

    def _ladder(self, rows: Ints) -> None:
        """The ladder's verdict on the invoices still open: the next rung, when it is due,
        and the guards on the veertiendagenbrief and the handoff."""
        book, t, code = self.book, self.t, self.code
        n = len(book)
        self.position = np.full(n, -1, np.int64)  # the last step's place on the ladder
        self.step_ord = np.zeros(n, np.int64)
        if not len(rows) or not self.ladders:
            return
        tables = _Tables(self.ladders, book.step_names)
        lad = self.deb_ladder[book.debtor[rows]]
        last = tables.position[lad, self.last_step[rows]]
        unknown = last == -2
        code[rows[unknown]] = _ROUTED
        rows, lad, last = rows[~unknown], lad[~unknown], last[~unknown]
        self.position[rows] = last
        slot = last + 1
        kind = tables.kind[lad, slot]
        code[rows[kind == _Tables.DONE]] = _CODE[Reason.LADDER_DONE]
        code[rows[kind == _Tables.UNREACHABLE]] = _CODE[Reason.NEEDS_CONTACT]
        keep = kind == _Tables.RUNG
        rows, lad, slot = rows[keep], lad[keep], slot[keep]
        cell = lad * tables.kind.shape[1] + slot  # the rung in the flattened tables: a cheap take
        due = book.due[rows]
        has = self.last_ev[rows] >= 0
        sent = np.where(has, self.last_sent[rows], due)
        by_due = due + tables.after_due.take(cell)
        by_due = np.where(has, np.maximum(by_due, sent + tables.spacing.take(cell)), by_due)
        step_ord = np.where(
            tables.by_previous.take(cell), sent + tables.after_previous.take(cell), by_due
        )
        overdue = tables.min_overdue.take(cell)
        step_ord = np.where(overdue != 0, np.maximum(step_ord, due + overdue), step_ord)
        handoff = tables.handoff.take(cell)
        consumer = tables.consumer[lad]
        wik = self.wik_ev[rows]
        with_wik = consumer & (wik >= 0)
        if with_wik.any():
            escalate = self._escalate(wik[with_wik], lad[with_wik])
            later = escalate > step_ord[with_wik]
            step_ord[with_wik] = np.where(later, escalate, step_ord[with_wik])
            waiting = np.zeros(len(rows), np.bool_)
            waiting[np.nonzero(with_wik)[0][later]] = True
            waiting &= t < step_ord
        else:
            waiting = np.zeros(len(rows), np.bool_)
        self.step_ord[rows] = step_ord
        code[rows[waiting]] = _CODE[Reason.WAITING_WIK_TERM]
        no_wik = consumer & (wik < 0) & handoff
        code[rows[no_wik]] = _CODE[Reason.NO_WIK]
        rest = ~waiting & ~no_wik
        check = rest & handoff
        if check.any():
            missing = self._missing_lower(rows[check], tables, lad[check], slot[check])
            if missing is None:
                code[rows[check]] = _ROUTED
                rest &= ~check
            else:
                code[rows[check][missing]] = _CODE[Reason.LOWER_STEP_MISSING]
                rest[np.nonzero(check)[0][missing]] = False
        code[rows[rest & (t < step_ord)]] = _CODE[Reason.NOT_DUE]
        code[rows[rest & (t >= step_ord) & (code[rows] == _OPEN)]] = _DUE

    def plan(self, rates: law.RateTable | None) -> Plan:
        book, code = self.book, self.code
        groups: Groups = {}
        eager: dict[int, Decision] = {}  # decisions taken by the reference loop
        debtor_rows = np.nonzero(self.routed_debtors)[0].tolist()
        routed_rows = np.nonzero(code == _ROUTED)[0].tolist()
        due_rows = np.nonzero(code == _DUE)[0].tolist()
        rows = [*routed_rows, *due_rows]
        facts = dict(zip(rows, book.facts(rows), strict=True))
        history = self.histories(rows)
        if len(routed_rows):
            sub = Snapshot(
                invoices=[facts[i] for i in routed_rows],
                debtors={
                    (d.instance, d.external_id): d for d in (book.debtors[k] for k in debtor_rows)
                },
                instances=book.instances,
                history={self.key(i): history[i] for i in routed_rows},
                pauses=book.pauses,
                pending=book.pending,
                messaged_today=book.messaged_today,
            )
            looped, groups = _decide(
                sub, self.policies, self.now, check_freshness=self.check_freshness
            )
            where = {self.key(i): i for i in routed_rows}
            eager = {where[(d.instance, d.invoice_id)]: d for d in looped}
        self._group(due_rows, facts, history, groups, eager)
        wanted = np.zeros(len(book.debtors) * len(book.currencies), np.bool_)
        key = book.debtor * len(book.currencies) + book.currency
        debtor_code = dict(
            zip(
                [(facts[i].instance, facts[i].debtor_id) for i in rows],
                book.debtor[np.asarray(rows, np.int64)].tolist(),
                strict=True,
            )
        )
        currency_code = {c: i for i, c in enumerate(book.currencies)}
        for inst, debtor_id, _, currency in groups:
            wanted[
                debtor_code[(inst, debtor_id)] * len(book.currencies) + currency_code[currency]
            ] = True
        credit_rows = np.nonzero((book.open_minor < 0) & ~book.closed & wanted[key])[0].tolist()
        credits: dict[tuple[str, str, str], list[InvoiceFacts]] = {}
        for i, inv in zip(credit_rows, book.facts(credit_rows), strict=True):
            facts[i] = inv
            credits.setdefault((inv.instance, inv.debtor_id, inv.currency), []).append(inv)
        history |= self.histories(credit_rows)
        by_key = {(facts[i].instance, facts[i].external_id): hist for i, hist in history.items()}
        warnings: list[str] = []
        actions, decided = act_on(groups, credits, by_key, self.today, rates, warnings)
        decisions = Decisions(len(book), lambda: [*self._looped(eager), *decided])
        return Plan(self.today, actions, decisions, sorted(set(warnings)))

    def key(self, i: int) -> tuple[str, str]:
        return self.book.instance_names[self.book.inst[i]], self.book.external_id[i]

    def _group(
        self,
        rows: Sequence[int],
        facts: Mapping[int, InvoiceFacts],
        history: Mapping[int, Sequence[StepSent]],
        groups: Groups,
        eager: dict[int, Decision],
    ) -> None:
        """The reference loop's last part for the invoices whose step is due today."""
        book, t, messaged = self.book, self.t, self.book.messaged_today
        at = np.asarray(rows, np.int64)
        debtor_rows = book.debtor[at]
        for i, k, lad, position in zip(
            rows,
            debtor_rows.tolist(),
            self.deb_ladder[debtor_rows].tolist(),
            self.position[at].tolist(),
            strict=True,
        ):
            inv, hist = facts[i], history[i]
            ladder = self.ladders[lad]
            rung = ladder.after[position]
            assert isinstance(rung, Rung)
            step = rung.step
            if messaged:  # a second run the same day: one message per debtor and channel a day
                found = [messaged.get((inv.instance, inv.debtor_id, c)) for c in rung.channels]
                earlier = next((key for key in found if key), None)
                if earlier is not None:
                    eager[i] = Decision(
                        *inv[:4],
                        Reason.MESSAGED_TODAY,
                        hist[-1].step if hist else None,
                        step.name,
                        date.fromordinal(t + 1),
                        f"action {earlier} went to the debtor today",
                    )
                    continue
            last = hist[-1] if hist else None
            why = _why(step, last, inv.number, inv.due_date, t - inv.due_date.toordinal())
            first = rung.channels[0]
            for channel in rung.channels:
                gkey = (inv.instance, inv.debtor_id, channel, inv.currency)
                group = groups.get(gkey)
                if group is None:
                    group = groups[gkey] = _Group(
                        inv.instance, book.debtors[k], ladder.policy, channel, inv.currency
                    )
                # the invoice is decided once, by its step's first channel
                group.invoices.append((inv, rung.position, why, channel == first))

    def _looped(self, eager: Mapping[int, Decision]) -> Iterator[Decision]:
        """The decisions of the per-invoice loop, in the book's order."""
        for i, c in enumerate(self.code.tolist()):
            if c >= 0:
                yield self.settled(i, _SETTLED[c])
            elif i in eager:
                yield eager[i]

    def settled(self, i: int, reason: Reason) -> Decision:
        """The decision the vectorised pass took on row ``i``, as the reference words it."""
        book = self.book
        inst = book.instance_names[book.inst[i]]
        last = self.last_ev[i]
        current = book.step_names[book.ev_step[last]] if last >= 0 else None
        head = (inst, book.external_id[i], book.number[i], book.debtor_id[i], reason, current)
        if reason is Reason.STALE:
            return Decision(*head, None, None, self.stale[inst])
        if reason in (Reason.SOURCE_REMINDS, Reason.DIRECT_DEBIT):
            debtor = book.debtors[book.debtor[i]]
            policy = self.ladders[self.deb_ladder[book.debtor[i]]].policy
            hist = self.histories([i])[i]
            held = eligibility.hold(
                book.facts([i])[0], debtor, book.instances[inst], policy, hist, self.today
            )
            assert held is not None
            return held
        if reason not in _ON_LADDER:
            return Decision(*head, None, None, "")
        ladder = self.ladders[self.deb_ladder[book.debtor[i]]]
        rung = ladder.after[int(self.position[i])]
        assert rung is not None
        name = rung.step.name
        if isinstance(rung, Unreachable):
            return Decision(*head, name, None, rung.detail)
        if reason is Reason.NOT_DUE:
            return Decision(*head, name, date.fromordinal(int(self.step_ord[i])), "")
        if reason is Reason.NO_WIK:
            return Decision(*head, name, None, "")
        hist = self.histories([i])[i]
        if reason is Reason.WAITING_WIK_TERM:
            wik = wik_sent(hist)
            assert wik is not None
            last_day, escalate = wik_dates(wik, ladder.policy)
            return Decision(
                *head, name, escalate, f"the veertiendagenbrief term runs until {last_day}"
            )
        missing = ", ".join(sorted(rung.required - {sent.step for sent in hist}))
        return Decision(*head, name, None, f"step {name!r} follows {missing}, which was not sent")

    def _escalate(self, events: Ints, lad: Ints) -> Ints:
        """The first day a consumer claim may escalate after the veertiendagenbrief
        ``events``, worked out once per policy and date."""
        book = self.book
        policy_code = {id(ladder.policy): i for i, ladder in enumerate(self.ladders)}
        by_ladder = np.array([policy_code[id(ladder.policy)] for ladder in self.ladders])
        key = (by_ladder[lad] << 42) | (book.ev_sent[events] << 21) | book.ev_received[events]
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        out = np.empty(len(unique), np.int64)
        for u, at in enumerate(first):
            e = int(events[at])
            step = StepSent(
                book.step_names[book.ev_step[e]],
                date.fromordinal(int(book.ev_sent[e])),
                book.roles[book.ev_role[e]],
                date.fromordinal(int(book.ev_received[e])) if book.ev_received[e] else None,
            )
            out[u] = wik_dates(step, self.ladders[int(lad[at])].policy)[1].toordinal()
        found: Ints = out[inverse.reshape(-1)]
        return found

    def _missing_lower(self, rows: Ints, tables: _Tables, lad: Ints, slot: Ints) -> Bools | None:
        """Whether a lower step that a handoff follows is missing from each invoice's
        history; None when there are too many step names for a bit mask."""
        book = self.book
        bits = {name: i for i, name in enumerate(book.step_names)}
        for names in tables.required.values():
            for name in names:
                bits.setdefault(name, len(bits))
        if len(bits) > _MAX_BITS:
            return None
        need = np.zeros(tables.kind.shape, np.int64)
        for (at, place), names in tables.required.items():
            need[at, place] = sum(1 << bits[name] for name in names)
        wanted = np.zeros(len(book), np.bool_)
        wanted[rows] = True
        events = wanted[book.ev_invoice]
        have = np.zeros(len(book), np.int64)
        np.bitwise_or.at(have, book.ev_invoice[events], np.left_shift(1, book.ev_step[events]))
        needed = need[lad, slot]
        return np.asarray((have[rows] & needed) != needed)


_ON_LADDER = frozenset(
    (
        Reason.NEEDS_CONTACT,
        Reason.NOT_DUE,
        Reason.NO_WIK,
        Reason.WAITING_WIK_TERM,
        Reason.LOWER_STEP_MISSING,
    )
)


class _Tables:
    """Every ladder's rungs as arrays, by (ladder, position of the last step + 1)."""

    DONE, UNREACHABLE, RUNG = 0, 1, 2

    def __init__(self, ladders: Sequence[Ladder], step_names: Sequence[str]) -> None:
        width = max(len(ladder.policy.steps) for ladder in ladders) + 1
        shape = (len(ladders), width)
        self.kind = np.zeros(shape, np.int8)
        self.after_due = np.zeros(shape, np.int64)
        self.after_previous = np.zeros(shape, np.int64)
        self.by_previous = np.zeros(shape, np.bool_)
        self.spacing = np.zeros(shape, np.int64)
        self.min_overdue = np.zeros(shape, np.int64)
        self.handoff = np.zeros(shape, np.bool_)
        self.consumer = np.array([ladder.consumer for ladder in ladders], np.bool_)
        self.required: dict[tuple[int, int], frozenset[str]] = {}
        # the last step's code (the extra last column: none sent) → its position, -2 unknown
        self.position = np.full((len(ladders), len(step_names) + 1), -2, np.int64)
        self.position[:, len(step_names)] = -1
        for at, ladder in enumerate(ladders):
            for code, name in enumerate(step_names):
                self.position[at, code] = ladder.position.get(name, -2)
            for last, rung in ladder.after.items():
                place = last + 1
                if isinstance(rung, Unreachable):
                    self.kind[at, place] = self.UNREACHABLE
                elif isinstance(rung, Rung):
                    self.kind[at, place] = self.RUNG
                    if rung.after_previous is not None:
                        self.by_previous[at, place] = True
                        self.after_previous[at, place] = rung.after_previous
                    else:
                        assert rung.after_due is not None
                        self.after_due[at, place] = rung.after_due
                        self.spacing[at, place] = max(rung.after_due - rung.previous_nominal, 1)
                    self.min_overdue[at, place] = rung.min_overdue
                    if rung.step.role == "handoff":
                        self.handoff[at, place] = True
                        self.required[(at, place)] = rung.required


class _Memo(dict[tuple[Any, ...], int]):
    """``function(*key)`` for each key, worked out the first time it is asked for."""

    def __init__(self, function: Callable[..., int]) -> None:
        super().__init__()
        self.function = function

    def __missing__(self, key: tuple[Any, ...]) -> int:
        found = self[key] = self.function(*key)
        return found
